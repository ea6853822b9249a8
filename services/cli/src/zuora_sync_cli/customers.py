"""`zuora-sync customers add|list|remove`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workflow_store.customers import add_customer, list_customers, remove_customer
from workflow_store.models import CredentialStatus, Customer
from zuora_client import ZuoraClient, ZuoraCredentials, check_base_url

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.errors import CliError
from zuora_sync_cli.output import print_json, print_table

_MAX_SECRET_LENGTH = 200


def customer_view(customer: Customer) -> dict[str, Any]:
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
    if len(secret) > _MAX_SECRET_LENGTH or "\n" in secret:
        raise CliError("--client-secret-stdin: expected one line of at most 200 characters")
    return secret


async def add(ctx: CliContext, args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name or len(name) > 200:
        raise CliError("--name must be 1 to 200 characters")
    if not args.client_id.strip():
        raise CliError("--client-id must not be empty")
    base_url = check_base_url(args.base_url, ctx.store.allowed_base_urls)
    secret = _read_secret_from_stdin()
    box = ctx.secret_box()
    if args.check_credentials:
        creds = ZuoraCredentials(
            base_url=base_url,
            client_id=args.client_id.strip(),
            client_secret=secret,
            entity_id=args.entity_id,
        )
        async with ZuoraClient(creds, allowed_base_urls=ctx.store.allowed_base_urls) as client:
            await client.check_credentials()
    async with ctx.sessions() as session, session.begin():
        customer = await add_customer(
            session,
            box,
            name=name,
            base_url=base_url,
            client_id=args.client_id.strip(),
            client_secret=secret,
            entity_id=args.entity_id,
        )
        if args.check_credentials:
            customer.credential_status = CredentialStatus.VALID
        view = customer_view(customer)
    if args.json:
        print_json(view)
    else:
        print(f"added customer {view['name']} ({view['id']})")
    return 0


async def list_(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.sessions() as session:
        views = [customer_view(c) for c in await list_customers(session)]
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


async def remove(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.sessions() as session, session.begin():
        customer = await remove_customer(session, args.name)
        name, cid = customer.name, customer.id
    print(f"removed customer {name} ({cid}) with its workflows and sync runs")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("customers", help="manage customers (Zuora tenants)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p_add = verbs.add_parser("add", help="add a customer")
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

    p_rm = verbs.add_parser("remove", help="remove a customer and its stored workflows")
    p_rm.add_argument("name", help="customer name or id")
    p_rm.set_defaults(handler=remove)
