"""The definition graph: DOT escaping, the real `dot` binary, the sanitiser, failure -> None, cache.

Graphviz is a requirement (`.ci/run` installs it), so these tests fail rather than skip without it.
"""

from __future__ import annotations

import shutil
import stat
import time
from pathlib import Path
from xml.etree import ElementTree

from customer_api.ui.graph import (
    GraphDefinition,
    GraphLinkage,
    GraphRenderer,
    GraphTask,
    legend,
    sanitise_svg,
    to_dot,
)

SVG = "{http://www.w3.org/2000/svg}"

HOSTILE_NAMES = [
    'quote " and \\" escaped',
    "<script>alert('x')</script>",
    "line one\nline two\r\nthree",
    "label escapes \\N \\G \\l \\",
    "&amp; <![CDATA[ x ]]> <!-- c -->",
]


def _definition(tasks: list[tuple[int, str, str]], edges: list[tuple[int | None, int, str]]):
    return GraphDefinition(
        tasks=[GraphTask(id=i, name=name, action_type=action) for i, name, action in tasks],
        linkages=[GraphLinkage(s, t, kind) for s, t, kind in edges],
    )


def _parse(svg: str) -> ElementTree.Element:
    # Our own output: parse it with the namespace declared, as a browser does for inline SVG.
    return ElementTree.fromstring(
        svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    )


def _nodes(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [g for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "").split()]


