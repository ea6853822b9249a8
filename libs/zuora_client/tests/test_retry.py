from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from zuora_client import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
    ZuoraError,
    retry_after_seconds,
)


def upper(_low: float, high: float) -> float:
    return high


def lower(low: float, _high: float) -> float:
    return low


# ---------------------------------------------------------------- pure policy


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "expected_ceiling"),
    [
        (0, 1.0, 60.0, 1.0),
        (1, 1.0, 60.0, 2.0),
        (2, 1.0, 60.0, 4.0),
        (5, 1.0, 60.0, 32.0),
        (6, 1.0, 60.0, 60.0),  # capped
        (100, 1.0, 60.0, 60.0),  # no overflow
        (3, 0.5, 3.0, 3.0),
        (0, 0.0, 60.0, 0.0),
    ],
)
def test_backoff_is_full_jitter_under_capped_exponential(
    attempt: int, base: float, cap: float, expected_ceiling: float
) -> None:
    policy = RetryPolicy(backoff_base=base, backoff_cap=cap)
    assert policy.backoff(attempt, upper) == expected_ceiling
    assert policy.backoff(attempt, lower) == 0.0
    for _ in range(50):
        assert 0.0 <= policy.backoff(attempt) <= expected_ceiling


@pytest.mark.parametrize(
    ("attempt", "hint", "rng", "expected"),
    [
        (0, None, upper, 1.0),  # no hint: plain jitter
        (3, None, lower, 0.0),
        (0, 7.0, upper, 7.0),  # hint is a minimum ...
        (0, 7.0, lower, 7.0),
        (6, 7.0, upper, 60.0),  # ... but a longer jitter wins
        (6, 90.0, upper, 90.0),  # hint may exceed the cap
    ],
)
def test_wait_honours_hint_as_minimum(
    attempt: int, hint: float | None, rng: Any, expected: float
) -> None:
    assert RetryPolicy().wait(attempt, hint, rng) == expected


def _http_date(delta: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=delta), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "5"}, 5.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"RETRY-AFTER": "0"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "600"}, 600.0),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "17"}, 17.0),  # lower case (S5)
        ({"RateLimit-Remaining": "3", "RateLimit-Reset": "600"}, None),  # not exhausted
        ({"RateLimit-Reset": "600"}, None),  # remaining unknown
        ({"RateLimit-Remaining": "0"}, None),  # no reset given
        ({"Retry-After": "3", "RateLimit-Remaining": "0", "RateLimit-Reset": "600"}, 3.0),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(httpx.Headers(headers)) == expected


def test_retry_after_http_date() -> None:
    seconds = retry_after_seconds(httpx.Headers({"Retry-After": _http_date(30)}))
    assert seconds is not None
    assert 27 <= seconds <= 30
    assert retry_after_seconds(httpx.Headers({"Retry-After": _http_date(-30)})) == 0.0


def test_policy_rejects_negative_settings() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


# ---------------------------------------------------------------- through the client


@pytest.mark.parametrize(
    ("status", "retried", "error"),
    [
        (429, True, RateLimitError),
        (500, True, ServerError),
        (502, True, ServerError),
        (503, True, ServerError),
        (504, True, ServerError),
        (501, False, ServerError),
        (400, False, BadRequestError),
        (403, False, PermissionDeniedError),
        (404, False, NotFoundError),
        (409, False, ZuoraError),
    ],
)
async def test_which_statuses_are_retried(
    z: Any,
    make_client: Any,
    sleeps: list[float],
    status: int,
    retried: bool,
    error: type[ZuoraError],
) -> None:
    fake = z.FakeZuora(workflows=3)
    fake.faults = [z.json_response(status, {"message": "boom"})] * 10
    async with make_client(handler=fake, max_retries=3) as client:
        with pytest.raises(error) as info:
            await client.list_workflows()
    attempts = 4 if retried else 1
    assert len(fake.api_requests) == attempts
    assert client.stats.retries == attempts - 1
    assert len(sleeps) == attempts - 1
    assert info.value.status_code == status
    assert info.value.retryable is (status in (429, 500, 502, 503, 504))
    assert type(info.value) is error


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_failures_then_success(z: Any, make_client: Any, status: int) -> None:
    fake = z.FakeZuora(workflows=3)
    fake.faults = [z.json_response(status)] * 2
    async with make_client(handler=fake, max_retries=2) as client:
        workflows = await client.list_workflows()
    assert [w.id for w in workflows] == [1000, 1001, 1002]
    assert client.stats.retries == 2
    assert client.stats.requests == 1 + 3  # token + 3 attempts


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (httpx.ConnectTimeout("t"), True),
        (httpx.ReadTimeout("t"), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("eof"), True),
        (httpx.UnsupportedProtocol("ftp"), False),
    ],
)
async def test_transport_errors(z: Any, make_client: Any, exc: Exception, retryable: bool) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [exc] * 10
    async with make_client(handler=fake, max_retries=2) as client:
        with pytest.raises(TransportError) as info:
            await client.list_workflows()
    assert info.value.retryable is retryable
    assert info.value.status_code is None
    assert len(fake.api_requests) == (3 if retryable else 1)


