"""The UI's pages, one module (an ``APIRouter``) per area.

To add a page: write ``pages/<area>.py`` with ``router = APIRouter()`` and routes that return
``ui.templates.render(request, "<area>/<page>.html", {...})``, then list the router in
:data:`PAGE_ROUTERS`. They are mounted under ``/ui`` behind the session (and CSRF) check.
"""

from __future__ import annotations

from fastapi import APIRouter

from customer_api.ui.pages import customers, dashboard, runs, workflows

__all__ = ["PAGE_ROUTERS"]

PAGE_ROUTERS: tuple[APIRouter, ...] = (
    dashboard.router,
    customers.router,
    runs.router,
    workflows.router,
)
