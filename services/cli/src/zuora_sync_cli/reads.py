"""Read-only views: `zuora-sync workflows list` and `zuora-sync runs list`."""

from __future__ import annotations

import argparse
from typing import Any

from application import runs
from application.views import RunView
from application.workflows import list_customer_workflows
from workflow_store.models import RunStatus

from zuora_sync_cli import definitions
from zuora_sync_cli.context import CliContext
from zuora_sync_cli.output import print_json, print_table

# What fits a terminal; --json has every field.
WORKFLOW_TABLE_COLUMNS = (
    "zuora_id",
    "name",
    "status",
    "active_version",
    "interval",
    "zuora_updated_at",
)


async def list_workflows(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.uow() as uow:
        views = [
            {"zuora_id": w.zuora_id, **w.fields, "last_synced_at": w.last_synced_at}
            for w in await list_customer_workflows(uow, args.customer)
        ]
    if args.json:
        print_json(views)
    else:
        print_table(views, WORKFLOW_TABLE_COLUMNS)
    return 0


def run_view(run: RunView) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "customer": run.customer_name,
        "customer_id": str(run.customer_id),
        "command_id": run.command_id,
        "reason": run.reason,
        "attempt": run.attempt,
        "status": run.status,
        "pages": run.pages,
        "created": run.created,
        "updated": run.updated,
        "deleted": run.deleted,
        "unchanged": run.unchanged,
        "total": run.total,
        "blocked_deletes": run.blocked_deletes,
        "error_kind": run.error_kind,
        "error": run.error_message,
        "skip_reason": run.skip_reason,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "definitions_fetched": run.definitions_fetched,
        "definitions_changed": run.definitions_changed,
        "definitions_failed": run.definitions_failed,
    }


async def list_runs(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.uow() as uow:
        listing = await runs.list_runs(
            uow,
            page_size=args.limit,
            customer=args.customer,
            statuses=[args.status] if args.status else (),
        )
    views = [run_view(run) for run in listing.items]
    if args.json:
        print_json(views)
    else:
        print_table(
            views,
            [
                "id",
                "customer",
                "reason",
                "attempt",
                "status",
                "created",
                "updated",
                "deleted",
                "total",
                "started_at",
                "error",
            ],
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p_wf = sub.add_parser("workflows", help="read the stored workflows")
    wf_verbs = p_wf.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = wf_verbs.add_parser("list", help="list a customer's stored workflows")
    p.add_argument("--customer", required=True, help="customer name or id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_workflows)
    definitions.register_verbs(wf_verbs)

    p_runs = sub.add_parser("runs", help="sync run history")
    run_verbs = p_runs.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = run_verbs.add_parser("list", help="list sync runs, newest first")
    p.add_argument("--customer", help="customer name or id")
    p.add_argument("--status", choices=[s.value for s in RunStatus])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_runs)
