"""Property-based tests of the whole engine (SQLite store, sandbox app in-process over ASGI).

For random source and local states, page sizes and a fault at page k:
- after a clean run, local == source;
- after a failed run, no local row was removed or changed;
- running twice equals running once (the second run writes nothing);
- deletions never exceed the guard, or the operator's allow_deletes bound when given.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sync_engine import DeletionGuard, RunStatus, SyncRequest, SyncSettings, WorkflowSyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade
from workflow_store.models import StoredWorkflow
from zuora_client import TokenCache, ZuoraClient, ZuoraCredentials
from zuora_sandbox import SandboxState, create_app, generate_workflows

SANDBOX_URL = "http://sandbox.invalid"
POOL = generate_workflows(90, seed=99)  # realistic items to draw states from
POOL_IDS = sorted(POOL)
KEY = SecretBox.generate_key()
_names = itertools.count()

# A state: which pool items exist, and a content variant per item (a changed name).
states = st.dictionaries(st.sampled_from(POOL_IDS), st.integers(0, 2), max_size=90)


def item(wid: int, variant: int) -> dict[str, Any]:
    raw = dict(POOL[wid])
    raw["name"] = f"{raw['name']} #{variant}"
    return raw


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("props") / "props.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


async def _scenario(
    db_url: str,
    initial: dict[int, int],
    source: dict[int, int],
    page_length: int,
    server_cap: int,
    fault_page: int | None,
    allow: int | None,
) -> None:
    state = SandboxState(base_url_hint=SANDBOX_URL)
    tenant = state.add_tenant(f"t{next(_names)}")
    for wid, variant in initial.items():
        tenant.put_workflow(item(wid, variant))
    transport = httpx.ASGITransport(app=create_app(state))

    def client_factory(creds: ZuoraCredentials) -> ZuoraClient:
        return ZuoraClient(
            creds,
            allowed_base_urls=(SANDBOX_URL,),
            transport=transport,
            token_cache=TokenCache(),
            max_retries=0,
        )

    db = create_engine(db_url)
    sessions = create_session_factory(db)
    box = SecretBox([KEY])
    engine = WorkflowSyncEngine(
        db,
        box,
        allowed_base_urls=(SANDBOX_URL,),
        settings=SyncSettings(page_length=page_length),
        client_factory=client_factory,
    )
    guard = DeletionGuard(max_share=0.5)
    try:
        async with sessions() as session, session.begin():
            customer = await add_customer(
                session,
                box,
                name=tenant.name,
                base_url=SANDBOX_URL,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret,
            )
            cid = customer.id

        async def local() -> dict[int, str]:
            async with sessions() as session:
                rows = await session.execute(
                    select(StoredWorkflow.zuora_id, StoredWorkflow.name).where(
                        StoredWorkflow.customer_id == cid
                    )
                )
                return {int(z): n for z, n in rows.all()}

        def expected(s: dict[int, int]) -> dict[int, str]:
            return {wid: item(wid, v)["name"] for wid, v in s.items()}

        first = await engine.sync_customer(SyncRequest(customer_id=cid))
        assert first.status is RunStatus.SUCCEEDED
        assert await local() == expected(initial)

        # The tenant changes, and maybe one page of the next listing fails.
        for wid in set(initial) - set(source):
            tenant.delete_workflow(wid)
        for wid, variant in source.items():
            tenant.put_workflow(item(wid, variant))
        tenant.faults.max_page_length = server_cap
        if fault_page is not None:
            tenant.faults.fail_pages = [fault_page]
        before = await local()
        outcome = await engine.sync_customer(SyncRequest(customer_id=cid, allow_deletes=allow))
        after = await local()

        if outcome.status is RunStatus.FAILED:
            assert after == before  # nothing removed, nothing changed
            tenant.faults.fail_pages = []
            outcome = await engine.sync_customer(SyncRequest(customer_id=cid, allow_deletes=allow))
            after = await local()
        removed = set(before) - set(after)
        if allow is not None:
            assert len(removed) <= allow
        else:
            assert not guard.blocks(stored=len(before), to_delete=len(removed), listed=len(source))
        if outcome.status is RunStatus.SUCCEEDED:
            assert after == expected(source)
        else:
            assert outcome.status is RunStatus.DELETES_BLOCKED
            assert removed == set()
            assert {k: v for k, v in after.items() if k in source} == expected(source)

        again = await engine.sync_customer(SyncRequest(customer_id=cid, allow_deletes=allow))
        if outcome.status is RunStatus.SUCCEEDED:
            assert again.status is RunStatus.SUCCEEDED
            assert again.stats.created == again.stats.updated == again.stats.deleted == 0
            assert await local() == after
    finally:
        await db.dispose()


@pytest.mark.integration  # a SQLite database file (the module fixture)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    initial=states,
    source=states,
    page_length=st.integers(1, 50),
    server_cap=st.sampled_from([7, 20, 50]),
    fault_page=st.none() | st.integers(1, 6),
    allow=st.none() | st.integers(0, 90),
)
def test_engine_keeps_local_equal_to_source_safely(
    db_url: str,
    initial: dict[int, int],
    source: dict[int, int],
    page_length: int,
    server_cap: int,
    fault_page: int | None,
    allow: int | None,
) -> None:
    asyncio.run(_scenario(db_url, initial, source, page_length, server_cap, fault_page, allow))
