"""Encryption of secrets at rest (Fernet / MultiFernet, newest key first)."""

from __future__ import annotations

import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from observability.settings import comma_list

from .errors import InvalidEncryptionKeyError, SecretDecryptionError

__all__ = ["SecretBox", "parse_keys"]


def parse_keys(value: str) -> list[str]:
    """Split a comma-separated key list (``ENCRYPTION_KEYS``) into stripped, non-empty keys."""
    return comma_list(value)


def _fernet(key: str, position: int) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        # Never echo the key: name only its position in the list.
        raise InvalidEncryptionKeyError(
            f"encryption key #{position} is not a valid Fernet key "
            "(expected 32 url-safe base64-encoded bytes)"
        ) from None


class SecretBox:
    """Encrypts and decrypts secrets with a list of Fernet keys, newest first.

    New tokens are always made with the first key; any key may decrypt, so old tokens keep
    working during a rotation until :meth:`rotate` has re-encrypted them.
    """

    __slots__ = ("_fernet", "_key_count")

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not a single string")
        if not keys:
            raise InvalidEncryptionKeyError("at least one encryption key is required")
        self._fernet = MultiFernet([_fernet(key, i + 1) for i, key in enumerate(keys)])
        self._key_count = len(keys)

    @property
    def key_count(self) -> int:
        return self._key_count

    @staticmethod
    def generate_key() -> str:
        """Return a new random Fernet key (url-safe base64 text)."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` under the newest key; returns a Fernet token."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by any configured key."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, TypeError, ValueError):
            raise SecretDecryptionError(
                "stored secret could not be decrypted with any configured encryption key "
                "(was ENCRYPTION_KEYS changed without keeping the old key?)"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, TypeError, ValueError):
            raise SecretDecryptionError(
                "stored secret could not be decrypted with any configured encryption key"
            ) from None

    def __repr__(self) -> str:
        return f"SecretBox(keys={self._key_count})"
