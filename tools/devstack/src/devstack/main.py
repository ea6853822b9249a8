"""``zuora-sync-dev`` (``make run``): the whole product on one machine, in the foreground.

Exit codes: 0 after a clean stop on SIGINT/SIGTERM, 1 when a piece did not come up or died,
2 for a configuration error.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Sequence

from devstack.banner import render_banner
from devstack.config import DevConfig
from devstack.procs import Interrupted, LogMux, MuxLogHandler, StartupError
from devstack.stack import Stack, install_signal_handlers

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="zuora-sync-dev",
        description="Start the embedded stack (local Kafka-compatible broker, Zuora sandbox, "
        "migrations, customer API, sync worker, scheduler) and create demo customers. "
        "Configured by environment variables: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, API_KEYS, "
        "ENCRYPTION_KEYS, ZUORA_ALLOWED_BASE_URLS, API_PORT, SANDBOX_PORT, DEV_DATA_DIR.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    _parser().parse_args(argv)
    mux = LogMux()
    logging.basicConfig(level=logging.WARNING, handlers=[MuxLogHandler(mux)], force=True)
    try:
        config = DevConfig.from_env()
    except ValueError as exc:
        mux.write("devstack", f"configuration error: {exc}")
        return 2
    stop_requested = threading.Event()
    install_signal_handlers(stop_requested, mux)
    stack = Stack(config, mux, stop_requested)
    started = time.monotonic()
    code = 0
    failure = ""
    try:
        stack.start()
        mux.block(render_banner(stack, time.monotonic() - started))
        while not stop_requested.wait(0.5):
            dead = stack.first_dead_child()
            if dead is not None:
                failure = f"{dead.name} exited unexpectedly with code {dead.returncode}"
                mux.write("devstack", f"ERROR: {failure}; stopping everything")
                code = 1
                break
    except Interrupted:
        pass
    except StartupError as exc:
        failure = str(exc)
        mux.write("devstack", f"ERROR: {failure}")
        code = 1
    except Exception as exc:
        failure = f"unexpected failure while starting: {exc!r}"
        mux.write("devstack", f"ERROR: {failure}")
        code = 1
    finally:
        stack.stop()
    mux.write("devstack", "stopped cleanly" if code == 0 else f"stopped after a failure: {failure}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
