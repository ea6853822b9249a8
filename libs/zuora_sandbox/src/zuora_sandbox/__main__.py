"""``zuora-sandbox``: run the Zuora emulator as a process.

    zuora-sandbox --host 127.0.0.1 --port 8080 --seed demo
    zuora-sandbox --port 0 --tenants 1000 --workflows-per-tenant 100 --seed-value 7

Binds to loopback by default. The ``/_sandbox`` admin API has no authentication: never expose it.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .demo import add_demo_tenants
from .server import SandboxServer
from .state import SandboxState


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zuora-sandbox", description="Local emulator of Zuora's OAuth and Workflow endpoints."
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--seed", choices=("demo", "none"), default="none", help="'demo': add the demo tenants"
    )
    parser.add_argument("--tenants", type=int, default=0, help="generated tenants to add")
    parser.add_argument("--workflows-per-tenant", type=int, default=100)
    parser.add_argument("--seed-value", type=int, default=0, help="seed of generated tenants")
    parser.add_argument("--latency-ms", type=float, default=0, help="delay added to API calls")
    parser.add_argument("--base-url", default=None, help="base URL used in next_page links")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="benchmark mode: list pages and token answers from pre-rendered bytes (same bytes), "
        "on httptools + uvloop when installed",
    )
    parser.add_argument("--log-level", default="warning")
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = sys.stdout
    if args.tenants < 0 or args.workflows_per_tenant < 0:
        sys.stderr.write("--tenants and --workflows-per-tenant must be >= 0\n")
        return 2
    if not _is_loopback(args.host):
        sys.stderr.write(
            f"WARNING: binding to {args.host}: the /_sandbox admin API has no authentication\n"
        )
    state = SandboxState(base_url_hint=args.base_url, latency_ms=args.latency_ms)
    demo = add_demo_tenants(state) if args.seed == "demo" else []
    generated = [
        state.add_tenant(
            f"tenant-{i:04d}",
            workflow_count=args.workflows_per_tenant,
            seed=args.seed_value * 1_000_003 + i,
        )
        for i in range(1, args.tenants + 1)
    ]
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        server = SandboxServer(
            state, host=args.host, port=args.port, log_level=args.log_level, fast=args.fast
        )
    except OSError as exc:
        sys.stderr.write(f"zuora-sandbox: cannot bind {args.host}:{args.port}: {exc}\n")
        return 1
    server.start()
    mode = f" (fast mode: http={server.http}, loop={server.loop})" if args.fast else ""
    out.write(f"zuora-sandbox listening on {server.base_url}{mode}\n")
    for tenant in demo:
        out.write(
            f"  demo tenant {tenant.name}: client_id={tenant.client_id} "
            f"client_secret={tenant.client_secret} workflows={tenant.workflow_count}\n"
        )
    if generated:
        out.write(
            f"  {len(generated)} generated tenants ({args.workflows_per_tenant} workflows each); "
            f"credentials: GET {server.base_url}/_sandbox/tenants\n"
        )
    out.write("Press Ctrl+C to stop.\n")
    out.flush()
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    out.write("zuora-sandbox stopped\n")
    out.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
