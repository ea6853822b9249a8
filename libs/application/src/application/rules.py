"""The rules for what a customer's fields may hold: one definition for every entrypoint.

The API's request schemas build their constraints from these constants (so a bad field is a 422
with its location before any use case runs); the use cases check the same rules again with
:func:`customer_name` and friends, so the CLI and the UI, which have no schemas of their own,
refuse exactly what the API refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sync_messages.messages import MAX_ALLOW_DELETES
from zuora_client import BaseUrlNotAllowedError as ClientBaseUrlNotAllowedError
from zuora_client import check_base_url

from application.errors import BaseUrlNotAllowed, InvalidInput

__all__ = [
    "BASE_URL_MAX",
    "CLIENT_ID_MAX",
    "CLIENT_SECRET_MAX",
    "ENTITY_ID_MAX",
    "NAME_MAX",
    "NAME_PATTERN",
    "PLAIN_TEXT_PATTERN",
    "TOKEN_PATTERN",
    "allow_deletes",
    "base_url",
    "client_id",
    "client_secret",
    "customer_name",
    "entity_id",
    "unicode_text",
]

PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""No control characters (NUL cannot be stored; the others have no business in these fields)."""

NAME_PATTERN = r"^[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s])?$"
"""Printable text that neither starts nor ends with whitespace."""

TOKEN_PATTERN = r"^[^\x00-\x20\x7f]+$"
"""Client and entity ids: no whitespace, no control characters."""

NAME_MAX = 200
BASE_URL_MAX = 255
CLIENT_ID_MAX = 100
ENTITY_ID_MAX = 64
CLIENT_SECRET_MAX = 200

_NAME = re.compile(NAME_PATTERN)
_TOKEN = re.compile(TOKEN_PATTERN)
_PLAIN = re.compile(PLAIN_TEXT_PATTERN)


def unicode_text(value: str, field: str = "value") -> str:
    """``value`` if it can be stored as UTF-8."""
    _encodable(value, field)
    return value


def _encodable(value: str, field: str) -> None:
    # Lone surrogates can arrive through JSON escapes; they cannot be stored as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} must be valid Unicode text", field=field) from None


def _bounded(value: str, field: str, maximum: int) -> None:
    if not 1 <= len(value) <= maximum:
        raise InvalidInput(f"{field} must be 1 to {maximum} characters", field=field)
    _encodable(value, field)


def customer_name(value: str) -> str:
    """A unique customer name: 1-200 printable characters, no whitespace at either end."""
    _bounded(value, "name", NAME_MAX)
    if not _NAME.match(value):
        raise InvalidInput(
            "name must be printable text without leading or trailing whitespace", field="name"
        )
    return value


def client_id(value: str) -> str:
    _bounded(value, "client_id", CLIENT_ID_MAX)
    if not _TOKEN.match(value):
        raise InvalidInput("client_id must not contain whitespace", field="client_id")
    return value


def entity_id(value: str | None) -> str | None:
    if value is None:
        return None
    _bounded(value, "entity_id", ENTITY_ID_MAX)
    if not _TOKEN.match(value):
        raise InvalidInput("entity_id must not contain whitespace", field="entity_id")
    return value


def client_secret(value: str) -> str:
    """1-200 characters, no control characters, no whitespace at either end (never echoed)."""
    _bounded(value, "client_secret", CLIENT_SECRET_MAX)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidInput(
            "client_secret must not contain control characters", field="client_secret"
        )
    if value != value.strip():
        raise InvalidInput(
            "client_secret must not start or end with whitespace", field="client_secret"
        )
    return value


def base_url(value: str, allowed: Iterable[str]) -> str:
    """The normalised base URL if it is an official Zuora host or an allowed one."""
    if not 1 <= len(value) <= BASE_URL_MAX or not _PLAIN.match(value):
        raise BaseUrlNotAllowed
    try:
        return check_base_url(value, tuple(allowed))
    except ClientBaseUrlNotAllowedError:
        raise BaseUrlNotAllowed from None


def allow_deletes(value: int | None) -> int | None:
    """A bound on one run's deletions: 0 to ``MAX_ALLOW_DELETES``."""
    if value is not None and not 0 <= value <= MAX_ALLOW_DELETES:
        raise InvalidInput(f"allow_deletes must be 0 to {MAX_ALLOW_DELETES}", field="allow_deletes")
    return value
