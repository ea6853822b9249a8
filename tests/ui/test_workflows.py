"""The workflow pages in a real browser: the graph of a synced definition, the JSON download,
the list's filters and sort kept through a reload, and screenshots of the main pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from .conftest import UiStack, run_async
from .seed import SeededCustomer, sandbox_client, seed_workflows_with_definitions

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _first_workflow(ui_stack: UiStack, customer: SeededCustomer) -> tuple[int, int, int]:
    """(row id, Zuora id, task count) of the customer's workflow with the most tasks."""
    row = ui_stack.query(
        "SELECT w.id, w.zuora_id, d.task_count FROM workflows w"
        " JOIN workflow_definitions d ON d.workflow_id = w.id AND d.is_current"
        " WHERE w.customer_id = %s ORDER BY d.task_count DESC, w.id LIMIT 1",
        customer.id,
    )[0]
    return int(row[0]), int(row[1]), int(row[2])


def test_workflow_graph_has_a_node_per_task_plus_start(page: Page, ui_stack: UiStack) -> None:
    customer = seed_workflows_with_definitions(ui_stack)
    row_id, _, task_count = _first_workflow(ui_stack, customer)
    assert task_count >= 1
    page.goto(f"/ui/workflows?customer={customer.id}")
    page.locator(f'a[href="/ui/workflows/{row_id}"]').click()
    expect(page.get_by_role("heading", name="Graph")).to_be_visible()
    graph = page.locator("svg.task-graph")
    expect(graph).to_be_visible()
    expect(graph.locator("g.node")).to_have_count(task_count + 1)
    expect(graph.locator("g.node-start")).to_have_count(1)
    expect(page.locator('tr[id^="task-"]')).to_have_count(task_count)
    # A node is a link to its task's row.
    first_link = graph.locator("a").first
    href = first_link.get_attribute("href")
    assert href and re.fullmatch(r"#task-\d+", href)
    first_link.click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.locator(f"tr{href}")).to_be_visible()


def test_download_json_is_the_apis_and_the_definition_zuora_exported(
    page: Page, ui_stack: UiStack, tmp_path: Path
) -> None:
    customer = seed_workflows_with_definitions(ui_stack)
    row_id, zuora_id, _ = _first_workflow(ui_stack, customer)
    page.goto(f"/ui/workflows/{row_id}")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download JSON").click()
    download = download_info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    # Byte for byte the JSON API's answer for the same definition, under its file name.
    from_api = httpx.get(
        ui_stack.url(f"/customers/{customer.id}/workflows/{zuora_id}/definition.json"),
        headers={"Authorization": f"Bearer {ui_stack.api_key}"},
        timeout=30,
    )
    assert from_api.status_code == 200, from_api.text
    assert target.read_bytes() == from_api.content
    assert f'filename="{download.suggested_filename}"' in from_api.headers["content-disposition"]
    assert re.fullmatch(rf"[a-z0-9-]+-{zuora_id}-[0-9a-f]{{12}}\.json", download.suggested_filename)
    downloaded = json.loads(target.read_text())

    # The sync exports the active version, or the newest one when the workflow has none active
    # (its first version inactive): ask Zuora for the same one (the seed data is random).
    (active_version_id,) = ui_stack.query(
        "SELECT active_version_id FROM workflows WHERE id = %s", row_id
    )[0]
    wanted = None if active_version_id is not None else "latest"

    async def exported() -> dict[str, object]:
        async with sandbox_client(ui_stack, customer) as client:
            return (await client.get_workflow_export(zuora_id, version=wanted)).raw

    assert downloaded == run_async(exported())
    # The same document the page shows as JSON.
    page.get_by_text("Show the JSON").click()
    shown = page.locator("pre.json").inner_text()
    assert json.loads(shown) == downloaded


def test_filters_and_sort_of_the_list_survive_a_reload(page: Page, ui_stack: UiStack) -> None:
    customer = seed_workflows_with_definitions(ui_stack)
    page.goto("/ui/workflows")
    page.get_by_label("Customer").select_option(label=customer.name)
    expect(page).to_have_url(re.compile(rf"customer={customer.id}"))
    page.get_by_role("link", name="Zuora id").click()
    expect(page).to_have_url(re.compile(r"sort=zuora_id"))
    page.get_by_role("link", name="Zuora id").click()  # again: descending
    expect(page).to_have_url(re.compile(r"sort=-zuora_id"))
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Zuora id")
    before = page.locator("#workflow-results tbody tr td.num").all_inner_texts()
    assert before == sorted(before, key=int, reverse=True) and len(before) > 1

    page.reload()
    expect(page.get_by_label("Customer")).to_have_value(str(customer.id))
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Zuora id")
    assert page.locator("#workflow-results tbody tr td.num").all_inner_texts() == before
    results = page.locator("#workflow-results")
    expect(results).to_contain_text(f"{customer.workflow_count} workflows")


def test_screenshots_of_the_main_pages_light_and_dark(page: Page, ui_stack: UiStack) -> None:
    customer = seed_workflows_with_definitions(ui_stack)
    row_id, _, _ = _first_workflow(ui_stack, customer)
    pages = {
        "dashboard": "/ui/",
        "customers": "/ui/customers",
        "customer": f"/ui/customers/{customer.id}",
        "workflows": "/ui/workflows",
        "workflow": f"/ui/workflows/{row_id}",
        "runs": "/ui/runs",
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        for name, path in pages.items():
            page.goto(path)
            expect(page.locator("h1")).to_be_visible()
            target = SCREENSHOTS / f"{name}-{scheme}.png"
            page.screenshot(path=str(target), full_page=False)
            assert target.stat().st_size > 10_000, target
        page.goto(pages["workflow"])
        graph = SCREENSHOTS / f"workflow-graph-{scheme}.png"
        page.locator("figure.graph").screenshot(path=str(graph))
        assert graph.stat().st_size > 10_000, graph
