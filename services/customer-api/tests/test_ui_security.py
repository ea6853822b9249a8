"""The UI's security properties over HTTP: sign-in, session, CSRF, CSP, secrets, and the JSON
API's refusal of the session cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from customer_api.app import create_app
from customer_api.settings import ApiSettings
from customer_api.ui.headers import CONTENT_SECURITY_POLICY
from customer_api.ui.session import SESSION_COOKIE
from fastapi import FastAPI

from .conftest import KEY_ONE, KEY_TWO, Db, UiClient, sign_in

pytestmark = pytest.mark.integration


async def test_pages_need_a_session_and_redirect_to_sign_in(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/ui/?page=2&x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/%3Fpage%3D2%26x%3D1"
    fragment = await anon.get("/ui/", headers={"HX-Request": "true"})
    assert fragment.status_code == 401
    assert fragment.headers["hx-redirect"].startswith("/ui/login")


async def test_wrong_key_is_refused_and_sets_no_session(anon: httpx.AsyncClient) -> None:
    form = await anon.get("/ui/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = await anon.post(
        "/ui/login",
        data={"api_key": "not-a-key", "csrf_token": token},
        headers={"Origin": "http://testserver"},
    )
    assert response.status_code == 401
    assert "not accepted" in response.text
    assert SESSION_COOKIE not in response.cookies


async def test_session_cookie_is_signed_httponly_samesite(anon: httpx.AsyncClient) -> None:
    form = await anon.get("/ui/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = await anon.post(
        "/ui/login",
        data={"api_key": KEY_TWO, "csrf_token": token, "next": "https://evil.example/"},
        headers={"Origin": "http://testserver"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"  # no open redirect
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie
    assert KEY_TWO not in set_cookie
    # A tampered cookie is no session.
    value = response.cookies[SESSION_COOKIE]
    anon.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await anon.get("/ui/")).status_code == 303


async def test_sign_in_form_needs_its_token_and_our_origin(anon: httpx.AsyncClient) -> None:
    form = await anon.get("/ui/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    no_token = await anon.post("/ui/login", data={"api_key": KEY_ONE})
    assert no_token.status_code == 403
    other_site = await anon.post(
        "/ui/login",
        data={"api_key": KEY_ONE, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403


async def test_rotating_the_key_out_signs_its_sessions_out(
    make_settings: Callable[..., ApiSettings],
) -> None:
    before = create_app(make_settings(API_KEYS=f"{KEY_ONE},{KEY_TWO}"))
    after = create_app(make_settings(API_KEYS=KEY_TWO))  # KEY_ONE removed, same secret
    async with (
        before.router.lifespan_context(before),
        after.router.lifespan_context(after),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=before), base_url="http://testserver"
        ) as old,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=after), base_url="http://testserver"
        ) as new,
    ):
        await sign_in(old, KEY_ONE)
        cookie = old.cookies[SESSION_COOKIE]
        new.cookies.set(SESSION_COOKIE, cookie)
        assert (await old.get("/ui/")).status_code == 200
        assert (await new.get("/ui/")).status_code == 303


async def test_state_change_without_csrf_token_or_from_another_origin_is_403(
    ui: UiClient,
) -> None:
    no_token = await ui.http.post("/ui/logout", headers={"Origin": "http://testserver"})
    assert no_token.status_code == 403
    wrong_token = await ui.http.post(
        "/ui/logout", data={"csrf_token": "x" * 43}, headers={"Origin": "http://testserver"}
    )
    assert wrong_token.status_code == 403
    other_origin = await ui.post("/ui/logout", headers={"Origin": "https://evil.example"})
    assert other_origin.status_code == 403
    cross_site = await ui.post("/ui/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    # The same request with the token from this origin goes through.
    assert (await ui.post("/ui/logout")).status_code == 303


async def test_sign_out_ends_the_session(ui: UiClient) -> None:
    response = await ui.post("/ui/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login"
    assert (await ui.get("/ui/")).status_code == 303


async def test_htmx_request_carries_the_token_in_a_header(ui: UiClient) -> None:
    response = await ui.http.post(
        "/ui/logout",
        headers={"HX-Request": "true", "X-CSRF-Token": ui.csrf, "Origin": "http://testserver"},
    )
    assert response.status_code == 204
    assert response.headers["hx-redirect"] == "/ui/login"


@pytest.mark.parametrize("path", ["/ui/", "/ui/login", "/ui/static/app.css", "/ui/nowhere"])
async def test_ui_responses_send_the_csp(ui: UiClient, path: str) -> None:
    response = await ui.get(path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_pages_have_no_inline_script_or_style(ui: UiClient) -> None:
    html = (await ui.get("/ui/")).text
    assert "<style" not in html
    assert " style=" not in html
    assert " on" + "click=" not in html
    for chunk in html.split("<script")[1:]:
        assert chunk.lstrip().startswith("src="), chunk[:80]


async def test_json_api_refuses_the_session_cookie(ui: UiClient, app: FastAPI) -> None:
    for path in ("/customers", "/sync-runs"):
        response = await ui.get(path)
        assert response.status_code == 401, path
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_bearer_key_does_not_open_the_ui(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ui/")).status_code == 303


async def test_ui_unknown_page_is_an_html_404(ui: UiClient) -> None:
    response = await ui.get("/ui/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


async def test_api_errors_outside_the_ui_stay_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/customers/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_no_state_change_happens_without_the_token_or_from_another_origin(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Target")
    run = db.sync_run(customer["id"], "failed", error_kind="permanent", error_message="x")
    await db.add(run)
    before = len(await db.outbox())
    cid = customer["id"]
    posts = [
        (f"/ui/customers/{cid}/sync", {}),
        (f"/ui/customers/{cid}/delete", {}),
        (f"/ui/customers/{cid}/edit", {"name": "Renamed"}),
        ("/ui/customers/new", {"name": "Other"}),
        (f"/ui/runs/{run.id}/replay", {}),
        ("/ui/failed/replay", {"run_id": str(run.id)}),
    ]
    for path, data in posts:
        no_token = await ui.http.post(path, data=data, headers={"Origin": "http://testserver"})
        assert no_token.status_code == 403, path
        foreign = await ui.post(path, data, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403, path
    assert len(await db.outbox()) == before
    assert [c.name for c in await db.customers()] == ["Target"]
