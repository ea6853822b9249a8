"""Domain errors: what went wrong, in the words of the use case, with no HTTP status.

Each entrypoint maps them: the API to RFC 9457 problems (``customer_api.problems``), the CLI to
one line on stderr and an exit code. ``detail`` never contains a client secret, an API key or a
submitted value (a refused base URL is not echoed).
"""

from __future__ import annotations

__all__ = [
    "AllowDeletesNotApplicable",
    "BaseUrlNotAllowed",
    "ConcurrentChange",
    "Conflict",
    "CredentialsRejected",
    "CustomerNameTaken",
    "DefinitionHashAmbiguous",
    "DomainError",
    "InvalidInput",
    "NotFound",
    "RunNotReplayable",
    "StoredSecretUnusable",
    "ZuoraUnavailable",
]


class DomainError(Exception):
    """Root of the errors a use case raises on purpose.

    ``field`` names the input the refusal is about (``"name"``, ``"base_url"`` ...), when one is.
    """

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(DomainError):
    """The customer, run or workflow named does not exist."""


class Conflict(DomainError):
    """The request contradicts the current state."""


class CustomerNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"A customer with this name already exists: {name}", field="name")


class ConcurrentChange(Conflict):
    """Another change committed between the read a plan was made from and its write."""


class RunNotReplayable(Conflict):
    """Only failed or deletes_blocked runs are replayed."""


class DefinitionHashAmbiguous(Conflict):
    """A short definition hash matches more than one stored version."""


class InvalidInput(DomainError, ValueError):
    """An input breaks a rule (``application.rules``).

    Also a ``ValueError``, so the API's request schemas can run the same rule functions as
    Pydantic validators (a refusal there is a 422 with the field's location)."""


class AllowDeletesNotApplicable(InvalidInput):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="allow_deletes")


class BaseUrlNotAllowed(InvalidInput):
    def __init__(self) -> None:
        # The submitted URL is deliberately not echoed.
        super().__init__(
            "base_url must be an official Zuora REST base URL (e.g. https://rest.zuora.com) or "
            "one listed in ZUORA_ALLOWED_BASE_URLS, written as a bare http(s) origin without "
            "path, query or credentials",
            field="base_url",
        )


class CredentialsRejected(DomainError):
    """Zuora refused the client credentials (a token request failed with 401/403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="client_secret")


class StoredSecretUnusable(DomainError):
    """The stored client secret cannot be decrypted with the configured keys."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="client_secret")


class ZuoraUnavailable(DomainError):
    """Zuora could not be reached, or answered badly (``bad_response``), during a check.

    ``retry_after``: seconds after which trying again makes sense, when known.
    """

    def __init__(
        self, detail: str, *, bad_response: bool = False, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.bad_response = bad_response
        self.retry_after = retry_after
