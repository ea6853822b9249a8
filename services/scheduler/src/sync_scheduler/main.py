"""``zuora-sync-scheduler``: run the scheduler until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

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
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = SchedulerSettings()
    asyncio.run(_serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
