"""The ASGI app: Zuora's ``/oauth/token`` and ``/workflows`` endpoints, plus the ``/_sandbox``
admin API, composed from one route module per endpoint family over a shared ``ZuoraKit``:

- ``zuora_routes``: the token, list and detail endpoints of Zuora's REST API;
- ``definition_routes``: Zuora's export and versions endpoints and their admin API;
- ``admin_routes``: health, reset, tenants, their workflows, churn and stats;
- ``fault_routes``: a tenant's fault knobs and token expiry.

Plain Starlette routes rather than FastAPI routers: FastAPI's request handling costs about 50 to
140 µs of CPU per request here (measured on a 50-item page, in process), a third more than the
whole answer, and the sandbox shares its cores with the workers it serves in benchmarks.

WARNING: the admin API under ``/_sandbox`` has no authentication. It is a test tool: never expose a
sandbox beyond loopback or a private test network.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .admin_routes import admin_routes
from .definition_routes import definition_routes
from .fast import FastPath
from .fault_routes import fault_routes
from .kit import ADMIN_PREFIX, ZuoraKit, dumps
from .problems import Problem
from .state import SandboxState
from .zuora_routes import MAX_PAGE_LENGTH, zuora_routes


def _problem(status: int, title: str, detail: str = "") -> Response:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return Response(dumps(body), status_code=status, media_type="application/problem+json")


def create_app(state: SandboxState) -> Starlette:
    """The sandbox as a Starlette (ASGI) app serving ``state``."""
    kit = ZuoraKit(state)

    async def problem_handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return _problem(exc.status, exc.title, exc.detail)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith(ADMIN_PREFIX):
            return _problem(exc.status_code, exc.detail)
        message = "no Route matched with those values" if exc.status_code == 404 else exc.detail
        # Kong-style gateway error for routes that do not exist (seen by T2, zuora-api.md §7).
        return kit.respond(request, None, exc.status_code, dumps({"message": message}))

    app = Starlette(
        routes=[
            *zuora_routes(kit),
            *definition_routes(kit),
            *admin_routes(kit),
            *fault_routes(kit),
        ],
        exception_handlers={Problem: problem_handler, HTTPException: http_error},
    )
    app.state.sandbox = state
    return app


def create_fast_app(state: SandboxState) -> FastPath:
    """The sandbox in fast mode (benchmarks): ``create_app`` behind ``fast.FastPath``, which
    serves plain list pages and token answers from pre-rendered bytes (same bytes)."""
    return FastPath(create_app(state), state)


__all__ = ["MAX_PAGE_LENGTH", "Problem", "create_app", "create_fast_app"]
