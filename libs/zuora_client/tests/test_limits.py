"""Bounds on what one Zuora answer, one host and one set of credentials can cost (audit A6, A8,
S3, M5): the byte cap, the request deadline, the token limiter, the circuit breaker, the token
key and clamped server hints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from zuora_client import (
    MAX_RETRY_AFTER_SECONDS,
    AuthenticationError,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceededError,
    HostGuards,
    HostLimits,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    TokenCache,
    TokenRateLimiter,
    ZuoraCredentials,
    retry_after_seconds,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStream(httpx.AsyncByteStream):
    """``chunks`` chunks of ``size`` bytes, counting how many were pulled; optionally a pause
    before each (a drip)."""

    def __init__(self, chunks: int, size: int, pause: float = 0.0) -> None:
        self.chunks, self.size, self.pause = chunks, size, pause
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            if self.pause:
                await asyncio.sleep(self.pause)
            self.pulled += 1
            yield b" " * self.size


def streaming_list(z: Any, stream: CountingStream, **headers: str) -> Any:
    """FakeZuora whose GET /workflows answers 200 with ``stream`` as the body."""
    fake = z.FakeZuora(workflows=1)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/workflows":
            fake.requests.append(request)
            return httpx.Response(200, headers=headers, stream=stream)
        response: httpx.Response = fake(request)
        return response

    return fake, handler


# -- A6: byte cap ---------------------------------------------------------------------------------


async def test_body_over_the_cap_is_abandoned_not_buffered(z: Any, make_client: Any) -> None:
    stream = CountingStream(chunks=10_000, size=1000)  # 10 MB
    _fake, handler = streaming_list(z, stream)
    async with make_client(handler=handler, max_response_bytes=50_000) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.list_workflows()
    assert info.value.code == "response_too_large"
    assert not info.value.retryable
    assert "max_response_bytes=50000" in str(info.value)
    assert stream.pulled <= 51  # stopped right past the cap, the rest never read


async def test_declared_length_over_the_cap_fails_before_reading(z: Any, make_client: Any) -> None:
    stream = CountingStream(chunks=100, size=1000)
    _fake, handler = streaming_list(z, stream, **{"Content-Length": "100000"})
    async with make_client(handler=handler, max_response_bytes=1000) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.list_workflows()
    assert stream.pulled == 0


async def test_body_up_to_the_cap_is_accepted(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=3)
    async with make_client(handler=fake) as probe:
        body_size = len((await probe._transport.request(
            "GET", "/workflows", what="probe", endpoint="list", secrets=(),
            token=await probe._get_token(), params={"page": 1, "page_length": 50},
        )).content)  # fmt: skip
    async with make_client(handler=fake, max_response_bytes=body_size) as client:
        assert len(await client.list_workflows()) == 3


async def test_oversized_error_body_is_capped_too(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [httpx.Response(503, content=b"x" * 5000)]
    async with make_client(handler=fake, max_response_bytes=1000) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.get_workflow(1000)
    assert len(fake.api_requests) == 1  # not retried


def test_limits_are_validated(creds: ZuoraCredentials) -> None:
    from zuora_client import ZuoraClient

    with pytest.raises(ValueError, match="max_response_bytes"):
        ZuoraClient(creds, max_response_bytes=0)
    with pytest.raises(ValueError, match="request_deadline"):
        ZuoraClient(creds, request_deadline=0)


# -- A6: total deadline per request ----------------------------------------------------------------


async def test_dripping_body_is_cut_off_at_the_request_deadline(z: Any, make_client: Any) -> None:
    stream = CountingStream(chunks=1000, size=1, pause=0.05)  # would take 50 s
    _fake, handler = streaming_list(z, stream)
    started = time.monotonic()
    async with make_client(handler=handler, request_deadline=0.5, max_retries=0) as client:
        with pytest.raises(DeadlineExceededError) as info:
            await client.list_workflows()
    assert time.monotonic() - started < 20  # a bound, far below the 50 s the drip would take
    assert info.value.code == "deadline_exceeded"
    assert info.value.retryable
    assert "request deadline of 0.5s" in str(info.value)
    assert stream.pulled < 1000


async def test_deadline_applies_per_attempt_and_is_retried(
    z: Any, make_client: Any, sleeps: list[float]
) -> None:
    drips = [CountingStream(chunks=1000, size=1, pause=0.05) for _ in range(3)]
    fake = z.FakeZuora(workflows=1)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/workflows/1000" and drips:
            fake.requests.append(request)
            return httpx.Response(200, stream=drips.pop(0))
        response: httpx.Response = fake(request)
        return response

    async with make_client(handler=handler, request_deadline=0.3, max_retries=2) as client:
        with pytest.raises(DeadlineExceededError):
            await client.get_workflow(1000)
    assert len(sleeps) == 2  # three attempts, each cut off


# -- A8: token-endpoint limiter ----------------------------------------------------------------


def test_limiter_allows_a_burst_then_spaces_requests() -> None:
    clock = Clock()
    limiter = TokenRateLimiter(rate_per_minute=60, burst=2, clock=clock)
    assert limiter.reserve(10, what="t") == 0
    assert limiter.reserve(10, what="t") == 0
    assert limiter.reserve(10, what="t") == pytest.approx(1.0)
    assert limiter.reserve(10, what="t") == pytest.approx(2.0)
    clock.now += 60
    assert limiter.reserve(10, what="t") == 0  # refilled, up to the burst only
    assert limiter.reserve(10, what="t") == 0
    assert limiter.reserve(10, what="t") == pytest.approx(1.0)


def test_limiter_refuses_a_wait_beyond_max_wait_without_taking_a_slot() -> None:
    clock = Clock()
    limiter = TokenRateLimiter(rate_per_minute=1, burst=1, clock=clock)
    limiter.reserve(0, what="t")
    with pytest.raises(RateLimitError) as info:
        limiter.reserve(5, what="POST /oauth/token")
    assert info.value.retryable
    assert info.value.retry_after == pytest.approx(60)
    assert "token_rate_limited" in str(info.value)
    clock.now += 60
    assert limiter.reserve(0, what="t") == 0  # the refused call did not take the slot


async def test_token_requests_of_all_clients_of_a_host_share_one_limit(
    z: Any, make_client: Any, creds: ZuoraCredentials
) -> None:
    guards = HostGuards(HostLimits(token_requests_per_minute=1, token_burst=1))
    fake = z.FakeZuora(workflows=1)
    async with make_client(handler=fake, host_guards=guards) as first:
        await first.list_workflows()
    other = creds.model_copy(update={"entity_id": "1a2b7a37-3e7d-4cb3-b0e2-883de9e766cc"})
    async with make_client(
        handler=fake, host_guards=guards, credentials=other, max_retry_wait=1
    ) as second:
        with pytest.raises(RateLimitError) as info:
            await second.list_workflows()
    assert info.value.retry_after is not None and info.value.retry_after > 1
    assert len(fake.token_requests) == 1  # the second was refused locally, not sent


# -- A8: circuit breaker -----------------------------------------------------------------------


async def test_breaker_opens_after_consecutive_failures_across_clients(
    z: Any, make_client: Any, creds: ZuoraCredentials
) -> None:
    clock = Clock()
    guards = HostGuards(HostLimits(breaker_threshold=3, breaker_cooldown_seconds=30), clock=clock)
    fake = z.FakeZuora(workflows=1)
    fake.faults = [httpx.Response(503) for _ in range(20)]
    async with make_client(handler=fake, host_guards=guards, max_retries=5) as client:
        with pytest.raises(CircuitOpenError) as info:
            await client.get_workflow(1000)
    assert len(fake.api_requests) == 3  # not 6: the breaker stopped the retries
    assert info.value.code == "circuit_open"
    assert info.value.retryable
    assert info.value.retry_after == pytest.approx(30)
    # Another customer of the same host fails fast, without a single request.
    other = creds.model_copy(update={"entity_id": "1a2b7a37-3e7d-4cb3-b0e2-883de9e766cc"})
    sent = len(fake.requests)
    async with make_client(handler=fake, host_guards=guards, credentials=other) as second:
        with pytest.raises(CircuitOpenError):
            await second.list_workflows()
    assert len(fake.requests) == sent


async def test_breaker_half_opens_after_the_cooldown(z: Any, make_client: Any) -> None:
    clock = Clock()
    guards = HostGuards(HostLimits(breaker_threshold=2, breaker_cooldown_seconds=30), clock=clock)
    fake = z.FakeZuora(workflows=1)
    async with make_client(handler=fake, host_guards=guards, max_retries=0) as client:
        await client.get_workflow(1000)  # the token is cached from here on
        fake.faults = [httpx.Response(502), httpx.Response(502), httpx.Response(502)]
        for _ in range(2):
            with pytest.raises(ServerError):
                await client.get_workflow(1000)
        with pytest.raises(CircuitOpenError):
            await client.get_workflow(1000)
        clock.now += 30
        with pytest.raises(ServerError):  # the probe goes out, and fails
            await client.get_workflow(1000)
        with pytest.raises(CircuitOpenError):  # open again for a full cool-down
            await client.get_workflow(1000)
        clock.now += 30
        assert (await client.get_workflow(1000)).id == 1000  # the probe succeeds
        assert (await client.get_workflow(1000)).id == 1000  # closed
    assert len(fake.api_requests) == 6


def test_breaker_counts_only_consecutive_failures() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.check(what="x")
    assert not breaker.is_open
    breaker.record_failure()
    assert breaker.is_open


async def test_4xx_answers_do_not_trip_the_breaker(z: Any, make_client: Any) -> None:
    guards = HostGuards(HostLimits(breaker_threshold=2))
    fake = z.FakeZuora(workflows=1)
    async with make_client(handler=fake, host_guards=guards) as client:
        for _ in range(4):
            with pytest.raises(Exception, match="404"):
                await client.get_workflow(7)
        assert (await client.get_workflow(1000)).id == 1000


# -- S3: tokens keyed by the credentials used ------------------------------------------------------


async def test_wrong_secret_never_rides_on_another_records_token(
    z: Any, creds: ZuoraCredentials
) -> None:
    from zuora_client import ZuoraClient

    fake = z.FakeZuora(workflows=1)
    cache = TokenCache()
    guards = HostGuards()

    def client(c: ZuoraCredentials) -> ZuoraClient:
        return ZuoraClient(
            c, transport=httpx.MockTransport(fake), token_cache=cache, host_guards=guards
        )

    async with client(creds) as good:
        await good.list_workflows()
    wrong = ZuoraCredentials(
        base_url=creds.base_url, client_id=creds.client_id, client_secret="not-the-secret"
    )
    async with client(wrong) as bad:
        with pytest.raises(AuthenticationError):
            await bad.list_workflows()
    assert len(fake.token_requests) == 2
    assert all("not-the-secret" not in repr(key) for key in cache._entries)


# -- M5: server hints are clamped -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "9" * 400},  # parses to inf
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"RateLimit-Remaining": "0", "RateLimit-Reset": "1" + "0" * 30},
    ],
)
def test_huge_server_hints_are_clamped(headers: dict[str, str]) -> None:
    hint = retry_after_seconds(httpx.Headers(headers))
    assert hint == MAX_RETRY_AFTER_SECONDS
    assert int(hint) == 86_400


async def test_huge_hint_raises_rate_limit_with_a_finite_retry_after(
    z: Any, make_client: Any
) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.token_faults = [httpx.Response(429, headers={"Retry-After": "9" * 400})]
    async with make_client(handler=fake) as client:
        with pytest.raises(RateLimitError) as info:
            await client.check_credentials()
    assert info.value.retry_after == MAX_RETRY_AFTER_SECONDS
