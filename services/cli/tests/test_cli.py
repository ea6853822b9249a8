"""`zuora-sync` as a user runs it: a real process against PostgreSQL and the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy
from event_bus.testing import consume_records
from sqlalchemy import select
from sync_messages import topics
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.models import WORKFLOW_FIELDS, OutboxMessage, RunStatus
from zuora_sync_cli.main import main
from zuora_sync_cli.reads import WORKFLOW_TABLE_COLUMNS

pytestmark = pytest.mark.integration

KEY = SecretBox.generate_key()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str, env: dict[str, str], stdin: str | None = None) -> Result:
    """Run the CLI in this process (its `main()` is what the console script calls) with the given
    environment and standard input; `test_console_script_runs_as_a_process` covers the process."""
    saved_env = dict(os.environ)
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin or ""), out, err
    try:
        code = main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(saved_env)
        logging.getLogger().handlers.clear()
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def env(postgres_url: str, zuora_sandbox: Any) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "KAFKA_"))}
    base.update(
        DATABASE_URL=postgres_url,
        ENCRYPTION_KEYS=KEY,
        APP_ENV="production",
        ZUORA_ALLOWED_BASE_URLS=zuora_sandbox.base_url,
        SYNC_ZUORA_MAX_RETRIES="1",
        SYNC_ZUORA_BACKOFF_BASE_SECONDS="0.01",
        # Nothing listens there: commands leave their messages queued in the outbox (the
        # tests that need Kafka start one and override this).
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
    )
    result = run("db", "upgrade", env=base)
    assert result.returncode == 0, result.stderr
    return base


def ok(result: Result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails_cleanly(result: Result, *needles: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("zuora-sync:")]
    assert lines, result.stderr
    for needle in needles:
        assert needle in result.stderr
    return result.stderr


def add(env: dict[str, str], tenant: Any, base_url: str, name: str | None = None) -> None:
    ok(
        run(
            "customers",
            "add",
            "--name",
            name or tenant.name,
            "--base-url",
            base_url,
            "--client-id",
            tenant.client_id,
            "--client-secret-stdin",
            env=env,
            stdin=tenant.client_secret + "\n",
        )
    )


def test_add_sync_read_and_remove_a_customer(env: dict[str, str], zuora_sandbox: Any) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=130, seed=1)
    add(env, tenant, zuora_sandbox.base_url)
    listed = json.loads(ok(run("customers", "list", "--json", env=env)))
    assert [c["name"] for c in listed] == ["acme"]
    assert tenant.client_secret not in json.dumps(listed)

    stats = json.loads(
        ok(run("sync-workflows", "--customer", "acme", "--inline", "--json", env=env))
    )
    assert {k: stats[k] for k in ("created", "updated", "deleted", "unchanged", "total")} == {
        "created": 130,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "total": 130,
    }
    assert stats["errors"] == 0 and stats["status"] == "succeeded"

    tenant.update_workflow(sorted(tenant.workflows)[0], name="Renamed")
    again = json.loads(ok(run("sync-workflows", "--all", "--inline", "--force", "--json", env=env)))
    assert again[0]["updated"] == 1 and again[0]["unchanged"] == 129

    workflows = json.loads(ok(run("workflows", "list", "--customer", "acme", "--json", env=env)))
    assert len(workflows) == 130 and "Renamed" in {w["name"] for w in workflows}
    # Every field of the workflow (the store's one list), none of the sync's bookkeeping.
    assert list(workflows[0]) == ["zuora_id", *WORKFLOW_FIELDS, "last_synced_at"]
    table = ok(run("workflows", "list", "--customer", "acme", env=env))
    assert table.split("\n", 1)[0].split() == [c.upper() for c in WORKFLOW_TABLE_COLUMNS]
    runs = json.loads(ok(run("runs", "list", "--customer", "acme", "--json", env=env)))
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]

    assert "removed customer acme" in ok(run("customers", "remove", "acme", env=env))
    assert json.loads(ok(run("customers", "list", "--json", env=env))) == []


def test_force_never_deletes_and_allow_deletes_applies_only_a_sufficient_bound(
    env: dict[str, str], zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=50, seed=31)
    add(env, tenant, zuora_sandbox.base_url)
    sync = ("sync-workflows", "--customer", "acme", "--inline", "--json")
    ok(run(*sync, env=env))
    raw = dict(tenant.workflows)
    ids = sorted(raw)
    for wid in ids:
        tenant.delete_workflow(wid)
    forced = run(*sync, "--force", env=env)
    assert forced.returncode == 1 and json.loads(forced.stdout)["status"] == "deletes_blocked"
    for wid in ids[40:]:
        tenant.put_workflow(raw[wid])  # 40 pending deletions
    short = run(*sync, "--allow-deletes", "5", env=env)
    assert short.returncode == 1
    assert json.loads(short.stdout)["status"] == "deletes_blocked"
    assert "40 of 50" in short.stderr
    for wid in ids[30:40]:
        tenant.put_workflow(raw[wid])  # 30 pending deletions
    applied = json.loads(ok(run(*sync, "--allow-deletes", "30", env=env)))
    assert applied["status"] == "succeeded" and applied["deleted"] == 30
    workflows = json.loads(ok(run("workflows", "list", "--customer", "acme", "--json", env=env)))
    assert len(workflows) == 20

    refused = run("sync-workflows", "--all", "--inline", "--allow-deletes", "5", env=env)
    fails_cleanly(refused, "--allow-deletes applies to one customer")


def test_failed_sync_exits_non_zero_with_the_reason(
    env: dict[str, str], zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=5, seed=2)
    add(env, tenant, zuora_sandbox.base_url)
    tenant.client_secret = "rotated-on-the-zuora-side"
    result = run("sync-workflows", "--customer", "acme", "--inline", env=env)
    fails_cleanly(result, "acme", "failed", "AuthenticationError")
    failed = json.loads(ok(run("runs", "list", "--status", "failed", "--json", env=env)))
    assert len(failed) == 1 and failed[0]["error_kind"] == "permanent"
    assert json.loads(ok(run("failed", "--json", env=env)))[0]["id"] == failed[0]["id"]


def test_runs_list_filters_on_every_stored_status(
    env: dict[str, str], zuora_sandbox: Any, postgres_url: str
) -> None:
    """`--status` accepts each status the store holds, retry_scheduled (the worker's) included."""
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=4)
    add(env, tenant, zuora_sandbox.base_url)
    ok(run("sync-workflows", "--customer", "acme", "--inline", env=env))
    ok(run("sync-workflows", "--customer", "acme", "--inline", "--force", env=env))
    first, second = json.loads(ok(run("runs", "list", "--json", env=env)))
    # What the worker's ledger writes over a failed run it retries (no worker runs here).
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.text("UPDATE sync_runs SET status = 'retry_scheduled' WHERE id = :id"),
                {"id": second["id"]},
            )
    finally:
        engine.dispose()
    listed = json.loads(ok(run("runs", "list", "--status", "retry_scheduled", "--json", env=env)))
    assert [(r["id"], r["status"]) for r in listed] == [(second["id"], "retry_scheduled")]
    assert [
        r["id"]
        for r in json.loads(ok(run("runs", "list", "--status", "succeeded", "--json", env=env)))
    ] == [first["id"]]
    for status in RunStatus:
        ok(run("runs", "list", "--status", status.value, env=env))


