"""Errors of the HTTP service itself, and the API's names for the domain errors.

The use cases raise :mod:`application.errors` (no HTTP status); ``customer_api.problems`` maps
them to problem documents with one table. :class:`ApiError` is only for what belongs to the
HTTP service (not ready) and carries its own status. Messages never contain a client secret,
an API key or a submitted value.
"""

from __future__ import annotations

from typing import Any

from application.errors import (
    BaseUrlNotAllowed,
    Conflict,
    CredentialsRejected,
    CustomerNameTaken,
    NotFound,
    RunNotReplayable,
    StoredSecretUnusable,
)

__all__ = [
    "ApiError",
    "BaseUrlNotAllowedError",
    "ConflictError",
    "CredentialsRejectedError",
    "CustomerNameTakenError",
    "NotFoundError",
    "NotReadyError",
    "RunNotReplayableError",
    "StoredSecretUnusableError",
]


class ApiError(Exception):
    """An error of the HTTP service itself, answered with its own status."""

    status: int = 400
    title: str = "Bad Request"
    type: str = "about:blank"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class NotReadyError(ApiError):
    status = 503
    title = "Not ready"


# The names the API's handlers and the UI's pages raise and catch: the domain errors themselves.
NotFoundError = NotFound
ConflictError = Conflict
CustomerNameTakenError = CustomerNameTaken
RunNotReplayableError = RunNotReplayable
BaseUrlNotAllowedError = BaseUrlNotAllowed
CredentialsRejectedError = CredentialsRejected
StoredSecretUnusableError = StoredSecretUnusable
