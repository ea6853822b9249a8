"""Admin verbs: `zuora-sync db upgrade|downgrade|current` and `zuora-sync rotate-secrets`."""

from __future__ import annotations

import argparse

from workflow_store import migrate
from workflow_store.customers import rotate_secrets

from zuora_sync_cli.context import CliContext


async def db_upgrade(ctx: CliContext, args: argparse.Namespace) -> int:
    await migrate.upgrade_async(ctx.store.database_url, args.revision)
    print(f"database at revision {await migrate.current_async(ctx.store.database_url)}")
    return 0


async def db_downgrade(ctx: CliContext, args: argparse.Namespace) -> int:
    await migrate.downgrade_async(ctx.store.database_url, args.revision)
    current = await migrate.current_async(ctx.store.database_url)
    print(f"database at revision {current or 'base (empty)'}")
    return 0


async def db_current(ctx: CliContext, args: argparse.Namespace) -> int:
    current = await migrate.current_async(ctx.store.database_url)
    print(current or "base (empty)")
    return 0


async def rotate(ctx: CliContext, args: argparse.Namespace) -> int:
    box = ctx.secret_box()
    async with ctx.sessions() as session, session.begin():
        count = await rotate_secrets(session, box)
    print(f"re-encrypted {count} customer secret(s) under the newest key")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p_db = sub.add_parser("db", help="database migrations")
    verbs = p_db.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("upgrade", help="migrate to the newest (or given) revision")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(handler=db_upgrade)
    p = verbs.add_parser("downgrade", help="roll back one (or to the given) revision")
    p.add_argument("revision", nargs="?", default="-1", help='e.g. -1 (default) or "base"')
    p.set_defaults(handler=db_downgrade)
    p = verbs.add_parser("current", help="show the current revision")
    p.set_defaults(handler=db_current)

    p_rot = sub.add_parser(
        "rotate-secrets", help="re-encrypt every stored client secret under the newest key"
    )
    p_rot.set_defaults(handler=rotate)
