from __future__ import annotations

import logging
import pickle
from typing import Any

import httpx
import pytest
from zuora_client import ZuoraCredentials, ZuoraError


def test_credentials_hide_secret(z: Any) -> None:
    creds = ZuoraCredentials(base_url=z.BASE, client_id=z.CLIENT_ID, client_secret=z.SECRET)
    for text in (repr(creds), str(creds), f"{creds}", creds.model_dump_json()):
        assert z.SECRET not in text
    assert "**********" in repr(creds)
    assert creds.client_secret.get_secret_value() == z.SECRET
    assert z.SECRET not in repr(creds.model_dump())


@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_credentials_require_values(z: Any, field: str) -> None:
    kwargs = {"base_url": z.BASE, "client_id": z.CLIENT_ID, "client_secret": z.SECRET, field: ""}
    with pytest.raises(ValueError, match=field):
        ZuoraCredentials(**kwargs)


def test_credentials_are_frozen(z: Any) -> None:
    creds = ZuoraCredentials(base_url=z.BASE, client_id=z.CLIENT_ID, client_secret=z.SECRET)
    with pytest.raises(ValueError, match="frozen"):
        creds.client_id = "x"  # type: ignore[misc]


def _echo_secret(status: int, z: Any) -> Any:
    """A hostile server that echoes the submitted form (secret included) in its error."""

    def reply(request: httpx.Request) -> httpx.Response:
        text = request.content.decode() + " " + z.SECRET
        return httpx.Response(
            status,
            json={"error": "invalid_client", "error_description": text},
            headers={"Zuora-Request-Id": "rid"},
        )

    return reply


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
async def test_errors_never_contain_secret(
    z: Any, make_client: Any, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    fake = z.FakeZuora(workflows=1)
    echo = _echo_secret(status, z)
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            fake.token_requests.append(request)
            return echo(request)  # type: ignore[no-any-return]
        return fake(request)  # type: ignore[no-any-return]

    async with make_client(handler=handler, max_retries=1) as client:
        with pytest.raises(ZuoraError) as info:
            await client.list_workflows()
        with pytest.raises(ZuoraError) as info2:
            await client.check_credentials()
    for error in (info.value, info2.value):
        for text in (str(error), repr(error), error.body or "", error.message, repr(error.args)):
            assert z.SECRET not in text
            assert "s3cr3t" not in text
        assert "[REDACTED]" in (error.body or "")
    assert "s3cr3t" not in caplog.text
    assert z.SECRET not in repr(client)


async def test_api_errors_never_contain_token(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/workflows":
            auth = request.headers["Authorization"]
            return httpx.Response(400, text=f"bad request with {auth}")
        return fake(request)  # type: ignore[no-any-return]

    async with make_client(handler=handler) as client:
        with pytest.raises(ZuoraError) as info:
            await client.list_workflows()
    token = next(iter(fake.tokens))
    assert token not in str(info.value)
    assert token not in (info.value.body or "")


async def test_transport_error_does_not_leak_secret(
    z: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed sending {request.content.decode()}")

    caplog.set_level(logging.DEBUG)
    async with make_client(handler=handler, max_retries=1) as client:
        with pytest.raises(ZuoraError) as info:
            await client.check_credentials()
    assert "s3cr3t" not in str(info.value)
    assert "s3cr3t" not in caplog.text


def test_errors_pickle_roundtrip_without_secret() -> None:
    error = ZuoraError("boom", status_code=500, request_id="r")
    assert "boom" in repr(pickle.loads(pickle.dumps(error)))
