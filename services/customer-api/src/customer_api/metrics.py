"""The API's database-backed metrics, refreshed on every scrape of ``/metrics``.

- ``zws_outbox_pending``: outbox rows not yet published (one ``count(*)`` on the partial index
  of unsent rows);
- ``zws_customer_last_success_age_seconds{customer_id}``: for active customers, the age of the
  start of their last successful sync, computed when the registry is collected. The query is
  bounded: at most ``METRICS_MAX_CUSTOMERS`` customers, the stalest first, so the ones an alert
  is about are never the ones cut off;
- ``zws_customers_never_synced``: active customers with no successful sync yet.

A scrape whose queries fail or take longer than ``REFRESH_TIMEOUT`` serves the previous values
and counts ``zws_metrics_refresh_failures_total``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING

from event_bus.outbox import pending_count
from sqlalchemy import func, select
from workflow_store.models import Customer

if TYPE_CHECKING:  # the runtime holds the refresher: import it for types only
    from customer_api.runtime import Runtime

__all__ = ["REFRESH_MIN_INTERVAL", "REFRESH_TIMEOUT", "MetricsRefresher", "refresh_metrics"]

logger = logging.getLogger(__name__)

REFRESH_TIMEOUT = 3.0
REFRESH_MIN_INTERVAL = 5.0
"""Anonymous scrapes reuse values younger than this (seconds)."""


class MetricsRefresher:
    """Refreshes the database-backed values, one refresh at a time, skipping recent ones."""

    def __init__(self, min_interval: float = REFRESH_MIN_INTERVAL) -> None:
        self.min_interval = min_interval
        self._lock = asyncio.Lock()
        self._refreshed_at = -math.inf

    async def refresh(self, runtime: Runtime, *, always: bool) -> None:
        """Refresh unless (``always`` false and) the values are younger than the interval."""
        async with self._lock:  # concurrent scrapes share one refresh: at most one connection
            if not always and time.monotonic() - self._refreshed_at < self.min_interval:
                return
            await refresh_metrics(runtime)
            self._refreshed_at = time.monotonic()


async def refresh_metrics(runtime: Runtime) -> None:
    metrics = runtime.metrics
    try:
        async with asyncio.timeout(REFRESH_TIMEOUT), runtime.session_factory() as session:
            pending = await pending_count(session)
            rows = await session.execute(
                select(Customer.id, Customer.last_successful_sync_at)
                .where(Customer.active.is_(True), Customer.last_successful_sync_at.is_not(None))
                .order_by(Customer.last_successful_sync_at, Customer.id)
                .limit(runtime.settings.metrics_max_customers)
            )
            last_success: dict[tuple[str, ...], float] = {
                (str(customer_id),): started.timestamp()
                for customer_id, started in rows.all()
                if started is not None
            }
            never = await session.scalar(
                select(func.count())
                .select_from(Customer)
                .where(Customer.active.is_(True), Customer.last_successful_sync_at.is_(None))
            )
    except Exception as exc:
        metrics.refresh_failures.inc()
        logger.warning("Could not refresh the database-backed metrics (%s)", type(exc).__name__)
        return
    metrics.outbox_pending.set(pending)
    metrics.freshness.replace(last_success)
    metrics.never_synced.set(int(never or 0))
