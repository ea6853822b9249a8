"""`sync-worker`: run one sync-worker process until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os

from sync_worker.app import build_app


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    app, _broker, _runtime = build_app()
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
