"""The "ready" banner: where things are and what to type next."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Protocol

from devstack.config import DevConfig
from devstack.demo import DemoResult

__all__ = ["READY_MARKER", "RunningStack", "render_banner"]


class RunningStack(Protocol):
    """What the banner shows of the stack (``devstack.stack.Stack`` has it)."""

    @property
    def config(self) -> DevConfig: ...
    @property
    def demo(self) -> DemoResult | None: ...
    @property
    def sandbox_url(self) -> str: ...
    @property
    def kafka_bootstrap(self) -> str: ...
    @property
    def state_path(self) -> Path: ...
    @property
    def env_path(self) -> Path: ...


READY_MARKER = "Zuora Workflow Sync is ready"
"""Printed once everything is up (scripts may grep for it; the state file says the same)."""


def _relative(path: str, cwd: str) -> str:
    prefix = cwd.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def render_banner(stack: RunningStack, startup_seconds: float) -> str:
    cfg = stack.config
    api = cfg.api_url
    rule = "=" * 78
    key = cfg.api_key if cfg.uses_dev_api_key else "<one of your API_KEYS>"
    key_note = (
        "(development key, accepted because API_KEYS is unset)"
        if cfg.uses_dev_api_key
        else "(from API_KEYS)"
    )
    kafka_note = (
        "local Tansu broker, memory only" if not cfg.kafka_bootstrap else "KAFKA_BOOTSTRAP_SERVERS"
    )
    demo = stack.demo.customers if stack.demo else []
    first_id = demo[0].id if demo else "<customer-id>"
    customers = ", ".join(f"{c.name} ({c.workflow_count} workflows)" for c in demo) or "none"
    env_file = _relative(str(stack.env_path), str(cfg.cwd))
    state_file = _relative(str(stack.state_path), str(cfg.cwd))
    new_customer = shlex.quote(
        '{"name": "my-tenant", "base_url": "' + stack.sandbox_url + '", '
        '"client_id": "CLIENT_ID", "client_secret": "CLIENT_SECRET"}'
    )
    lines = [
        rule,
        f"  {READY_MARKER} (embedded stack up in {startup_seconds:.1f}s). Ctrl-C stops it.",
        rule,
        f"  Web UI         {api}/ui/   sign in with the API key below (once; a session cookie)",
        f"  API            {api}    docs: {api}/docs",
        f"  API key        {key}  {key_note}",
        f"  SANDBOX_URL    {stack.sandbox_url}  (Zuora emulator, demo tenants)",
        f"  Kafka          {stack.kafka_bootstrap}  ({kafka_note})",
        f"  Database       {cfg.database_url_redacted}",
        f"  State file     {state_file}   CLI environment: {env_file}",
        f"  Demo customers {customers}",
        "",
        "  Try the API:",
        f"    export API={api} KEY={shlex.quote(key or '')}",
        '    curl -s -H "Authorization: Bearer $KEY" $API/customers',
        f"    export CUSTOMER={first_id}   # {demo[0].name if demo else 'a customer id'}",
        '    curl -s -H "Authorization: Bearer $KEY" "$API/customers/$CUSTOMER/workflows?page_size=5"',  # noqa: E501
        '    curl -s -H "Authorization: Bearer $KEY" "$API/tasks?customer=$CUSTOMER&page_size=5"',
        "    # a workflow's definition (tasks, linkages); ZUORA_ID from the list above",
        '    curl -s -H "Authorization: Bearer $KEY" $API/customers/$CUSTOMER/workflows/ZUORA_ID/definition',  # noqa: E501
        '    curl -s -XPOST -H "Authorization: Bearer $KEY" $API/customers/$CUSTOMER/sync',
        '    curl -s -XPOST -H "Authorization: Bearer $KEY" $API/sync        # sync everybody',
        "",
        "  Add a customer (a new sandbox tenant, then the customer pointing at it):",
        f"    curl -s -XPOST {stack.sandbox_url}/_sandbox/tenants"
        " -H 'content-type: application/json' -d "
        + shlex.quote('{"name": "my-tenant", "workflow_count": 25}'),
        "    curl -s -XPOST -H \"Authorization: Bearer $KEY\" -H 'content-type: application/json' "
        f"$API/customers -d {new_customer}",
        "",
        "  The CLI (another terminal, in this directory):",
        f"    source {env_file}",
        "    uv run zuora-sync customers list",
        "    uv run zuora-sync workflows list --customer acme-demo",
        "    uv run zuora-sync workflows show --customer acme-demo ZUORA_ID",
        "    uv run zuora-sync sync-workflows --customer acme-demo --wait",
        "    uv run zuora-sync runs list --limit 5",
        "    uv run zuora-sync failed",
        rule,
    ]
    return "\n".join(lines)
