"""`zuora-sync sync-workflows`: run the engine here (--inline) or publish commands to workers."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from application import customers as app_customers
from sync_engine import SyncOutcome, SyncRequest
from workflow_store.models import SUCCESSFUL_RUN_STATUSES, SyncReason

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.errors import CliError
from zuora_sync_cli.output import print_json, print_table
from zuora_sync_cli.publish import publish_sync


def outcome_view(name: str, outcome: SyncOutcome) -> dict[str, Any]:
    view: dict[str, Any] = {
        "customer": name,
        "customer_id": str(outcome.customer_id),
        "run_id": str(outcome.run_id) if outcome.run_id else None,
        "status": outcome.status.value,
        **outcome.stats.as_dict(),
        **outcome.stats.definitions_dict(),
        "pages": outcome.stats.pages,
        "duration_ms": outcome.duration_ms,
    }
    if outcome.error_message:
        view["error"] = outcome.error_message
    if outcome.error_kind:
        view["error_kind"] = outcome.error_kind.value
    if outcome.skip_reason:
        view["skip_reason"] = outcome.skip_reason
    return view


def check_allow_deletes(args: argparse.Namespace) -> None:
    """``--allow-deletes`` bounds one customer's deletions; never a whole fleet's."""
    if args.allow_deletes is None:
        return
    if args.all:
        raise CliError("--allow-deletes applies to one customer (--customer), not to --all")
    if args.allow_deletes < 0:
        raise CliError("--allow-deletes must be 0 or more")


def add_allow_deletes_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-deletes",
        type=int,
        metavar="N",
        help="let a run the deletion guard blocks delete at most N workflows (more pending "
        "keeps it blocked); expires after SYNC_ALLOW_DELETES_VALID_SECONDS",
    )


async def _inline(ctx: CliContext, args: argparse.Namespace) -> int:
    engine = ctx.sync_engine()
    async with ctx.uow() as uow:
        if args.all:
            listing = await app_customers.list_customers(uow, page_size=100_000, active_only=True)
            customers = [(c.id, c.name) for c in listing.items]
        else:
            c = await app_customers.find_customer(uow, args.customer)
            customers = [(c.id, c.name)]

    limit = asyncio.Semaphore(max(1, args.concurrency))

    async def one(customer_id: Any, name: str) -> dict[str, Any]:
        async with limit:
            outcome = await engine.sync_customer(
                SyncRequest(
                    customer_id=customer_id,
                    reason=SyncReason.CLI,
                    force=args.force,
                    allow_deletes=args.allow_deletes,
                )
            )
        return outcome_view(name, outcome)

    views = await asyncio.gather(*(one(cid, name) for cid, name in customers))
    failed = [v for v in views if v["status"] not in SUCCESSFUL_RUN_STATUSES]
    if args.json:
        print_json(views if args.all else views[0])
    else:
        print_table(
            views,
            [
                "customer",
                "status",
                "created",
                "updated",
                "deleted",
                "unchanged",
                "total",
                "errors",
                "duration_ms",
            ],
        )
    for view in failed:
        sys.stderr.write(f"zuora-sync: {view['customer']}: {view['status']}: {view.get('error')}\n")
    return 1 if failed else 0


async def run(ctx: CliContext, args: argparse.Namespace) -> int:
    check_allow_deletes(args)
    if not args.inline:
        return await publish_sync(ctx, args)
    return await _inline(ctx, args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sync-workflows", help="sync one customer or all customers")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--customer", help="customer name or id")
    target.add_argument("--all", action="store_true", help="every active customer")
    p.add_argument("--inline", action="store_true", help="run the sync in this process")
    p.add_argument(
        "--force",
        action="store_true",
        help="sync even if recently synced (skip coalescing); never lifts the deletion guard",
    )
    add_allow_deletes_option(p)
    p.add_argument("--wait", action="store_true", help="(publish mode) wait for the outcome")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to --wait")
    p.add_argument("--concurrency", type=int, default=4, help="customers synced at once (--inline)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)
