"""The app's route table, as composed from the route modules of each endpoint family."""

from __future__ import annotations

from collections import Counter

from starlette.routing import Route
from zuora_sandbox import SandboxState, create_app


def _table() -> list[tuple[str, str]]:
    app = create_app(SandboxState())
    return [
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
    ]


def test_no_route_shadows_another() -> None:
    # Starlette answers with the first match, so a repeated path+method would never be reached.
    repeated = [key for key, count in Counter(_table()).items() if count > 1]
    assert repeated == []


def test_admin_routes_all_live_under_the_admin_prefix() -> None:
    zuora = {"/oauth/token", "/workflows", "/workflows/{workflow_id}"}
    zuora |= {"/workflows/{workflow_id}/export", "/workflows/{workflow_id}/versions"}
    paths = {path for path, _ in _table()}
    assert zuora <= paths
    assert all(p.startswith("/_sandbox/") for p in paths - zuora), sorted(paths - zuora)
