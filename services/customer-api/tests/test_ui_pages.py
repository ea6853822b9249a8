"""The UI's pages over HTTP (no browser): what each shows, forms and their refusals, Sync now
and replay, fragments for htmx, and that no client secret is ever rendered."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sync_messages import topics
from zuora_sandbox import SandboxServer, Tenant

from .conftest import Db, UiClient

pytestmark = pytest.mark.integration

HTMX = {"HX-Request": "true"}


def _form(sandbox: SandboxServer, tenant: Tenant, **overrides: str) -> dict[str, str]:
    data = {
        "name": "Acme",
        "base_url": sandbox.base_url,
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "entity_id": "",
    }
    data.update(overrides)
    return data


async def test_dashboard_counts_link_to_filtered_lists(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    fresh = await create_customer(name="fresh")
    stale = await create_customer(name="stale")
    await create_customer(name="never")
    now = datetime.now(UTC)
    await db.set_customer(fresh["id"], last_successful_sync_at=now - timedelta(minutes=5))
    await db.set_customer(
        stale["id"],
        last_successful_sync_at=now - timedelta(hours=5),
        last_sync_status="deletes_blocked",
    )
    await db.add(
        db.workflow(fresh["id"], 1),
        db.workflow(fresh["id"], 2, status="Inactive"),
        db.sync_run(fresh["id"], "succeeded", minutes_ago=5),
        db.sync_run(stale["id"], "failed", minutes_ago=10, error_kind="permanent"),
        db.sync_run(stale["id"], "running", minutes_ago=1),
        db.sync_run(stale["id"], "failed", minutes_ago=60 * 30),  # older than 24 h
    )
    html = (await ui.get("/ui/")).text
    assert re.search(r'href="/ui/customers">3</a>', html)
    assert re.search(r'href="/ui/workflows\?state=active">1 active', html)
    assert re.search(r'href="/ui/workflows\?state=inactive">1 inactive', html)
    for key, count in (("on_time", 1), ("late", 0), ("stale", 1), ("never", 1)):
        assert re.search(rf'href="/ui/customers\?freshness={key}">.*?</span> {count}</a>', html)
    assert re.search(r'href="/ui/runs\?status=failed">.*?</span> 1</a>', html)
    assert re.search(r'href="/ui/runs\?status=running">1</a>', html)
    assert re.search(r'href="/ui/failed\?status=deletes_blocked">1</a>', html)


async def test_customer_list_filters_by_freshness_and_name(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    fresh = await create_customer(name="fresh-one")
    await create_customer(name="never-one")
    await db.set_customer(fresh["id"], last_successful_sync_at=datetime.now(UTC))
    page = (await ui.get("/ui/customers?freshness=never")).text
    assert "never-one" in page
    assert "fresh-one" not in page
    page = (await ui.get("/ui/customers?q=FRESH")).text
    assert "fresh-one" in page
    assert "never-one" not in page
    assert 'value="FRESH"' in page  # the state is in the URL and in the form


async def test_a_fragment_for_htmx_and_a_full_page_otherwise(ui: UiClient) -> None:
    full = await ui.get("/ui/customers")
    fragment = await ui.get("/ui/customers", headers=HTMX)
    assert full.text.lstrip().startswith("<!doctype html>")
    assert "<html" not in fragment.text
    assert 'id="customers-results"' in fragment.text


async def test_add_customer_checks_credentials_and_opens_its_page(
    ui: UiClient, db: Db, zuora_sandbox: SandboxServer, tenant: Tenant
) -> None:
    response = await ui.post("/ui/customers/new", _form(zuora_sandbox, tenant))
    assert response.status_code == 303, response.text
    customers = await db.customers()
    assert [c.name for c in customers] == ["Acme"]
    assert customers[0].credential_status == "valid"
    assert response.headers["location"] == f"/ui/customers/{customers[0].id}?notice=created"
    outbox = await db.outbox(topics.CUSTOMER_EVENTS)
    assert [m.payload["type"] for m in outbox] == ["CustomerCreated"]
    page = (await ui.get(response.headers["location"])).text
    assert "Customer added" in page
    assert tenant.client_secret not in page


async def test_bad_secret_is_refused_inline_nothing_saved_values_kept(
    ui: UiClient, db: Db, zuora_sandbox: SandboxServer, tenant: Tenant
) -> None:
    typed_secret = "wrong-secret-value-123"
    response = await ui.post(
        "/ui/customers/new",
        _form(zuora_sandbox, tenant, client_secret=typed_secret, entity_id="ent-1"),
    )
    assert response.status_code == 422
    html = response.text
    assert "Zuora refused these client credentials" in html
    assert 'id="client_secret-error"' in html
    assert 'value="Acme"' in html
    assert f'value="{tenant.client_id}"' in html
    assert 'value="ent-1"' in html
    assert f'<option value="{zuora_sandbox.base_url}" selected>' in html
    assert typed_secret not in html
    assert await db.customers() == []
    assert await db.outbox() == []


async def test_form_validation_errors_are_placed_on_their_fields(
    ui: UiClient, db: Db, zuora_sandbox: SandboxServer, tenant: Tenant
) -> None:
    response = await ui.post(
        "/ui/customers/new",
        _form(zuora_sandbox, tenant, name="", base_url="https://evil.example"),
    )
    assert response.status_code == 422
    assert 'id="name-error"' in response.text
    assert await db.customers() == []
    not_allowed = await ui.post(
        "/ui/customers/new", _form(zuora_sandbox, tenant, base_url="https://evil.example")
    )
    assert not_allowed.status_code == 422
    assert 'id="base_url-error"' in not_allowed.text
    assert "https://evil.example" not in not_allowed.text


async def test_edit_keeps_the_secret_when_left_empty_and_shows_it_as_set(
    ui: UiClient, db: Db, create_customer: Callable[..., Any], tenant: Tenant
) -> None:
    customer = await create_customer(name="Before")
    form_page = (await ui.get(f"/ui/customers/{customer['id']}/edit")).text
    assert "<strong>set</strong>" in form_page
    assert tenant.client_secret not in form_page
    response = await ui.post(
        f"/ui/customers/{customer['id']}/edit",
        {
            "name": "After",
            "base_url": customer["base_url"],
            "client_id": customer["client_id"],
            "client_secret": "",
            "entity_id": "",
            "active": "on",
        },
    )
    assert response.status_code == 303, response.text
    stored = await db.customer(customer["id"])
    assert stored is not None
    assert stored.name == "After"
    detail = (await ui.get(response.headers["location"])).text
    assert "Changes saved" in detail
    assert "<dt>Client secret</dt><dd>set</dd>" in detail


async def test_delete_needs_the_confirmation_form_and_removes_the_customer(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Doomed")
    page = (await ui.get(f"/ui/customers/{customer['id']}")).text
    assert "Delete Doomed</button>" in page
    response = await ui.post(f"/ui/customers/{customer['id']}/delete")
    assert response.status_code == 303
    assert await db.customers() == []


async def test_sync_now_returns_a_polling_card_that_ends_with_the_result(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Acme")
    response = await ui.post(f"/ui/customers/{customer['id']}/sync", headers=HTMX)
    assert response.status_code == 202
    command = [m for m in await db.outbox(topics.SYNC_PRIORITY_COMMANDS)]
    assert len(command) == 1
    command_id = command[0].payload["id"]
    assert 'hx-trigger="every 2s"' in response.text
    assert "queued" in response.text
    card_url = f"/ui/commands/{command_id}?customer={customer['id']}"

    run = db.sync_run(customer["id"], "running", command_id=command_id, pages=2)
    await db.add(run)
    running = (await ui.get(card_url, headers=HTMX)).text
    assert "hx-trigger" in running
    assert re.search(r"running for \d+ s \(attempt 1, 2 pages read so far\)", running)

    await db.add(
        db.sync_run(
            customer["id"],
            "succeeded",
            command_id=command_id,
            attempt=2,
            created=3,
            updated=1,
            deleted=0,
            unchanged=5,
            total=9,
            duration_ms=4200,
        )
    )
    done = (await ui.get(card_url, headers=HTMX)).text
    assert "hx-trigger" not in done
    assert "finished in 4.2 s: 3 created, 1 updated, 0 deleted" in done


async def test_card_keeps_polling_through_a_transient_failure_and_stops_on_the_last(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Acme")
    command_id = str(uuid.uuid4())
    await db.add(
        db.sync_run(
            customer["id"],
            "failed",
            minutes_ago=2,
            command_id=command_id,
            attempt=1,
            error_kind="transient",
            error_message="Zuora answered 503",
        )
    )
    retrying = (await ui.get(f"/ui/commands/{command_id}", headers=HTMX)).text
    assert "hx-trigger" in retrying
    assert "attempt 1 of 3 failed" in retrying
    await db.add(
        db.sync_run(
            customer["id"],
            "failed",
            minutes_ago=1,
            command_id=command_id,
            attempt=3,
            error_kind="transient",
            error_message="Zuora answered 503",
            zuora_request_id="req-42",
        )
    )
    final = (await ui.get(f"/ui/commands/{command_id}", headers=HTMX)).text
    assert "hx-trigger" not in final
    assert "failed after" in final
    assert "req-42" in final


async def test_blocked_deletions_show_their_numbers(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Acme")
    command_id = str(uuid.uuid4())
    await db.add(
        db.sync_run(
            customer["id"],
            "deletes_blocked",
            command_id=command_id,
            blocked_deletes=7,
            total=3,
            duration_ms=1000,
        )
    )
    card = (await ui.get(f"/ui/commands/{command_id}", headers=HTMX)).text
    assert "would delete 7 of the stored workflows" in card
    failed = (await ui.get("/ui/failed?status=deletes_blocked")).text
    assert "would delete 7 workflows" in failed


async def test_runs_filter_by_status_customer_and_reason(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    one = await create_customer(name="one")
    two = await create_customer(name="two")
    await db.add(
        db.sync_run(one["id"], "succeeded", reason="hourly", error_message=None),
        db.sync_run(
            one["id"],
            "failed",
            reason="manual",
            error_kind="permanent",
            error_message="bad credentials one",
        ),
        db.sync_run(
            two["id"],
            "failed",
            reason="hourly",
            error_kind="permanent",
            error_message="bad credentials two",
        ),
    )
    by_status = (await ui.get("/ui/runs?status=failed")).text
    assert "bad credentials one" in by_status
    assert "bad credentials two" in by_status
    by_customer = (await ui.get(f"/ui/runs?status=failed&customer={two['id']}")).text
    assert "bad credentials two" in by_customer
    assert "bad credentials one" not in by_customer
    by_reason = (await ui.get("/ui/runs?reason=manual")).text
    assert "bad credentials one" in by_reason
    assert "bad credentials two" not in by_reason
    assert '<option value="manual" selected>' in by_reason
    ignored = await ui.get("/ui/runs?status=bogus&customer=not-a-uuid&page=x")
    assert ignored.status_code == 200


async def test_run_page_shows_timeline_counts_error_and_request_id(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Acme")
    command_id = str(uuid.uuid4())
    first = db.sync_run(
        customer["id"],
        "failed",
        minutes_ago=3,
        command_id=command_id,
        error_kind="transient",
        error_message="timeout",
    )
    last = db.sync_run(
        customer["id"],
        "failed",
        minutes_ago=1,
        command_id=command_id,
        attempt=2,
        error_kind="permanent",
        error_message="401 from Zuora",
        zuora_request_id="zr-123",
        created=0,
        total=0,
        duration_ms=300,
    )
    await db.add(first, last)
    page = (await ui.get(f"/ui/runs/{last.id}")).text
    assert "zr-123" in page
    assert "401 from Zuora" in page
    assert "attempt 1" in page and "attempt 2" in page
    assert "Replay this run" in page


async def test_replay_one_and_replay_all_shown_say_what_they_did(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Acme")
    runs = [
        db.sync_run(
            customer["id"],
            "failed",
            minutes_ago=i,
            error_kind="permanent",
            error_message=f"boom {i}",
        )
        for i in range(3)
    ]
    ok = db.sync_run(customer["id"], "succeeded")
    await db.add(*runs, ok)
    one = await ui.post(f"/ui/runs/{runs[0].id}/replay", headers=HTMX)
    assert one.status_code == 202
    assert "hx-trigger" in one.text
    failed_page = (await ui.get("/ui/failed")).text
    assert "Replay all 3 shown" in failed_page
    shown = [str(r.id) for r in runs] + [str(ok.id)]  # a tampered form: one not replayable
    response = await ui.http.post(
        "/ui/failed/replay",
        data={"csrf_token": ui.csrf, "run_id": shown, "back": "?status=failed"},
        headers={"Origin": "http://testserver"},
    )
    assert response.status_code == 200
    assert "3 runs re-queued, 1 not replayable" in response.text
    commands = await db.outbox(topics.SYNC_PRIORITY_COMMANDS)
    assert len(commands) == 4
    assert {c.payload["reason"] for c in commands} == {"replay"}


async def test_no_page_renders_a_client_secret(
    ui: UiClient, db: Db, create_customer: Callable[..., Any], tenant: Tenant
) -> None:
    customer = await create_customer(name="Acme")
    await db.add(
        db.sync_run(customer["id"], "failed", error_kind="permanent", error_message="nope")
    )
    runs = await ui.get("/ui/runs")
    run_id = re.search(r'href="/ui/runs/([0-9a-f-]{36})"', runs.text)
    assert run_id
    pages = [
        "/ui/",
        "/ui/customers",
        "/ui/customers/new",
        f"/ui/customers/{customer['id']}",
        f"/ui/customers/{customer['id']}/edit",
        "/ui/runs",
        "/ui/failed",
        f"/ui/runs/{run_id.group(1)}",
    ]
    for path in pages:
        response = await ui.get(path)
        assert response.status_code == 200, path
        assert tenant.client_secret not in response.text, path
        assert "client_secret_encrypted" not in response.text, path


async def test_unknown_ids_are_html_404s(ui: UiClient) -> None:
    for path in (f"/ui/customers/{uuid.uuid4()}", f"/ui/runs/{uuid.uuid4()}", "/ui/runs/nope"):
        response = await ui.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")


async def test_failed_list_leaves_out_attempts_still_being_retried(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Acme")
    command_id = str(uuid.uuid4())
    await db.add(
        db.sync_run(
            customer["id"],
            "failed",
            minutes_ago=2,
            command_id=command_id,
            attempt=1,
            error_kind="transient",
            error_message="retried one",
        ),
        db.sync_run(
            customer["id"],
            "failed",
            minutes_ago=1,
            command_id=command_id,
            attempt=3,
            error_kind="transient",
            error_message="last attempt",
        ),
    )
    failed = (await ui.get("/ui/failed")).text
    assert "last attempt" in failed
    assert "retried one" not in failed
    assert "retried one" in (await ui.get("/ui/runs?status=failed")).text
    assert re.search(r'href="/ui/failed">1</a>', (await ui.get("/ui/")).text)


async def test_history_restore_gets_the_whole_page(ui: UiClient) -> None:
    restore = await ui.get(
        "/ui/runs?status=failed", headers={**HTMX, "HX-History-Restore-Request": "true"}
    )
    assert restore.text.lstrip().startswith("<!doctype html>")


async def test_apply_deletions_replays_allowing_exactly_the_reviewed_number(
    ui: UiClient, db: Db, create_customer: Callable[..., Any]
) -> None:
    customer = await create_customer(name="Acme")
    blocked = db.sync_run(customer["id"], "deletes_blocked", blocked_deletes=7, total=3)
    failed = db.sync_run(customer["id"], "failed", error_kind="permanent", error_message="x")
    await db.add(blocked, failed)
    page = (await ui.get("/ui/failed")).text
    assert page.count("Apply 7 deletions</button>") == 1  # only on the blocked run
    response = await ui.post(f"/ui/runs/{blocked.id}/apply-deletions", headers=HTMX)
    assert response.status_code == 202
    assert "hx-trigger" in response.text
    [command] = await db.outbox(topics.SYNC_PRIORITY_COMMANDS)
    assert command.payload["allow_deletes"] == 7
    assert command.payload["replay_of"] == str(blocked.id)
    refused = await ui.post(f"/ui/runs/{failed.id}/apply-deletions")
    assert refused.status_code == 409
    assert len(await db.outbox(topics.SYNC_PRIORITY_COMMANDS)) == 1
