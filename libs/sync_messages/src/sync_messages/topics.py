"""Kafka topic names (contract): dotted and versioned."""

from __future__ import annotations

CUSTOMER_EVENTS = "customers.events.v1"
SYNC_COMMANDS = "workflow-sync.commands.v1"
# The fast lane: syncs an operator asked for (API, UI, CLI, replays), read by their own consumer
# group, so they never queue behind the sync-all fan-out on SYNC_COMMANDS.
SYNC_PRIORITY_COMMANDS = "workflow-sync.commands.priority.v1"
SYNC_ALL = "workflow-sync.sync-all.v1"
SYNC_RETRY = "workflow-sync.retry.v1"
SYNC_DLQ = "workflow-sync.dlq.v1"
SYNC_EVENTS = "workflow-sync.events.v1"

ALL_TOPICS = (
    CUSTOMER_EVENTS,
    SYNC_COMMANDS,
    SYNC_PRIORITY_COMMANDS,
    SYNC_ALL,
    SYNC_RETRY,
    SYNC_DLQ,
    SYNC_EVENTS,
)
