"""RFC 9457 problem details: the one error format of the API.

Every error leaves as ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``instance``. Validation problems add ``errors`` (field location, message and
error type) and never the submitted values, so a secret sent in a bad request is not reflected.
Unhandled exceptions become a bare 500 problem; the traceback goes to the server log only.
"""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from application import errors as domain
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from customer_api.errors import ApiError

__all__ = [
    "PROBLEM_JSON",
    "FieldError",
    "Problem",
    "ProblemKind",
    "UnhandledErrorMiddleware",
    "install_problem_handlers",
    "problem_for",
    "problem_response",
    "problem_responses",
]

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One invalid input: where it is and what is wrong (never its value)."""

    loc: list[str | int] = Field(description="Location, e.g. ['body', 'name'].")
    msg: str = Field(description="What is wrong.")
    type: str = Field(description="Machine-readable error type.")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(default="about:blank", description="URI identifying the problem type.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="Explanation of this occurrence.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(
        default=None, description="Validation errors (422 only)."
    )


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_body(
        status, title=title, detail=detail, type_=type_, instance=instance, errors=errors
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _safe_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to location, message and type: no ``input``, no ``ctx``."""
    safe = []
    for error in errors:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        safe.append(
            {"loc": loc, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
        )
    return safe


def _urn(slug: str) -> str:
    return f"urn:zuora-workflow-sync:problem:{slug}"


@dataclass(frozen=True)
class ProblemKind:
    """How one domain error leaves over HTTP."""

    status: int
    title: str
    type: str = "about:blank"


# The one table from domain errors to problems; the most specific class wins (MRO order).
PROBLEMS: dict[type, ProblemKind] = {
    domain.NotFound: ProblemKind(404, "Not Found"),
    domain.Conflict: ProblemKind(409, "Conflict"),
    domain.CustomerNameTaken: ProblemKind(
        409, "Customer name already exists", _urn("customer-name-taken")
    ),
    domain.ConcurrentChange: ProblemKind(409, "Changed concurrently", _urn("concurrent-change")),
    domain.RunNotReplayable: ProblemKind(
        409, "Sync run cannot be replayed", _urn("run-not-replayable")
    ),
    domain.DefinitionHashAmbiguous: ProblemKind(
        409, "Definition hash is ambiguous", _urn("definition-hash-ambiguous")
    ),
    domain.InvalidInput: ProblemKind(422, "Request validation failed", _urn("validation")),
    domain.AllowDeletesNotApplicable: ProblemKind(
        422, "allow_deletes does not apply", _urn("allow-deletes-not-applicable")
    ),
    domain.BaseUrlNotAllowed: ProblemKind(
        422, "Base URL not allowed", _urn("base-url-not-allowed")
    ),
    domain.CredentialsRejected: ProblemKind(
        422, "Zuora rejected the credentials", _urn("credentials-rejected")
    ),
    domain.StoredSecretUnusable: ProblemKind(
        422, "Stored client secret cannot be used", _urn("stored-secret-unusable")
    ),
    domain.ZuoraUnavailable: ProblemKind(503, "Zuora unavailable", _urn("zuora-unavailable")),
}
_BAD_RESPONSE = ProblemKind(502, "Bad response from Zuora", _urn("zuora-unavailable"))
_UNMAPPED = ProblemKind(400, "Bad Request")


def problem_for(exc: domain.DomainError) -> ProblemKind:
    """The status, title and type a domain error is answered with."""
    if isinstance(exc, domain.ZuoraUnavailable) and exc.bad_response:
        return _BAD_RESPONSE
    for kind in type(exc).__mro__:
        found = PROBLEMS.get(kind)
        if found is not None:
            return found
    return _UNMAPPED


def _field_errors(exc: domain.DomainError) -> list[dict[str, Any]] | None:
    """Validation-style refusals name their field, as the request validation does."""
    if exc.field is None or not isinstance(exc, domain.InvalidInput):
        return None
    if isinstance(exc, domain.AllowDeletesNotApplicable):
        return None  # a rule between two fields, not one field's
    msg = "base URL not allowed" if isinstance(exc, domain.BaseUrlNotAllowed) else exc.detail
    return [{"loc": ["body", exc.field], "msg": msg, "type": "value_error"}]


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, domain.DomainError)
    kind = problem_for(exc)
    retry_after = getattr(exc, "retry_after", None)
    return problem_response(
        kind.status,
        title=kind.title,
        detail=exc.detail,
        type_=kind.type,
        instance=request.url.path,
        errors=_field_errors(exc),
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        type_=exc.type,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _safe_errors(exc.errors())
    fields = sorted(
        {".".join(str(p) for p in e["loc"][1:]) or e["loc"][0] for e in errors if e["loc"]}
    )
    detail = "The request is invalid" + (f": check {', '.join(fields)}" if fields else "")
    return problem_response(
        422,
        title="Request validation failed",
        detail=detail,
        type_="urn:zuora-workflow-sync:problem:validation",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == _phrase(exc.status_code):
        detail = None
    return problem_response(
        exc.status_code,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to problem documents."""
    app.add_exception_handler(domain.DomainError, _domain_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


class UnhandledErrorMiddleware:
    """Turns any exception that escaped the app into a 500 problem (no traceback leaves).

    Starlette's own error middleware re-raises after answering; this one logs the exception
    once, server-side, and ends the request cleanly.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception(
                "Unhandled error while serving %s %s", scope.get("method"), scope.get("path")
            )
            if started:  # too late for a problem document; the server closes the connection
                raise
            response = problem_response(
                500,
                detail="An unexpected error occurred; it has been logged.",
                instance=scope.get("path"),
            )
            await response(scope, receive, send)


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


_DESCRIPTIONS = {
    400: "Malformed request (e.g. a body that cannot be parsed)",
    401: "Missing or wrong API key",
    404: "Not found",
    409: "Conflict",
    422: "Invalid request",
    500: "Unexpected server error",
    502: "Bad response from Zuora",
    503: "A dependency (database or Zuora) is unavailable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem answers for ``statuses``."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, _phrase(status)),
            "content": _problem_content(),
        }
        for status in statuses
    }
