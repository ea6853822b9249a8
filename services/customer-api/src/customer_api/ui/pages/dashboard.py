"""``/ui/``: the dashboard (counts, freshness, recent runs), each figure a link to its list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from customer_api.deps import SessionDep
from customer_api.handlers.overview import overview
from customer_api.ui.auth import UiDep

router = APIRouter()


def interval_label(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hourly" if hours == 1 else f"{hours}-hourly"
    return f"every {seconds // 60} min"


@router.get("/", include_in_schema=False)
async def dashboard(request: Request, ui: UiDep, session: SessionDep) -> HTMLResponse:
    data = await overview(
        session, interval_seconds=ui.expected_interval_seconds, max_attempts=ui.max_attempts
    )
    return ui.templates.render(
        request,
        "dashboard.html",
        {
            "section": "dashboard",
            "o": data,
            "interval_label": interval_label(ui.expected_interval_seconds),
        },
    )
