"""Domain errors of the customer API; :mod:`customer_api.problems` maps them to HTTP problems.

Messages never contain a client secret, an API key or a submitted value.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Root of the errors the API answers with a problem document."""

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


def _problem_type(slug: str) -> str:
    return f"urn:zuora-workflow-sync:problem:{slug}"


class NotFoundError(ApiError):
    status = 404
    title = "Not Found"


class ConflictError(ApiError):
    status = 409
    title = "Conflict"


class CustomerNameTakenError(ConflictError):
    title = "Customer name already exists"
    type = _problem_type("customer-name-taken")


class ConcurrentChangeError(ConflictError):
    title = "Changed concurrently"
    type = _problem_type("concurrent-change")


class RunNotReplayableError(ConflictError):
    title = "Sync run cannot be replayed"
    type = _problem_type("run-not-replayable")


class AllowDeletesNotApplicableError(ApiError):
    status = 422
    title = "allow_deletes does not apply"
    type = _problem_type("allow-deletes-not-applicable")


class BaseUrlNotAllowedError(ApiError):
    status = 422
    title = "Base URL not allowed"
    type = _problem_type("base-url-not-allowed")


class CredentialsRejectedError(ApiError):
    status = 422
    title = "Zuora rejected the credentials"
    type = _problem_type("credentials-rejected")


class StoredSecretUnusableError(ApiError):
    status = 422
    title = "Stored client secret cannot be used"
    type = _problem_type("stored-secret-unusable")


class ZuoraUnavailableError(ApiError):
    """Zuora could not be reached (503) or answered badly (502) while checking credentials."""

    status = 503
    title = "Zuora unavailable"
    type = _problem_type("zuora-unavailable")

    def __init__(self, detail: str, *, status: int = 503, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        super().__init__(detail, headers=headers)
        self.status = status
        if status == 502:
            self.title = "Bad response from Zuora"


class NotReadyError(ApiError):
    status = 503
    title = "Not ready"
