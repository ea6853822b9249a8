"""The data-loss rules of the engine (audit D1, D2, D3, A5, M1, M2, M6), on real PostgreSQL and
the Zuora sandbox over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, text
from sync_engine import FailureKind, RunStatus, SyncRequest, SyncSettings, WorkflowSyncEngine
from sync_engine.locks import advisory_key
from workflow_store.models import Customer, StoredWorkflow, SyncRun
from zuora_client import TokenCache, ZuoraClient, ZuoraCredentials

from .conftest import Store

pytestmark = pytest.mark.integration

_FAST = {"zuora_max_retries": 1, "zuora_backoff_base_seconds": 0.01}


async def stored(store: Store, customer_id: uuid.UUID) -> dict[int, StoredWorkflow]:
    async with store.sessions() as session:
        rows = await session.scalars(
            select(StoredWorkflow).where(StoredWorkflow.customer_id == customer_id)
        )
        return {row.zuora_id: row for row in rows}


async def last_success(store: Store, customer_id: uuid.UUID) -> datetime | None:
    async with store.sessions() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        return customer.last_successful_sync_at


class _Interposer(httpx.AsyncBaseTransport):
    """Real HTTP to the sandbox, with a hook that may rewrite a listing page or act before a
    request is sent (to stage what happens between two Zuora calls)."""

    def __init__(
        self,
        *,
        hide_ids: frozenset[int] = frozenset(),
        before_list: Callable[[int], Awaitable[None]] | None = None,
        request_id: str | None = None,
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._hide = hide_ids
        self._before_list = before_list
        self._request_id = request_id

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        listing = request.url.path == "/workflows"
        if listing and self._before_list is not None:
            await self._before_list(int(request.url.params["page"]))
        response = await self._inner.handle_async_request(request)
        if self._request_id is not None:
            response.headers["Zuora-Request-Id"] = self._request_id
        if not (listing and self._hide and response.status_code == 200):
            return response
        body = orjson.loads(await response.aread())
        body["data"] = [item for item in body["data"] if item["id"] not in self._hide]
        return httpx.Response(
            200, headers={"content-type": "application/json"}, content=orjson.dumps(body)
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def engine_through(store: Store, transport: httpx.AsyncBaseTransport) -> WorkflowSyncEngine:
    def client_factory(creds: ZuoraCredentials) -> ZuoraClient:
        return ZuoraClient(
            creds,
            allowed_base_urls=(store.base_url,),
            transport=transport,
            token_cache=TokenCache(),
            max_retries=1,
            backoff_base=0.01,
        )

    return WorkflowSyncEngine(
        store.engine,
        store.box,
        allowed_base_urls=(store.base_url,),
        settings=SyncSettings(),
        client_factory=client_factory,
    )


# -- acceptance (issue 10): nothing is deleted without a sufficient, explicit bound ------------


async def test_acceptance_no_deletion_without_a_complete_listing_and_a_sufficient_bound(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=50, seed=21)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine(page_length=20)  # 3 pages
    assert (await engine.sync_customer(SyncRequest(customer_id=cid))).status is RunStatus.SUCCEEDED
    raw = dict(tenant.workflows)
    ids = sorted(raw)
    before = await store.row_versions(cid)
    synced_at = await last_success(store, cid)

    # 1. An empty page that announces a next page: incomplete, nothing deleted, not succeeded.
    for wid in ids[:5]:
        tenant.delete_workflow(wid)
    tenant.faults.empty_pages = [2]
    incomplete = await engine.sync_customer(SyncRequest(customer_id=cid, force=True))
    assert incomplete.status is RunStatus.FAILED
    assert incomplete.error_kind is FailureKind.TRANSIENT
    assert incomplete.error_message and "incomplete listing" in incomplete.error_message
    assert await store.row_versions(cid) == before
    assert await last_success(store, cid) == synced_at
    tenant.faults.empty_pages = []

    # 2. An empty listing with force: blocked (force only skips coalescing).
    for wid in ids[5:]:
        tenant.delete_workflow(wid)
    forced = await engine.sync_customer(SyncRequest(customer_id=cid, force=True))
    assert forced.status is RunStatus.DELETES_BLOCKED and forced.blocked_deletes == 50
    assert await store.row_versions(cid) == before

    # 3. allow_deletes=5 against 40 pending deletions: still blocked, nothing deleted.
    for wid in ids[40:]:
        tenant.put_workflow(raw[wid])
    short = await engine.sync_customer(SyncRequest(customer_id=cid, allow_deletes=5))
    assert short.status is RunStatus.DELETES_BLOCKED and short.blocked_deletes == 40
    assert short.stats.deleted == 0
    assert await store.row_versions(cid) == before
    async with store.sessions() as session:
        run = await session.get(SyncRun, short.run_id)
        assert run is not None and run.status == "deletes_blocked" and run.blocked_deletes == 40

    # 4. allow_deletes=30 against 30 reviewed deletions: exactly those 30 go.
    for wid in ids[30:40]:
        tenant.put_workflow(raw[wid])
    applied = await engine.sync_customer(SyncRequest(customer_id=cid, allow_deletes=30))
    assert applied.status is RunStatus.SUCCEEDED and applied.stats.deleted == 30
    assert sorted(applied.changes.deleted) == ids[:30]
    assert set(await stored(store, cid)) == set(ids[30:])


# -- D1: allow_deletes expires -----------------------------------------------------------------


async def test_an_old_command_carrying_allow_deletes_never_deletes(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=12, seed=22)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine(allow_deletes_valid_seconds=900)
    await engine.sync_customer(SyncRequest(customer_id=cid))
    for wid in list(tenant.workflows):
        tenant.delete_workflow(wid)
    redelivered = SyncRequest(
        customer_id=cid,
        allow_deletes=12,
        force=True,
        requested_at=datetime.now(UTC) - timedelta(minutes=16),
    )
    outcome = await engine.sync_customer(redelivered)
    assert outcome.status is RunStatus.DELETES_BLOCKED and outcome.stats.deleted == 0
    assert outcome.error_message and "allow_deletes=12 ignored" in outcome.error_message
    assert len(await stored(store, cid)) == 12


# -- D2: absences are confirmed before deleting ------------------------------------------------


async def test_a_workflow_missing_from_one_listing_is_kept_while_zuora_still_has_it(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=30, seed=23)
    cid = await store.add_customer_for(tenant)
    await store.sync_engine().sync_customer(SyncRequest(customer_id=cid))
    ids = sorted(tenant.workflows)
    shifted, really_gone = ids[7], ids[8]
    tenant.delete_workflow(really_gone)
    # Offset paging skipped `shifted` (it moved between two page reads); GET still finds it.
    engine = engine_through(store, _Interposer(hide_ids=frozenset({shifted})))
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.changes.deleted == [really_gone]
    assert set(await stored(store, cid)) == set(ids) - {really_gone}


# -- A5: odd values never fail the customer ----------------------------------------------------


async def test_odd_values_are_stored_safely_or_skipped_and_the_rest_syncs(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=6, seed=24)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    a, b, c, d, e, f = sorted(tenant.workflows)
    name_of_d = tenant.workflows[d]["name"]
    tenant.update_workflow(a, status="S" * 33, priority="P" * 17, interval="I" * 200)
    tenant.update_workflow(b, name="nul\u0000name", description="in\u0000text")
    tenant.put_workflow({**tenant.workflows[c], "extra": {"k\u0000": "v\u0000"}})
    tenant.update_workflow(d, name=12345)  # an odd type: this one item is skipped
    tenant.put_workflow({**tenant.workflows[e], "id": 2**63, "name": "id out of range"})
    tenant.update_workflow(f, name="Renamed normally")
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error_message
    assert outcome.stats.errors == 2  # the odd-typed item and the out-of-range id
    assert outcome.error_message and "skipped a workflow item" in outcome.error_message
    rows = await stored(store, cid)
    assert set(rows) == {a, b, c, d, e, f}  # the skipped item `d` is not deleted
    assert rows[a].status == "S" * 32 and rows[a].priority == "P" * 16
    assert rows[a].interval == "I" * 128 and rows[a].raw["status"] == "S" * 33
    assert rows[b].name == "nulname" and rows[b].description == "intext"
    assert rows[c].raw["extra"] == {"k": "v"}
    assert rows[f].name == "Renamed normally"
    assert rows[d].name == name_of_d  # the stored copy of the skipped item is left as it was


# -- D3: a run that lost its lock cannot commit ------------------------------------------------


async def test_a_run_whose_lock_connection_died_does_not_commit_and_returns_an_outcome(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=20, seed=25)
    cid = await store.add_customer_for(tenant)
    await store.sync_engine().sync_customer(SyncRequest(customer_id=cid))
    target = sorted(tenant.workflows)[0]

    key = advisory_key(cid)

    async def kill_lock_backend(page: int) -> None:
        # While run A lists Zuora: its lock connection dies, and run B syncs a newer state.
        async with store.engine.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())"
                    " AND classid = :hi AND objid = :lo"
                ),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            )
            await conn.commit()
        assert killed == 1
        tenant.update_workflow(target, name="newer, written by B")
        run_b = await store.sync_engine().sync_customer(SyncRequest(customer_id=cid, force=True))
        assert run_b.status is RunStatus.SUCCEEDED
        tenant.update_workflow(target, name="older, listed by A")

    stale = engine_through(store, _Interposer(before_list=kill_lock_backend))
    run_a = await stale.sync_customer(SyncRequest(customer_id=cid, force=True))
    assert run_a.status is RunStatus.FAILED and run_a.error_kind is FailureKind.TRANSIENT
    assert run_a.error_message and "lost the lock" in run_a.error_message
    assert (await stored(store, cid))[target].name == "newer, written by B"
    # A's failure is on its own run; the customer keeps the status B's success wrote.
    async with store.sessions() as session:
        customer = await session.get(Customer, cid)
        run = await session.get(SyncRun, run_a.run_id)
    assert customer is not None and run is not None
    assert customer.last_sync_status == RunStatus.SUCCEEDED and customer.last_sync_error is None
    assert run.status == RunStatus.FAILED and "lost the lock" in (run.error_message or "")


# -- M1: small customers can delete their few workflows ----------------------------------------


async def test_a_customer_replacing_its_only_workflow_is_not_blocked(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=1, seed=26)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    (only,) = tenant.workflows
    tenant.put_workflow({**tenant.workflows[only], "id": only + 1, "name": "its successor"})
    tenant.delete_workflow(only)
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.SUCCEEDED and outcome.stats.deleted == 1
    assert set(await stored(store, cid)) == {only + 1}


# -- M2: coalescing uses one clock -------------------------------------------------------------


async def test_a_worker_clock_running_ahead_does_not_cover_later_requests(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=27)
    cid = await store.add_customer_for(tenant)
    ahead = WorkflowSyncEngine(
        store.engine,
        store.box,
        allowed_base_urls=(store.base_url,),
        settings=SyncSettings(**_FAST),  # type: ignore[arg-type]
        clock=lambda: datetime.now(UTC) + timedelta(seconds=30),
    )
    await ahead.sync_customer(SyncRequest(customer_id=cid))
    tenant.put_workflow({**tenant.workflows[sorted(tenant.workflows)[0]], "id": 77, "name": "new"})
    later = await ahead.sync_customer(SyncRequest(customer_id=cid, requested_at=datetime.now(UTC)))
    assert later.status is RunStatus.SUCCEEDED and later.changes.created == [77]


# -- M6: a customer deleted mid-sync -----------------------------------------------------------


async def test_a_customer_deleted_mid_sync_is_skipped_not_failed(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=10, seed=28)
    cid = await store.add_customer_for(tenant)

    async def delete_customer(page: int) -> None:
        async with store.sessions() as session, session.begin():
            customer = await session.get(Customer, cid)
            if customer is not None:
                await session.delete(customer)

    engine = engine_through(store, _Interposer(before_list=delete_customer))
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.SKIPPED and outcome.run_id is None
    assert outcome.skip_reason == "customer no longer exists"
    assert await stored(store, cid) == {}


async def test_a_failure_with_an_overlong_zuora_request_id_is_still_recorded(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=29)
    tenant.faults.fail_pages = [1]
    cid = await store.add_customer_for(tenant)
    engine = engine_through(store, _Interposer(request_id="r" * 300))
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.FAILED
    async with store.sessions() as session:
        run = await session.get(SyncRun, outcome.run_id)
        assert run is not None and run.status == "failed"  # not left "running"
        assert run.zuora_request_id == "r" * 64


async def test_a_credentials_change_is_never_covered_by_a_sync_that_may_have_read_the_old_ones(
    store: Store, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=30)
    cid = await store.add_customer_for(tenant)
    # The change's event is stamped before the change commits, so a sync that started after the
    # stamp can still have read the old credentials: such a request must run again.
    changed_at = datetime.now(UTC)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    hourly = await engine.sync_customer(SyncRequest(customer_id=cid, requested_at=changed_at))
    assert hourly.status is RunStatus.SKIPPED  # an ordinary old request is covered
    change = SyncRequest(customer_id=cid, reason="credentials_changed", requested_at=changed_at)
    assert (await engine.sync_customer(change)).status is RunStatus.SUCCEEDED
