from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from zuora_client import (
    AuthenticationError,
    PermissionDeniedError,
    TokenCache,
    ZuoraClient,
    ZuoraCredentials,
    default_token_cache,
    expiry_margin,
)
from zuora_client._auth import TokenKey


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY: TokenKey = ("https://rest.zuora.com", "cid", "digest-of-secret", None)


# ---------------------------------------------------------------- TokenCache alone


@pytest.mark.parametrize(
    ("expires_in", "margin"),
    [(3599, 300.0), (3000, 300.0), (600, 60.0), (60, 6.0), (10.5, 1.05), (0, 0.0)],
)
def test_expiry_margin(expires_in: float, margin: float) -> None:
    assert expiry_margin(expires_in) == pytest.approx(margin)


@pytest.mark.parametrize(
    ("expires_in", "age", "valid"),
    [
        (3599, 0, True),
        (3599, 3298, True),
        (3599, 3299, False),  # 300 s before expiry
        (60, 53, True),  # a 60 s token is used for 54 s
        (60, 54, False),
        (60.5, 54.0, True),  # float expires_in
    ],
)
def test_token_validity_window(expires_in: float, age: float, valid: bool) -> None:
    clock = Clock()
    cache = TokenCache(clock=clock)
    cache.put(KEY, "tok", expires_in)
    clock.now += age
    assert (cache.get(KEY) == "tok") is valid


def test_cache_keys_are_separate() -> None:
    cache = TokenCache()
    cache.put(KEY, "a", 3600)
    assert cache.get(("https://rest.zuora.com", "cid", "digest-of-secret", "entity-1")) is None
    assert cache.get(("https://rest.zuora.com", "other", "digest-of-secret", None)) is None
    assert cache.get(("https://rest.zuora.com", "cid", "digest-of-another", None)) is None
    assert cache.get(("https://rest.eu.zuora.com", "cid", "digest-of-secret", None)) is None
    assert cache.get(KEY) == "a"


def test_invalidate_only_the_named_token() -> None:
    cache = TokenCache()
    cache.put(KEY, "new", 3600)
    cache.invalidate(KEY, "old")  # a late 401 on an old token keeps the fresh one
    assert cache.get(KEY) == "new"
    cache.invalidate(KEY, "new")
    assert cache.get(KEY) is None
    cache.put(KEY, "x", 3600)
    cache.clear()
    assert cache.get(KEY) is None


async def test_single_flight_shares_result() -> None:
    cache = TokenCache()
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return f"tok{calls}", 3600.0

    tokens = await asyncio.gather(*(cache.get_or_fetch(KEY, fetch) for _ in range(20)))
    assert set(tokens) == {"tok1"}
    assert calls == 1


async def test_single_flight_shares_failure() -> None:
    cache = TokenCache()
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise AuthenticationError("refused", status_code=401)

    results = await asyncio.gather(
        *(cache.get_or_fetch(KEY, fetch) for _ in range(10)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, AuthenticationError) for r in results)


async def test_cancelled_waiter_does_not_cancel_shared_fetch() -> None:
    cache = TokenCache()
    release = asyncio.Event()

    async def fetch() -> tuple[str, float]:
        await release.wait()
        return "tok", 3600.0

    first = asyncio.create_task(cache.get_or_fetch(KEY, fetch))
    second = asyncio.create_task(cache.get_or_fetch(KEY, fetch))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "tok"
    assert first.cancelled()


_SHARED = TokenCache()


@pytest.mark.parametrize("run", [1, 2])
async def test_cache_survives_event_loops(run: int) -> None:
    """pytest gives every test a new loop; a cache (and its in-flight state) must cope."""
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return "tok", 3600.0

    _SHARED.invalidate(KEY)
    results = await asyncio.gather(*(_SHARED.get_or_fetch(KEY, fetch) for _ in range(5)))
    assert results == ["tok"] * 5
    assert calls == 1


def test_cache_across_asyncio_run_calls() -> None:
    cache = TokenCache()
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        return f"tok{calls}", 3600.0

    async def use() -> str:
        cache.invalidate(KEY)
        return await cache.get_or_fetch(KEY, fetch)

    assert asyncio.run(use()) == "tok1"
    assert asyncio.run(use()) == "tok2"


# ---------------------------------------------------------------- through the client


async def test_ten_pages_one_token_request(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=500)
    async with make_client(handler=fake) as client:
        assert len(await client.list_workflows()) == 500
    assert len(fake.api_requests) == 10
    assert len(fake.token_requests) == 1
    assert client.stats.token_requests == 1
    assert client.stats.requests == 11


async def test_twenty_concurrent_listings_one_token_request(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=120)
    async with make_client(handler=fake) as client:
        results = await asyncio.gather(*(client.list_workflows() for _ in range(20)))
    assert all(len(r) == 120 for r in results)
    assert len(fake.token_requests) == 1


