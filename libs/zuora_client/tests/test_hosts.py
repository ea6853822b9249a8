from __future__ import annotations

from typing import Any

import httpx
import pytest
from zuora_client import (
    OFFICIAL_BASE_URLS,
    BaseUrlNotAllowedError,
    ZuoraClient,
    ZuoraCredentials,
    check_base_url,
)

LOCAL = "http://127.0.0.1:8123"


def test_official_table() -> None:
    assert len(OFFICIAL_BASE_URLS) == 11
    assert all(
        u.startswith("https://rest.") and u.endswith(".zuora.com") for u in OFFICIAL_BASE_URLS
    )


@pytest.mark.parametrize("url", sorted(OFFICIAL_BASE_URLS))
def test_every_official_host_is_allowed(url: str) -> None:
    assert check_base_url(url, ()) == url
    assert check_base_url(url + "/", ()) == url


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://REST.Zuora.com", "https://rest.zuora.com"),
        ("HTTPS://rest.zuora.com/", "https://rest.zuora.com"),
        ("https://rest.zuora.com:443", "https://rest.zuora.com"),
        ("https://rest.eu.zuora.com:443/", "https://rest.eu.zuora.com"),
    ],
)
def test_normalisation(url: str, normalised: str) -> None:
    assert check_base_url(url) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "http://rest.zuora.com",  # plain http
        "https://rest.zuora.com.evil.com",
        "https://evilrest.zuora.com",
        "https://rest.zuora.com.",  # trailing dot
        "https://evil.com/rest.zuora.com",
        "https://evil.com?x=https://rest.zuora.com",
        "https://evil.com#https://rest.zuora.com",
        "https://rest.zuora.com@evil.com",
        "https://user:pw@rest.zuora.com",
        "https://rest.zuora.com:8443",
        "https://rest.zuora.com/v1",
        "https://rest.zuora.com/workflows",
        "https://rest.zuora.com/?a=1",
        "https://rest.zuora.com?",
        "https://rest.zuora.com#",
        "https://rest.zuora.com:abc",
        " https://rest.zuora.com",
        "https://rest.zuora.com\n",
        "https://rest.zuora.com\\@evil.com",
        "ftp://rest.zuora.com",
        "rest.zuora.com",
        "//rest.zuora.com",
        "https://",
        "",
        "https://127.0.0.1:8123",
        LOCAL,  # not allowed unless listed
        "https://rest.zu\u043era.com",  # Cyrillic o
        "https://sandbox.na.zuora.com",  # a UI host, not REST
    ],
)
def test_rejected(url: str) -> None:
    with pytest.raises(BaseUrlNotAllowedError):
        check_base_url(url, ())


@pytest.mark.parametrize(
    ("url", "allowed", "expected"),
    [
        (LOCAL, (LOCAL,), LOCAL),
        (LOCAL + "/", (LOCAL,), LOCAL),
        (LOCAL, (LOCAL + "/",), LOCAL),
        ("http://localhost:8123", ("http://LOCALHOST:8123",), "http://localhost:8123"),
        ("http://[::1]:8123", ("http://[::1]:8123",), "http://[::1]:8123"),
        (LOCAL, LOCAL, LOCAL),  # a lone string is one URL, not characters
        ("https://rest.zuora.com", (LOCAL,), "https://rest.zuora.com"),
    ],
)
def test_allowed_extras(url: str, allowed: Any, expected: str) -> None:
    assert check_base_url(url, allowed) == expected


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8124", (LOCAL,)),  # other port
        ("https://127.0.0.1:8123", (LOCAL,)),  # other scheme
        ("http://127.0.0.1", (LOCAL,)),
        ("http://127.0.0.1:8123/admin", (LOCAL,)),
    ],
)
def test_allowed_extras_compare_exactly(url: str, allowed: tuple[str, ...]) -> None:
    with pytest.raises(BaseUrlNotAllowedError):
        check_base_url(url, allowed)


def test_client_constructor_rejects_before_any_request() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    creds = ZuoraCredentials(
        base_url="https://rest.zuora.com.evil.com", client_id="c", client_secret="s"
    )
    with pytest.raises(BaseUrlNotAllowedError):
        ZuoraClient(creds, transport=httpx.MockTransport(handler))
    with pytest.raises(ValueError, match="not an official"):
        ZuoraClient(creds, transport=httpx.MockTransport(handler))
    assert calls == []


async def test_client_uses_allowed_local_sandbox(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=2)
    local = ZuoraCredentials(base_url=LOCAL + "/", client_id=z.CLIENT_ID, client_secret=z.SECRET)
    async with make_client(handler=fake, credentials=local, allowed_base_urls=[LOCAL]) as client:
        assert client.base_url == LOCAL
        assert len(await client.list_workflows()) == 2
    assert {str(r.url).split("/oauth")[0].split("/workflows")[0] for r in fake.requests} == {LOCAL}
