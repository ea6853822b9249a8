"""The workflows pages over HTTP (no browser): list across customers with its query-string state,
the htmx fragment, Sync all with its progress read back from the runs."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sync_messages import topics
from sync_messages.messages import SyncAllCustomers

from .conftest import Db, UiClient


def _names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/ui/workflows/\d+">([^<]+)</a></td>', html)


async def _two_customers(create_customer: Any, db: Db) -> tuple[str, str]:
    acme = (await create_customer(name="Acme"))["id"]
    zeta = (await create_customer(name="Zeta"))["id"]
    await db.add(
        db.workflow(acme, 1, name="Invoice run", status="Active", scheduled_trigger=True),
        db.workflow(acme, 2, name="Payment retry", status="Inactive"),
        db.workflow(zeta, 3, name="Invoice <b>bold</b>", status="Active", callout_trigger=True),
        db.workflow(zeta, 4, name="Usage upload", status="Active"),
    )
    return acme, zeta


async def test_list_spans_customers_sorted_by_name(
    ui: UiClient, create_customer: Any, db: Db
) -> None:
    await _two_customers(create_customer, db)
    page = await ui.get("/ui/workflows")
    assert page.status_code == 200
    assert _names(page.text) == [
        "Invoice &lt;b&gt;bold&lt;/b&gt;",
        "Invoice run",
        "Payment retry",
        "Usage upload",
    ]
    assert "Acme" in page.text and "Zeta" in page.text
    assert 'aria-sort="ascending"' in page.text and page.text.count("aria-sort=") == 1


async def test_filters_and_sort_are_query_string_state(
    ui: UiClient, create_customer: Any, db: Db
) -> None:
    acme, _ = await _two_customers(create_customer, db)
    assert _names((await ui.get("/ui/workflows?q=invoice")).text) == [
        "Invoice &lt;b&gt;bold&lt;/b&gt;",
        "Invoice run",
    ]
    assert _names((await ui.get("/ui/workflows?q=4")).text) == ["Usage upload"]  # a Zuora id
    assert _names((await ui.get(f"/ui/workflows?customer={acme}")).text) == [
        "Invoice run",
        "Payment retry",
    ]
    assert _names((await ui.get("/ui/workflows?state=inactive")).text) == ["Payment retry"]
    assert _names((await ui.get("/ui/workflows?trigger=callout")).text) == [
        "Invoice &lt;b&gt;bold&lt;/b&gt;"
    ]
    by_customer = await ui.get("/ui/workflows?sort=-customer&state=active")
    assert _names(by_customer.text) == [
        "Invoice &lt;b&gt;bold&lt;/b&gt;",
        "Usage upload",
        "Invoice run",
    ]
    assert 'aria-sort="descending"' in by_customer.text
    # The header links keep the filters and flip the direction of the sorted column.
    assert 'href="?state=active&amp;sort=customer"' in by_customer.text
    assert 'href="?state=active&amp;sort=name"' not in by_customer.text  # name is the default
    # The filter form shows the state it was opened with.
    assert '<option value="active" selected>' in by_customer.text


async def test_bad_values_fall_back_to_defaults(ui: UiClient, create_customer: Any, db: Db) -> None:
    await _two_customers(create_customer, db)
    page = await ui.get("/ui/workflows?sort=drop+table&state=x&customer=nope&page=-1&page_size=7")
    assert page.status_code == 200
    assert len(_names(page.text)) == 4


async def test_pages_and_page_size(ui: UiClient, create_customer: Any, db: Db) -> None:
    customer = (await create_customer(name="Many"))["id"]
    await db.add(*(db.workflow(customer, i) for i in range(1, 31)))
    first = await ui.get("/ui/workflows?page_size=25")
    assert len(_names(first.text)) == 25
    assert "Page 1 of 2 (30 in all)" in first.text
    second = await ui.get("/ui/workflows?page_size=25&page=2")
    assert _names(second.text) == [f"Workflow {i:04d}" for i in range(26, 31)]


async def test_htmx_gets_the_fragment_of_the_same_url(
    ui: UiClient, create_customer: Any, db: Db
) -> None:
    await _two_customers(create_customer, db)
    fragment = await ui.get("/ui/workflows?q=usage", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="workflow-results"' in fragment.text
    assert _names(fragment.text) == ["Usage upload"]


async def test_empty_list_says_why_and_what_next(ui: UiClient) -> None:
    page = await ui.get("/ui/workflows?q=nothing-matches")
    assert "No workflow matches these filters" in page.text


async def test_sync_all_asks_first_then_reports_the_runs(
    ui: UiClient, create_customer: Any, db: Db
) -> None:
    acme, zeta = await _two_customers(create_customer, db)
    await db.set_customer(zeta, active=False)
    listing = await ui.get("/ui/workflows")
    assert "Queue a sync of all 1 active customer now?" in listing.text

    queued = await ui.post("/ui/workflows/sync-all", {})
    assert queued.status_code == 303
    progress_url = queued.headers["location"]
    command_id = progress_url.rsplit("/", 1)[1]
    published = await db.outbox(topics.SYNC_ALL)
    assert [m.payload["id"] for m in published] == [command_id]

    waiting = await ui.get(progress_url)
    assert "0 of 1 active customer synced" in waiting.text
    assert 'hx-trigger="every 3s"' in waiting.text

    # The worker's fan-out command for Acme ends in a run carrying the derived command id.
    fan_out = SyncAllCustomers(id=command_id, reason="manual", slot="")
    await db.add(
        db.sync_run(
            acme, "failed", minutes_ago=1, command_id=fan_out.command_for(uuid.UUID(acme)).id
        ),
        db.sync_run(acme, "succeeded", command_id=fan_out.command_for(uuid.UUID(acme)).id),
        db.sync_run(zeta, "failed", command_id=str(uuid.uuid4())),  # another command's run
    )
    finished = await ui.get(progress_url)
    assert "1 of 1 active customer synced: 1 succeeded." in finished.text
    assert 'hx-trigger="every 3s"' not in finished.text


async def test_sync_all_without_csrf_token_is_refused(ui: UiClient, db: Db) -> None:
    response = await ui.http.post(
        "/ui/workflows/sync-all", data={}, headers={"Origin": "http://testserver"}
    )
    assert response.status_code == 403
    assert await db.outbox(topics.SYNC_ALL) == []
