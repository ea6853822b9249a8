"""Fast mode (``--fast``, ``fast.FastPath``): the same answers as normal mode, from cached bytes.

Two sandboxes with the same tenants, one normal and one fast, are asked the same requests in the
same order; their answers must be equal byte for byte (status, body, header names in order and
their values), the per-request values aside (``Zuora-Request-Id``, ``RateLimit-Reset``, and the
token and ``jti`` of a token answer). And the fast one must really have served them itself.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from zuora_sandbox import Faults, SandboxState, create_app, create_fast_app, run_sandbox

from .conftest import FakeClock

TENANTS = (("acme", 237, 1), ("globex", 50, 2), ("initech", 3, 3), ("empty", 0, 4))
# Per-request values: a fresh id per answer; the seconds left in the rate-limit minute.
VOLATILE = {"zuora-request-id", "ratelimit-reset"}


class Pair:
    """The same requests sent to a normal and a fast sandbox; their answers compared."""

    def __init__(
        self, normal: httpx.AsyncClient, fast: httpx.AsyncClient, states: list[SandboxState]
    ) -> None:
        self.normal, self.fast = normal, fast
        self.states = states
        self.tokens: dict[str, tuple[str, str]] = {}
        self.gets = 0

    async def both(self, method: str, url: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
        a = await self.normal.request(method, url, **kw)
        b = await self.fast.request(method, url, **kw)
        return a, b

    async def token(self, name: str) -> tuple[str, str]:
        tenant = self.states[0].tenants[name]
        a, b = await self.both(
            "POST",
            "/oauth/token",
            data={
                "client_id": tenant.client_id,
                "client_secret": tenant.client_secret,
                "grant_type": "client_credentials",
            },
        )
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        ta, tb = a.json()["access_token"], b.json()["access_token"]
        ja, jb = a.json()["jti"], b.json()["jti"]
        # The same bytes once the fresh values are masked; the rest equal too.
        assert a.content.replace(ta.encode(), b"T").replace(ja.encode(), b"J") == (
            b.content.replace(tb.encode(), b"T").replace(jb.encode(), b"J")
        )
        assert_same_headers(a, b)
        self.tokens[name] = (ta, tb)
        return ta, tb

    async def get(self, name: str, url: str, **params: Any) -> httpx.Response:
        ta, tb = self.tokens[name]
        a = await self.normal.get(url, params=params, headers={"Authorization": f"Bearer {ta}"})
        b = await self.fast.get(url, params=params, headers={"Authorization": f"Bearer {tb}"})
        self.gets += 1
        assert a.status_code == b.status_code
        assert a.content == b.content
        assert_same_headers(a, b)
        return b


def assert_same_headers(a: httpx.Response, b: httpx.Response) -> None:
    names_a = [k.lower() for k, _ in a.headers.raw]
    names_b = [k.lower() for k, _ in b.headers.raw]
    assert names_a == names_b
    for (name, va), (_, vb) in zip(a.headers.raw, b.headers.raw, strict=True):
        if name.decode().lower() not in VOLATILE:
            assert va == vb, name


def _state(clock: FakeClock) -> SandboxState:
    state = SandboxState(clock=clock)
    for name, count, seed in TENANTS:
        state.add_tenant(name, workflow_count=count, seed=seed)
    return state


@pytest.fixture
async def pair(clock: FakeClock) -> AsyncIterator[Pair]:
    normal_state, fast_state = _state(clock), _state(clock)
    base = "http://sandbox.test"
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(normal_state)), base_url=base
        ) as normal,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_fast_app(fast_state)), base_url=base
        ) as fast,
    ):
        yield Pair(normal, fast, [normal_state, fast_state])


async def _pages(pair: Pair, name: str, page_length: int) -> list[bytes]:
    bodies = []
    for page in range(1, 100):
        b = await pair.get(name, "/workflows", page=page, page_length=page_length)
        bodies.append(b.content)
        if b.status_code != 200 or not b.json()["pagination"].get("next_page"):
            break
    return bodies


async def test_pages_and_tokens_are_the_same_bytes_and_served_by_the_fast_path(pair: Pair) -> None:
    for name, _, _ in TENANTS:
        await pair.token(name)
    stats = pair.states[1].fast_stats
    assert stats is not None
    assert stats.token_hits == len(TENANTS)
    for name, count, _ in TENANTS:
        for page_length in (50, 20, 7):
            bodies = await _pages(pair, name, page_length)
            assert len(bodies) == max(1, -(-count // page_length))
        # Served again: from the cache, the same bytes.
        assert await _pages(pair, name, 50) == await _pages(pair, name, 50)
    # The default page length, and a page past the end.
    await pair.get("acme", "/workflows")
    await pair.get("acme", "/workflows", page=99, page_length=50)
    assert stats.page_hits == pair.gets
    assert stats.fallbacks == 0
    assert stats.pages_rendered < stats.page_hits  # the repeats came from the cache
    # The same counters on both sides.
    for name, _, _ in TENANTS:
        a, b = (s.tenants[name].stats.to_dict() for s in pair.states)
        assert a == b
        assert a["list_requests"] > 0


async def test_a_churn_or_an_edit_invalidates_the_cached_pages(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Edits stamp updatedAt with the wall clock: the same stamp on both sides.
    monkeypatch.setattr("zuora_sandbox.state.now_iso", lambda: "2026-12-03T10:00:00.000Z")
    await pair.token("acme")
    before = await _pages(pair, "acme", 50)
    rendered = pair.states[1].fast_stats.pages_rendered  # type: ignore[union-attr]
    a, b = await pair.both(
        "POST", "/_sandbox/tenants/acme/churn", json={"change": 5, "add": 3, "delete": 2}
    )
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    after = await _pages(pair, "acme", 50)
    assert after != before
    assert pair.states[1].fast_stats.pages_rendered > rendered  # type: ignore[union-attr]
    # An admin edit of one workflow, and a direct mutation + invalidate().
    wf_id = pair.states[0].tenants["acme"].sorted_ids()[3]
    for client in (pair.normal, pair.fast):
        r = await client.patch(f"/_sandbox/tenants/acme/workflows/{wf_id}", json={"name": "Edited"})
        assert r.status_code == 200
    edited = await _pages(pair, "acme", 50)
    assert edited != after
    assert b'"Edited"' in edited[0]
    for state in pair.states:
        tenant = state.tenants["acme"]
        tenant.workflows[wf_id]["name"] = "Mutated"
        tenant.invalidate()
    assert b'"Mutated"' in (await _pages(pair, "acme", 50))[0]


async def test_faults_errors_and_filters_go_to_the_normal_app(pair: Pair) -> None:
    stats = pair.states[1].fast_stats
    assert stats is not None
    await pair.token("acme")
    await pair.get("acme", "/workflows", page=1, page_length=50, status="Active")  # unknown param
    await pair.get("acme", "/workflows", page=1, page_length=50, callout_trigger="true")
    await pair.get("acme", "/workflows", page=0, page_length=50)
    await pair.get("acme", "/workflows", page=1, page_length=51)
    await pair.get("acme", "/workflows", page="x", page_length=50)
    assert stats.fallbacks == 5
    # Faults on both tenants: the fault answers, the same (seeded) on both sides.
    for state in pair.states:
        state.tenants["acme"].faults = Faults(
            error_rate=0.5, fault_seed=3, empty_pages=[2], last_page_next_page="null"
        )
    for _ in range(3):
        await _pages(pair, "acme", 50)
    assert stats.fallbacks > 5
    # An unknown token; an expired one; bad credentials: the normal app's errors.
    bad = await pair.fast.get("/workflows", headers={"Authorization": "Bearer nope"})
    good = await pair.normal.get("/workflows", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == good.status_code == 401
    assert bad.content == good.content
    for state in pair.states:
        state.tenants["globex"].expire_tokens()
    await pair.token("globex")
    for state in pair.states:
        state.tenants["globex"].expire_tokens()
    r = await pair.get("globex", "/workflows")
    assert r.status_code == 401
    a, b = await pair.both(
        "POST",
        "/oauth/token",
        data={"client_id": "x", "client_secret": "y", "grant_type": "client_credentials"},
    )
    assert a.status_code == b.status_code == 401
    assert a.content == b.content
    for name, _, _ in TENANTS:
        a_stats, b_stats = (s.tenants[name].stats.to_dict() for s in pair.states)
        assert a_stats == b_stats


async def test_the_sandbox_stats_and_the_run_time_latency(pair: Pair) -> None:
    await pair.token("acme")
    await _pages(pair, "acme", 50)
    r = await pair.fast.get("/_sandbox/stats")
    body = r.json()
    assert body["token_requests"] == 1
    assert body["list_requests"] == 5
    assert body["requests"] == 6
    assert body["fast"]["page_hits"] == 5
    assert (await pair.normal.get("/_sandbox/stats")).json()["fast"] is None
    r = await pair.fast.patch("/_sandbox/config", json={"latency_ms": 250})
    assert r.json() == {"latency_ms": 250.0, "fast": True}
    assert pair.states[1].latency_ms == 250
    r = await pair.fast.patch("/_sandbox/config", json={"latency_ms": -1})
    assert r.status_code == 422
    r = await pair.fast.patch("/_sandbox/config", json={"other": 1})
    assert r.status_code == 422


def test_next_page_links_use_the_request_host() -> None:
    # The cache is keyed by the next_page base: two hosts, two links.
    body = re.compile(rb'"next_page": "([^"]+)"')
    state = SandboxState()
    tenant = state.add_tenant("acme", workflow_count=120, seed=1)
    app = create_fast_app(state)
    one = app.page(tenant, 1, 50, "http://a.test")
    two = app.page(tenant, 1, 50, "http://b.test")
    assert body.search(one).group(1) == b"http://a.test/workflows?page=2&page_length=50"  # type: ignore[union-attr]
    assert body.search(two).group(1) == b"http://b.test/workflows?page=2&page_length=50"  # type: ignore[union-attr]


@pytest.mark.integration
def test_over_real_http_the_fast_server_answers_as_the_normal_one() -> None:
    # Same tenants on both servers; the same bytes over real HTTP (uvicorn's own headers too).
    states = [SandboxState(), SandboxState()]
    for state in states:
        state.add_tenant("acme", workflow_count=137, seed=1)
    with run_sandbox(states[0]) as normal, run_sandbox(states[1], fast=True) as fast:
        assert (fast.http, fast.loop) == ("httptools", "uvloop")  # both are in the venv
        answers: list[list[httpx.Response]] = []
        for server, state in ((normal, states[0]), (fast, states[1])):
            tenant = state.tenants["acme"]
            with httpx.Client(base_url=server.base_url) as client:
                r = client.post(
                    "/oauth/token",
                    data={
                        "client_id": tenant.client_id,
                        "client_secret": tenant.client_secret,
                        "grant_type": "client_credentials",
                    },
                )
                token = r.json()["access_token"]
                out = []
                for page in (1, 2, 3, 1):
                    out.append(
                        client.get(
                            "/workflows",
                            params={"page": page, "page_length": 50},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                    )
                answers.append(out)
        port = re.compile(rb"127\.0\.0\.1:\d+")
        for a, b in zip(*answers, strict=True):
            assert a.status_code == b.status_code == 200
            assert port.sub(b"HOST", a.content) == port.sub(b"HOST", b.content)
            assert [k for k, _ in a.headers.raw] == [k for k, _ in b.headers.raw]
        assert states[1].fast_stats is not None
        assert states[1].fast_stats.page_hits == 4
        assert states[1].fast_stats.token_hits == 1
        assert answers[1][2].json()["pagination"]["page_length"] == 37


async def test_warm_renders_every_page_once(pair: Pair) -> None:
    for client in (pair.normal, pair.fast):
        r = await client.post("/_sandbox/warm", json={"page_length": 50})
        assert r.status_code == 200
        assert r.json()["pages"] == 5 + 1 + 1 + 1
    stats = pair.states[1].fast_stats
    assert stats is not None
    assert stats.pages_rendered == 8
    await pair.token("acme")
    await _pages(pair, "acme", 50)  # the same bytes, from the warm cache
    assert stats.pages_rendered == 8
    assert stats.page_hits == 5
