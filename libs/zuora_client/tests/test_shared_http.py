"""SharedHttpClients: one connection pool per base URL for many ZuoraClients (one per sync)."""

from __future__ import annotations

from typing import Any

import httpx
from zuora_client import HostGuards, SharedHttpClients, TokenCache, ZuoraClient, ZuoraCredentials


async def test_clients_of_one_base_url_share_one_pool_that_outlives_them_and_keeps_no_cookies(
    z: Any, creds: ZuoraCredentials
) -> None:
    fake = z.FakeZuora(workflows=3)

    def serve(request: httpx.Request) -> httpx.Response:
        response: httpx.Response = fake(request)
        response.headers["Set-Cookie"] = "ZSession=tenant-a; Path=/"  # must not travel on
        return response

    shared = SharedHttpClients(transport=httpx.MockTransport(serve))
    seen: list[httpx.AsyncClient] = []
    for _ in range(2):
        async with ZuoraClient(
            creds, shared_http=shared, token_cache=TokenCache(), host_guards=HostGuards()
        ) as client:
            seen.append(client._http)  # the pool is what is under test
            assert [w.id for w in await client.list_workflows()] == [1000, 1001, 1002]
    assert seen[0] is seen[1] and not seen[0].is_closed  # closing a client left the pool open
    assert fake.requests and all("cookie" not in r.headers for r in fake.requests)
    other = ZuoraCredentials(base_url="https://rest.zuora.com", client_id="x", client_secret="y")
    async with ZuoraClient(other, shared_http=shared) as client:
        assert client._http is not seen[0]  # another base URL, another pool
    await shared.aclose()
    assert seen[0].is_closed


async def test_a_client_of_its_own_is_closed_with_it(z: Any, make_client: Any) -> None:
    async with make_client() as client:
        http = client._http
    assert http.is_closed
