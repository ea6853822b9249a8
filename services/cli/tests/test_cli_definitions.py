"""`zuora-sync workflows show | export | diff` over a real sync (PostgreSQL, sandbox over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_cli import add, env, fails_cleanly, ok, run  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.integration


def test_show_export_and_diff_a_definition(
    env: dict[str, str],  # noqa: F811
    zuora_sandbox: Any,
    tmp_path: Path,
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=4, seed=2)
    add(env, tenant, zuora_sandbox.base_url)
    wid = next(w for w, item in sorted(tenant.workflows.items()) if item.get("active_version"))
    sync = ("sync-workflows", "--customer", "acme", "--inline", "--force", "--json")
    stats = json.loads(ok(run(*sync, env=env)))
    assert stats["definitions_fetched"] == stats["definitions_changed"] == 4

    shown = json.loads(
        ok(run("workflows", "show", "--customer", "acme", str(wid), "--json", env=env))
    )
    export = tenant.definitions.export(wid)
    assert shown["task_count"] == len(export["tasks"]) and shown["stored_definitions"] == 1
    assert shown["definition_version"] == export["workflow"]["version"]
    assert "task_count" in ok(run("workflows", "show", "--customer", "acme", str(wid), env=env))

    assert (
        json.loads(ok(run("workflows", "export", "--customer", "acme", str(wid), env=env)))
        == export
    )
    target = tmp_path / "wf.json"
    ok(run("workflows", "export", "--customer", "acme", str(wid), "--output", str(target), env=env))
    assert json.loads(target.read_text()) == export

    fails_cleanly(
        run("workflows", "diff", "--customer", "acme", str(wid), env=env),
        "no definition stored before",
    )
    tenant.definitions.activate(wid)
    ok(run(*sync, env=env))
    out = ok(run("workflows", "diff", "--customer", "acme", str(wid), env=env))
    assert out.startswith("from ") and "task added" in out
    first = shown["content_hash"]
    back = ok(
        run(
            "workflows",
            "diff",
            "--customer",
            "acme",
            str(wid),
            "--to",
            first[:10],
            "--from",
            first,
            env=env,
        )
    )
    assert "(none)" in back  # a definition against itself: nothing changed

    fails_cleanly(run("workflows", "show", "--customer", "acme", "424242", env=env), "not found")
    fails_cleanly(
        run("workflows", "export", "--customer", "nobody", str(wid), env=env), "not found"
    )