def test_bad_input_gives_one_clear_line_and_writes_nothing(
    env: dict[str, str], zuora_sandbox: Any, postgres_url: str
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=5, seed=3)
    fails_cleanly(run("sync-workflows", "--customer", "nobody", "--inline", env=env), "not found")
    fails_cleanly(
        run(
            "customers",
            "add",
            "--name",
            "evil",
            "--base-url",
            "https://rest.zuora.com.evil.com",
            "--client-id",
            "x",
            "--client-secret-stdin",
            env=env,
            stdin="s3cret\n",
        ),
        "official Zuora REST base URL",
    )
    fails_cleanly(
        run(
            "customers",
            "add",
            "--name",
            "empty",
            "--base-url",
            zuora_sandbox.base_url,
            "--client-id",
            "x",
            "--client-secret-stdin",
            env=env,
            stdin="\n",
        ),
        "empty",
    )
    add(env, tenant, zuora_sandbox.base_url)
    duplicate = run(
        "customers",
        "add",
        "--name",
        "acme",
        "--base-url",
        zuora_sandbox.base_url,
        "--client-id",
        "x",
        "--client-secret-stdin",
        env=env,
        stdin="other\n",
    )
    fails_cleanly(duplicate, "acme")
    assert len(json.loads(ok(run("customers", "list", "--json", env=env)))) == 1

    placeholder = dict(env, ENCRYPTION_KEYS="changeme")
    stderr = fails_cleanly(
        run(
            "customers",
            "add",
            "--name",
            "x",
            "--base-url",
            zuora_sandbox.base_url,
            "--client-id",
            "x",
            "--client-secret-stdin",
            env=placeholder,
            stdin="s\n",
        ),
        "ENCRYPTION_KEYS",
    )
    assert "changeme" not in stderr

    unreachable = dict(env, DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")
    fails_cleanly(run("customers", "list", env=unreachable), "database")
    fails_cleanly(run("replay", "not-a-uuid", env=env), "not a run id")
    assert len(json.loads(ok(run("customers", "list", "--json", env=env)))) == 1


def test_rotate_secrets_re_encrypts_under_the_newest_key(
    env: dict[str, str], zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=4)
    add(env, tenant, zuora_sandbox.base_url)
    new_key = SecretBox.generate_key()
    both = dict(env, ENCRYPTION_KEYS=f"{new_key},{KEY}")
    assert "re-encrypted 1" in ok(run("rotate-secrets", env=both))
    only_new = dict(env, ENCRYPTION_KEYS=new_key)
    ok(run("sync-workflows", "--customer", "acme", "--inline", env=only_new))


def test_downgrade_to_empty_and_upgrade_again(env: dict[str, str]) -> None:
    assert "base" in ok(run("db", "downgrade", "base", env=env))
    assert "base" in ok(run("db", "current", env=env))
    fails_cleanly(run("customers", "list", env=env), "database")
    from workflow_store.migrate import head

    assert head() in ok(run("db", "upgrade", env=env))
    assert ok(run("customers", "list", env=env)).strip() == "(none)"


def test_console_script_runs_as_a_process(env: dict[str, str], zuora_sandbox: Any) -> None:
    """The installed entry point, as a user runs it: a real process, secret on stdin, exit codes."""
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=60, seed=5)

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zuora_sync_cli.main", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    added = cli(
        "customers",
        "add",
        "--name",
        "acme",
        "--base-url",
        zuora_sandbox.base_url,
        "--client-id",
        tenant.client_id,
        "--client-secret-stdin",
        stdin=tenant.client_secret,
    )
    assert added.returncode == 0, added.stderr
    synced = cli("sync-workflows", "--customer", "acme", "--inline", "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["created"] == 60
    missing = cli("sync-workflows", "--customer", "nobody", "--inline")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "zuora-sync: error: Customer nobody not found"


def _outbox(database_url: str) -> list[tuple[str, bool]]:
    """(message type, sent) of every outbox row, in order."""

    async def read() -> list[tuple[str, bool]]:
        engine = create_engine(database_url)
        try:
            async with create_session_factory(engine)() as session:
                rows = await session.execute(
                    select(OutboxMessage.payload, OutboxMessage.sent_at).order_by(OutboxMessage.seq)
                )
                return [(payload["type"], sent is not None) for payload, sent in rows.all()]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_changes_and_sync_requests_go_through_the_outbox_and_the_cli_relays_them(
    env: dict[str, str], zuora_sandbox: Any, kafka_bootstrap: str, postgres_url: str
) -> None:
    """One delivery semantics with the API: CustomerCreated / SyncCustomerWorkflows /
    CustomerDeleted are outbox rows, and the command hands them to Kafka itself."""
    with_kafka = dict(env, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=6)
    add(with_kafka, tenant, zuora_sandbox.base_url)
    queued = run("sync-workflows", "--customer", "acme", "--json", env=with_kafka)
    command_id = json.loads(ok(queued))["command_id"]
    removed = run("customers", "remove", "acme", env=with_kafka)
    ok(removed)
    assert "queued in the outbox" not in queued.stderr + removed.stderr
    assert _outbox(postgres_url) == [
        ("CustomerCreated", True),
        ("SyncCustomerWorkflows", True),
        ("CustomerDeleted", True),
    ]
    records = asyncio.run(
        consume_records(
            kafka_bootstrap,
            [topics.CUSTOMER_EVENTS, topics.SYNC_COMMANDS, topics.SYNC_PRIORITY_COMMANDS],
            expected=3,
        )
    )
    sent = sorted((r.topic, json.loads(r.value)["type"]) for r in records)
    assert sent == [
        (topics.CUSTOMER_EVENTS, "CustomerCreated"),
        (topics.CUSTOMER_EVENTS, "CustomerDeleted"),
        # An operator's sync takes the fast lane (never behind a sync-all fan-out).
        (topics.SYNC_PRIORITY_COMMANDS, "SyncCustomerWorkflows"),
    ]
    assert command_id in {json.loads(r.value)["id"] for r in records}


def test_with_kafka_down_the_change_is_kept_and_its_event_waits_in_the_outbox(
    env: dict[str, str], zuora_sandbox: Any, postgres_url: str
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=7)
    added = run(
        "customers",
        "add",
        "--name",
        "acme",
        "--base-url",
        zuora_sandbox.base_url,
        "--client-id",
        tenant.client_id,
        "--client-secret-stdin",
        env=env,
        stdin=tenant.client_secret + "\n",
    )
    assert "added customer acme" in ok(added)
    assert "1 message(s) queued in the outbox" in added.stderr
    assert "relay sends them" in added.stderr and tenant.client_secret not in added.stderr
    assert _outbox(postgres_url) == [("CustomerCreated", False)]  # the API's relay sends it


def test_the_cli_applies_the_api_name_rules(env: dict[str, str], zuora_sandbox: Any) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=1, seed=8)
    for bad in (" acme", "acme ", "ac\x01me"):
        refused = run(
            "customers",
            "add",
            "--name",
            bad,
            "--base-url",
            zuora_sandbox.base_url,
            "--client-id",
            tenant.client_id,
            "--client-secret-stdin",
            env=env,
            stdin=tenant.client_secret + "\n",
        )
        fails_cleanly(refused, "name must be printable text without leading or trailing")
    assert json.loads(ok(run("customers", "list", "--json", env=env))) == []


def test_customers_check_records_what_zuora_says(env: dict[str, str], zuora_sandbox: Any) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=1, seed=9)
    add(env, tenant, zuora_sandbox.base_url)
    assert "credentials valid" in ok(run("customers", "check", "acme", env=env))
    tenant.client_secret = "rotated-on-the-zuora-side"
    fails_cleanly(run("customers", "check", "acme", env=env), "Zuora refused these client")
    [listed] = json.loads(ok(run("customers", "list", "--json", env=env)))
    assert listed["credential_status"] == "invalid"
    fails_cleanly(run("customers", "check", "nobody", env=env), "Customer nobody not found")