async def test_token_shared_across_clients_with_the_same_key(z: Any, creds: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    cache = TokenCache()

    def client(c: ZuoraCredentials) -> ZuoraClient:
        return ZuoraClient(c, transport=httpx.MockTransport(fake), token_cache=cache)

    for _ in range(3):
        async with client(creds) as c:
            await c.list_workflows()
    assert len(fake.token_requests) == 1
    other = creds.model_copy(update={"entity_id": "1a2b7a37-3e7d-4cb3-b0e2-883de9e766cc"})
    async with client(other) as c:
        await c.list_workflows()
    assert len(fake.token_requests) == 2


def test_default_cache_is_process_wide(creds: Any) -> None:
    first = ZuoraClient(creds)
    second = ZuoraClient(creds)
    assert first._token_cache is second._token_cache is default_token_cache()


async def test_token_request_shape(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    creds = ZuoraCredentials(
        base_url=z.BASE, client_id=z.CLIENT_ID, client_secret=z.SECRET, entity_id="ent-1"
    )
    async with make_client(handler=fake, credentials=creds) as client:
        await client.list_workflows()
    token_request = fake.token_requests[0]
    assert token_request.method == "POST"
    assert str(token_request.url) == f"{z.BASE}/oauth/token"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in token_request.headers
    assert token_request.headers["Zuora-Entity-Ids"] == "ent-1"
    form = dict(httpx.QueryParams(token_request.content.decode()))
    assert form == {
        "client_id": z.CLIENT_ID,
        "client_secret": z.SECRET,  # '=', '+' and '/' survive URL-encoding
        "grant_type": "client_credentials",
    }
    api_request = fake.api_requests[0]
    assert api_request.headers["Authorization"].startswith("Bearer ")
    assert api_request.headers["Zuora-Entity-Ids"] == "ent-1"


async def test_request_headers(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=5)
    async with make_client(handler=fake) as client:
        await client.list_workflows(page_length=2)
    track_ids = [r.headers["Zuora-Track-Id"] for r in fake.requests]
    assert len(set(track_ids)) == len(fake.requests)
    assert all(len(t) <= 64 and t.isalnum() for t in track_ids)
    for request in fake.requests:
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"] == "zuora-workflow-sync/0.1"
        assert "Zuora-Entity-Ids" not in request.headers


async def test_expired_token_mid_listing_is_refreshed_once(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=10)
    async with make_client(handler=fake) as client:
        pages = client.iter_pages(page_length=2)
        ids = [w.id for w in (await anext(pages)).workflows]
        fake.expire_tokens()
        async for p in pages:
            ids += [w.id for w in p.workflows]
    assert ids == list(range(1000, 1010))
    assert len(fake.token_requests) == 2
    statuses = [r.headers["Authorization"] for r in fake.api_requests]
    assert len(set(statuses)) == 2
    assert client.stats.retries == 0


async def test_second_401_raises_authentication_error(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=3)
    fake.faults = [z.json_response(401, {"message": "Authentication error"})] * 5
    async with make_client(handler=fake) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.list_workflows()
    assert len(fake.api_requests) == 2
    assert len(fake.token_requests) == 2
    assert info.value.status_code == 401
    assert info.value.retryable is False


async def test_401_after_refresh_on_get_workflow(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=3)
    fake.faults = [z.json_response(401)]
    async with make_client(handler=fake) as client:
        wf = await client.get_workflow(1001)
    assert wf.id == 1001
    assert len(fake.token_requests) == 2


async def test_wrong_credentials_never_loop(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=3)
    bad = ZuoraCredentials(base_url=z.BASE, client_id=z.CLIENT_ID, client_secret="wrong")
    async with make_client(handler=fake, credentials=bad) as client:
        results = await asyncio.gather(
            *(client.list_workflows() for _ in range(5)), return_exceptions=True
        )
        with pytest.raises(AuthenticationError, match="invalid_client"):
            await client.check_credentials()
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(fake.token_requests) == 2  # one shared attempt + check_credentials
    assert fake.api_requests == []


async def test_check_credentials_always_fetches_fresh(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    async with make_client(handler=fake) as client:
        await client.check_credentials()
        await client.check_credentials()
        await client.list_workflows()  # uses the token check_credentials stored
    assert len(fake.token_requests) == 2
    assert client.stats.token_requests == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (400, AuthenticationError), (403, PermissionDeniedError)],
)
async def test_check_credentials_failures(
    z: Any, make_client: Any, status: int, error: type
) -> None:
    fake = z.FakeZuora()
    fake.token_faults = [z.json_response(status, {"error": "nope"})]
    async with make_client(handler=fake) as client:
        with pytest.raises(error):
            await client.check_credentials()


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "bearer"},
        {"access_token": 123},
        {"access_token": ""},
    ],
)
async def test_token_response_without_token(z: Any, make_client: Any, body: Any) -> None:
    from zuora_client import InvalidResponseError

    fake = z.FakeZuora()
    fake.token_faults = [z.json_response(200, body)]
    async with make_client(handler=fake) as client:
        with pytest.raises(InvalidResponseError, match="access_token"):
            await client.check_credentials()


@pytest.mark.parametrize("expires_in", [3599.5, "3599", None, "soon"])
async def test_token_expires_in_tolerated(z: Any, make_client: Any, expires_in: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.expires_in = expires_in
    async with make_client(handler=fake) as client:
        await client.list_workflows()
        await client.list_workflows()
    assert len(fake.token_requests) == 1
