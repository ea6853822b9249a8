"""The admin API under ``/_sandbox``: health, reset, tenants, their workflows, churn and stats.

WARNING: it has no authentication. It is a test tool: never expose a sandbox beyond loopback or a
private test network. Errors are ``application/problem+json`` (``Problem``, mapped by the app).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .kit import (
    ADMIN_PREFIX,
    TENANT_PATH,
    ZuoraKit,
    admin,
    int_field,
    json_body,
    opt_str,
    reject_unknown,
    seed_field,
)
from .problems import Problem

WORKFLOW = TENANT_PATH + "/workflows/{wf_id:int}"
_REQUEST_COUNTERS = (
    "token_requests",
    "list_requests",
    "get_requests",
    "export_requests",
    "versions_requests",
)
_COUNTERS = (*_REQUEST_COUNTERS, "injected_errors")
_TENANT_FIELDS = {"name", "workflow_count", "seed", "client_id", "client_secret", "entity_ids"}


def admin_routes(kit: ZuoraKit) -> list[Route]:
    """The tenant and workflow management endpoints."""
    state = kit.state

    async def health(request: Request) -> Response:
        return admin({"status": "ok", "tenants": len(state.tenants)})

    async def sandbox_stats(request: Request) -> Response:
        """Every tenant's counters summed, and the fast path's (``null`` in normal mode)."""
        totals = dict.fromkeys(_COUNTERS, 0)
        for tenant in list(state.tenants.values()):
            stats = tenant.stats
            for key in _COUNTERS:
                totals[key] += getattr(stats, key)
        totals["requests"] = sum(totals[k] for k in _REQUEST_COUNTERS)
        fast = state.fast_stats.to_dict() if state.fast_stats is not None else None
        return admin({"tenants": len(state.tenants), **totals, "fast": fast})

    async def warm(request: Request) -> Response:
        """Generate the tenants' workflows and render their list pages now (``names``: these
        tenants, default all; ``page_length``: default 50), so that a benchmark measures the
        serving, not the lazy generation. In fast mode the pages are cached as bytes, with the
        ``next_page`` base of this request (the same host as the clients'), and the per-item
        JSON is dropped (the pages hold it)."""
        data = await json_body(request)
        reject_unknown(data, {"names", "page_length"})
        page_length = int_field(data, "page_length", 50, maximum=50) or 50
        names = data.get("names")
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        ):
            raise Problem(422, "Invalid field", "names must be a list of strings")
        tenants = [state.tenants[n] for n in names if n in state.tenants] if names else None
        fast = state.fast_path
        base = state.base_url_hint or str(request.base_url).rstrip("/")
        pages = 0
        for tenant in tenants if tenants is not None else list(state.tenants.values()):
            count = len(tenant.sorted_ids())
            n_pages = max(1, -(-count // page_length))
            for page in range(1, n_pages + 1):
                if fast is not None:
                    fast.page(tenant, page, page_length, base)
                else:
                    for wf_id in tenant.sorted_ids()[(page - 1) * page_length : page * page_length]:
                        tenant.item_json(wf_id)
            if fast is not None:
                tenant.drop_item_json()
            pages += n_pages
        return admin({"pages": pages, "fast": fast is not None})

    async def config_get(request: Request) -> Response:
        return admin({"latency_ms": state.latency_ms, "fast": state.fast_stats is not None})

    async def config_patch(request: Request) -> Response:
        """Server-wide settings changed at run time: ``latency_ms`` (every Zuora request)."""
        data = await json_body(request)
        reject_unknown(data, {"latency_ms"})
        if "latency_ms" in data:
            value = data["latency_ms"]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise Problem(422, "Invalid field", "latency_ms must be a number >= 0")
            state.latency_ms = float(value)
        return await config_get(request)

    async def reset_all(request: Request) -> Response:
        state.reset()
        return admin({"status": "reset"})

    async def tenants_list(request: Request) -> Response:
        return admin([t.summary() for t in list(state.tenants.values())])

    async def tenants_create(request: Request) -> Response:
        data = await json_body(request)
        reject_unknown(data, _TENANT_FIELDS)
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise Problem(422, "Invalid field", "name must be a non-empty string")
        seed = seed_field(data)
        entity_ids = data.get("entity_ids")
        if entity_ids is not None and (
            not isinstance(entity_ids, list) or not all(isinstance(e, str) for e in entity_ids)
        ):
            raise Problem(422, "Invalid field", "entity_ids must be a list of strings")
        if name in state.tenants:
            raise Problem(409, "Tenant exists", f"tenant {name!r} already exists")
        try:
            tenant = state.add_tenant(
                name,
                workflow_count=int_field(data, "workflow_count", 0),
                seed=seed,
                client_id=opt_str(data, "client_id"),
                client_secret=opt_str(data, "client_secret"),
                entity_ids=entity_ids,
            )
        except ValueError as exc:
            status = 409 if "already" in str(exc) else 422
            raise Problem(status, "Cannot create tenant", str(exc)) from exc
        return admin(tenant.summary(), 201)

    async def tenant_get(request: Request) -> Response:
        return admin(kit.tenant_of(request).summary())

    async def tenant_delete(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        state.remove_tenant(tenant.name)
        return Response(status_code=204)

    async def workflows_list(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        items = [tenant.workflows[i] for i in tenant.sorted_ids() if i in tenant.workflows]
        return admin({"workflows": items, "count": len(items)})

    async def workflow_put(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        wf_id: int = request.path_params["wf_id"]
        item = await json_body(request)
        if item.get("id", wf_id) != wf_id:
            raise Problem(422, "Id mismatch", "the body's id differs from the path")
        item = {"id": wf_id, **item}
        created = wf_id not in tenant.workflows
        tenant.put_workflow(item)
        return admin(item, 201 if created else 200)

    async def workflow_patch(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        wf_id: int = request.path_params["wf_id"]
        changes = await json_body(request)
        try:
            item = tenant.update_workflow(wf_id, **changes)
        except KeyError as exc:
            raise Problem(404, "Unknown workflow", f"no workflow {wf_id}") from exc
        except ValueError as exc:
            raise Problem(422, "Invalid change", str(exc)) from exc
        return admin(item)

    async def workflow_delete(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        wf_id: int = request.path_params["wf_id"]
        try:
            tenant.delete_workflow(wf_id)
        except KeyError as exc:
            raise Problem(404, "Unknown workflow", f"no workflow {wf_id}") from exc
        return Response(status_code=204)

    async def churn(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        data = await json_body(request)
        reject_unknown(data, {"change", "add", "delete", "seed"})
        seed = seed_field(data)
        try:
            result = tenant.churn(
                change=int_field(data, "change", 0),
                add=int_field(data, "add", 0),
                delete=int_field(data, "delete", 0),
                seed=seed,
            )
        except ValueError as exc:
            raise Problem(422, "Cannot churn", str(exc)) from exc
        return admin(result)

    async def stats_get(request: Request) -> Response:
        return admin(kit.tenant_of(request).stats.to_dict())

    async def stats_reset(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        tenant.stats.reset()
        return admin(tenant.stats.to_dict())

    return [
        Route(f"{ADMIN_PREFIX}/health", health, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/reset", reset_all, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/stats", sandbox_stats, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/warm", warm, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/config", config_get, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/config", config_patch, methods=["PATCH"]),
        Route(f"{ADMIN_PREFIX}/tenants", tenants_list, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/tenants", tenants_create, methods=["POST"]),
        Route(TENANT_PATH, tenant_get, methods=["GET"]),
        Route(TENANT_PATH, tenant_delete, methods=["DELETE"]),
        Route(TENANT_PATH + "/workflows", workflows_list, methods=["GET"]),
        Route(WORKFLOW, workflow_put, methods=["PUT"]),
        Route(WORKFLOW, workflow_patch, methods=["PATCH"]),
        Route(WORKFLOW, workflow_delete, methods=["DELETE"]),
        Route(TENANT_PATH + "/churn", churn, methods=["POST"]),
        Route(TENANT_PATH + "/stats", stats_get, methods=["GET"]),
        Route(TENANT_PATH + "/stats/reset", stats_reset, methods=["POST"]),
    ]
