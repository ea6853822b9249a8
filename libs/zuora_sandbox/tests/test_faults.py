"""Every fault knob, in process (ASGI transport)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from zuora_sandbox import Faults, SandboxState

if TYPE_CHECKING:
    from .conftest import Api


async def statuses(api: Api, token: str, n: int) -> list[int]:
    return [(await api.get_with(token, "/workflows")).status_code for _ in range(n)]


async def test_error_rate_is_reproducible_with_a_seed(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=10, seed=1)
    tenant.faults = Faults(error_rate=0.3, error_statuses=[500, 502, 503, 504], fault_seed=7)
    token = await api.token(tenant)
    first = await statuses(api, token, 200)
    failures = [s for s in first if s != 200]
    assert 40 <= len(failures) <= 80  # ~30 %
    assert set(failures) == {500, 502, 503, 504}
    assert tenant.stats.injected_errors == len(failures)
    tenant.reset_fault_rng()
    assert await statuses(api, token, 200) == first
    tenant.faults.fault_seed = 8  # a new seed restarts the sequence differently
    assert await statuses(api, token, 200) != first


async def test_faults_apply_only_to_their_tenant(api: Api, state: SandboxState) -> None:
    bad = state.add_tenant("bad", workflow_count=10, seed=1)
    good = state.add_tenant("good", workflow_count=10, seed=2)
    bad.faults.error_rate = 1
    assert set(await statuses(api, await api.token(bad), 5)) == {503}
    assert set(await statuses(api, await api.token(good), 5)) == {200}
    assert good.stats.injected_errors == 0
    assert bad.stats.injected_errors == 5


@pytest.mark.parametrize(
    ("mode", "content_type"),
    [("json", "application/json"), ("text", "text/plain"), ("html", "text/html")],
)
async def test_error_body_modes(
    api: Api, state: SandboxState, mode: str, content_type: str
) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults = Faults(error_rate=1, error_statuses=[502], error_body=mode)
    response = await api.get(tenant, "/workflows")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith(content_type)
    if mode == "html":
        assert "<html>" in response.text
    else:
        assert response.text == '{"message":"An unexpected error occurred"}'
    assert "Zuora-Request-Id" in response.headers


async def test_429_with_retry_after(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults = Faults(rate_limit_rate=1, rate_limit_retry_after=2.5, rate_limit_reset=7)
    response = await api.get(tenant, "/workflows")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2.5"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == "7"
    assert "message" in response.json()
    assert tenant.stats.injected_errors == 1
    assert tenant.stats.by_status[429] == 1


async def test_429_without_retry_after(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults = Faults(rate_limit_rate=1, rate_limit_retry_after=None, rate_limit_reset=3)
    response = await api.get(tenant, f"/workflows/{min(tenant.workflows)}")
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == "3"


async def test_mixed_429_and_503_at_30_percent(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults = Faults(rate_limit_rate=0.15, error_rate=0.15, fault_seed=1)
    got = await statuses(api, await api.token(tenant), 300)
    assert {429, 503, 200} == set(got)
    assert 60 <= sum(s != 200 for s in got) <= 120


async def test_fail_pages(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=237, seed=1)
    tenant.faults.fail_pages = [3]
    token = await api.token(tenant)
    responses = await api.list_all(token)
    assert [r.status_code for r in responses] == [200, 200, 500]
    assert (await api.get_with(token, "/workflows", page=3, page_length=50)).status_code == 500
    assert (await api.get_with(token, "/workflows", page=4, page_length=50)).status_code == 200
    assert tenant.stats.injected_errors == 2


async def test_empty_pages_still_announce_the_next_page(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=120, seed=1)
    tenant.faults.empty_pages = [2]
    token = await api.token(tenant)
    body = (await api.get_with(token, "/workflows", page=2, page_length=50)).json()
    assert body["data"] == []
    assert body["pagination"]["next_page"].endswith("page=3&page_length=50")
    last = (await api.get_with(token, "/workflows", page=3, page_length=50)).json()
    assert len(last["data"]) == 20


async def test_max_page_length_short_pages_with_next_page(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=237, seed=1)
    tenant.faults.max_page_length = 20
    responses = await api.list_all(await api.token(tenant))
    assert len(responses) == 12
    assert all(r.json()["pagination"]["page_length"] == 20 for r in responses[:-1])
    assert responses[0].json()["pagination"]["next_page"].endswith("page=2&page_length=50")
    ids = [w["id"] for r in responses for w in r.json()["data"]]
    assert ids == sorted(tenant.workflows)


async def test_repeat_previous_page(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=120, seed=1)
    tenant.faults.repeat_previous_page = True
    token = await api.token(tenant)
    page1 = (await api.get_with(token, "/workflows", page=1, page_length=50)).json()
    page2 = (await api.get_with(token, "/workflows", page=2, page_length=50)).json()
    page3 = (await api.get_with(token, "/workflows", page=3, page_length=50)).json()
    assert page2["data"] == page1["data"]
    assert page2["pagination"]["next_page"]
    assert [w["id"] for w in page3["data"]] == sorted(tenant.workflows)[50:100]
    assert "next_page" not in page3["pagination"]


async def test_page_overlap_repeats_items(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=100, seed=1)
    tenant.faults.page_overlap = 5
    responses = await api.list_all(await api.token(tenant))
    ids = [w["id"] for r in responses for w in r.json()["data"]]
    assert len(ids) > 100
    assert sorted(set(ids)) == sorted(tenant.workflows)


async def test_latency(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    token = await api.token(tenant)
    tenant.faults.latency_ms = 120
    started = time.monotonic()
    assert (await api.get_with(token, "/workflows")).status_code == 200
    assert time.monotonic() - started >= 0.11


async def test_token_ttl_float(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults.token_ttl_s = 0.5
    assert (await api.token_response(tenant)).json()["expires_in"] == 0.5


async def test_token_faults(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults = Faults(token_rate_limit_rate=1)
    assert (await api.token_response(tenant)).status_code == 429
    tenant.faults = Faults(token_error_rate=1, error_statuses=[504])
    assert (await api.token_response(tenant)).status_code == 504
    tenant.faults = Faults(error_rate=1)  # API faults leave the token endpoint alone
    assert (await api.token_response(tenant)).status_code == 200
    assert tenant.stats.token_requests == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"error_rate": 2},
        {"error_rate": 0.6, "rate_limit_rate": 0.6},
        {"error_body": "xml"},
        {"last_page_next_page": "missing"},
        {"oversize_page_length": "truncate"},
        {"max_page_length": 0},
        {"error_statuses": []},
        {"fail_pages": ["3"]},
        {"repeat_previous_page": "yes"},
        {"nonsense": 1},
    ],
)
def test_faults_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Faults.from_dict(bad)


def test_faults_roundtrip() -> None:
    faults = Faults(error_rate=0.3, fail_pages=[3], rate_limit_retry_after=None, fault_seed=4)
    assert Faults.from_dict(faults.to_dict()) == faults


async def test_oversize_body_is_exactly_the_size_asked_and_valid_json(
    api: Api, state: SandboxState
) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults = Faults.from_dict({"oversize_body_bytes": 300_000})
    token = await api.token(tenant)
    for path in ("/workflows", f"/workflows/{next(iter(tenant.workflows))}"):
        response = await api.get_with(token, path)
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not built in memory
        assert len(response.content) == 300_000
        assert response.json()["data"] == []


async def test_oversize_body_is_generated_chunk_by_chunk() -> None:
    from zuora_sandbox.faults import oversized_body

    sizes = [len(chunk) async for chunk in oversized_body(80_000_000)]
    assert sum(sizes) == 80_000_000
    assert max(sizes) <= 64 * 1024  # never more than one chunk in memory


async def test_drip_yields_the_body_one_byte_at_a_time() -> None:
    from zuora_sandbox.faults import dripped_body

    assert [chunk async for chunk in dripped_body(b'{"a":1}', 0)] == [
        bytes([b]) for b in b'{"a":1}'
    ]


def test_drip_over_real_http_sends_headers_then_trickles(zuora_sandbox: object) -> None:
    import httpx

    server: Any = zuora_sandbox
    tenant = server.add_tenant("acme", workflow_count=1, seed=1)
    tenant.faults.drip_interval_s = 0.05  # the ~600-byte page would take ~30 s
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        token = client.post(
            "/oauth/token",
            data={
                "client_id": tenant.client_id,
                "client_secret": tenant.client_secret,
                "grant_type": "client_credentials",
            },
        ).json()["access_token"]
        started = time.monotonic()
        with client.stream(
            "GET", "/workflows", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status_code == 200
            first = next(response.iter_raw())
        assert first.startswith(b"{")
        assert len(first) < 100  # a trickle, not the page
    assert time.monotonic() - started < 20  # closing the stream ends it; no 30 s wait


def test_body_fault_knobs_are_validated() -> None:
    for bad in ({"oversize_body_bytes": -1}, {"drip_interval_s": -1}, {"drip_interval_s": "x"}):
        with pytest.raises(ValueError):
            Faults.from_dict(bad)
