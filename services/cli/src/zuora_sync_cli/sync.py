"""`zuora-sync sync-workflows`: run the engine here (--inline) or publish commands to workers."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sync_engine import SyncOutcome, SyncRequest
from workflow_store.customers import list_customers, resolve_customer

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.output import print_json, print_table
from zuora_sync_cli.publish import publish_sync


def outcome_view(name: str, outcome: SyncOutcome) -> dict[str, Any]:
    view: dict[str, Any] = {
        "customer": name,
        "customer_id": str(outcome.customer_id),
        "run_id": str(outcome.run_id) if outcome.run_id else None,
        "status": outcome.status.value,
        **outcome.stats.as_dict(),
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


async def _inline(ctx: CliContext, args: argparse.Namespace) -> int:
    engine = ctx.sync_engine()
    async with ctx.sessions() as session:
        if args.all:
            customers = [(c.id, c.name) for c in await list_customers(session, active_only=True)]
        else:
            c = await resolve_customer(session, args.customer)
            customers = [(c.id, c.name)]

    limit = asyncio.Semaphore(max(1, args.concurrency))

    async def one(customer_id: Any, name: str) -> dict[str, Any]:
        async with limit:
            outcome = await engine.sync_customer(
                SyncRequest(customer_id=customer_id, reason="cli", force=args.force)
            )
        return outcome_view(name, outcome)

    views = await asyncio.gather(*(one(cid, name) for cid, name in customers))
    failed = [v for v in views if v["status"] not in ("succeeded", "skipped")]
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
        "--force", action="store_true", help="ignore coalescing and override the deletion guard"
    )
    p.add_argument("--wait", action="store_true", help="(publish mode) wait for the outcome")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to --wait")
    p.add_argument("--concurrency", type=int, default=4, help="customers synced at once (--inline)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)
