"""The Zuora-facing endpoints, in process (ASGI transport)."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from zuora_sandbox import SandboxState

if TYPE_CHECKING:
    from .conftest import Api, FakeClock

HEX32 = re.compile(r"^[0-9a-f]{32}$")
WWW_AUTH = "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API"


def assert_common_headers(response: httpx.Response, track_id: str | None = None) -> None:
    request_id = response.headers["Zuora-Request-Id"]
    assert len(request_id) == 36
    uuid.UUID(request_id)
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert name in response.headers
    if track_id is not None:
        assert response.headers["Zuora-Track-Id"] == track_id


# ----------------------------------------------------------------------------- token
async def test_token_issue_shape(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    response = await api.token_response(tenant, **{"Zuora-Track-Id": "trk-1"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "jti"}
    assert HEX32.match(body["access_token"])
    assert HEX32.match(body["jti"])
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3599
    user, entity, tenant_scope = body["scope"].split(" ")
    assert HEX32.match(user.removeprefix("user."))
    uuid.UUID(entity.removeprefix("entity."))
    assert re.match(r"^tenant\.\d+$", tenant_scope)
    assert_common_headers(response, "trk-1")
    assert tenant.stats.token_requests == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("client_secret", "wrong"), ("client_id", "00000000-0000-4000-8000-000000000000")],
)
async def test_wrong_credentials_401(api: Api, state: SandboxState, field: str, value: str) -> None:
    tenant = state.add_tenant("acme", seed=1)
    data = {
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "grant_type": "client_credentials",
        field: value,
    }
    response = await api.client.post("/oauth/token", data=data)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "error_description" in response.json()
    assert_common_headers(response)


async def test_wrong_grant_type_400(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", seed=1)
    data = {
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "grant_type": "password",
    }
    response = await api.client.post("/oauth/token", data=data)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_token_needs_form_encoding(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", seed=1)
    response = await api.client.post(
        "/oauth/token",
        json={"client_id": tenant.client_id, "client_secret": tenant.client_secret},
    )
    assert response.status_code == 400


async def test_secret_with_special_characters(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", seed=1, client_secret="a+b/c=d&e%f")
    assert (await api.token_response(tenant)).status_code == 200


async def test_token_expires_by_the_clock(api: Api, state: SandboxState, clock: FakeClock) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    tenant.faults.token_ttl_s = 60
    response = await api.token_response(tenant)
    assert response.json()["expires_in"] == 60
    token = response.json()["access_token"]
    assert (await api.get_with(token, "/workflows")).status_code == 200
    clock.now += 59.9
    assert (await api.get_with(token, "/workflows")).status_code == 200
    clock.now += 0.2
    expired = await api.get_with(token, "/workflows")
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == WWW_AUTH
    assert tenant.stats.by_status[401] == 1


async def test_expire_tokens(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    token = await api.token(tenant)
    tenant.expire_tokens()
    assert (await api.get_with(token, "/workflows")).status_code == 401
    assert (await api.get(tenant, "/workflows")).status_code == 200


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic abc", "Bearer "])
async def test_missing_or_unknown_token_401(api: Api, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    for path in ("/workflows", "/workflows/123"):
        response = await api.client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Authentication error"}
        assert response.headers["WWW-Authenticate"] == WWW_AUTH
        assert_common_headers(response)


async def test_token_of_removed_tenant_is_rejected(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    token = await api.token(tenant)
    state.remove_tenant("acme")
    assert (await api.get_with(token, "/workflows")).status_code == 401


# ----------------------------------------------------------------------------- paging
@pytest.mark.parametrize(("mode", "expected"), [("omit", "missing"), ("null", None), ("empty", "")])
async def test_paging_237_in_5_pages(
    api: Api, state: SandboxState, mode: str, expected: str | None
) -> None:
    tenant = state.add_tenant("acme", workflow_count=237, seed=1)
    tenant.faults.last_page_next_page = mode
    token = await api.token(tenant)
    responses = await api.list_all(token)
    assert len(responses) == 5
    ids = [item["id"] for r in responses for item in r.json()["data"]]
    assert ids == sorted(tenant.workflows)
    for number, response in enumerate(responses[:-1], start=1):
        pagination = response.json()["pagination"]
        assert pagination == {
            "page": number,
            "page_length": 50,
            "next_page": f"http://sandbox.test/workflows?page={number + 1}&page_length=50",
        }
    last = responses[-1].json()["pagination"]
    assert last["page"] == 5
    assert last["page_length"] == 37
    if expected == "missing":
        assert "next_page" not in last
    else:
        assert last["next_page"] == expected
    assert tenant.stats.list_requests == 5
    assert tenant.stats.by_status == {200: 6}  # 5 pages + 1 token


async def test_defaults_page_1_length_20(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=30, seed=1)
    body = (await api.get(tenant, "/workflows")).json()
    assert len(body["data"]) == 20
    assert body["pagination"]["page"] == 1
    assert body["pagination"]["next_page"].endswith("/workflows?page=2&page_length=20")


async def test_page_past_the_end_is_empty(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=30, seed=1)
    body = (await api.get(tenant, "/workflows", page=9, page_length=50)).json()
    assert body == {"data": [], "pagination": {"page": 9, "page_length": 0}}


async def test_base_url_hint_is_used_in_next_page(api: Api, state: SandboxState) -> None:
    state.base_url_hint = "https://rest.test.zuora.com"
    tenant = state.add_tenant("acme", workflow_count=30, seed=1)
    body = (await api.get(tenant, "/workflows", page_length=10)).json()
    assert body["pagination"]["next_page"] == (
        "https://rest.test.zuora.com/workflows?page=2&page_length=10"
    )


async def test_oversize_page_length_clamped(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=120, seed=1)
    body = (await api.get(tenant, "/workflows", page_length=500)).json()
    assert len(body["data"]) == 50
    assert body["pagination"]["next_page"].endswith("page=2&page_length=50")


async def test_oversize_page_length_rejected(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=120, seed=1)
    tenant.faults.oversize_page_length = "reject"
    response = await api.get(tenant, "/workflows", page_length=51)
    assert response.status_code == 400
    assert "message" in response.json()
    assert (await api.get(tenant, "/workflows", page_length=50)).status_code == 200


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page_length": 0}, {"page": -1}, {"page": "x"}, {"callout_trigger": "yes"}],
)
async def test_bad_query_400(api: Api, state: SandboxState, params: dict[str, Any]) -> None:
    tenant = state.add_tenant("acme", workflow_count=5, seed=1)
    response = await api.get(tenant, "/workflows", **params)
    assert response.status_code == 400
    assert_common_headers(response)


@pytest.mark.parametrize(
    ("param", "key"),
    [
        ("callout_trigger", "calloutTrigger"),
        ("ondemand_trigger", "ondemandTrigger"),
        ("scheduled_trigger", "scheduledTrigger"),
    ],
)
async def test_boolean_filters(api: Api, state: SandboxState, param: str, key: str) -> None:
    tenant = state.add_tenant("acme", workflow_count=60, seed=2)
    token = await api.token(tenant)
    for value in (True, False):
        body = (
            await api.get_with(token, "/workflows", page_length=50, **{param: str(value).lower()})
        ).json()
        expected = sorted(i for i, w in tenant.workflows.items() if w[key] is value)
        got = [w["id"] for w in body["data"]]
        assert got == expected[:50]
        assert expected  # both values occur in the data


async def test_name_and_interval_filters(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=60, seed=2)
    some = next(w for w in tenant.workflows.values() if w["interval"])
    token = await api.token(tenant)
    by_name = (await api.get_with(token, "/workflows", name=some["name"])).json()["data"]
    assert [w["id"] for w in by_name] == [some["id"]]
    by_interval = (await api.get_with(token, "/workflows", interval=some["interval"])).json()
    expected = sorted(i for i, w in tenant.workflows.items() if w["interval"] == some["interval"])
    assert [w["id"] for w in by_interval["data"]] == expected[:20]


async def test_filtered_paging_has_next_page(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=100, seed=2)
    token = await api.token(tenant)
    first = (await api.get_with(token, "/workflows", page_length=5, ondemand_trigger="true")).json()
    assert first["pagination"]["next_page"].endswith("page=2&page_length=5")


# ----------------------------------------------------------------------------- single get
async def test_get_single(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=20, seed=1)
    wf_id, item = next(iter(tenant.workflows.items()))
    response = await api.get(tenant, f"/workflows/{wf_id}")
    assert response.status_code == 200
    body = response.json()
    assert "latest_inactive_verisons" not in body
    assert body["priority"] in ("High", "Medium", "Low")
    assert {k: v for k, v in body.items() if k != "priority"} == {
        k: v for k, v in item.items() if k != "latest_inactive_verisons"
    }
    assert tenant.stats.get_requests == 1


@pytest.mark.parametrize("wf_id", ["1", "abc", "99999999"])
async def test_get_single_404(api: Api, state: SandboxState, wf_id: str) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    response = await api.get(tenant, f"/workflows/{wf_id}")
    assert response.status_code == 404
    assert response.json() == {"Errors": ["The workflow for the given id does not exist"]}
    assert_common_headers(response)


async def test_unknown_route_is_kong_style_404(api: Api) -> None:
    response = await api.client.get("/v1/workflows")
    assert response.status_code == 404
    assert response.json() == {"message": "no Route matched with those values"}


# ----------------------------------------------------------------------------- headers
async def test_every_response_has_zuora_headers(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=3, seed=1)
    token = await api.token(tenant)
    auth = {"Authorization": f"Bearer {token}", "Zuora-Track-Id": "track-42"}
    responses = [
        await api.client.get("/workflows", headers=auth),
        await api.client.get(f"/workflows/{min(tenant.workflows)}", headers=auth),
        await api.client.get("/workflows/1", headers=auth),
        await api.client.get("/workflows", headers={"Zuora-Track-Id": "track-42"}),
        await api.client.post(
            "/oauth/token", data={"client_id": "x"}, headers={"Zuora-Track-Id": "track-42"}
        ),
    ]
    request_ids = set()
    for response in responses:
        assert_common_headers(response, "track-42")
        request_ids.add(response.headers["Zuora-Request-Id"])
    assert len(request_ids) == len(responses)
    no_track = await api.client.get("/workflows", headers={"Authorization": f"Bearer {token}"})
    assert "Zuora-Track-Id" not in no_track.headers


# ----------------------------------------------------------------------------- multi-entity
async def test_multi_entity_requires_entity_header(api: Api, state: SandboxState) -> None:
    e1, e2 = str(uuid.uuid4()), str(uuid.uuid4())
    tenant = state.add_tenant("me", workflow_count=3, seed=1, entity_ids=[e1, e2])
    token_body = (await api.token_response(tenant)).json()
    assert f"entity.{e1}" in token_body["scope"]
    assert f"entity.{e2}" in token_body["scope"]
    token = token_body["access_token"]
    missing = await api.get_with(token, "/workflows")
    assert missing.status_code == 400
    assert "message" in missing.json()
    auth = {"Authorization": f"Bearer {token}"}
    ok = await api.client.get("/workflows", headers={**auth, "Zuora-Entity-Ids": e2})
    assert ok.status_code == 200
    wrong = await api.client.get(
        "/workflows", headers={**auth, "Zuora-Entity-Ids": str(uuid.uuid4())}
    )
    assert wrong.status_code == 400
    # a token minted for one entity needs no header
    single = await api.token_response(tenant, **{"Zuora-Entity-Ids": e1})
    assert f"entity.{e2}" not in single.json()["scope"]
    assert (await api.get_with(single.json()["access_token"], "/workflows")).status_code == 200
    bad = await api.token_response(tenant, **{"Zuora-Entity-Ids": str(uuid.uuid4())})
    assert bad.status_code == 400
