"""The workflows pages over HTTP (no browser): list across customers with its query-string state,
the htmx fragment, Sync all with its progress read back from the runs."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from customer_api.ui.graph import GraphRenderer
from sqlalchemy import select
from sync_messages import topics
from sync_messages.messages import SyncAllCustomers
from workflow_store.definitions import FetchedDefinition, canonical_document, store_definitions
from workflow_store.models import StoredWorkflow

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


async def test_list_spans_customers_by_customer_then_name(
    ui: UiClient, create_customer: Any, db: Db
) -> None:
    await _two_customers(create_customer, db)
    page = await ui.get("/ui/workflows")
    assert page.status_code == 200
    assert _names(page.text) == [
        "Invoice run",
        "Payment retry",
        "Invoice &lt;b&gt;bold&lt;/b&gt;",
        "Usage upload",
    ]
    by_name = await ui.get("/ui/workflows?sort=name")
    assert _names(by_name.text) == [
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
        "Invoice run",  # Acme's
        "Invoice &lt;b&gt;bold&lt;/b&gt;",  # Zeta's
    ]
    assert _names((await ui.get("/ui/workflows?q=4")).text) == ["Usage upload"]  # a Zuora id
    assert _names((await ui.get(f"/ui/workflows?customer={acme}")).text) == [
        "Invoice run",
        "Payment retry",
    ]
    assert _names((await ui.get("/ui/workflows?state=inactive")).text) == ["Payment retry"]
    assert _names((await ui.get("/ui/workflows?trigger=callout&sort=name")).text) == [
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
    assert 'href="?state=active"' in by_customer.text  # ascending by customer is the default
    assert 'href="?state=active&amp;sort=name"' in by_customer.text
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
    assert _names(second.text) == [f"Workflow {i:04d}" for i in range(26, 31)]  # one customer


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
    acme_command = fan_out.command_for(uuid.UUID(acme)).id
    # A first attempt the workers will retry has not finished the customer.
    await db.add(db.sync_run(acme, "retry_scheduled", minutes_ago=1, command_id=acme_command))
    retrying = await ui.get(progress_url)
    assert "0 of 1 active customer synced: 1 retry scheduled." in retrying.text
    assert 'hx-trigger="every 3s"' in retrying.text
    await db.add(
        db.sync_run(acme, "succeeded", command_id=acme_command),
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


# -- the workflow page -------------------------------------------------------------------------

HOSTILE = "<script>alert('x')</script>"


def _export(version: str, *, extra_task: bool = False) -> dict[str, Any]:
    tasks = [
        {"id": 11, "name": "Find invoices", "action_type": "Query", "object": "Invoice"},
        {"id": 12, "name": HOSTILE, "action_type": "Callout", "tags": ["ops"]},
        {"id": 13, "name": "Orphan", "action_type": "Email"},
    ]
    if extra_task:
        tasks.append({"id": 14, "name": "Notify", "action_type": "Email"})
    return {
        "workflow": {"id": 900, "name": "Invoice run", "version": version},
        "tasks": tasks,
        "linkages": [
            {"source_workflow_id": 900, "source_task_id": None, "target_task_id": 11,
             "linkage_type": "Start"},
            {"source_task_id": 11, "target_task_id": 12, "linkage_type": "Success"},
            {"source_task_id": 12, "target_task_id": 11, "linkage_type": "Failure"},
        ],
    }  # fmt: skip


async def _stored(sessions: Any, customer_id: str, *documents: dict[str, Any]) -> None:
    for index, document in enumerate(documents):
        canonical, content_hash = canonical_document(document)
        fetched = FetchedDefinition(
            zuora_id=1,
            canonical=canonical,
            content_hash=content_hash,
            listed_version_id=900,
            listed_version=document["workflow"]["version"],
            listed_updated_at=None,
        )
        async with sessions() as session, session.begin():
            now = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=index)
            await store_definitions(session, uuid.UUID(customer_id), [fetched], now=now)


async def _workflow_row_id(sessions: Any, customer_id: str) -> int:
    async with sessions() as session:
        return int(
            (
                await session.execute(
                    select(StoredWorkflow.id).where(
                        StoredWorkflow.customer_id == uuid.UUID(customer_id),
                        StoredWorkflow.zuora_id == 1,
                    )
                )
            ).scalar_one()
        )


async def test_workflow_page_without_a_definition_says_so(
    ui: UiClient, create_customer: Any, db: Db, sessions: Any
) -> None:
    acme, _ = await _two_customers(create_customer, db)
    page = await ui.get(f"/ui/workflows/{await _workflow_row_id(sessions, acme)}")
    assert page.status_code == 200
    assert "Invoice run" in page.text and "No definition has been fetched" in page.text
    download = await ui.get(
        f"/ui/workflows/{await _workflow_row_id(sessions, acme)}/definition.json"
    )
    assert download.status_code == 404


async def test_workflow_page_shows_definition_graph_tasks_and_linkages(
    ui: UiClient, create_customer: Any, db: Db, sessions: Any
) -> None:
    acme, _ = await _two_customers(create_customer, db)
    await _stored(sessions, acme, _export("1.0"))
    row_id = await _workflow_row_id(sessions, acme)
    page = await ui.get(f"/ui/workflows/{row_id}")
    assert page.status_code == 200
    html = page.text
    assert HOSTILE not in html  # escaped everywhere: fields, tasks, JSON, graph
    assert "&lt;script&gt;alert(" in html
    # The graph: Start + 3 task nodes, each linking to its task row.
    assert html.count('class="node node-task"') == 3 and 'id="node-start"' in html
    for task_id in (11, 12, 13):
        assert f'<a href="#task-{task_id}">' in html and f'<tr id="task-{task_id}">' in html
    assert "Failure: dashed line" in html
    # Linkages as text, with names.
    assert "<td>Start</td>" in html and '<a href="#task-11">Find invoices</a>' in html
    # The JSON, pretty and escaped, and its download link.
    assert (
        "&#34;action_type&#34;: &#34;Query&#34;" in html
        or "&quot;action_type&quot;: &quot;Query&quot;" in html
    )
    assert f'href="/ui/workflows/{row_id}/definition.json"' in html

    filtered = await ui.get(f"/ui/workflows/{row_id}?action_type=Email")
    assert "1 of 3 tasks with action type Email" in filtered.text
    assert '<tr id="task-13">' in filtered.text and '<tr id="task-11">' not in filtered.text


async def test_download_is_the_stored_document_byte_for_byte_the_apis(
    ui: UiClient, create_customer: Any, db: Db, sessions: Any, client: Any
) -> None:
    acme, _ = await _two_customers(create_customer, db)
    await _stored(sessions, acme, _export("1.0"))
    row_id = await _workflow_row_id(sessions, acme)
    download = await ui.get(f"/ui/workflows/{row_id}/definition.json")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    content_hash = canonical_document(_export("1.0"))[1]
    assert download.headers["content-disposition"] == (
        f'attachment; filename="invoice-run-1-{content_hash[:12]}.json"'
    )
    assert json.loads(download.content) == _export("1.0")
    from_api = await client.get(f"/customers/{acme}/workflows/1/definition.json")
    assert from_api.status_code == 200
    assert download.content == from_api.content
    assert download.headers["content-disposition"] == from_api.headers["content-disposition"]


async def test_history_and_diff_of_two_versions(
    ui: UiClient, create_customer: Any, db: Db, sessions: Any
) -> None:
    acme, _ = await _two_customers(create_customer, db)
    old, new = _export("1.0"), _export("2.0", extra_task=True)
    await _stored(sessions, acme, old, new)
    row_id = await _workflow_row_id(sessions, acme)
    page = await ui.get(f"/ui/workflows/{row_id}")
    assert "Definition history, newest first (2 stored)" in page.text
    old_hash, new_hash = canonical_document(old)[1], canonical_document(new)[1]
    diff = await ui.get(f"/ui/workflows/{row_id}?from={old_hash[:16]}&to={new_hash[:16]}")
    assert "1 task added, 0 removed" in diff.text
    assert "Notify" in diff.text
    missing = await ui.get(f"/ui/workflows/{row_id}?from=ffff&to={new_hash[:16]}")
    assert missing.status_code == 200 and 'role="alert"' in missing.text


async def test_graph_failure_shows_the_notice_and_the_linkages(
    ui: UiClient, create_customer: Any, db: Db, sessions: Any, app: Any
) -> None:
    acme, _ = await _two_customers(create_customer, db)
    await _stored(sessions, acme, _export("1.0"))
    app.state.ui_graph_renderer = GraphRenderer(dot_binary="/nonexistent/dot")
    page = await ui.get(f"/ui/workflows/{await _workflow_row_id(sessions, acme)}")
    assert page.status_code == 200
    assert "The graph could not be drawn" in page.text and "<svg" not in page.text
    assert '<a href="#task-11">Find invoices</a>' in page.text


async def test_unknown_workflow_is_a_404_page(ui: UiClient) -> None:
    page = await ui.get("/ui/workflows/987654321")
    assert page.status_code == 404
    assert "<html" in page.text


async def test_customer_page_links_reach_the_workflow_page(
    ui: UiClient, create_customer: Any, db: Db, sessions: Any
) -> None:
    acme, _ = await _two_customers(create_customer, db)
    row_id = await _workflow_row_id(sessions, acme)
    customer_page = await ui.get(f"/ui/customers/{acme}")
    assert f'href="/ui/workflows/{acme}/1"' in customer_page.text
    hop = await ui.get(f"/ui/workflows/{acme}/1")
    assert hop.status_code == 303 and hop.headers["location"] == f"/ui/workflows/{row_id}"
    assert (await ui.get(f"/ui/workflows/{acme}/999")).status_code == 404


async def test_customer_filter_options_are_escaped_and_keep_the_choice(
    ui: UiClient, create_customer: Any, db: Db
) -> None:
    odd = (await create_customer(name='Odd <b>"&</b> Co'))["id"]
    other = (await create_customer(name="Plain"))["id"]
    page = (await ui.get(f"/ui/workflows?customer={odd}")).text
    assert f'<option value="{odd}" selected>Odd &lt;b&gt;&quot;&amp;&lt;/b&gt; Co</option>' in page
    assert f'<option value="{other}">Plain</option>' in page
    assert "<b>" not in page


async def test_a_search_counts_up_to_a_limit_and_pages_on(
    ui: UiClient, create_customer: Any, db: Db, monkeypatch: Any
) -> None:
    from customer_api.ui.pages import workflows as pages

    monkeypatch.setattr(pages, "SEARCH_COUNT_LIMIT", 3)
    customer = (await create_customer(name="Many"))["id"]
    await db.add(*(db.workflow(customer, i, name=f"Invoice {i:02d}") for i in range(1, 8)))
    first = (await ui.get("/ui/workflows?q=invoice&page_size=25")).text
    assert "More than 25 workflows match" not in first  # the limit is at least the page's end
    assert "7 workflows" in first and len(_names(first)) == 7
    # Two rows a page (a page size the form does not offer is the default, so patch it too).
    monkeypatch.setattr(pages, "PAGE_SIZES", (2, 25, 50, 100))
    capped = (await ui.get("/ui/workflows?q=invoice&page_size=2")).text
    assert "More than 3 workflows match" in capped
    assert "Page 1 of more than 1" in capped and 'rel="next"' in capped
    assert _names(capped) == ["Invoice 01", "Invoice 02"]
    last = (await ui.get("/ui/workflows?q=invoice&page_size=2&page=4")).text
    assert _names(last) == ["Invoice 07"]
    assert "Page 4 of 4 (7 in all)" in last and 'rel="next"' not in last
    # Without a search the total is exact whatever the limit (the customers' counts).
    assert "Page 1 of 4 (7 in all)" in (await ui.get("/ui/workflows?page_size=2")).text
