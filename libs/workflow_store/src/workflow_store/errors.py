"""Errors raised by the workflow store.

Messages never contain secrets: not the plaintext, not a ciphertext token, not a key.
"""

from __future__ import annotations


class StoreError(Exception):
    """Root of every error raised by ``workflow_store``."""


class ConfigurationError(StoreError):
    """The store's configuration (environment) is missing or invalid."""


class InvalidEncryptionKeyError(ConfigurationError):
    """An encryption key is not a valid Fernet key."""


class SecretDecryptionError(StoreError):
    """A stored secret could not be decrypted with any configured key."""


class CustomerExistsError(StoreError):
    """A customer with this name already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"customer {name!r} already exists")
        self.name = name


class CustomerNotFoundError(StoreError):
    """No customer matches the given name or id."""

    def __init__(self, ref: object) -> None:
        super().__init__(f"customer {str(ref)!r} not found")
        self.ref = ref


class ConcurrentUpdateError(StoreError):
    """A row kept changing under a compare-and-swap; the operation can be run again."""
