"""The operator's main flows in a real browser against real processes: add a customer
(a bad secret first), see its workflows arrive, Sync now and read the result, replay a
failed run."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect
from zuora_sandbox.faults import Faults

from .conftest import UiStack

SYNC_BOUND_MS = 60_000  # a bound for a loaded machine: the worker syncs in well under that


def _add_customer_form(page: Page, ui_stack: UiStack, name: str, client_id: str) -> None:
    page.goto("/ui/customers")
    page.get_by_role("link", name="Add customer").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Base URL").select_option(ui_stack.sandbox.base_url)
    page.get_by_label("Client ID").fill(client_id)


def _customer_rows(ui_stack: UiStack, name: str) -> int:
    return len(ui_stack.query("SELECT id FROM customers WHERE name = %s", name))


def _wait_for_workflow_count(page: Page, count: int) -> None:
    """Reload the customer page until it lists ``count`` workflows (bounded)."""
    deadline = time.monotonic() + SYNC_BOUND_MS / 1000
    heading = page.get_by_role("heading", name=re.compile(r"^Workflows \("))
    while time.monotonic() < deadline:
        if heading.inner_text() == f"Workflows ({count})":
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(heading).to_have_text(f"Workflows ({count})")


def test_add_customer_bad_secret_then_good_then_sync_now(page: Page, ui_stack: UiStack) -> None:
    tenant = ui_stack.sandbox.add_tenant("browser-acme", workflow_count=4, seed=11)

    _add_customer_form(page, ui_stack, "Browser Acme", tenant.client_id)
    page.get_by_label("Client secret").fill("not-the-secret")
    page.get_by_label("Entity ID").fill("")
    page.get_by_role("button", name="Add customer").click()
    summary = page.locator("#form-summary")
    expect(summary).to_contain_text("Zuora refused these client credentials")
    expect(page.get_by_label("Name")).to_have_value("Browser Acme")
    expect(page.get_by_label("Client ID")).to_have_value(tenant.client_id)
    expect(page.get_by_label("Base URL")).to_have_value(ui_stack.sandbox.base_url)
    expect(page.get_by_label("Client secret")).to_have_value("")
    expect(page.get_by_label("Client secret")).to_have_attribute("aria-invalid", "true")
    assert "not-the-secret" not in page.content()
    assert _customer_rows(ui_stack, "Browser Acme") == 0

    page.get_by_label("Client secret").fill(tenant.client_secret)
    page.get_by_role("button", name="Add customer").click()
    expect(page.get_by_role("heading", name="Browser Acme", level=1)).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("Customer added")
    assert tenant.client_secret not in page.content()
    assert _customer_rows(ui_stack, "Browser Acme") == 1

    _wait_for_workflow_count(page, 4)  # the creation sync, by the worker

    tenant.churn(change=1, add=2, seed=1)
    page.get_by_role("button", name="Sync now").click()
    card = page.locator(".run-card")
    expect(card).to_be_visible()
    expect(card.locator("[data-state=finished]")).to_be_visible(timeout=SYNC_BOUND_MS)
    expect(card).to_contain_text(
        re.compile(r"finished in \d+\.\d s: 2 created, 1 updated, 0 deleted")
    )
    page.reload()
    expect(page.get_by_role("heading", name="Workflows (6)")).to_be_visible()


def test_a_failed_run_is_replayed_from_the_failed_page(page: Page, ui_stack: UiStack) -> None:
    tenant = ui_stack.sandbox.add_tenant("browser-initech", workflow_count=3, seed=12)
    _add_customer_form(page, ui_stack, "Browser Initech", tenant.client_id)
    page.get_by_label("Client secret").fill(tenant.client_secret)
    page.get_by_role("button", name="Add customer").click()
    expect(page.get_by_role("heading", name="Browser Initech", level=1)).to_be_visible()
    _wait_for_workflow_count(page, 3)

    tenant.faults = Faults(fail_pages=[1])  # every listing fails: 500 -> transient, retried
    page.get_by_role("button", name="Sync now").click()
    card = page.locator(".run-card")
    expect(card.locator("[data-state=finished]")).to_be_visible(timeout=SYNC_BOUND_MS)
    expect(card).to_contain_text("failed after")

    tenant.faults = Faults()
    page.get_by_role("link", name="Failed").click()
    page.get_by_label("Customer").select_option(label="Browser Initech")
    expect(page).to_have_url(re.compile(r"/ui/failed\?.*customer="))
    rows = page.locator("#runs-results tbody tr")
    expect(rows.first).to_be_visible()
    rows.first.get_by_role("button", name=re.compile("^Replay the run of Browser Initech")).click()
    replay_card = rows.first.locator(".run-card")
    expect(replay_card.locator("[data-state=finished]")).to_be_visible(timeout=SYNC_BOUND_MS)
    expect(replay_card).to_contain_text(
        re.compile(r"finished in .*: 0 created, 0 updated, 0 deleted")
    )
    replays = ui_stack.query(
        "SELECT r.status FROM sync_runs r JOIN customers c ON c.id = r.customer_id "
        "WHERE c.name = %s AND r.reason = 'replay'",
        "Browser Initech",
    )
    assert replays == [("succeeded",)]


def test_run_filters_live_in_the_url_through_reload_and_back(page: Page) -> None:
    page.get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Runs", level=1)).to_be_visible()
    page.get_by_label("Status").select_option("succeeded")
    expect(page).to_have_url(re.compile(r"/ui/runs\?status=succeeded"))
    page.get_by_label("Reason").select_option("created")
    expect(page).to_have_url(re.compile(r"/ui/runs\?status=succeeded&customer=&reason=created"))
    page.reload()
    expect(page.get_by_label("Status")).to_have_value("succeeded")
    expect(page.get_by_label("Reason")).to_have_value("created")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/ui/runs\?status=succeeded&customer=&reason=$"))
    expect(page.get_by_label("Reason")).to_have_value("")
    expect(page.get_by_role("link", name="Dashboard")).to_be_visible()  # a whole page, nav too


def test_blocked_deletions_are_applied_after_review(page: Page, ui_stack: UiStack) -> None:
    tenant = ui_stack.sandbox.add_tenant("browser-globex", workflow_count=10, seed=13)
    _add_customer_form(page, ui_stack, "Browser Globex", tenant.client_id)
    page.get_by_label("Client secret").fill(tenant.client_secret)
    page.get_by_role("button", name="Add customer").click()
    expect(page.get_by_role("heading", name="Browser Globex", level=1)).to_be_visible()
    _wait_for_workflow_count(page, 10)

    tenant.churn(delete=7, seed=2)  # 7 of 10 gone: above the guard's 50 % and its floor of 3
    page.get_by_role("button", name="Sync now").click()
    card = page.locator(".run-card")
    expect(card.locator("[data-state=finished]")).to_be_visible(timeout=SYNC_BOUND_MS)
    expect(card).to_contain_text("would delete 7 of the stored workflows")
    page.reload()
    expect(page.get_by_role("heading", name="Workflows (10)")).to_be_visible()  # nothing deleted

    page.goto("/ui/failed?status=deletes_blocked")
    row = page.locator("#runs-results tbody tr", has_text="Browser Globex")
    row.get_by_text("Apply 7 deletions…").click()
    row.get_by_role("button", name="Apply 7 deletions").click()
    applied = row.locator(".run-card")
    expect(applied.locator("[data-state=finished]")).to_be_visible(timeout=SYNC_BOUND_MS)
    expect(applied).to_contain_text(re.compile(r"0 created, 0 updated, 7 deleted"))
    page.goto("/ui/customers")
    page.get_by_role("link", name="Browser Globex").click()
    expect(page.get_by_role("heading", name="Workflows (3)")).to_be_visible()
