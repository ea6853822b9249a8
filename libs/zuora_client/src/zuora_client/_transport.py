"""The one request path to Zuora: every HTTP exchange of a client goes through
:meth:`Transport.request`.

On each attempt, in order:
- the host's circuit breaker may refuse the request (CircuitOpenError, nothing sent);
- a token request waits for a slot of the host's token-endpoint limiter;
- the exchange, headers and whole body, runs under a total deadline (``request_deadline``), so a
  body dripping inside the per-read timeout cannot stretch it (DeadlineExceededError);
- the body is streamed and abandoned past ``max_response_bytes`` (ResponseTooLargeError), so a
  huge answer is never held in memory;
- the retry policy (``_retry.py``) decides whether and when to try again, honouring the
  server's ``Retry-After`` / ``RateLimit-Reset``.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ._errors import (
    REQUEST_ID_HEADER,
    DeadlineExceededError,
    RateLimitError,
    ResponseTooLargeError,
    TransportError,
    ZuoraError,
    error_from_response,
    scrub,
)
from ._guards import HostGuard
from ._retry import RetryPolicy, is_retryable_exception, retry_after_seconds

logger = logging.getLogger("zuora_client")

DEFAULT_MAX_RESPONSE_BYTES = 20_000_000
DEFAULT_REQUEST_DEADLINE = 60.0

Endpoint = Literal["token", "list", "get", "export", "versions"]


@dataclass
class ClientStats:
    """Counters of one client instance."""

    requests: int = 0  # every HTTP request sent, token requests and retries included
    token_requests: int = 0  # requests to /oauth/token
    retries: int = 0  # attempts repeated after a retryable failure (not the 401 refresh)
    pages: int = 0  # list pages received and accepted


@dataclass(frozen=True)
class RequestEvent:
    """One HTTP request sent to Zuora (each retry is its own event), for metrics hooks."""

    # token: POST /oauth/token, list: GET /workflows, get: GET /workflows/{id},
    # export: GET /workflows/{id}/export, versions: GET /workflows/{id}/versions
    endpoint: Endpoint
    method: str
    status_code: int | None  # None: no response (timeout, connection error, deadline)
    duration_seconds: float
    request_id: str | None  # Zuora's request id header, when a response carried one
    attempt: int  # 1 for the first attempt of a request, 2 for its first retry ...

    @property
    def status(self) -> str:
        """The status as a metric label: the HTTP code, or ``transport_error``."""
        return str(self.status_code) if self.status_code is not None else "transport_error"


RequestHook = Callable[[RequestEvent], None]
"""Called after every HTTP request with its :class:`RequestEvent`; must be quick and not raise."""


@dataclass(frozen=True)
class Reply:
    """A complete (fully read, within the cap) answer."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code <= 299

    @property
    def request_id(self) -> str | None:
        request_id: str | None = self.headers.get(REQUEST_ID_HEADER)
        return request_id

    @property
    def text(self) -> str:
        return self.content.decode(_charset(self.headers), errors="replace")


def _charset(headers: httpx.Headers) -> str:
    """The charset the Content-Type names, when Python knows it; else UTF-8."""
    content_type: str = headers.get("content-type", "")
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        charset = value.strip().strip('"')
        if name.lower() == "charset" and charset:
            try:
                codecs.lookup(charset)
            except LookupError:
                return "utf-8"
            return charset
    return "utf-8"


@dataclass(frozen=True)
class ResponseLimits:
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    request_deadline: float = DEFAULT_REQUEST_DEADLINE  # seconds, per attempt, body included

    def __post_init__(self) -> None:
        if self.max_response_bytes < 1:
            raise ValueError("max_response_bytes must be >= 1")
        if self.request_deadline <= 0:
            raise ValueError("request_deadline must be > 0")


