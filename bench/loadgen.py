"""Bounded HTTP load generator (run as its own process): httpx + asyncio.

    python bench/loadgen.py --url URL --key KEY --mode closed --requests 3000 --concurrency 16
    python bench/loadgen.py --url URL --key KEY --mode rate --rate 300 --requests 3000

closed: `concurrency` loops send back to back (max throughput); rate: an open loop that starts one
request every 1/rate s (latency at a fixed offered load). Both stop after `--requests` requests
or `--max-seconds`, whichever comes first. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


async def main(args: argparse.Namespace) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {args.key}"}
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    latencies: list[float] = []
    errors = 0
    dropped = 0
    deadline = time.monotonic() + args.max_seconds
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10) as client:
        for _ in range(args.warmup):
            try:
                await client.get(args.url)
            except httpx.HTTPError as exc:
                sys.stderr.write(f"warmup request failed: {exc!r}\n")

        async def one(t_sched: float | None = None) -> None:
            nonlocal errors
            t = t_sched if t_sched is not None else time.perf_counter()
            try:
                r = await client.get(args.url)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t)
            if not ok:
                errors += 1

        deadline = time.monotonic() + args.max_seconds  # counted from after the warm-up
        started = time.perf_counter()
        if args.mode == "closed":
            remaining = args.requests

            async def loop() -> None:
                nonlocal remaining
                while remaining > 0 and time.monotonic() < deadline:
                    remaining -= 1
                    await one()

            await asyncio.gather(*(loop() for _ in range(args.concurrency)))
        else:
            # Open loop: a request every 1/rate s, whatever the server does. Requests the server
            # cannot take are queued client-side (counted in their latency); past the deadline
            # nothing new is started and whatever is still queued is dropped and counted.
            sem = asyncio.Semaphore(args.concurrency * 8)
            tasks = []
            interval = 1.0 / args.rate

            async def bounded() -> None:
                t_sched = time.perf_counter()
                async with sem:
                    if time.monotonic() >= deadline:
                        return
                    await one(t_sched)

            for i in range(args.requests):
                target = started + i * interval
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if time.monotonic() >= deadline:
                    break
                tasks.append(asyncio.create_task(bounded()))
            await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()) + 10)
            for task in tasks:
                task.cancel()
            dropped = args.requests - len(latencies)
        elapsed = time.perf_counter() - started
    lat = sorted(latencies)
    return {
        "mode": args.mode,
        "requests": len(lat),
        "errors": errors,
        "dropped": dropped,
        "seconds": round(elapsed, 3),
        "req_per_s": round(len(lat) / elapsed, 1) if elapsed > 0 else 0.0,
        "offered_rate": args.rate if args.mode == "rate" else None,
        "concurrency": args.concurrency,
        "p50_ms": round(_pct(lat, 0.50) * 1000, 2),
        "p95_ms": round(_pct(lat, 0.95) * 1000, 2),
        "p99_ms": round(_pct(lat, 0.99) * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--mode", choices=("closed", "rate"), default="closed")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    result = asyncio.run(main(parser.parse_args()))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
