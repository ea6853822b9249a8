"""The accessibility check of the browser tests: the vendored axe-core run inside a page.

axe is injected with ``page.evaluate`` (the DevTools protocol), not a ``<script>`` tag: the page
keeps its strict Content-Security-Policy, which would refuse an inline script, so the check sees
the page exactly as an operator's browser does. A serious or critical violation fails the test.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

VENDOR = Path(__file__).resolve().parent / "vendor"
FAILING_IMPACTS = frozenset({"serious", "critical"})
# WCAG 2.x A and AA (2.0, 2.1, 2.2) plus axe's best practices (landmarks, headings, regions).
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@cache
def axe_source() -> str:
    return (VENDOR / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (all impacts)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    results: dict[str, Any] = page.evaluate(
        """async (tags) => await window.axe.run(document, {
            runOnly: {type: "tag", values: tags},
            resultTypes: ["violations"],
        })""",
        RULE_TAGS,
    )
    violations: list[dict[str, Any]] = results["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {json.dumps(node['target'])}: {node.get('failureSummary', '')!r}")
    return "\n".join(lines)


def assert_accessible(page: Page, *, where: str = "") -> None:
    """Fail on any serious or critical axe violation of the current page."""
    failing = [v for v in axe_violations(page) if v.get("impact") in FAILING_IMPACTS]
    label = where or page.url
    assert not failing, f"axe: serious/critical violations on {label}:\n{describe(failing)}"
