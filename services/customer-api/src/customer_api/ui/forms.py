"""The customer form: parse what was typed, validate it with the API's own schemas, and turn
every refusal into a message next to its field. Typed values are kept for the re-rendered
form; the client secret never is (and is never rendered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from application.errors import DomainError
from pydantic import ValidationError
from starlette.datastructures import FormData

from customer_api.errors import (
    BaseUrlNotAllowedError,
    CredentialsRejectedError,
    CustomerNameTakenError,
    StoredSecretUnusableError,
)
from customer_api.schemas import CustomerCreate, CustomerUpdate

__all__ = ["FIELDS", "CustomerForm"]

FIELDS = ("name", "base_url", "client_id", "client_secret", "entity_id")
_MESSAGES = {
    "missing": "This is required.",
    "string_too_short": "This is required.",
    "string_pattern_mismatch": "Use printable characters, without leading or trailing spaces.",
}


@dataclass
class CustomerForm:
    values: dict[str, str] = field(default_factory=dict)  # never the client secret
    errors: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    secret_given: bool = False
    active: bool = True

    @classmethod
    def from_form(cls, form: FormData) -> tuple[CustomerForm, str]:
        """The form (without the secret) and the secret that was typed ("" if none)."""
        values = {}
        for name in FIELDS:
            raw = form.get(name)
            values[name] = raw if isinstance(raw, str) else ""
        secret = values.pop("client_secret")
        for name in ("name", "client_id", "entity_id"):
            values[name] = values[name].strip()
        return cls(values=values, secret_given=bool(secret), active="active" in form), secret

    def _refuse(self, exc: ValidationError) -> None:
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            name = loc[0] if loc else ""
            if name in FIELDS and name not in self.errors:
                self.errors[name] = _MESSAGES.get(error["type"], str(error["msg"]))
        self.summary = "Some fields need attention."

    def to_create(self, secret: str) -> CustomerCreate | None:
        data: dict[str, Any] = {k: v for k, v in self.values.items() if v or k != "entity_id"}
        data["client_secret"] = secret
        try:
            return CustomerCreate.model_validate(data)
        except ValidationError as exc:
            self._refuse(exc)
            return None

    def to_update(self, secret: str) -> CustomerUpdate | None:
        data: dict[str, Any] = dict(self.values)
        data["entity_id"] = data["entity_id"] or None  # an empty field clears it
        data["active"] = self.active
        if secret:
            data["client_secret"] = secret  # empty: keep the stored secret
        try:
            return CustomerUpdate.model_validate(data)
        except ValidationError as exc:
            self._refuse(exc)
            return None

    def refuse(self, exc: DomainError) -> None:
        """Place a use-case refusal (name taken, URL not allowed, credentials, Zuora down)."""
        if isinstance(exc, CustomerNameTakenError):
            self.errors["name"] = "Another customer already has this name."
        elif isinstance(exc, BaseUrlNotAllowedError):
            self.errors["base_url"] = "Choose one of the listed base URLs."
        elif isinstance(exc, CredentialsRejectedError | StoredSecretUnusableError):
            self.errors["client_secret"] = exc.detail
        self.summary = f"Not saved: {exc.detail}"
