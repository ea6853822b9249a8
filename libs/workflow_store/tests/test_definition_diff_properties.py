"""Property: the diff of two stored definitions lists exactly the tasks and linkages changed.

A random definition is edited by a random set of known edits (tasks added, removed, fields of
some tasks changed, linkages added and removed); both versions are stored (SQLite) and the diff
read back must name exactly those edits - nothing more, nothing less - and the reverse diff
must be its mirror image.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.definition_diff import diff_documents, linkage_key
from workflow_store.definitions import diff_stored_definitions, store_definitions
from workflow_store.migrate import upgrade

from .definition_docs import NOW, add_workflows, document, fetched, link, task

ACTION_TYPES = ["Callout", "Email", "Query", "If", "Iterate", "Logic::Case", "Approval", "Delay"]
LINK_TYPES = ["Start", "Success", "Failure", "True", "False", "For Each", "Case_1", "Approve"]
EDITABLE = ["name", "action_type", "object", "tags", "css", "parameters", "priority"]
_names = itertools.count()
BOX = SecretBox([SecretBox.generate_key()])

# NUL is stripped on the way into the store (tested on its own); keep it out of the texts here.
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
values = st.one_of(
    st.none(),
    text,
    st.integers(-5, 5),
    st.lists(text, max_size=2),
    st.dictionaries(st.sampled_from(["top", "left", "x"]), text, max_size=2),
)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(st.integers(1, 200), unique=True, max_size=12))
    tasks = [task(i, draw(text), draw(st.sampled_from(ACTION_TYPES))) for i in ids]
    sources: list[int | None] = [None, *ids]
    edge = st.tuples(st.sampled_from(sources), st.sampled_from(ids), st.sampled_from(LINK_TYPES))
    edges = draw(st.lists(edge, max_size=15)) if ids else []
    return document(tasks=tasks, linkages=[link(s, t, kind) for s, t, kind in edges])


@st.composite
def edits(draw: st.DrawFn, base: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new version of ``base`` and what was done to it."""
    tasks = {t["id"]: dict(t) for t in base["tasks"]}
    removed = set(draw(st.lists(st.sampled_from(sorted(tasks)), unique=True))) if tasks else set()
    for task_id in removed:
        del tasks[task_id]
    changed: dict[int, set[str]] = {}
    for task_id in sorted(tasks):
        fields = draw(st.lists(st.sampled_from(EDITABLE), unique=True, max_size=3))
        for name in fields:
            value = draw(values)
            if tasks[task_id].get(name) != value or name not in tasks[task_id]:
                tasks[task_id][name] = value
                changed.setdefault(task_id, set()).add(name)
    free = sorted(set(range(201, 260)) - set(tasks))
    added = draw(st.lists(st.sampled_from(free), unique=True, max_size=4))
    for task_id in added:
        tasks[task_id] = task(task_id, "new", draw(st.sampled_from(ACTION_TYPES)))
    links = list(base["linkages"])
    dropped = sorted(
        draw(st.lists(st.integers(0, len(links) - 1), unique=True)) if links else [], reverse=True
    )
    dropped_links = [links.pop(i) for i in dropped]
    ids = sorted(tasks)
    new_links = []
    if ids:
        edge = st.tuples(
            st.sampled_from([None, *ids]), st.sampled_from(ids), st.sampled_from(LINK_TYPES)
        )
        new_links = [link(s, t, kind) for s, t, kind in draw(st.lists(edge, max_size=5))]
    new = document(
        version_id=8, version="0.0.2", tasks=list(tasks.values()), linkages=links + new_links
    )
    return new, {
        "added": set(added),
        "removed": removed,
        "changed": changed,
        "links_added": [linkage_key(x) for x in new_links],
        "links_removed": [linkage_key(x) for x in dropped_links],
    }


def _multiset_minus(left: list[Any], right: list[Any]) -> list[Any]:
    rest = list(left)
    for item in right:
        if item in rest:
            rest.remove(item)
    return sorted(rest, key=repr)


def _keys(links: list[dict[str, Any]]) -> list[Any]:
    return sorted((linkage_key(x) for x in links), key=repr)


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("diffprops") / "diff.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


async def _stored_diff(db_url: str, old: dict[str, Any], new: dict[str, Any]) -> Any:
    engine = create_engine(db_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            cid = await add_workflows(session, BOX, 1, name=f"c{next(_names)}")
            await store_definitions(session, cid, [fetched(1, old)], now=NOW)
            await store_definitions(session, cid, [fetched(1, new)], now=NOW.replace(hour=13))
            _, _, forward = await diff_stored_definitions(session, cid, 1)
            a, b = fetched(1, old).content_hash, fetched(1, new).content_hash
            _, _, backward = await diff_stored_definitions(session, cid, 1, from_hash=b, to_hash=a)
            return forward, backward
    finally:
        await engine.dispose()


@pytest.mark.integration  # a SQLite database file (the module fixture)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_stored_diff_names_exactly_the_edits(db_url: str, data: st.DataObject) -> None:
    old = data.draw(definitions())
    new, done = data.draw(edits(old))
    # Edits that cancel out (a linkage dropped and the same one added back) are not changes.
    links_added = _multiset_minus(done["links_added"], done["links_removed"])
    links_removed = _multiset_minus(done["links_removed"], done["links_added"])
    forward, backward = asyncio.run(_stored_diff(db_url, old, new))

    assert {t["id"] for t in forward.tasks_added} == done["added"]
    assert {t["id"] for t in forward.tasks_removed} == done["removed"]
    assert {c.task_id: {f.field for f in c.changes} for c in forward.tasks_changed} == done[
        "changed"
    ]
    for change in forward.tasks_changed:
        after = next(t for t in new["tasks"] if t["id"] == change.task_id)
        before = next(t for t in old["tasks"] if t["id"] == change.task_id)
        for field in change.changes:
            assert (field.before, field.after) == (before.get(field.field), after.get(field.field))
    assert _keys(forward.linkages_added) == links_added
    assert _keys(forward.linkages_removed) == links_removed

    assert {t["id"] for t in backward.tasks_added} == done["removed"]
    assert {t["id"] for t in backward.tasks_removed} == done["added"]
    assert {c.task_id for c in backward.tasks_changed} == set(done["changed"])
    assert _keys(backward.linkages_added) == links_removed
    assert _keys(backward.linkages_removed) == links_added


@given(doc=definitions())
def test_a_definition_has_no_diff_with_itself(doc: dict[str, Any]) -> None:
    assert not diff_documents(doc, doc)
