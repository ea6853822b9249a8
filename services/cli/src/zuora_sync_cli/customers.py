"""`zuora-sync customers add|list|check|remove`: the application's customer use cases."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from application import customers
from application.customers import NewCustomer
from application.views import CustomerView

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.errors import CliError
from zuora_sync_cli.output import print_json, print_table
from zuora_sync_cli.relay import deliver_and_report

_LIST_PAGE = 500


def customer_view(customer: CustomerView) -> dict[str, Any]:
    """What we show of a customer: never the secret, not even encrypted."""
    return {
        "id": str(customer.id),
        "name": customer.name,
        "base_url": customer.base_url,
        "client_id": customer.client_id,
        "entity_id": customer.entity_id,
        "active": customer.active,
        "credential_status": customer.credential_status,
        "last_sync_status": customer.last_sync_status,
        "last_sync_at": customer.last_sync_at,
        "last_successful_sync_at": customer.last_successful_sync_at,
    }


def _read_secret_from_stdin() -> str:
    if sys.stdin is None or sys.stdin.closed:
        raise CliError("--client-secret-stdin: no standard input to read the secret from")
    secret = sys.stdin.read().rstrip("\r\n")
    if not secret.strip():
        raise CliError("--client-secret-stdin: the secret read from standard input is empty")
    if "\n" in secret:
        raise CliError("--client-secret-stdin: expected one line")
    return secret  # the length and character rules are the use case's (application.rules)


async def add(ctx: CliContext, args: argparse.Namespace) -> int:
    secret = _read_secret_from_stdin()
    new = NewCustomer(
        name=args.name,
        base_url=args.base_url,
        client_id=args.client_id,
        client_secret=secret,
        entity_id=args.entity_id,
        check_credentials=args.check_credentials,
    )
    async with ctx.uow() as uow:
        view = customer_view(await customers.add_customer(uow, ctx.policy(), new))
    # CustomerCreated is committed: hand it to Kafka so the workers sync it now.
    await deliver_and_report(ctx, uow.committed_messages)
    if args.json:
        print_json(view)
    else:
        print(f"added customer {view['name']} ({view['id']})")
    return 0


async def list_(ctx: CliContext, args: argparse.Namespace) -> int:
    views: list[dict[str, Any]] = []
    async with ctx.uow() as uow:
        for page in range(1, 1_000_000):  # bounded by the number of customers
            listing = await customers.list_customers(uow, page=page, page_size=_LIST_PAGE)
            views += [customer_view(c) for c in listing.items]
            if not listing.items or page * _LIST_PAGE >= listing.total:
                break
    if args.json:
        print_json(views)
    else:
        print_table(
            views,
            [
                "name",
                "id",
                "base_url",
                "active",
                "credential_status",
                "last_sync_status",
                "last_sync_at",
            ],
        )
    return 0


async def check(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.uow() as uow:
        checked = await customers.check_credentials(uow, ctx.policy(), args.name)
    print(f"customer {checked.name}: credentials {checked.credential_status}")
    return 0


async def remove(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.uow() as uow:
        removed = await customers.remove_customer(uow, args.name)
    await deliver_and_report(ctx, uow.committed_messages)
    print(f"removed customer {removed.name} ({removed.id}) with its workflows and sync runs")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("customers", help="manage customers (Zuora tenants)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p_add = verbs.add_parser(
        "add", help="add a customer (the workers sync it at once, as one added over HTTP)"
    )
    p_add.add_argument("--name", required=True)
    p_add.add_argument("--base-url", required=True, help="Zuora REST base URL")
    p_add.add_argument("--client-id", required=True)
    p_add.add_argument(
        "--client-secret-stdin",
        action="store_true",
        required=True,
        help="read the client secret from standard input (never from the command line)",
    )
    p_add.add_argument("--entity-id", default=None)
    p_add.add_argument(
        "--check-credentials", action="store_true", help="request a token before saving"
    )
    p_add.add_argument("--json", action="store_true")
    p_add.set_defaults(handler=add)

    p_list = verbs.add_parser("list", help="list customers")
    p_list.add_argument("--json", action="store_true")
    p_list.set_defaults(handler=list_)

    p_check = verbs.add_parser(
        "check", help="request a token with the stored credentials and record the answer"
    )
    p_check.add_argument("name", help="customer name or id")
    p_check.set_defaults(handler=check)

    p_rm = verbs.add_parser("remove", help="remove a customer and its stored workflows")
    p_rm.add_argument("name", help="customer name or id")
    p_rm.set_defaults(handler=remove)
