"""Jinja2 rendering: one URL serves the full page, or just its fragment to htmx.

A page template extends ``base.html`` and puts its body in ``{% block content %}``. With the
``HX-Request`` header (and no ``HX-Boosted``) only that block is rendered, so links, filter
forms and polling swap the part they target and the same GET URL still works as a full page.
Templates must import macros *inside* the blocks that use them (a block rendered alone does
not run the template's top-level statements).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["Templates", "format_duration", "is_htmx", "relative_time"]

CONTENT_BLOCK = "content"


def is_htmx(request: Request) -> bool:
    """An htmx request for a fragment (boosted navigations and history restores - the Back
    button after a pushed URL - want whole pages)."""
    headers = request.headers
    return (
        headers.get("hx-request") == "true"
        and "hx-boosted" not in headers
        and "hx-history-restore-request" not in headers
    )


def relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """ "3 min ago" (server-rendered; absolute after 30 days)."""
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    seconds = (now - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        text = "just now" if not future else "in a few seconds"
        return text
    for limit, unit, size in ((3600, "min", 60), (86400, "h", 3600), (30 * 86400, "d", 86400)):
        if seconds < limit:
            amount = max(1, round(seconds / size))
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    return value.strftime("%Y-%m-%d")


def format_duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "-"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(math.floor(seconds), 60)
    return f"{minutes} min {rest} s"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _absolute(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _asset_versions() -> dict[str, str]:
    """Short content hashes of the static files, appended as ``?v=`` (safe long caching)."""
    versions: dict[str, str] = {}
    root = resources.files("customer_api.ui") / "static"

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
            else:
                versions[name] = hashlib.sha256(child.read_bytes()).hexdigest()[:12]

    walk(root, "")
    return versions


class Templates:
    def __init__(self, globals_: Mapping[str, Any] | None = None) -> None:
        self.env = Environment(
            loader=PackageLoader("customer_api.ui", "templates"),
            autoescape=select_autoescape(["html"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        versions = _asset_versions()

        def asset(name: str) -> str:
            return f"/ui/static/{name}?v={versions[name]}"

        def query(base: Mapping[str, Any], **changes: Any) -> str:
            """``?a=1&b=2`` from the current filters with ``changes`` applied (None drops)."""
            merged = {**base, **changes}
            pairs = [(k, v) for k, v in merged.items() if v not in (None, "")]
            return "?" + urlencode(pairs) if pairs else "?"

        self.env.globals.update(asset=asset, query=query, **(globals_ or {}))
        self.env.filters.update(
            reltime=relative_time, duration=format_duration, iso=_iso, absolute=_absolute
        )

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        fragment: bool | None = None,
    ) -> HTMLResponse:
        """The page ``name``; only its ``content`` block when htmx asks (or ``fragment``)."""
        template = self.env.get_template(name)
        values = {
            "request": request,
            "session": getattr(request.state, "ui_session", None),
            "now": datetime.now(UTC),
            **(context or {}),
        }
        values.setdefault("csrf_token", values["session"].csrf_token if values["session"] else "")
        want_fragment = is_htmx(request) if fragment is None else fragment
        if want_fragment and CONTENT_BLOCK in template.blocks:
            ctx = template.new_context(values)
            html = "".join(template.blocks[CONTENT_BLOCK](ctx))
        else:
            html = template.render(values)
        return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
