"""``zuora-sync-scheduler``: run the scheduler until SIGINT/SIGTERM.

Logs go to stderr as JSON lines (``LOG_FORMAT=text`` for people; the default in
``APP_ENV=development``); ``/metrics`` is served on ``METRICS_HOST:METRICS_PORT``
(127.0.0.1:9101 by default, ``METRICS_PORT=0`` disables it).
"""

from __future__ import annotations

import asyncio
import signal

from observability.logging import configure_logging

from sync_scheduler.app import run
from sync_scheduler.settings import SchedulerSettings

__all__ = ["main"]


async def _serve(settings: SchedulerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main() -> int:
    settings = SchedulerSettings()
    configure_logging("scheduler", settings=settings.log)
    asyncio.run(_serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
