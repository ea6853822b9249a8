"""Authentication: Bearer API keys, several active, only hashes kept; health endpoints open."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from customer_api.app import create_app
from customer_api.auth import ApiKeyVerifier
from customer_api.settings import DEV_API_KEY, ApiSettings, hash_api_key
from workflow_store.errors import ConfigurationError
from workflow_store.settings import StoreSettings

PROTECTED = [
    ("GET", "/customers"),
    ("POST", "/customers"),
    ("GET", "/customers/00000000-0000-0000-0000-000000000001"),
    ("PATCH", "/customers/00000000-0000-0000-0000-000000000001"),
    ("DELETE", "/customers/00000000-0000-0000-0000-000000000001"),
    ("GET", "/customers/00000000-0000-0000-0000-000000000001/workflows"),
    ("GET", "/customers/00000000-0000-0000-0000-000000000001/workflows/1"),
    ("POST", "/customers/00000000-0000-0000-0000-000000000001/sync"),
    ("GET", "/customers/00000000-0000-0000-0000-000000000001/sync-runs"),
    ("POST", "/sync"),
    ("GET", "/sync-runs"),
    ("GET", "/sync-runs/00000000-0000-0000-0000-000000000001"),
    ("POST", "/sync-runs/00000000-0000-0000-0000-000000000001/replay"),
]


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert set(body) >= {"type", "title", "status", "detail", "instance"}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_missing_key_is_401_on_every_protected_route(
    anon: httpx.AsyncClient, method: str, path: str
) -> None:
    _assert_401(await anon.request(method, path, json={}))


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-key", "Bearer ", "Basic dGVzdDp0ZXN0", "test-key-one-0123456789", "Bearer"],
)
async def test_wrong_key_or_scheme_is_401(anon: httpx.AsyncClient, header: str) -> None:
    _assert_401(await anon.get("/customers", headers={"Authorization": header}))


async def test_each_rotated_key_works(anon: httpx.AsyncClient, api_keys: tuple[str, str]) -> None:
    for key in api_keys:
        response = await anon.get("/customers", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
    lower_scheme = await anon.get("/customers", headers={"Authorization": f"bearer {api_keys[1]}"})
    assert lower_scheme.status_code == 200


async def test_unauthenticated_invalid_body_gets_401_not_422(anon: httpx.AsyncClient) -> None:
    response = await anon.post(
        "/customers", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_401(response)


async def test_unknown_path_without_key_is_401(anon: httpx.AsyncClient) -> None:
    _assert_401(await anon.get("/no-such-thing"))


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs", "/openapi.json"])
async def test_health_and_docs_are_open(anon: httpx.AsyncClient, path: str) -> None:
    response = await anon.get(path)
    assert response.status_code == 200


async def test_openapi_documents_bearer_security(anon: httpx.AsyncClient) -> None:
    schema = (await anon.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert schema["security"] == [{"bearerAuth": []}]
    assert schema["paths"]["/healthz"]["get"]["security"] == []
    assert "401" in schema["paths"]["/customers"]["get"]["responses"]


def test_verifier_keeps_only_hashes_and_accepts_each_key() -> None:
    verifier = ApiKeyVerifier([hash_api_key("key-alpha"), hash_api_key("key-beta")])
    assert verifier.verify("key-alpha") and verifier.verify("key-beta")
    assert not verifier.verify("key-gamma")
    assert not verifier.verify_header(None)
    assert verifier.verify_header("Bearer key-beta")
    assert "key-alpha" not in repr(vars(verifier))


def test_settings_store_hashes_of_comma_separated_keys() -> None:
    settings = ApiSettings(
        API_KEYS=" key-one , key-two,,key-one ", store=StoreSettings(APP_ENV="production")
    )
    assert settings.api_key_hashes() == (hash_api_key("key-one"), hash_api_key("key-two"))
    assert "key-one" not in repr(settings)


def test_missing_keys_outside_development_is_a_startup_error(
    make_settings: Callable[..., ApiSettings],
) -> None:
    with pytest.raises(ConfigurationError, match="API_KEYS is not set"):
        create_app(make_settings(API_KEYS="", APP_ENV="production"))


async def test_development_without_keys_uses_the_dev_key(
    make_settings: Callable[..., ApiSettings], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app = create_app(make_settings(API_KEYS="", APP_ENV="development"))
    assert "API_KEYS is not set" in caplog.text
    assert DEV_API_KEY not in caplog.text
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        ok = await c.get("/customers", headers={"Authorization": f"Bearer {DEV_API_KEY}"})
        assert ok.status_code == 200
        assert (await c.get("/customers")).status_code == 401
