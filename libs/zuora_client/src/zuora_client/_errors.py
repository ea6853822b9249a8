"""The typed error hierarchy and the mapping from HTTP responses to it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

import httpx

from ._retry import RETRYABLE_STATUSES

MAX_MESSAGE_CHARS = 200
MAX_BODY_CHARS = 2000
REQUEST_ID_HEADER = "Zuora-Request-Id"


class ZuoraError(Exception):
    """Root of every error raised by this package.

    Attributes:
        status_code: HTTP status of the failed response, or None (transport / parsing errors).
        request_id: Zuora's ``Zuora-Request-Id`` response header, if any.
        retryable: whether repeating the same request later may succeed.
        body: the response body, truncated (secrets scrubbed), or None.
        retry_after: seconds the server asked us to wait (``Retry-After`` / ``RateLimit-Reset``),
            or that a local guard (rate limiter, circuit breaker) knows the wait to be.
        code: a stable machine-readable name of the failure for the errors that have one
            (``response_too_large``, ``deadline_exceeded``, ``circuit_open``), else None.
    """

    default_retryable = False
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        details = []
        if self.status_code is not None:
            details.append(f"HTTP {self.status_code}")
        if self.request_id:
            details.append(f"Zuora-Request-Id {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message


class AuthenticationError(ZuoraError):
    """401, or the token endpoint refused the credentials. Not retryable."""


class PermissionDeniedError(ZuoraError):
    """403: authenticated but not permitted. Not retryable."""


class NotFoundError(ZuoraError):
    """404. Not retryable."""


class BadRequestError(ZuoraError):
    """400 on an API call (a client bug or an unsupported parameter). Not retryable."""


class RateLimitError(ZuoraError):
    """429, or the server asked us to wait longer than ``max_retry_wait``. Retryable later."""

    default_retryable = True


class ServerError(ZuoraError):
    """5xx. Retryable."""

    default_retryable = True


class TransportError(ZuoraError):
    """Timeout or connection failure (no HTTP response). Usually retryable."""

    default_retryable = True


class InvalidResponseError(ZuoraError):
    """A response that does not have the documented shape. Not retryable."""


class ResponseTooLargeError(InvalidResponseError):
    """The body grew past the client's byte cap; the rest was not read. Not retryable: a tenant
    answering that much once will do it again, and buffering it would risk the process."""

    code = "response_too_large"


class DeadlineExceededError(TransportError):
    """A request (with its whole body), or a whole listing, did not finish within its deadline.
    Retryable later: a slow or dripping server may recover."""

    code = "deadline_exceeded"


class CircuitOpenError(ZuoraError):
    """Recent requests to this host failed in a row (5xx or no response, any customer), so no
    request was sent. Retryable after ``retry_after`` seconds."""

    default_retryable = True
    code = "circuit_open"


class PaginationError(InvalidResponseError):
    """The listing did not terminate properly (a page with no new id, or the page cap)."""


class BaseUrlNotAllowedError(ZuoraError, ValueError):
    """The base URL is neither an official Zuora REST host nor explicitly allowed."""


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret, raw or URL-encoded (servers may echo a form), by [REDACTED]."""
    for secret in secrets:
        if not secret:
            continue
        for variant in {secret, quote_plus(secret), quote(secret, safe="")}:
            text = text.replace(variant, "[REDACTED]")
    return text


def _message_from_json(data: Any) -> str | None:
    """Pull a human message out of the error shapes Zuora uses (zuora-api.md §7)."""
    if isinstance(data, str):
        return data or None
    if isinstance(data, list):
        parts = [m for m in (_message_from_json(x) for x in data) if m]
        return "; ".join(parts) or None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("error"), str):  # OAuth
        description = data.get("error_description")
        return f"{data['error']}: {description}" if isinstance(description, str) else data["error"]
    for key in ("message", "Message", "title", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    for key in ("reasons", "Errors", "errors"):
        items = data.get(key)
        if isinstance(items, list):
            parts = []
            for item in items:
                if isinstance(item, dict):
                    code = item.get("code", item.get("Code"))
                    text = _message_from_json(item)
                    if text and code is not None and str(code) not in text:
                        text = f"{code}: {text}"
                    if text:
                        parts.append(text)
                elif isinstance(item, str):
                    parts.append(item)
            if parts:
                return "; ".join(parts)
    return None


class Answer(Protocol):
    """What the error mapping reads of an HTTP answer (an ``httpx.Response`` is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...

    @property
    def text(self) -> str: ...


def error_message(response: Answer) -> str | None:
    """A short message from an error body, whatever its content type (JSON, text, HTML)."""
    try:
        text = response.text
    except Exception:  # undecodable body
        return None
    if not text.strip():
        return None
    try:
        message = _message_from_json(json.loads(text))
    except ValueError:
        message = None
    if message is None:
        lowered = text.lstrip()[:200].lower()
        if lowered.startswith(("<!doctype html", "<html")) or "<body" in lowered:
            start = text.lower().find("<title>")
            end = text.lower().find("</title>")
            found = start != -1 and end > start
            message = text[start + 7 : end] if found else "HTML error page"
        else:
            message = text
    return truncate(" ".join(message.split()))


def error_from_response(
    response: Answer,
    *,
    what: str,
    token_endpoint: bool = False,
    secrets: Iterable[str] = (),
) -> ZuoraError:
    """Map a non-2xx response to its typed error; ``what`` names the call ("GET /workflows")."""
    secrets = tuple(secrets)
    status = response.status_code
    request_id = response.headers.get(REQUEST_ID_HEADER)
    detail = error_message(response)
    try:
        body: str | None = truncate(scrub(response.text, secrets), MAX_BODY_CHARS) or None
    except Exception:
        body = None
    message = f"{what} failed with HTTP {status}"
    if detail:
        message = f"{message}: {scrub(detail, secrets)}"
    kwargs: dict[str, Any] = {"status_code": status, "request_id": request_id, "body": body}
    cls: type[ZuoraError]
    if status == 429:
        cls = RateLimitError
    elif 500 <= status <= 599:
        cls = ServerError
        kwargs["retryable"] = status in RETRYABLE_STATUSES  # 501, 505...: retrying cannot help
    elif status == 403:
        cls = PermissionDeniedError
    elif token_endpoint or status == 401:
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif status == 400:
        cls = BadRequestError
    elif 200 <= status <= 299:
        cls = InvalidResponseError
    else:
        cls = ZuoraError
    return cls(message, **kwargs)
