"""Liveness and readiness (open: no API key)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from sqlalchemy import text

from customer_api.deps import RuntimeDep
from customer_api.errors import NotReadyError
from customer_api.problems import problem_responses

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_OPEN: dict[str, object] = {"security": []}
READY_TIMEOUT = 3.0


@router.get("/healthz", openapi_extra=_OPEN, summary="The process is up (no dependencies)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    openapi_extra=_OPEN,
    summary="The database is reachable",
    responses=problem_responses(503),
)
async def readyz(runtime: RuntimeDep) -> dict[str, str]:
    try:
        async with asyncio.timeout(READY_TIMEOUT), runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("Readiness check failed: database unreachable (%s)", type(exc).__name__)
        raise NotReadyError("The database is not reachable", headers={"Retry-After": "5"}) from None
    return {"status": "ok", "database": "ok"}
