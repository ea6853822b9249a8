"""`zuora-sync`: the operator's command line.

Every failure ends as one line on stderr and a non-zero exit code; no tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from zuora_sync_cli import admin, customers, publish, reads, schedule, sync
from zuora_sync_cli.context import open_context
from zuora_sync_cli.errors import explain


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zuora-sync",
        description="Keep a local copy of every customer's Zuora Workflows. "
        "Configured by environment variables (see .env.example).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.register(sub)
    customers.register(sub)
    sync.register(sub)
    reads.register(sub)
    publish.register(sub)
    schedule.register(sub)
    return parser


async def _dispatch(args: argparse.Namespace) -> int:
    async with open_context() as ctx:
        result: int = await args.handler(ctx, args)
        return result


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(_dispatch(args))
    except KeyboardInterrupt:
        sys.stderr.write("zuora-sync: interrupted\n")
        return 130
    except Exception as exc:  # the contract: one clear line, no traceback
        code = getattr(exc, "exit_code", 1)
        sys.stderr.write(f"zuora-sync: error: {explain(exc)}\n")
        return code if isinstance(code, int) and code > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
