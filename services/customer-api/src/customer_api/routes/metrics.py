"""``GET /metrics``: Prometheus exposition (open like /healthz, not in the OpenAPI document)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from observability.metrics import CONTENT_TYPE_LATEST, generate_latest

from customer_api.deps import RuntimeDep
from customer_api.metrics import refresh_metrics

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    await refresh_metrics(runtime)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
