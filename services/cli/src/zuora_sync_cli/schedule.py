"""`zuora-sync schedule`: when the scheduler fires next (same computation as the scheduler)."""

from __future__ import annotations

import argparse

from sync_scheduler.settings import SchedulerSettings
from sync_scheduler.slots import next_fire_times

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.output import print_json, print_table


async def show(ctx: CliContext, args: argparse.Namespace) -> int:
    settings = SchedulerSettings()
    upcoming = next_fire_times(settings, count=args.count)
    views = [{"reason": reason, "fires_at": when.isoformat()} for reason, when in upcoming]
    if args.json:
        print_json(views)
    else:
        print(
            f"hourly: {settings.hourly_cron!r}  nightly: {settings.nightly_cron!r}  "
            f"timezone: {settings.timezone}"
        )
        print_table(views, ["reason", "fires_at"])
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schedule", help="show the next scheduled sync-all times")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=show)