async def test_transport_error_then_success(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=2)
    fake.faults = [httpx.ReadTimeout("slow"), z.json_response(503)]
    async with make_client(handler=fake) as client:
        assert len(await client.list_workflows()) == 2


@pytest.mark.parametrize(
    ("headers", "min_wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "42"}, 42.0),
        ({"ratelimit-remaining": "5", "ratelimit-reset": "42"}, 0.0),
    ],
)
async def test_waits_use_server_hints(
    z: Any, make_client: Any, sleeps: list[float], headers: dict[str, str], min_wait: float
) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [httpx.Response(429, headers=headers)]
    async with make_client(handler=fake, backoff_base=0.01, backoff_cap=0.01) as client:
        await client.list_workflows()
    assert len(sleeps) == 1
    assert min_wait <= sleeps[0] <= max(min_wait, 0.01)


async def test_backoff_grows_and_is_capped(z: Any, make_client: Any, sleeps: list[float]) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [z.json_response(503)] * 6
    async with make_client(
        handler=fake, max_retries=6, backoff_base=1.0, backoff_cap=4.0
    ) as client:
        await client.list_workflows()
    ceilings = [1, 2, 4, 4, 4, 4]
    assert len(sleeps) == 6
    for wait, ceiling in zip(sleeps, ceilings, strict=True):
        assert 0 <= wait <= ceiling


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (429, {"Retry-After": "600"}),
        (429, {"RateLimit-Remaining": "0", "RateLimit-Reset": "3600"}),
        (503, {"Retry-After": "121"}),
    ],
)
async def test_long_server_wait_raises_rate_limit_at_once(
    z: Any, make_client: Any, sleeps: list[float], status: int, headers: dict[str, str]
) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [httpx.Response(status, headers={**headers, "Zuora-Request-Id": "rid-1"})]
    async with make_client(handler=fake, max_retry_wait=120.0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.list_workflows()
    assert sleeps == []
    assert len(fake.api_requests) == 1
    assert info.value.retry_after is not None
    assert info.value.retry_after > 120
    assert info.value.retryable is True
    assert info.value.request_id == "rid-1"
    assert info.value.status_code == status


async def test_exhausted_rate_limit_carries_retry_after(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [httpx.Response(429, headers={"Retry-After": "3"})] * 3
    async with make_client(handler=fake, max_retries=2) as client:
        with pytest.raises(RateLimitError) as info:
            await client.list_workflows()
    assert info.value.retry_after == 3.0


async def test_max_retries_zero_means_one_attempt(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [z.json_response(500)]
    async with make_client(handler=fake, max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.list_workflows()
    assert len(fake.api_requests) == 1


async def test_token_endpoint_is_retried_on_429_and_5xx(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.token_faults = [
        httpx.Response(429, headers={"Retry-After": "1"}),
        z.json_response(503),
        httpx.ConnectError("refused"),
    ]
    async with make_client(handler=fake) as client:
        assert len(await client.list_workflows()) == 1
    assert len(fake.token_requests) == 4
    assert client.stats.token_requests == 4


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, AuthenticationError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, AuthenticationError),
    ],
)
async def test_token_endpoint_refusals_are_not_retried(
    z: Any, make_client: Any, status: int, error: type[ZuoraError]
) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.token_faults = [z.json_response(status, {"error": "invalid_client"})] * 10
    async with make_client(handler=fake) as client:
        with pytest.raises(error) as info:
            await client.list_workflows()
    assert type(info.value) is error
    assert len(fake.token_requests) == 1
    assert fake.api_requests == []
    assert info.value.retryable is False
