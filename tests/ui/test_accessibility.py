"""axe on every page of the UI, in light and in dark mode: no serious or critical violation.

"Every page" is found, not listed: starting from the sign-in page and the dashboard, every
``/ui/`` link on a checked page is followed (one page per URL shape, so a hundred customers
cost one customer page), bounded in count. A new page linked from anywhere is checked without
touching this file; the test also asserts the main pages were reached, so a broken nav cannot
make it pass by checking less.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urlsplit

from playwright.sync_api import Page

from .axe import assert_accessible
from .conftest import UiStack
from .seed import seed_workflows_with_definitions

MAX_PAGES = 40
# Links that are not pages: downloads, assets, and sign-out (it would end the session).
NOT_PAGES = re.compile(r"^/ui/(static/|logout)|\.(json|svg|csv)$")
MUST_REACH = {"/ui/", "/ui/customers", "/ui/workflows", "/ui/workflows/{id}", "/ui/runs"}


def shape(path: str) -> str:
    """The URL's kind: ids and UUIDs replaced, so each kind of page is checked once."""
    return re.sub(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27})(?=/|$)", "/{id}", path)


def check_both_schemes(page: Page, where: str) -> None:
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert_accessible(page, where=f"{where} ({scheme})")
    page.emulate_media(color_scheme="light")


def ui_links(page: Page) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        "a[href]", "links => links.map(a => a.getAttribute('href'))"
    )
    paths = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.netloc or not parts.path.startswith("/ui/") or NOT_PAGES.search(parts.path):
            continue
        paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return paths


def test_sign_in_page_is_accessible(signed_out_page: Page) -> None:
    check_both_schemes(signed_out_page, "/ui/login")


def test_every_page_is_accessible_in_light_and_dark(page: Page, ui_stack: UiStack) -> None:
    seed_workflows_with_definitions(ui_stack)
    queue = deque(["/ui/", "/ui/workflows"])
    checked: dict[str, str] = {}
    while queue and len(checked) < MAX_PAGES:
        url = queue.popleft()
        kind = shape(urlsplit(url).path)
        if kind in checked:
            continue
        response = page.goto(url)
        assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
        checked[kind] = url
        check_both_schemes(page, url)
        queue.extend(ui_links(page))
    missing = MUST_REACH - set(checked)
    assert not missing, f"pages not reached from the dashboard: {sorted(missing)}"
