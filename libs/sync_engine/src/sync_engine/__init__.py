"""The sync engine: keeps one customer's stored workflows equal to its Zuora tenant, safely."""

from sync_engine.definitions_step import DefinitionSettings
from sync_engine.engine import WorkflowSyncEngine
from sync_engine.failures import CustomerBusyError, FailureKind, classify_failure
from sync_engine.outcome import ChangedIds, RunStatus, SyncOutcome, SyncStats
from sync_engine.reconcile import DeletionGuard, ReconcilePlan, plan_reconciliation
from sync_engine.request import SyncRequest
from sync_engine.settings import SyncSettings
from sync_engine.use_case import OutcomeHook, SyncCustomer

__all__ = [
    "ChangedIds",
    "CustomerBusyError",
    "DefinitionSettings",
    "DeletionGuard",
    "FailureKind",
    "OutcomeHook",
    "ReconcilePlan",
    "RunStatus",
    "SyncCustomer",
    "SyncOutcome",
    "SyncRequest",
    "SyncSettings",
    "SyncStats",
    "WorkflowSyncEngine",
    "classify_failure",
    "plan_reconciliation",
]
