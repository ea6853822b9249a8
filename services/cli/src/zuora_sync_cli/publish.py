"""Sync commands for the workers (the verbs without --inline), and waiting for their outcome.

Commands go through the outbox like the API's (``application.sync``); the command then relays
them itself (``zuora_sync_cli.relay``) so it works when no API runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from application import runs, sync
from application.views import CommandQueued
from workflow_store.models import SUCCESSFUL_RUN_STATUSES, TERMINAL_RUN_STATUSES, SyncReason

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.errors import CliError
from zuora_sync_cli.output import print_json, print_table
from zuora_sync_cli.reads import run_view
from zuora_sync_cli.relay import deliver_and_report

_POLL_SECONDS = 0.5


async def _wait_for_runs(
    ctx: CliContext, command_ids: dict[str, uuid.UUID], wait_seconds: float
) -> list[dict[str, Any]]:
    """Poll the runs until every command id has a run in a terminal status."""
    deadline = time.monotonic() + wait_seconds
    while True:
        async with ctx.uow() as uow:
            latest = {
                run.command_id: run_view(run)
                for run in await runs.command_runs(uow, list(command_ids))
                if run.command_id is not None
            }
        done = [
            v
            for cid, v in latest.items()
            if v["status"] in TERMINAL_RUN_STATUSES and cid in command_ids
        ]
        if len(done) == len(command_ids):
            return done
        if time.monotonic() >= deadline:
            missing = len(command_ids) - len(done)
            raise CliError(
                f"timed out after {wait_seconds:.0f}s: {missing} command(s) not finished yet"
            )
        await asyncio.sleep(_POLL_SECONDS)


def _report(views: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print_json(views)
    else:
        print_table(
            views,
            ["customer", "status", "created", "updated", "deleted", "unchanged", "total", "error"],
        )
    return 0 if all(v["status"] in SUCCESSFUL_RUN_STATUSES for v in views) else 1


async def publish_sync(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.uow() as uow:
        queued: CommandQueued
        if args.all:
            queued = await sync.request_sync_all(
                uow, force=args.force, reason=SyncReason.CLI, expect=True
            )
        else:
            queued = await sync.request_customer_sync(
                uow,
                args.customer,
                force=args.force,
                allow_deletes=args.allow_deletes,
                reason=SyncReason.CLI,
            )
    await deliver_and_report(ctx, uow.committed_messages)
    if not args.wait:
        if args.json:
            print_json({"command_id": queued.command_id, "customers": len(queued.expected)})
        else:
            print(f"queued command {queued.command_id} ({len(queued.expected)} customer(s))")
        return 0
    return _report(await _wait_for_runs(ctx, queued.expected, args.timeout), args.json)


async def list_failed(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.uow() as uow:
        views = [run_view(run) for run in await runs.list_failed(uow, limit=args.limit)]
    if args.json:
        print_json(views)
    else:
        print_table(
            views, ["id", "customer", "status", "attempt", "error_kind", "started_at", "error"]
        )
    return 0


async def replay(ctx: CliContext, args: argparse.Namespace) -> int:
    try:
        run_id = uuid.UUID(args.run_id)
    except ValueError:
        raise CliError(f"not a run id: {args.run_id!r}") from None
    async with ctx.uow() as uow:
        queued = await sync.replay_run(
            uow, run_id, force=args.force, allow_deletes=args.allow_deletes
        )
    await deliver_and_report(ctx, uow.committed_messages)
    if not args.wait:
        print(f"queued replay command {queued.command_id} for run {run_id}")
        return 0
    return _report(await _wait_for_runs(ctx, queued.expected, args.timeout), args.json)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("failed", help="the failed list: runs that failed or were blocked")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_failed)

    p = sub.add_parser("replay", help="re-queue a failed sync run")
    p.add_argument("run_id")
    p.add_argument(
        "--force", action="store_true", help="skip coalescing (never lifts the deletion guard)"
    )
    p.add_argument(
        "--allow-deletes",
        type=int,
        metavar="N",
        help="(deletes_blocked runs) delete at most N workflows; more pending stays blocked",
    )
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=replay)
