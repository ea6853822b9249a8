"""Routes of the definition endpoints and their admin API, included by ``app.create_app``.

Zuora: ``GET /workflows/{id}/export[?version=]`` and ``GET /workflows/{id}/versions``
(zuora-workflow-export.md §1, §2). Admin, under ``/_sandbox/tenants/{name}``:

- ``GET|PUT  /workflows/{id}/definition[?version=]``: read (not counted) / replace tasks+linkages;
- ``POST /workflows/{id}/definition/edit`` ``{"seed", "changes", "version"}``: edit in place;
- ``POST /workflows/{id}/activate`` ``{"version"}``: activate a version, or a new one;
- ``GET|PUT|PATCH /faults/export`` and ``/faults/versions``: per-endpoint faults.

Request counters are ``export_requests`` / ``versions_requests`` of ``GET .../stats``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .definition_book import (
    ENDPOINTS,
    EndpointFaults,
    InvalidVersion,
    UnknownVersion,
    UnknownWorkflow,
)
from .kit import TENANT_PATH, ZuoraKit
from .kit import admin as _admin
from .problems import Problem

if TYPE_CHECKING:
    from .state import Tenant

# Shapes of the spec's export 400/404 examples (the 404 carries status 400 inside, as in E1).
_UNKNOWN_WORKFLOW = b'{"Errors":["The workflow for the given id does not exist"]}'


def _workflow_errors(status: int, title: str) -> bytes:
    return json.dumps({"errors": [{"code": "invalid", "status": status, "title": title}]}).encode()


def definition_routes(kit: ZuoraKit) -> list[Route]:
    """The Zuora and admin routes of workflow definitions."""

    def not_found(request: Request, tenant: Tenant, endpoint: str, version: str | None) -> Response:
        if endpoint == "export" and version is not None:
            body = _workflow_errors(400, f"Workflow version '{version}' is not found.")
            return kit.respond(request, tenant, 404, body)
        return kit.respond(request, tenant, 404, _UNKNOWN_WORKFLOW)

    async def injected(
        request: Request, tenant: Tenant, endpoint: str, wf_id: int | None
    ) -> Response | None:
        """The tenant's faults, then this endpoint's (same seeded fault sequence)."""
        faults = tenant.faults
        fault = kit.roll_fault(request, tenant, faults.rate_limit_rate, faults.error_rate)
        if fault is not None:
            return fault
        knobs = tenant.definitions.faults[endpoint]
        if knobs.latency_ms > 0:
            await asyncio.sleep(knobs.latency_ms / 1000)
        version = request.query_params.get("version") or "active"
        if wf_id in knobs.fail_workflow_ids:
            return kit.server_error(request, tenant, knobs.error_statuses[0])
        if wf_id in knobs.not_found_workflow_ids:
            tenant.stats.injected_errors += 1
            return not_found(request, tenant, endpoint, version)
        if knobs.error_rate <= 0 and knobs.not_found_rate <= 0:
            return None
        rng = tenant.fault_rng
        roll = rng.random()
        if roll < knobs.not_found_rate:
            tenant.stats.injected_errors += 1
            return not_found(request, tenant, endpoint, version)
        if roll < knobs.not_found_rate + knobs.error_rate:
            return kit.server_error(request, tenant, rng.choice(knobs.error_statuses))
        return None

    async def serve(request: Request, endpoint: str) -> Response:
        tenant, error = await kit.authenticate(request)
        if tenant is not None:
            if endpoint == "export":
                tenant.stats.export_requests += 1
            else:
                tenant.stats.versions_requests += 1
        if error is not None or tenant is None:
            assert error is not None
            return error
        raw_id = request.path_params["workflow_id"]
        wf_id = int(raw_id) if raw_id.isdigit() else None
        fault = await injected(request, tenant, endpoint, wf_id)
        if fault is not None:
            return fault
        version = request.query_params.get("version")
        try:
            if wf_id is None:
                raise UnknownWorkflow(raw_id)
            if endpoint == "export":
                body = tenant.definitions.export_json(wf_id, version)
            else:
                body = json.dumps({"data": tenant.definitions.versions(wf_id)}, ensure_ascii=False)
        except UnknownWorkflow:
            return not_found(request, tenant, endpoint, None)
        except UnknownVersion as exc:
            return not_found(request, tenant, endpoint, exc.version)
        except InvalidVersion:
            title = f"The input of version '{version}' is invalid."
            return kit.respond(request, tenant, 400, _workflow_errors(400, title))
        return kit.respond(request, tenant, 200, body)

    async def export(request: Request) -> Response:
        return await serve(request, "export")

    async def versions(request: Request) -> Response:
        return await serve(request, "versions")

    # ----------------------------------------------------------------- admin
    def admin_call(request: Request, action: Callable[[], Any]) -> Any:
        """Run a book operation, mapping its errors to problems."""
        wf_id = request.path_params["wf_id"]
        try:
            return action()
        except UnknownWorkflow as exc:
            raise Problem(404, "Unknown workflow", f"no workflow {wf_id}") from exc
        except UnknownVersion as exc:
            detail = f"workflow {wf_id} has no version {exc.version!r}"
            raise Problem(404, "Unknown version", detail) from exc
        except ValueError as exc:  # InvalidVersion included
            raise Problem(422, "Invalid request", str(exc)) from exc

    def opt_version(value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise Problem(422, "Invalid field", "version must be a string")
        return value

    async def definition_get(request: Request) -> Response:
        tenant, wf_id = kit.tenant_of(request), request.path_params["wf_id"]
        version = request.query_params.get("version")
        return _admin(admin_call(request, lambda: tenant.definitions.export(wf_id, version)))

    async def definition_put(request: Request) -> Response:
        tenant, wf_id = kit.tenant_of(request), request.path_params["wf_id"]
        body = await kit.json_body(request)
        version = request.query_params.get("version")
        admin_call(request, lambda: tenant.definitions.replace(wf_id, body, version))
        return _admin(admin_call(request, lambda: tenant.definitions.export(wf_id, version)))

    async def definition_edit(request: Request) -> Response:
        tenant, wf_id = kit.tenant_of(request), request.path_params["wf_id"]
        data = await kit.json_body(request)
        unknown = sorted(set(data) - {"seed", "changes", "version"})
        if unknown:
            raise Problem(422, "Unknown field", ", ".join(unknown))
        seed, changes = data.get("seed", 0), data.get("changes", 1)
        if not isinstance(seed, int | str) or isinstance(seed, bool):
            raise Problem(422, "Invalid field", "seed must be an integer or a string")
        if not isinstance(changes, int) or isinstance(changes, bool) or not 1 <= changes <= 50:
            raise Problem(422, "Invalid field", "changes must be an integer in 1..50")
        version = opt_version(data.get("version"))
        summary = admin_call(
            request,
            lambda: tenant.definitions.edit(wf_id, version, seed=seed, changes=changes),
        )
        return _admin(summary.to_dict())

    async def activate(request: Request) -> Response:
        tenant, wf_id = kit.tenant_of(request), request.path_params["wf_id"]
        data = await kit.json_body(request)
        unknown = sorted(set(data) - {"version"})
        if unknown:
            raise Problem(422, "Unknown field", ", ".join(unknown))
        version = opt_version(data.get("version"))
        active = admin_call(request, lambda: tenant.definitions.activate(wf_id, version))
        item = tenant.workflows[wf_id]
        return _admin({"active_version": active, "updatedAt": item.get("updatedAt")})

    def endpoint_of(request: Request) -> str:
        endpoint: str = request.path_params["endpoint"]
        if endpoint not in ENDPOINTS:
            raise Problem(404, "Unknown endpoint", f"faults exist for {', '.join(ENDPOINTS)}")
        return endpoint

    async def faults_get(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        return _admin(tenant.definitions.faults[endpoint_of(request)].to_dict())

    async def faults_put(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        endpoint = endpoint_of(request)
        data = await kit.json_body(request)
        book = tenant.definitions
        if request.method == "PATCH":
            data = {**book.faults[endpoint].to_dict(), **data}
        try:
            book.faults[endpoint] = EndpointFaults.from_dict(data)
        except ValueError as exc:
            raise Problem(422, "Invalid faults", str(exc)) from exc
        return _admin(book.faults[endpoint].to_dict())

    workflow = TENANT_PATH + "/workflows/{wf_id:int}"
    faults = TENANT_PATH + "/faults/{endpoint}"
    return [
        Route("/workflows/{workflow_id}/export", export, methods=["GET"]),
        Route("/workflows/{workflow_id}/versions", versions, methods=["GET"]),
        Route(f"{workflow}/definition", definition_get, methods=["GET"]),
        Route(f"{workflow}/definition", definition_put, methods=["PUT"]),
        Route(f"{workflow}/definition/edit", definition_edit, methods=["POST"]),
        Route(f"{workflow}/activate", activate, methods=["POST"]),
        Route(faults, faults_get, methods=["GET"]),
        Route(faults, faults_put, methods=["PUT", "PATCH"]),
    ]
