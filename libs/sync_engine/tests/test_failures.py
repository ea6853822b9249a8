"""Failure classification (unit)."""

from __future__ import annotations

from sync_engine import FailureKind, classify_failure
from workflow_store.errors import SecretDecryptionError


def test_a_secret_this_worker_cannot_decrypt_is_transient() -> None:
    """M7: during a key rollout an older worker lacks the newest key; another attempt (on an
    updated worker) can succeed, and the attempt limit still ends a key that is really gone."""
    assert classify_failure(SecretDecryptionError("no key")) is FailureKind.TRANSIENT
