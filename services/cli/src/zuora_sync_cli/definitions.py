"""`zuora-sync workflows show | export | diff`: a workflow's stored definition (from the database).

The reads are ``application.workflow_reads`` (show) and ``workflow_store.definitions``, the same
functions the API and the UI use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from application.workflow_reads import workflow_overview
from workflow_store.customers import resolve_customer
from workflow_store.definitions import (
    DefinitionNotFoundError,
    diff_stored_definitions,
    load_definition,
)

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.errors import CliError
from zuora_sync_cli.output import print_json, print_table


async def show(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.sessions() as session:
        view = await workflow_overview(session, args.customer, args.zuora_id)
    if args.json:
        print_json(view)
    else:
        width = max(len(k) for k in view)
        for key, value in view.items():
            sys.stdout.write(f"{key.ljust(width)}  {'-' if value is None else value}\n")
    return 0


async def export(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.sessions() as session:
        customer = await resolve_customer(session, args.customer)
        stored = await load_definition(session, customer.id, args.zuora_id)
    text = json.dumps(stored.document, indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    # Written next to the target and renamed: a failed write never leaves half a file.
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    sys.stderr.write(f"definition {stored.info.content_hash[:12]} written to {target}\n")
    return 0


async def diff(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.sessions() as session:
        customer = await resolve_customer(session, args.customer)
        try:
            before, after, changes = await diff_stored_definitions(
                session, customer.id, args.zuora_id, from_hash=args.from_hash, to_hash=args.to_hash
            )
        except DefinitionNotFoundError as exc:
            raise CliError(str(exc)) from None
    sys.stdout.write(
        f"from {before.content_hash[:12]} (version {before.version or '-'}) "
        f"to {after.content_hash[:12]} (version {after.version or '-'})\n"
    )
    rows: list[dict[str, Any]] = [
        *(
            {"change": "task added", "id": t.get("id"), "what": t.get("name")}
            for t in changes.tasks_added
        ),
        *(
            {"change": "task removed", "id": t.get("id"), "what": t.get("name")}
            for t in changes.tasks_removed
        ),
        *(
            {
                "change": "task changed",
                "id": c.task_id,
                "what": ", ".join(f.field for f in c.changes),
            }
            for c in changes.tasks_changed
        ),
        *(
            {"change": f"linkage {kind}", "id": None, "what": _edge(link)}
            for kind, links in (
                ("added", changes.linkages_added),
                ("removed", changes.linkages_removed),
            )
            for link in links
        ),
        *(
            {"change": "workflow changed", "id": None, "what": f.field}
            for f in changes.workflow_changes
        ),
    ]
    print_table(rows, ["change", "id", "what"])
    return 0


def _edge(link: dict[str, Any]) -> str:
    source = link["source_task_id"] if link["source_task_id"] is not None else "start"
    return f"{source} -> {link['target_task_id']} [{link['linkage_type']}]"


def register_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add show / export / diff to ``zuora-sync workflows``."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--customer", required=True, help="customer name or id")
        p.add_argument("zuora_id", type=int, metavar="ZUORA_ID", help="the workflow's Zuora id")

    p = verbs.add_parser("show", help="a workflow's fields, its definition version and task count")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=show)
    p = verbs.add_parser("export", help="the workflow's current definition JSON")
    common(p)
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(handler=export)
    p = verbs.add_parser("diff", help="what changed between two stored definitions")
    common(p)
    p.add_argument("--from", dest="from_hash", metavar="HASH", help="default: the one before --to")
    p.add_argument("--to", dest="to_hash", metavar="HASH", help="default: the current one")
    p.set_defaults(handler=diff)
