"""`sync-worker`: run one sync-worker process until SIGINT/SIGTERM.

Logs go to stderr as JSON lines (``LOG_FORMAT=text`` for people; the default in
``APP_ENV=development``); ``/metrics`` is served on ``METRICS_HOST:METRICS_PORT``
(127.0.0.1:9100 by default, ``METRICS_PORT=0`` disables it).
"""

from __future__ import annotations

import asyncio

from observability.logging import configure_logging

from sync_worker.app import build_app
from sync_worker.settings import SyncWorkerSettings


def main() -> None:
    settings = SyncWorkerSettings()
    configure_logging("sync-worker", settings=settings.log)
    app, _broker, _runtime = build_app(settings)
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
