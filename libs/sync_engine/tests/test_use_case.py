"""The sync use case over fakes of its ports (sync_engine.fakes): no database, no network.

The same rules are tested end to end against PostgreSQL and the sandbox over HTTP in
test_engine_integration.py / test_engine_safety.py / test_definitions_sync.py; here each rule
of the use case (coalesce, lock, listing, guard, confirmation, fetch steps, fence, record) is
driven on its own, quickly.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sync_engine import DefinitionSettings, FailureKind, RunStatus, SyncRequest, SyncSettings
from sync_engine.failures import IncompleteListingError
from sync_engine.fakes import Fakes
from workflow_store.errors import SecretDecryptionError
from zuora_client import AuthenticationError, RejectedItem, ServerError, Workflow


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def tenant_of(fakes: Fakes, count: int) -> uuid.UUID:
    for wid in range(1, count + 1):
        fakes.zuora.put(wid)
    return fakes.add_customer()


def now_request(
    fakes: Fakes,
    customer_id: uuid.UUID,
    *,
    command_id: str | None = None,
    allow_deletes: int | None = None,
) -> SyncRequest:
    """A request made just now (by the fakes' clock)."""
    return SyncRequest(
        customer_id=customer_id,
        requested_at=fakes.clock(),
        command_id=command_id,
        allow_deletes=allow_deletes,
    )


async def first_sync(fakes: Fakes, customer_id: uuid.UUID) -> None:
    outcome = await fakes.use_case()(now_request(fakes, customer_id))
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error_message
    fakes.clock.advance(60)


# -- success -------------------------------------------------------------------------------------


async def test_a_first_sync_stores_every_workflow_and_definition_and_records_the_run(
    fakes: Fakes,
) -> None:
    cid = tenant_of(fakes, 3)
    started = fakes.clock()
    outcome = await fakes.use_case()(now_request(fakes, cid, command_id="c-1"))

    assert outcome.status is RunStatus.SUCCEEDED and outcome.error_message is None
    expected = {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "total": 3, "errors": 0}
    assert outcome.stats.as_dict() == expected
    assert outcome.changes.created == [1, 2, 3]
    assert (outcome.stats.definitions_fetched, outcome.stats.definitions_changed) == (3, 3)
    assert set(fakes.store.stored(cid)) == {1, 2, 3}
    assert set(fakes.store.definition_hashes(cid)) == {1, 2, 3}
    [run] = fakes.store.runs(cid)
    assert (run.id, run.status, run.command_id) == (outcome.run_id, "succeeded", "c-1")
    assert run.stats.created == 3 and run.stats.definitions_changed == 3
    customer = fakes.store.customer(cid)
    assert customer.last_successful_sync_at == started
    assert (customer.last_sync_status, customer.credential_status) == ("succeeded", "valid")


async def test_a_resync_detects_create_update_delete_and_asks_for_changed_exports_only(
    fakes: Fakes,
) -> None:
    cid = tenant_of(fakes, 4)
    await first_sync(fakes, cid)
    fakes.zuora.put(2, "renamed", updatedAt="2026-12-02T00:00:00Z", status="Inactive")
    del fakes.zuora.items[3]
    fakes.zuora.put(5)
    fakes.zuora.calls.clear()

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.SUCCEEDED
    assert (outcome.changes.created, outcome.changes.updated, outcome.changes.deleted) == (
        [5],
        [2],
        [3],
    )
    assert outcome.stats.unchanged == 2 and outcome.stats.total == 4
    assert fakes.store.stored(cid)[2].name == "renamed" and 3 not in fakes.store.stored(cid)
    # The absence was confirmed by Zuora; exports only for the new and the changed workflow.
    assert ("get", 3) in fakes.zuora.calls
    assert sorted(w or 0 for kind, w in fakes.zuora.calls if kind == "export") == [2, 5]
    assert 3 not in fakes.store.definition_hashes(cid)  # its definition went with it
    customer = fakes.store.customer(cid)  # recounted in the write
    assert (customer.workflow_count, customer.active_workflow_count) == (4, 3)


async def test_a_resync_parses_only_new_and_changed_items_and_writes_only_them(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = tenant_of(fakes, 5)
    await first_sync(fakes, cid)
    assert fakes.zuora.parsed == 5  # a first sync parses every item
    before = fakes.store.stored(cid)
    fakes.zuora.put(2, "renamed")
    fakes.zuora.put(6)
    fakes.zuora.parsed = 0

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.SUCCEEDED
    assert fakes.zuora.parsed == 2  # the changed one and the new one; 4 unchanged, unparsed
    assert (outcome.changes.created, outcome.changes.updated) == ([6], [2])
    assert outcome.stats.unchanged == 4 and outcome.stats.total == 6
    after = fakes.store.stored(cid)
    assert after[2].name == "renamed" and 6 in after
    assert all(after[wid] == before[wid] for wid in (1, 3, 4, 5))  # not rewritten
    fakes.zuora.parsed = 0
    fakes.clock.advance(60)
    parsed: list[int] = []
    from_api = Workflow.from_api

    def counting(item: Any, *, where: str = "workflow") -> Workflow:
        parsed.append(item["id"])
        return from_api(item, where=where)

    monkeypatch.setattr(Workflow, "from_api", counting)
    again = await fakes.use_case()(now_request(fakes, cid))
    assert again.stats.unchanged == 6 and not again.changes.updated
    # Nothing parsed at all: not by the listing, nor by the definitions step (fingerprints only).
    assert fakes.zuora.parsed == 0 and parsed == []
    assert again.stats.definitions_fetched == 0


# -- coalesce ------------------------------------------------------------------------------------


async def test_a_request_older_than_the_last_success_is_skipped_without_zuora_or_lock(
    fakes: Fakes,
) -> None:
    cid = tenant_of(fakes, 2)
    old = now_request(fakes, cid)
    fakes.clock.advance(1)
    await first_sync(fakes, cid)
    fakes.zuora.connected.clear()
    fakes.lock.busy.add(cid)  # would be busy: a coalesced request never asks for the lock

    skipped = await fakes.use_case()(old)

    assert skipped.status is RunStatus.SKIPPED and not skipped.busy
    assert skipped.skip_reason and skipped.skip_reason.startswith("covered by a successful sync")
    assert fakes.zuora.connected == []
    assert fakes.store.runs(cid)[-1].status == "skipped"

    fakes.lock.busy.clear()
    forced = await fakes.use_case()(
        SyncRequest(customer_id=cid, requested_at=old.requested_at, force=True)
    )
    assert forced.status is RunStatus.SUCCEEDED
    changed = await fakes.use_case()(
        SyncRequest(customer_id=cid, requested_at=old.requested_at, reason="credentials_changed")
    )
    assert changed.status is RunStatus.SUCCEEDED  # may have read the old credentials: never covered


async def test_a_sync_waited_for_under_the_lock_covers_the_request(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 2)
    request = now_request(fakes, cid)

    def another_sync_just_finished(customer_id: uuid.UUID) -> None:
        fakes.store.customer(customer_id).last_successful_sync_at = fakes.clock.advance(1)

    fakes.lock.on_hold = another_sync_just_finished
    outcome = await fakes.use_case()(request)

    assert outcome.status is RunStatus.SKIPPED
    [run] = fakes.store.runs(cid)
    assert run.skip_reason and run.skip_reason.startswith("coalesced: covered by")
    assert fakes.zuora.connected == [] and fakes.store.stored(cid) == {}


async def test_an_inactive_or_unknown_customer_is_not_synced(fakes: Fakes) -> None:
    cid = fakes.add_customer(active=False)
    inactive = await fakes.use_case()(now_request(fakes, cid))
    assert inactive.status is RunStatus.SKIPPED and inactive.skip_reason == "customer is inactive"

    unknown = await fakes.use_case()(now_request(fakes, uuid.uuid4()))
    assert unknown.status is RunStatus.SKIPPED and unknown.run_id is None
    assert fakes.zuora.connected == []


# -- lock busy -----------------------------------------------------------------------------------


async def test_a_busy_lock_is_not_an_attempt_no_run_and_the_customer_untouched(
    fakes: Fakes,
) -> None:
    cid = tenant_of(fakes, 2)
    fakes.lock.busy.add(cid)

    busy = await fakes.use_case()(now_request(fakes, cid, command_id="c-2"))

    assert busy.busy and busy.status is RunStatus.FAILED and busy.retryable
    assert busy.run_id is None and fakes.store.runs(cid) == []
    assert fakes.store.customer(cid).last_sync_status is None
    assert fakes.zuora.connected == []


async def test_a_busy_lock_held_by_the_same_command_covers_it(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 2)
    async with fakes.store.transaction() as tx:  # the run of the worker holding the lock
        await tx.runs.start_run(SyncRequest(customer_id=cid, command_id="c-3"), fakes.clock())
    fakes.lock.busy.add(cid)
    fakes.clock.advance(30)

    # The same command delivered again, while its sync runs: covered by it.
    again = await fakes.use_case()(
        SyncRequest(customer_id=cid, command_id="c-3", requested_at=fakes.clock())
    )

    assert again.status is RunStatus.SKIPPED and not again.busy
    assert again.skip_reason and "running since" in again.skip_reason
    statuses = [run.status for run in fakes.store.runs(cid)]
    assert statuses == ["running", "skipped"]  # the live run is not closed as abandoned


# -- listing failure -----------------------------------------------------------------------------


async def test_an_incomplete_listing_writes_nothing_and_fails_transient(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 3)
    await first_sync(fakes, cid)
    before = fakes.store.stored(cid)
    last_ok = fakes.store.customer(cid).last_successful_sync_at
    del fakes.zuora.items[1]
    fakes.zuora.listing_error = IncompleteListingError("incomplete listing: page 2 failed")

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.FAILED and outcome.error_kind is FailureKind.TRANSIENT
    assert outcome.error_message and "incomplete listing" in outcome.error_message
    assert fakes.store.stored(cid) == before
    run = fakes.store.runs(cid)[-1]
    assert (run.id, run.status, run.error_kind) == (outcome.run_id, "failed", "transient")
    customer = fakes.store.customer(cid)
    assert customer.last_sync_status == "failed" and customer.last_successful_sync_at == last_ok


async def test_wrong_credentials_fail_permanently_and_mark_the_customer(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 1)
    fakes.zuora.listing_error = AuthenticationError("invalid client", status_code=401)

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.FAILED and outcome.error_kind is FailureKind.PERMANENT
    assert fakes.store.customer(cid).credential_status == "invalid"


async def test_a_secret_this_worker_cannot_decrypt_is_recorded_on_the_run(fakes: Fakes) -> None:
    cid = fakes.add_customer(credentials=SecretDecryptionError("no key for this token"))

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.FAILED and outcome.error_kind is FailureKind.TRANSIENT
    assert fakes.store.runs(cid)[-1].status == "failed" and fakes.zuora.connected == []


async def test_the_sync_deadline_cuts_the_zuora_calls_and_nothing_is_stored(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 2)
    never = asyncio.Event()
    fakes.zuora.before_list = never.wait  # Zuora never answers; the deadline ends it

    outcome = await fakes.use_case(SyncSettings(deadline_seconds=0.05))(now_request(fakes, cid))

    assert outcome.status is RunStatus.FAILED and outcome.error_kind is FailureKind.TRANSIENT
    assert outcome.error_message and "deadline_exceeded" in outcome.error_message
    assert fakes.store.stored(cid) == {}


# -- deletion guard ------------------------------------------------------------------------------


async def test_the_guard_blocks_a_mass_deletion_until_a_fresh_bound_covers_it(
    fakes: Fakes,
) -> None:
    cid = tenant_of(fakes, 10)
    await first_sync(fakes, cid)
    for wid in range(1, 8):
        del fakes.zuora.items[wid]
    fakes.zuora.calls.clear()

    blocked = await fakes.use_case()(now_request(fakes, cid))

    assert blocked.status is RunStatus.DELETES_BLOCKED and blocked.blocked_deletes == 7
    assert blocked.error_message and "replay this run with allow_deletes=7" in blocked.error_message
    assert len(fakes.store.stored(cid)) == 10
    assert not [call for call in fakes.zuora.calls if call[0] == "get"]  # nothing to confirm
    assert fakes.store.customer(cid).last_sync_status == "deletes_blocked"

    too_small = await fakes.use_case()(now_request(fakes, cid, allow_deletes=6))
    assert too_small.status is RunStatus.DELETES_BLOCKED
    assert too_small.error_message and "more than allow_deletes=6" in too_small.error_message

    # A replay of an old command (forced: a success since then must not cover it).
    an_hour_ago = fakes.clock() - timedelta(hours=1)
    stale = SyncRequest(customer_id=cid, allow_deletes=7, requested_at=an_hour_ago, force=True)
    ignored = await fakes.use_case()(stale)
    assert ignored.status is RunStatus.DELETES_BLOCKED and len(fakes.store.stored(cid)) == 10
    assert ignored.error_message and "allow_deletes=7 ignored" in ignored.error_message

    applied = await fakes.use_case()(now_request(fakes, cid, allow_deletes=7))
    assert applied.status is RunStatus.SUCCEEDED and applied.stats.deleted == 7
    assert set(fakes.store.stored(cid)) == {8, 9, 10}


async def test_an_absence_zuora_does_not_confirm_is_kept(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 10)
    await first_sync(fakes, cid)
    fakes.zuora.hidden.add(1)  # skipped by offset paging, but still in Zuora
    del fakes.zuora.items[2]
    fakes.zuora.get_errors[2] = ServerError("503 from Zuora", status_code=503)
    del fakes.zuora.items[3]

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.SUCCEEDED and outcome.changes.deleted == [3]
    assert outcome.stats.errors == 1  # the GET that failed
    assert outcome.error_message and "kept 1 workflow(s)" in outcome.error_message
    assert {1, 2} <= set(fakes.store.stored(cid)) and 3 not in fakes.store.stored(cid)


async def test_an_item_without_a_readable_id_holds_every_deletion(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 5)
    await first_sync(fakes, cid)
    del fakes.zuora.items[1]
    fakes.zuora.rejected = [RejectedItem(workflow_id=None, reason="item 3: field 'id' missing")]

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.SUCCEEDED and outcome.stats.errors == 1
    assert 1 in fakes.store.stored(cid)
    assert outcome.error_message and "no workflow deleted" in outcome.error_message


# -- fetch steps ---------------------------------------------------------------------------------


async def test_a_failing_export_keeps_the_stored_definition_and_the_listing_is_written(
    fakes: Fakes,
) -> None:
    cid = tenant_of(fakes, 3)
    await first_sync(fakes, cid)
    kept = fakes.store.definition_hashes(cid)[1]
    fakes.zuora.put(1, "renamed", updatedAt="2026-12-02T00:00:00Z")
    fakes.zuora.export_errors[1] = ServerError("500 on export", status_code=500)

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.SUCCEEDED and outcome.changes.updated == [1]
    assert (outcome.stats.definitions_fetched, outcome.stats.definitions_failed) == (0, 1)
    assert fakes.store.stored(cid)[1].name == "renamed"
    assert fakes.store.definition_hashes(cid)[1] == kept
    assert fakes.store.runs(cid)[-1].stats.definitions_failed == 1

    del fakes.zuora.export_errors[1]
    retried = await fakes.use_case()(now_request(fakes, cid))
    assert retried.stats.definitions_changed == 1  # asked again: the fingerprint still differed
    assert fakes.store.definition_hashes(cid)[1] != kept
    assert [change.zuora_id for change in retried.definition_changes] == [1]


async def test_exports_left_when_the_budget_runs_out_are_counted_failed(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 4)
    never = asyncio.Event()

    async def stall(workflow_id: int) -> None:
        await never.wait()

    fakes.zuora.export_delay = stall
    # A deadline this short leaves the step no budget (0.9 x what is left, minus 1 s).
    outcome = await fakes.use_case(SyncSettings(deadline_seconds=1.0))(now_request(fakes, cid))

    assert outcome.status is RunStatus.SUCCEEDED and outcome.stats.created == 4
    assert (outcome.stats.definitions_fetched, outcome.stats.definitions_failed) == (0, 4)
    assert fakes.store.definition_hashes(cid) == {}


async def test_definitions_can_be_switched_off(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 2)
    outcome = await fakes.use_case(definitions=DefinitionSettings(enabled=False))(
        now_request(fakes, cid)
    )
    assert outcome.status is RunStatus.SUCCEEDED and outcome.stats.created == 2
    assert not [call for call in fakes.zuora.calls if call[0] == "export"]


# -- the write -----------------------------------------------------------------------------------


async def test_a_run_that_lost_its_lock_writes_nothing(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 3)
    await first_sync(fakes, cid)
    before = fakes.store.stored(cid), fakes.store.definition_hashes(cid)
    fakes.zuora.put(1, "listed by a run whose lock is gone", updatedAt="2026-12-02T00:00:00Z")

    async def connection_dies() -> None:
        fakes.lock.lose(cid)

    fakes.zuora.before_list = connection_dies
    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.FAILED and outcome.error_kind is FailureKind.TRANSIENT
    assert outcome.error_message and "lost the lock" in outcome.error_message
    assert (fakes.store.stored(cid), fakes.store.definition_hashes(cid)) == before
    assert fakes.store.runs(cid)[-1].status == "failed"


async def test_a_run_that_lost_its_lock_leaves_the_new_holders_customer_status_alone(
    fakes: Fakes,
) -> None:
    # The lock's connection dies mid-listing and another worker takes the lock and syncs the
    # customer to success; the zombie's failure then lands on its own run only, never over
    # the customer status the newer run wrote.
    cid = tenant_of(fakes, 3)
    await first_sync(fakes, cid)

    async def connection_dies_and_another_worker_syncs() -> None:
        fakes.lock.lose(cid)
        fakes.zuora.before_list = None
        fakes.clock.advance(1)
        newer = await fakes.use_case()(now_request(fakes, cid))
        assert newer.status is RunStatus.SUCCEEDED, newer.error_message
        fakes.clock.advance(1)

    fakes.zuora.before_list = connection_dies_and_another_worker_syncs
    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.FAILED
    assert outcome.error_message and "lost the lock" in outcome.error_message
    customer = fakes.store.customer(cid)
    assert customer.last_sync_status == RunStatus.SUCCEEDED
    assert customer.last_sync_error is None
    zombie = fakes.store.runs(cid)[-2]
    assert zombie.id == outcome.run_id and zombie.status == RunStatus.FAILED
    assert zombie.error_message and "lost the lock" in zombie.error_message


async def test_a_write_that_fails_midway_leaves_nothing_behind(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 3)
    fakes.store.fail_upsert = RuntimeError("the database went away")

    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.FAILED and outcome.error_kind is FailureKind.PERMANENT
    assert fakes.store.stored(cid) == {} and fakes.store.definition_hashes(cid) == {}
    assert fakes.store.runs(cid)[-1].status == "failed"


async def test_a_customer_deleted_during_the_listing_is_skipped_not_failed(fakes: Fakes) -> None:
    cid = tenant_of(fakes, 2)

    async def customer_deleted() -> None:
        del fakes.store.state.customers[cid]

    fakes.zuora.before_list = customer_deleted
    outcome = await fakes.use_case()(now_request(fakes, cid))

    assert outcome.status is RunStatus.SKIPPED
    assert outcome.skip_reason == "customer no longer exists"
    assert fakes.store.stored(cid) == {}
