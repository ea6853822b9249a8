"""``GET /metrics``: Prometheus exposition (open like /healthz, not in the OpenAPI document).

Anonymous callers get the aggregates only, refreshed from the database at most every
``REFRESH_MIN_INTERVAL`` seconds (a flood of scrapes cannot take the pool's connections). A
scraper that sends the API key (``Authorization: Bearer``) also gets the series labelled by
customer id, refreshed on every scrape.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from observability.metrics import CONTENT_TYPE_LATEST

from customer_api.auth import AUTHENTICATED
from customer_api.deps import RuntimeDep

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    authenticated = bool(getattr(request.state, AUTHENTICATED, False))
    await runtime.metrics_refresher.refresh(runtime, always=authenticated)
    body = runtime.metrics.exposition(per_customer=authenticated)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
