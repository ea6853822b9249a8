"""Publishing sync commands to Kafka (the verbs without --inline), and waiting for their outcome."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from event_bus.broker import KafkaPublisher
from event_bus.settings import KafkaSettings
from pydantic import BaseModel
from sqlalchemy import select
from sync_messages import SyncAllCustomers, SyncCustomerWorkflows, topics
from workflow_store.customers import list_customers, resolve_customer
from workflow_store.models import (
    FAILED_RUN_STATUSES,
    REPLAYABLE_RUN_STATUSES,
    SUCCESSFUL_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    Customer,
    RunStatus,
    SyncReason,
    SyncRun,
)

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.errors import CliError
from zuora_sync_cli.output import print_json, print_table
from zuora_sync_cli.reads import run_view

_POLL_SECONDS = 0.5


async def _publish(messages: list[tuple[str, BaseModel, str | None]]) -> None:
    settings = KafkaSettings()
    publisher = KafkaPublisher(settings, component="cli")
    try:
        await asyncio.gather(
            *(publisher.publish_message(topic, msg, key=key) for topic, msg, key in messages)
        )
    except Exception as exc:
        raise CliError(
            f"could not publish to Kafka at {settings.bootstrap_servers}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    finally:
        await publisher.close()


async def _wait_for_runs(
    ctx: CliContext, command_ids: dict[str, str], wait_seconds: float
) -> list[dict[str, Any]]:
    """Poll sync_runs until every command id has a run in a terminal status."""
    deadline = time.monotonic() + wait_seconds
    while True:
        async with ctx.sessions() as session:
            rows = await session.execute(
                select(SyncRun, Customer.name)
                .join(Customer, Customer.id == SyncRun.customer_id)
                .where(SyncRun.command_id.in_(list(command_ids)))
                .order_by(SyncRun.started_at)
            )
            latest: dict[str, dict[str, Any]] = {}
            for run, name in rows.all():
                if run.command_id is not None:
                    latest[run.command_id] = run_view(run, name)
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
    async with ctx.sessions() as session:
        if args.all:
            request = SyncAllCustomers(
                reason=SyncReason.CLI, slot=str(uuid.uuid4()), force=args.force
            )
            active = [c.id for c in await list_customers(session, active_only=True)]
            expected = {request.command_for(cid).id: str(cid) for cid in active}
            messages: list[tuple[str, BaseModel, str | None]] = [(topics.SYNC_ALL, request, None)]
            command_id = request.id
        else:
            customer = await resolve_customer(session, args.customer)
            command = SyncCustomerWorkflows(
                customer_id=customer.id,
                reason=SyncReason.CLI,
                force=args.force,
                allow_deletes=args.allow_deletes,
            )
            expected = {command.id: str(customer.id)}
            messages = [(topics.SYNC_COMMANDS, command, str(customer.id))]
            command_id = command.id
    await _publish(messages)
    if not args.wait:
        if args.json:
            print_json({"command_id": command_id, "customers": len(expected)})
        else:
            print(f"published command {command_id} ({len(expected)} customer(s))")
        return 0
    return _report(await _wait_for_runs(ctx, expected, args.timeout), args.json)


async def list_failed(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.sessions() as session:
        rows = await session.execute(
            select(SyncRun, Customer.name)
            .join(Customer, Customer.id == SyncRun.customer_id)
            .where(SyncRun.status.in_(FAILED_RUN_STATUSES))
            .order_by(SyncRun.started_at.desc())
            .limit(args.limit)
        )
        views = [run_view(run, name) for run, name in rows.all()]
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
    async with ctx.sessions() as session:
        run = await session.get(SyncRun, run_id)
        if run is None:
            raise CliError(f"sync run {run_id} not found")
        if run.status not in REPLAYABLE_RUN_STATUSES:
            raise CliError(f"sync run {run_id} is {run.status}; only failed runs are replayed")
        if args.allow_deletes is not None and args.allow_deletes < 0:
            raise CliError("--allow-deletes must be 0 or more")
        if args.allow_deletes is not None and run.status != RunStatus.DELETES_BLOCKED:
            raise CliError(
                f"--allow-deletes applies to the replay of a deletes_blocked run; "
                f"sync run {run_id} is {run.status}"
            )
        command = SyncCustomerWorkflows(
            customer_id=run.customer_id,
            reason=SyncReason.REPLAY,
            replay_of=run.id,
            force=args.force,
            allow_deletes=args.allow_deletes,
        )
    await _publish([(topics.SYNC_COMMANDS, command, str(command.customer_id))])
    if not args.wait:
        print(f"published replay command {command.id} for run {run_id}")
        return 0
    return _report(
        await _wait_for_runs(ctx, {command.id: str(command.customer_id)}, args.timeout), args.json
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("failed", help="the failed list: runs that failed for good or were blocked")
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
