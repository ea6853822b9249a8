"""Fault injection of a tenant, under ``/_sandbox/tenants/{name}``: ``GET|PUT|PATCH /faults``
(the knobs of ``faults.Faults``) and ``POST /expire-tokens`` (every issued token expires now).

The per-endpoint faults of the definition endpoints (``/faults/export``, ``/faults/versions``) live
with those endpoints in ``definition_routes``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .faults import Faults
from .kit import TENANT_PATH, ZuoraKit, admin, json_body
from .problems import Problem


def fault_routes(kit: ZuoraKit) -> list[Route]:
    """The fault knobs of a tenant."""

    async def faults_get(request: Request) -> Response:
        return admin(kit.tenant_of(request).faults.to_dict())

    async def faults_put(request: Request) -> Response:
        tenant = kit.tenant_of(request)
        data = await json_body(request)
        if request.method == "PATCH":
            data = {**tenant.faults.to_dict(), **data}
        try:
            tenant.faults = Faults.from_dict(data)
        except ValueError as exc:
            raise Problem(422, "Invalid faults", str(exc)) from exc
        return admin(tenant.faults.to_dict())

    async def expire_tokens(request: Request) -> Response:
        kit.tenant_of(request).expire_tokens()
        return admin({"status": "expired"})

    return [
        Route(f"{TENANT_PATH}/faults", faults_get, methods=["GET"]),
        Route(f"{TENANT_PATH}/faults", faults_put, methods=["PUT", "PATCH"]),
        Route(f"{TENANT_PATH}/expire-tokens", expire_tokens, methods=["POST"]),
    ]
