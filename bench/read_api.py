# ruff: noqa: T201, S603, S607 - a benchmark prints its figures and runs wrk / pgbench
"""The read API against the database's own ceiling for the same SQL, in one run (issue 13).

    uv run python -m bench.read_api [--workflows 1000] [--seconds 10] [--api-workers 2]

A throw-away PostgreSQL database with one customer of N workflows; the customer API as a real
process (outbox relay off: no broker needed); `wrk` (C, cheap on our 2 cores) asks for a page of
50 at 16 connections; `pgbench` runs the SQL the API sends for that page (captured from the API's
own statement builder) at 8 clients. Reports req/s, p50/p99, the API's CPU per request and our
share of the ceiling. Never asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from devstack.procs import Child, Supervisor, api_service
from workflow_store.crypto import SecretBox
from workflow_store.migrate import upgrade_async

from bench.stack import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    pg_dsn,
    process_tree_cpu_seconds,
    sqlalchemy_url,
)

PAGE_SIZE = 50


def _seed(dsn: str, customer_id: uuid.UUID, workflows: int, key: str) -> None:
    box = SecretBox([key])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (id, name, base_url, client_id, client_secret_encrypted,"
            " active, credential_status, created_at, updated_at, last_successful_sync_at)"
            " VALUES (%s, 'reader', 'https://rest.test.zuora.com', 'cid', %s, true, 'valid',"
            " now(), now(), now())",
            (customer_id, box.encrypt("secret")),
        )
        conn.execute(
            "INSERT INTO workflows (customer_id, zuora_id, name, description, status,"
            " active_version_id, active_version, active_version_status, active_version_type,"
            " callout_trigger, ondemand_trigger, scheduled_trigger, interval, timezone, priority,"
            " zuora_created_at, zuora_updated_at, raw, content_hash, first_seen_at,"
            " last_changed_at)"
            " SELECT %s, 100000 + g, 'Workflow ' || lpad(g::text, 5, '0'), 'Seeded for the read"
            " benchmark', CASE WHEN g %% 4 = 0 THEN 'Inactive' ELSE 'Active' END, 900000 + g,"
            " '1.' || (g %% 7), 'Active', 'Workflow::Setup', g %% 2 = 0, true, g %% 3 = 0,"
            " '0 * * * *', 'UTC', 'Medium', now() - interval '30 days',"
            " now() - (g || ' minutes')::interval, jsonb_build_object('id', 100000 + g),"
            " md5(g::text), now(), now() FROM generate_series(1, %s) AS g",
            (customer_id, workflows),
        )
        conn.execute("ANALYZE")


def page_sql(customer_id: uuid.UUID, page: int = 1) -> str:
    """The SQL the API sends for one page: the PostgreSQL-rendered page document of
    :mod:`application.workflow_pages` (its compiled text, this request's values inlined). pgbench
    runs it prepared (``-M prepared``), as the API's read pool does."""
    from application.workflow_pages import page_sql_for

    text, params = page_sql_for(customer_id, page=page, page_size=PAGE_SIZE)
    literals = {
        name: f"'{value}'" if isinstance(value, uuid.UUID) else str(int(value))
        for name, value in params.items()
    }
    return text % literals


def backend_pids(dsn: str, dbname: str) -> list[int]:
    """PostgreSQL server processes connected to ``dbname`` (the API's pools), but this one."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _tree_system_seconds(p: psutil.Process) -> float:
    """Kernel CPU seconds of ``p`` and its descendants (socket I/O on loopback is mostly this)."""
    total = 0.0
    for proc in [p, *p.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.cpu_times().system
    return total


def pids_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run_wrk(url: str, key: str, *, connections: int, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {key}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return round(float(m.group(1)) * scale, 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections,
        "seconds": seconds,
        "requests": int(total.group(1)) if total else 0,
        "req_per_s": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50"),
        "p90_ms": ms("90"),
        "p99_ms": ms("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


def run_pgbench(dbname: str, sql: str, *, clients: int, seconds: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(sql.replace("\n", " ") + ";\n")
        script = f.name
    try:
        out = subprocess.run(
            [
                "pgbench",
                "-n",
                "-h",
                PG_HOST,
                "-p",
                str(PG_PORT),
                "-U",
                PG_USER,
                "-c",
                str(clients),
                "-j",
                "2",
                "-M",
                "prepared",
                "-T",
                str(seconds),
                "-f",
                script,
                dbname,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(script)
    tps = re.search(r"tps = ([\d.]+)", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    return {
        "clients": clients,
        "seconds": seconds,
        "tps": float(tps.group(1)) if tps else 0.0,
        "latency_avg_ms": float(lat.group(1)) if lat else None,
    }


def _start_py_spy(pid: int, seconds: int, out: str) -> subprocess.Popen[bytes]:
    """Sample the API's processes during the measured run (collapsed stacks; py-spy is not a
    project dependency: ``uv pip install py-spy`` for a profile)."""
    command = ["py-spy", "record", "--subprocesses", "--nonblocking", "-r", "200", "-f", "raw"]
    return subprocess.Popen(
        [*command, "-d", str(seconds), "-o", out, "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(
    *,
    workflows: int,
    seconds: int,
    api_workers: int,
    connections: int = 16,
    py_spy: str | None = None,
) -> dict[str, Any]:
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install wrk postgresql-client)")
    dbname = f"bench_read_{os.getpid()}_{secrets.token_hex(3)}"
    admin = pg_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    api: Child | None = None
    try:
        import asyncio

        asyncio.run(upgrade_async(sqlalchemy_url(dbname)))
        key = SecretBox.generate_key()
        customer_id = uuid.uuid4()
        _seed(pg_dsn(dbname), customer_id, workflows, key)
        api_key = secrets.token_urlsafe(24)
        from event_bus.local_broker import free_port

        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("API_", "DATABASE_"))},
            "APP_ENV": "production",
            "DATABASE_URL": sqlalchemy_url(dbname),
            "ENCRYPTION_KEYS": key,
            "API_KEYS": api_key,
            "API_WORKERS": str(api_workers),
            "OUTBOX_RELAY_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        }
        log_dir = Path(tempfile.mkdtemp(prefix="bench-read-api-"))
        # Its own process group: uvicorn's worker processes are stopped with it.
        supervisor = Supervisor.in_dir(lambda: env, log_dir)
        api = supervisor.start(api_service(port))
        supervisor.wait_ready(api)
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/customers/{customer_id}/workflows?page_size={PAGE_SIZE}"
        check = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
        check.raise_for_status()
        if check.json()["total"] != workflows or len(check.json()["items"]) != PAGE_SIZE:
            raise RuntimeError(f"unexpected page: {check.text[:300]}")
        time.sleep(2)  # every uvicorn worker up
        run_wrk(url, api_key, connections=connections, seconds=2)  # warm-up (pools, caches)
        proc = psutil.Process(api.pid)
        backends = backend_pids(pg_dsn(dbname), dbname)
        spy = _start_py_spy(api.pid, seconds, py_spy) if py_spy else None
        load = os.getloadavg()[0]
        cpu0 = process_tree_cpu_seconds(proc)
        sys0 = _tree_system_seconds(proc)
        pg0 = pids_cpu_seconds(backends)
        ours = run_wrk(url, api_key, connections=connections, seconds=seconds)
        api_cpu = process_tree_cpu_seconds(proc) - cpu0
        api_sys = _tree_system_seconds(proc) - sys0
        pg_cpu = pids_cpu_seconds(backends) - pg0
        if spy is not None:
            spy.wait(timeout=seconds + 60)
        n = ours["requests"]
        ours["api_cpu_ms_per_request"] = round(api_cpu * 1000 / n, 3) if n else None
        ours["api_system_cpu_ms_per_request"] = round(api_sys * 1000 / n, 3) if n else None
        # The server processes of the API's connections (the read pool), measured alike: what
        # PostgreSQL spends per request, to set beside the API's own CPU.
        ours["pg_cpu_ms_per_request"] = round(pg_cpu * 1000 / n, 3) if n else None
        ours["load_average_1m"] = round(load, 2)
        api.stop(timeout=20)
        api = None
        ceiling = run_pgbench(dbname, page_sql(customer_id), clients=8, seconds=seconds)
        share = ours["req_per_s"] / ceiling["tps"] if ceiling["tps"] else None
        return {
            "workflows": workflows,
            "page_size": PAGE_SIZE,
            "api_workers": api_workers,
            "api": ours,
            "pgbench_same_sql": ceiling,
            "share_of_ceiling": round(share, 3) if share is not None else None,
        }
    finally:
        if api is not None:
            api.stop(timeout=20)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--py-spy", metavar="OUT", help="profile the API with py-spy (collapsed stacks to OUT)"
    )
    args = parser.parse_args()
    result = measure(
        workflows=args.workflows,
        seconds=args.seconds,
        api_workers=args.api_workers,
        connections=args.connections,
        py_spy=args.py_spy,
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
