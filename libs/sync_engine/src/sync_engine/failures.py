"""Failure classification: may a retry help (transient) or does it need a human (permanent)?

``FailureKind`` is the product's vocabulary (``sync_runs.error_kind``), re-exported here.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sync_messages.vocabulary import FailureKind
from workflow_store.errors import SecretDecryptionError
from zuora_client import ZuoraError

__all__ = [
    "CustomerBusyError",
    "CustomerLockLostError",
    "FailureKind",
    "IncompleteListingError",
    "classify_failure",
    "describe_failure",
]


class CustomerBusyError(Exception):
    """Another engine holds this customer's lock and did not finish within the wait."""


class CustomerLockLostError(Exception):
    """The run's customer lock ended before its write (the lock's connection dropped)."""


class IncompleteListingError(Exception):
    """The listing did not end on a real last page; nothing may be deleted or marked synced."""


def classify_failure(exc: BaseException) -> FailureKind:
    if isinstance(exc, IncompleteListingError):  # a glitch of one listing: the next may end
        return FailureKind.TRANSIENT
    if isinstance(exc, ZuoraError):
        return FailureKind.TRANSIENT if exc.retryable else FailureKind.PERMANENT
    if isinstance(exc, SecretDecryptionError):
        # During a key rollout a worker may not have the newest key yet (deploy/README.md): a
        # retry on an updated worker can succeed; the attempt limit still ends a key that is gone.
        return FailureKind.TRANSIENT
    if isinstance(exc, CustomerBusyError | CustomerLockLostError):
        return FailureKind.TRANSIENT
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError | ConnectionError):
        return FailureKind.TRANSIENT
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return FailureKind.TRANSIENT
    if isinstance(exc, TimeoutError | OSError):
        return FailureKind.TRANSIENT
    # Unknown errors are bugs or data we do not understand; retrying will not fix them.
    return FailureKind.PERMANENT


def describe_failure(exc: BaseException) -> str:
    """One line for humans; never contains credentials (ZuoraError messages are secret-free)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}"[:500] if text else name
