"""The client over real HTTP against the Zuora sandbox (issue acceptance checks)."""

from __future__ import annotations

import pytest
from zuora_client import AuthenticationError, TokenCache, ZuoraClient, ZuoraCredentials

pytestmark = pytest.mark.integration


async def test_237_workflows_in_5_pages_and_1_token_request(zuora_sandbox, sandbox_client) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=237, seed=1)
    async with sandbox_client(tenant) as client:
        workflows = await client.list_workflows()
    assert sorted(w.id for w in workflows) == sorted(tenant.workflows)
    assert tenant.stats.list_requests == 5
    assert tenant.stats.token_requests == 1
    assert {w.raw["id"]: w.raw for w in workflows} == tenant.workflows


@pytest.mark.parametrize(
    ("statuses", "retry_after"),
    [([503], 1.0), ([429], 0.01), ([429], None), ([503, 429, 502, 500], 0.01)],
)
async def test_30_percent_injected_failures_still_give_every_workflow_once(
    zuora_sandbox, sandbox_client, statuses: list[int], retry_after: float | None
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=237, seed=2)
    tenant.faults.error_rate = 0.3
    tenant.faults.error_statuses = statuses
    tenant.faults.rate_limit_retry_after = retry_after
    tenant.faults.rate_limit_reset = 0
    tenant.faults.error_body = "text"
    tenant.faults.fault_seed = 42
    async with sandbox_client(tenant, max_retries=12) as client:
        workflows = await client.list_workflows()
        retries = client.stats.retries
    ids = [w.id for w in workflows]
    assert len(ids) == len(set(ids)) == 237
    assert set(ids) == set(tenant.workflows)
    assert tenant.stats.injected_errors > 0 and retries == tenant.stats.injected_errors


async def test_rate_limit_without_retry_after_waits_for_ratelimit_reset(
    zuora_sandbox, sandbox_client
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=400, seed=3)
    tenant.faults.rate_limit_rate = 0.5
    tenant.faults.rate_limit_retry_after = None
    tenant.faults.rate_limit_reset = 2
    tenant.faults.fault_seed = 5
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with sandbox_client(tenant, max_retries=12, sleep=sleep) as client:
        assert len(await client.list_workflows()) == 400
    assert tenant.stats.by_status.get(429, 0) > 0
    assert len(waits) == tenant.stats.by_status[429]
    assert all(w >= 2 for w in waits)  # RateLimit-Reset honoured when RateLimit-Remaining is 0


async def test_token_expiring_mid_listing_is_refreshed(zuora_sandbox, sandbox_client) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=237, seed=4)
    async with sandbox_client(tenant) as client:
        seen: list[int] = []
        async for page in client.iter_pages():
            seen.extend(w.id for w in page.workflows)
            if page.number == 2:
                tenant.expire_tokens()  # the server now answers 401 to the cached token
    assert sorted(seen) == sorted(tenant.workflows)
    assert tenant.stats.token_requests == 2
    assert tenant.stats.by_status.get(401) == 1


async def test_wrong_credentials_raise_without_retry_loops(zuora_sandbox, sandbox_client) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=5, seed=5)
    creds = ZuoraCredentials(
        base_url=zuora_sandbox.base_url, client_id=tenant.client_id, client_secret="wrong"
    )
    async with ZuoraClient(
        creds, allowed_base_urls=(zuora_sandbox.base_url,), token_cache=TokenCache()
    ) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.list_workflows()
    assert tenant.stats.token_requests == 1
    assert tenant.stats.list_requests == 0
    assert "wrong" not in str(info.value)
    assert info.value.request_id


async def test_server_capping_pages_below_50_is_followed_to_the_end(
    zuora_sandbox, sandbox_client
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=95, seed=6)
    tenant.faults.max_page_length = 20
    async with sandbox_client(tenant) as client:
        workflows = await client.list_workflows()
    assert len(workflows) == 95 and tenant.stats.list_requests == 5


@pytest.mark.parametrize("mode", ["omit", "null", "empty"])
async def test_each_last_page_style_ends_the_listing(
    zuora_sandbox, sandbox_client, mode: str
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=100, seed=7)
    tenant.faults.last_page_next_page = mode
    async with sandbox_client(tenant) as client:
        assert len(await client.list_workflows()) == 100
    assert tenant.stats.list_requests == 2


async def test_get_workflow_and_not_found(zuora_sandbox, sandbox_client) -> None:
    from zuora_client import NotFoundError

    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=8)
    wid = sorted(tenant.workflows)[1]
    async with sandbox_client(tenant) as client:
        wf = await client.get_workflow(wid)
        assert wf.id == wid and wf.name == tenant.workflows[wid]["name"]
        with pytest.raises(NotFoundError):
            await client.get_workflow(1)