def _edges(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [g for g in root.iter(f"{SVG}g") if "edge" in (g.get("class") or "").split()]


def _texts(root: ElementTree.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def _fake_dot(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-dot"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


CHAIN = _definition(
    [(1, "Query invoices", "Query"), (2, "For each invoice", "Iterate"), (3, "Mail", "Email")],
    [(None, 1, "Start"), (1, 2, "Success"), (2, 3, "For Each"), (1, 3, "Failure")],
)


def test_dot_source_escapes_quotes_backslashes_and_line_breaks() -> None:
    dot = to_dot(_definition([(7, 'a"b\\c\nd', "Callout")], [(None, 7, 'x"\ny')]))
    assert 'label="a\\"b\\\\c d\\nCallout"' in dot
    assert 'label="x\\" y"' in dot
    # One statement per line: no user text can open a new one.
    assert all(line.rstrip().endswith(("{", "}", ";")) for line in dot.splitlines())


async def test_hostile_names_are_text_in_well_formed_svg() -> None:
    definition = _definition(
        [(i, name, name) for i, name in enumerate(HOSTILE_NAMES, start=1)],
        [(None, 1, "<b>Start</b>")] + [(i, i + 1, '"Success"\n') for i in range(1, 5)],
    )
    svg = await GraphRenderer().render(definition)
    assert svg is not None
    root = _parse(svg)
    assert "<script" not in svg.lower()
    assert "<b>" not in svg and "<!--" not in svg and "<![CDATA[" not in svg
    assert "&amp;amp; &lt;![CDATA[ x ]]&gt; &lt;!-- c --&gt;" in svg
    texts = _texts(root)
    assert "<script>alert('x')</script>" in texts
    assert "label escapes \\N \\G \\l \\" in texts
    assert "line one line two three" in texts
    assert "<b>Start</b>" in texts
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert "<script>alert('x')</script> (<script>alert('x')</script>)" in titles
    for element in root.iter():
        assert not any(name.lower().startswith("on") for name in element.attrib)


async def test_one_node_per_task_plus_start_each_linking_to_its_row() -> None:
    svg = await GraphRenderer().render(CHAIN)
    assert svg is not None
    root = _parse(svg)
    nodes = _nodes(root)
    assert sorted(node.get("id") or "" for node in nodes) == [
        "node-start",
        "node-task-1",
        "node-task-2",
        "node-task-3",
    ]
    hrefs = sorted(a.get("href") or "" for a in root.iter(f"{SVG}a"))
    assert hrefs == ["#task-1", "#task-2", "#task-3"]
    assert len(_edges(root)) == 4
    assert root.get("role") == "group" and root.get("aria-label") == "Task graph"


async def test_edges_differ_by_line_style_not_only_colour() -> None:
    svg = await GraphRenderer().render(CHAIN)
    assert svg is not None
    edges = {(g.get("class") or "").split()[-1]: g for g in _edges(_parse(svg))}
    assert set(edges) == {"edge-start", "edge-success", "edge-iterate", "edge-failure"}

    def line(kind: str) -> ElementTree.Element:
        path = edges[kind].find(f"{SVG}path")
        assert path is not None
        return path

    assert line("edge-failure").get("stroke-dasharray")
    assert line("edge-success").get("stroke-dasharray") is None
    assert line("edge-iterate").get("stroke-width") == "2"
    assert {"Start", "Success", "For Each", "Failure"} <= set(_texts(_parse(svg)))
    styles = {kind: style.description for kind, style in legend(CHAIN)}
    assert styles == {
        "Failure": "dashed line",
        "For Each": "bold line",
        "Start": "solid line",
        "Success": "solid line",
    }


async def test_cycles_orphans_and_dangling_linkages_render() -> None:
    definition = _definition(
        [(1, "a", "If"), (2, "b", "Callout"), (3, "orphan", "Email")],
        [(None, 1, "Start"), (1, 2, "True"), (2, 1, "Success"), (2, 99, "Failure"), (98, 1, "X")],
    )
    svg = await GraphRenderer().render(definition)
    assert svg is not None
    root = _parse(svg)
    assert len(_nodes(root)) == 4  # Start + 3 tasks, the orphan included
    assert len(_edges(root)) == 3  # the two linkages to or from unknown tasks are not drawn


async def test_missing_dot_gives_none() -> None:
    renderer = GraphRenderer(dot_binary="/nonexistent/bin/dot")
    assert await renderer.render(CHAIN) is None


async def test_dot_that_hangs_is_killed_and_gives_none(tmp_path: Path) -> None:
    renderer = GraphRenderer(dot_binary=_fake_dot(tmp_path, "exec sleep 60"), timeout_seconds=0.5)
    started = time.monotonic()
    assert await renderer.render(CHAIN) is None
    assert time.monotonic() - started < 30  # a bound: the 60 s sleep was not waited for


async def test_failing_or_garbage_dot_gives_none(tmp_path: Path) -> None:
    failing = GraphRenderer(dot_binary=_fake_dot(tmp_path, "cat >/dev/null; exit 3"))
    assert await failing.render(CHAIN) is None
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    not_svg = GraphRenderer(dot_binary=_fake_dot(garbage, "cat >/dev/null; echo '<svg><g'"))
    assert await not_svg.render(CHAIN) is None


async def test_output_and_input_size_limits_give_none() -> None:
    assert await GraphRenderer(max_output_bytes=200).render(CHAIN) is None
    assert await GraphRenderer(max_tasks=2).render(CHAIN) is None
    assert await GraphRenderer(max_linkages=3).render(CHAIN) is None


async def test_cache_by_content_is_bounded_lru(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    counting_dot = _fake_dot(tmp_path, f'echo run >> "{calls}"\nexec {shutil.which("dot")} "$@"')
    renderer = GraphRenderer(dot_binary=counting_dot, cache_size=1)
    other = _definition([(1, "other", "Email")], [(None, 1, "Start")])

    def runs() -> int:
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    first = await renderer.render(CHAIN)
    same_content = GraphDefinition(tasks=list(CHAIN.tasks), linkages=list(CHAIN.linkages))
    assert await renderer.render(same_content) == first
    assert runs() == 1
    assert await renderer.render(other) is not None
    assert await renderer.render(CHAIN) == first
    assert runs() == 3  # size 1: `other` evicted CHAIN


def test_sanitiser_drops_script_handlers_foreign_content_and_foreign_links() -> None:
    hostile = (
        '<!DOCTYPE svg [<!ENTITY x "boom">]><svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" onload="alert(1)" width="10pt">'
        "<script>alert(2)</script><foreignObject><div>hi</div></foreignObject>"
        '<g style="x" fill="url(javascript:alert(3))" class="node"><title>t1</title>'
        '<a xlink:href="javascript:alert(4)"><text>bad link</text></a>'
        '<a xlink:href="#task-5" xlink:title="ignored"><text>ok</text></a></g></svg>'
    )
    clean = sanitise_svg(hostile, {"#task-5": "Task five"})
    assert clean == (
        '<svg role="group" aria-label="Task graph" class="task-graph">'
        '<g class="node"><g><text>bad link</text></g>'
        '<a href="#task-5"><title>Task five</title><text>ok</text></a></g></svg>'
    )


def test_from_export_reads_zuora_export_and_skips_malformed_items() -> None:
    export = {
        "workflow": {"id": 3},
        "tasks": [
            {"id": 301, "name": "Call", "action_type": "Callout", "object": None},
            {"id": "x", "name": "bad id"},
            "not a dict",
        ],
        "linkages": [
            {
                "source_workflow_id": 3,
                "source_task_id": None,
                "target_task_id": 301,
                "linkage_type": "Start",
            },
            {"source_task_id": "?", "target_task_id": 301, "linkage_type": "Success"},
        ],
    }
    definition = GraphDefinition.from_export(export)
    assert definition.tasks == [GraphTask(id=301, name="Call", action_type="Callout")]
    assert definition.linkages == [GraphLinkage(None, 301, "Start")]