class Transport:
    """Sends one logical request with retries, over the client's ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        policy: RetryPolicy,
        limits: ResponseLimits,
        guard: HostGuard,
        entity_id: str | None,
        stats: ClientStats,
        sleep: Callable[[float], Awaitable[Any]],
        jitter: Callable[[float, float], float],
        on_request: RequestHook | None = None,
    ) -> None:
        self._http = http
        self._policy = policy
        self._limits = limits
        self._guard = guard
        self._entity_id = entity_id
        self._stats = stats
        self._sleep = sleep
        self._jitter = jitter
        self._on_request = on_request

    def headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"Zuora-Track-Id": uuid.uuid4().hex}
        if self._entity_id:
            headers["Zuora-Entity-Ids"] = self._entity_id
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        endpoint: Endpoint,
        secrets: tuple[str, ...],
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Reply:
        """A 2xx :class:`Reply`, or the typed error once the retry policy gives up."""
        token_endpoint = endpoint == "token"
        attempt = 0
        while True:
            self._guard.breaker.check(what=what)
            if token_endpoint:
                await self._wait_for_token_slot(what)
                self._stats.token_requests += 1
            self._stats.requests += 1
            request = self._http.build_request(
                method, path, params=params, data=data, headers=self.headers(token)
            )
            started = time.monotonic()
            error: ZuoraError
            headers: httpx.Headers | None = None
            try:
                reply = await self._exchange(request, what)
            except httpx.RequestError as exc:
                self._guard.breaker.record_failure()
                self._report(endpoint, method, None, started, None, attempt)
                error = TransportError(
                    f"{what} failed: {type(exc).__name__}: {scrub(str(exc), secrets)}",
                    retryable=is_retryable_exception(exc),
                )
            except DeadlineExceededError as exc:
                self._guard.breaker.record_failure()
                self._report(endpoint, method, None, started, None, attempt)
                error = exc
            except ResponseTooLargeError as exc:
                self._guard.breaker.record_success()  # the host answered; the tenant is odd
                self._report(endpoint, method, exc.status_code, started, exc.request_id, attempt)
                logger.warning("%s failed: %s", what, exc.message)
                raise
            else:
                if reply.status_code >= 500:
                    self._guard.breaker.record_failure()
                else:
                    self._guard.breaker.record_success()
                self._report(
                    endpoint, method, reply.status_code, started, reply.request_id, attempt
                )
                if reply.is_success:
                    return reply
                error = error_from_response(
                    reply, what=what, token_endpoint=token_endpoint, secrets=secrets
                )
                headers = reply.headers
            delay = self._retry_delay(error, headers, what, endpoint, attempt)
            attempt += 1
            self._stats.retries += 1
            await self._sleep(delay)

    async def _wait_for_token_slot(self, what: str) -> None:
        wait = self._guard.limiter.reserve(self._policy.max_retry_wait, what=what)
        if wait > 0:
            logger.info("%s: waiting %.2fs for the token-endpoint rate limit", what, wait)
            # A real sleep, not the retry policy's: the limiter's clock is the real one.
            await asyncio.sleep(wait)

    async def _exchange(self, request: httpx.Request, what: str) -> Reply:
        """Send and read the whole body within the deadline and the byte cap."""
        deadline = self._limits.request_deadline
        try:
            async with asyncio.timeout(deadline) as scope:
                response = await self._http.send(request, stream=True)
                try:
                    content = await self._read_capped(response, what)
                finally:
                    await response.aclose()
        except TimeoutError:
            if not scope.expired():
                raise
            raise DeadlineExceededError(
                f"{what} failed: deadline_exceeded: no complete answer within the request "
                f"deadline of {deadline:g}s"
            ) from None
        return Reply(response.status_code, response.headers, content)

    async def _read_capped(self, response: httpx.Response, what: str) -> bytes:
        cap = self._limits.max_response_bytes
        declared = response.headers.get("content-length", "")
        too_large = ResponseTooLargeError(
            f"{what} failed: response_too_large: the body exceeds max_response_bytes={cap}; "
            "the rest was not read",
            status_code=response.status_code,
            request_id=response.headers.get(REQUEST_ID_HEADER),
        )
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _retry_delay(
        self,
        error: ZuoraError,
        headers: httpx.Headers | None,
        what: str,
        endpoint: Endpoint,
        attempt: int,
    ) -> float:
        """Seconds to wait before the next attempt; raises ``error`` (or a RateLimitError for a
        hint beyond ``max_retry_wait``) when there is none."""
        hint = retry_after_seconds(headers) if headers is not None else None
        if hint is not None:
            error.retry_after = hint
        log_args = (what, error.status_code, error.request_id, attempt + 1)
        log_extra = {
            "endpoint": endpoint,
            "status_code": error.status_code,
            "zuora_request_id": error.request_id,
            "attempt": attempt + 1,
        }
        if not error.retryable or attempt >= self._policy.max_retries:
            logger.warning(
                "%s failed: status=%s zuora_request_id=%s attempt=%d (giving up): %s",
                *log_args,
                error.message,
                extra=log_extra,
            )
            raise error
        if self._policy.hint_too_long(hint):
            logger.warning(
                "%s failed: status=%s zuora_request_id=%s attempt=%d: server asks to wait "
                "%.0fs (> max_retry_wait)",
                *log_args,
                hint,
                extra=log_extra,
            )
            raise RateLimitError(
                f"{what}: server asked to wait {hint:.0f}s, more than max_retry_wait="
                f"{self._policy.max_retry_wait:.0f}s ({error.message})",
                status_code=error.status_code,
                request_id=error.request_id,
                body=error.body,
                retry_after=hint,
            )
        delay = self._policy.wait(attempt, hint, self._jitter)
        logger.info(
            "%s failed: status=%s zuora_request_id=%s attempt=%d; retrying in %.2fs",
            *log_args,
            delay,
            extra=log_extra,
        )
        return delay

    def _report(
        self,
        endpoint: Endpoint,
        method: str,
        status_code: int | None,
        started: float,
        request_id: str | None,
        attempt: int,
    ) -> None:
        if self._on_request is None:
            return
        event = RequestEvent(
            endpoint=endpoint,
            method=method,
            status_code=status_code,
            duration_seconds=time.monotonic() - started,
            request_id=request_id,
            attempt=attempt + 1,
        )
        try:
            self._on_request(event)
        except Exception:  # a broken metrics hook must never break a sync
            logger.warning("on_request hook failed", exc_info=True)
