"""A workflow definition's task graph: definition -> Graphviz DOT -> `dot -Tsvg` -> inline SVG.

The SVG is drawn on the server (no graph JavaScript, so the strict CSP holds) and then rebuilt
from an allow-list of elements and attributes, so nothing `dot` echoes back from a task name can
become markup or script in the page. Rendering is bounded (input size, time, output size) and any
failure gives `None`: the page then shows the linkages table, which carries the same edges as
text, and a notice. Results are cached by the SHA-256 of the DOT source, which is a pure function
of the definition, so a definition is laid out once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import re
import shutil
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

logger = logging.getLogger(__name__)

#: Bumped when the DOT or the sanitiser changes, so cached SVG of an older renderer is not reused.
RENDERER_VERSION = "1"
START_NODE_ID = "node-start"


@dataclass(frozen=True, slots=True)
class GraphTask:
    id: int
    name: str
    action_type: str
    object: str | None = None


@dataclass(frozen=True, slots=True)
class GraphLinkage:
    """One edge; `source_task_id` None is the workflow's entry edge, drawn from Start."""

    source_task_id: int | None
    target_task_id: int
    linkage_type: str


@dataclass(frozen=True, slots=True)
class GraphDefinition:
    tasks: Sequence[GraphTask]
    linkages: Sequence[GraphLinkage]

    @classmethod
    def from_export(cls, export: Mapping[str, Any]) -> GraphDefinition:
        """From Zuora's export shape (`{"tasks": [...], "linkages": [...]}`); malformed items
        are skipped because the graph is an illustration, the tables show the data as stored."""
        tasks = [
            GraphTask(
                id=item["id"],
                name=str(item.get("name") or ""),
                action_type=str(_key(item, "action_type", "actionType") or ""),
                object=None if item.get("object") is None else str(item["object"]),
            )
            for item in _dicts(export.get("tasks"))
            if _is_id(item.get("id"))
        ]
        linkages = []
        for item in _dicts(export.get("linkages")):
            source = _key(item, "source_task_id", "sourceTaskId")
            target = _key(item, "target_task_id", "targetTaskId")
            if _is_id(target) and (source is None or _is_id(source)):
                kind = _key(item, "linkage_type", "linkageType")
                linkages.append(GraphLinkage(source, target, str(kind or "")))
        return cls(tasks=tasks, linkages=linkages)


def _key(item: Mapping[str, Any], snake: str, camel: str) -> Any:
    """Zuora's export is snake_case, but camelCase has been seen too (the store reads both)."""
    value = item.get(snake)
    return item.get(camel) if value is None else value


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dicts(value: object) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))


@dataclass(frozen=True, slots=True)
class EdgeStyle:
    """How one kind of linkage is drawn: the line style tells kinds apart without colour."""

    css_class: str
    dot_style: str
    color: str
    description: str


_SUCCESS = EdgeStyle("edge-success", "solid", "#1a7f37", "solid line")
_FAILURE = EdgeStyle("edge-failure", "dashed", "#cf222e", "dashed line")
_TRUE = EdgeStyle("edge-true", "dotted", "#0969da", "dotted line")
_FALSE = EdgeStyle("edge-false", "dotted", "#9a6700", "dotted line")
_ITERATE = EdgeStyle("edge-iterate", "bold", "#8250df", "bold line")
_START = EdgeStyle("edge-start", "solid", "#57606a", "solid line")
_OTHER = EdgeStyle("edge-other", "solid", "#57606a", "solid line")
_EDGE_STYLES: dict[str, EdgeStyle] = {
    "success": _SUCCESS,
    "approve": _SUCCESS,
    "complete": _SUCCESS,
    "finish": _SUCCESS,
    "failure": _FAILURE,
    "reject": _FAILURE,
    "true": _TRUE,
    "false": _FALSE,
    "iterate": _ITERATE,
    "for each": _ITERATE,
    "start": _START,
}


def edge_style(linkage_type: str) -> EdgeStyle:
    return _EDGE_STYLES.get(linkage_type.strip().lower(), _OTHER)


def legend(definition: GraphDefinition) -> list[tuple[str, EdgeStyle]]:
    """The linkage types present, each with its style, for the legend under the graph."""
    seen = sorted({linkage.linkage_type for linkage in definition.linkages})
    return [(linkage_type, edge_style(linkage_type)) for linkage_type in seen]


_ITERATE_ACTIONS = {"iterate"}
_DECISION_ACTIONS = {"if", "logic::case", "case", "approval"}


def _node_shape(action_type: str) -> str:
    lowered = action_type.lower()
    if lowered in _ITERATE_ACTIONS:
        return "hexagon"
    if lowered in _DECISION_ACTIONS:
        return "diamond"
    return "box"


def _dot_string(value: str) -> str:
    """A DOT double-quoted string whose text Graphviz shows literally.

    Backslash starts Graphviz's label escapes (`\\N`, `\\G`, `\\l`...), `"` ends the string and
    line breaks would split labels, so those are neutralised; control characters are dropped.
    Markup characters need nothing here: Graphviz XML-escapes text in SVG, and the sanitiser
    rebuilds the output anyway.
    """
    cleaned = re.sub(r"[\r\n\t]+", " ", value)
    cleaned = "".join(char for char in cleaned if char >= " " and char != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_lines(*parts: str) -> str:
    """Several texts as one DOT string, each on its own centred line (DOT's `\\n` escape)."""
    return '"' + "\\n".join(_dot_string(part)[1:-1] for part in parts) + '"'


def _clip(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


def to_dot(definition: GraphDefinition) -> str:
    """The DOT source: a Start node, one node per task, one edge per drawable linkage.

    A linkage whose end is not a task of this definition has nothing to attach to and is not
    drawn; the linkages table still lists it.
    """
    task_ids = {task.id for task in definition.tasks}
    lines = [
        "digraph workflow {",
        '  graph [rankdir=TB, charset="UTF-8", bgcolor="transparent", '
        'fontname="sans-serif", nodesep=0.4, ranksep=0.5];',
        '  node [fontname="sans-serif", fontsize=11, style="rounded,filled", '
        'fillcolor="#ffffff", color="#57606a"];',
        '  edge [fontname="sans-serif", fontsize=10, arrowsize=0.7];',
        f'  start [id="{START_NODE_ID}", label="Start", shape=circle, class="node-start"];',
    ]
    for task in sorted(definition.tasks, key=lambda t: t.id):
        label = _clip(task.name) or f"task {task.id}"
        action = _clip(task.action_type, 40)
        # No DOT tooltip: Graphviz expands escapes in tooltips even when the backslash is
        # escaped, so the sanitiser writes each link's title from link_titles() instead.
        lines.append(
            f'  t{task.id} [id="node-task-{task.id}", URL="#task-{task.id}", '
            f'shape={_node_shape(task.action_type)}, class="node-task", '
            f"label={_dot_lines(label, action) if action else _dot_string(label)}];"
        )
    for index, linkage in enumerate(definition.linkages):
        source = "start" if linkage.source_task_id is None else f"t{linkage.source_task_id}"
        if linkage.target_task_id not in task_ids:
            continue
        if linkage.source_task_id is not None and linkage.source_task_id not in task_ids:
            continue
        style = edge_style(linkage.linkage_type)
        lines.append(
            f'  {source} -> t{linkage.target_task_id} [id="edge-{index}", '
            f'class="{style.css_class}", style={style.dot_style}, color="{style.color}", '
            f'fontcolor="{style.color}", label={_dot_string(_clip(linkage.linkage_type, 30))}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def link_titles(definition: GraphDefinition) -> dict[str, str]:
    """The hover title (and accessible name) of each task node's link, by its href."""
    titles: dict[str, str] = {}
    for task in definition.tasks:
        detail = task.action_type + (f" on {task.object}" if task.object else "")
        titles[f"#task-{task.id}"] = f"{task.name} ({detail})" if detail else task.name
    return titles


# --- sanitiser -------------------------------------------------------------------------------

_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_ALLOWED_ELEMENTS = {"svg", "g", "a", "path", "polygon", "polyline", "ellipse", "text", "title"}
_ALLOWED_ATTRIBUTES = {
    "id",
    "class",
    "width",
    "height",
    "viewBox",
    "transform",
    "d",
    "points",
    "cx",
    "cy",
    "rx",
    "ry",
    "x",
    "y",
    "fill",
    "stroke",
    "stroke-width",
    "stroke-dasharray",
    "text-anchor",
    "font-family",
    "font-size",
}
# Parentheses only in transforms: elsewhere they would allow url(...) references.
_SAFE_ATTRIBUTE_VALUE = re.compile(r"^[#\w .,:;%+\-]*$")
_SAFE_TRANSFORM = re.compile(r"^[\w .,()\-]*$")
_TASK_ANCHOR = re.compile(r"^#task-\d+$")


def _local(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def _sanitise_element(
    element: ElementTree.Element, titles: Mapping[str, str], out: list[str]
) -> None:
    namespace, tag = _local(element.tag)
    if namespace != _SVG_NS or tag not in _ALLOWED_ELEMENTS:
        return
    if tag == "title":
        return  # Graphviz titles are DOT ids ("t12"); links get a readable title below.
    attributes: list[tuple[str, str]] = []
    link_title: str | None = None
    for raw_name, value in element.attrib.items():
        attr_namespace, name = _local(raw_name)
        if tag == "a" and attr_namespace == _XLINK_NS:
            if name == "href" and _TASK_ANCHOR.match(value):
                attributes.append(("href", value))
                link_title = titles.get(value)
            continue
        if attr_namespace or name not in _ALLOWED_ATTRIBUTES:
            continue
        if not (_SAFE_TRANSFORM if name == "transform" else _SAFE_ATTRIBUTE_VALUE).match(value):
            continue
        attributes.append((name, value))
    if tag == "svg":
        attributes = [(n, v) for n, v in attributes if n not in {"width", "height"}]
        attributes += [("role", "group"), ("aria-label", "Task graph"), ("class", "task-graph")]
    if tag == "a" and not any(name == "href" for name, _ in attributes):
        tag = "g"  # a link to anywhere but a task row is not kept as a link
        link_title = None
    rendered = "".join(f' {name}="{html.escape(value, quote=True)}"' for name, value in attributes)
    out.append(f"<{tag}{rendered}>")
    if link_title is not None:
        out.append(f"<title>{html.escape(link_title, quote=False)}</title>")
    if element.text and tag == "text":
        out.append(html.escape(element.text, quote=False))
    for child in element:
        _sanitise_element(child, titles, out)
    out.append(f"</{tag}>")


def sanitise_svg(svg: str, titles: Mapping[str, str]) -> str | None:
    """Rebuild Graphviz's SVG from allowed elements and attributes only; None if unparsable.

    Comments, processing instructions and unknown elements are not carried over.
    """
    start = svg.find("<svg")
    if start < 0:
        return None
    try:
        # Parsing starts at <svg, after any DOCTYPE: with no DTD there are no entities to
        # expand (the attacks S314 is about), and undefined ones are a parse error.
        root = ElementTree.fromstring(svg[start:])  # noqa: S314
    except ElementTree.ParseError:
        return None
    out: list[str] = []
    _sanitise_element(root, titles, out)
    return "".join(out) or None


# --- renderer --------------------------------------------------------------------------------


class DotFailed(Exception):
    """`dot` could not produce usable SVG (missing, timed out, failed, too large)."""


class GraphRenderer:
    """Renders definitions with `dot`, bounded in time, size and concurrency, with an LRU cache.

    `render` never raises for a rendering problem: it logs why and returns None.
    """

    def __init__(
        self,
        *,
        dot_binary: str = "dot",
        timeout_seconds: float = 5.0,
        max_tasks: int = 2_000,
        max_linkages: int = 5_000,
        max_output_bytes: int = 4 * 1024 * 1024,
        cache_size: int = 256,
        max_concurrent: int = 2,
    ) -> None:
        self._dot_binary = dot_binary
        self._timeout_seconds = timeout_seconds
        self._max_tasks = max_tasks
        self._max_linkages = max_linkages
        self._max_output_bytes = max_output_bytes
        self._cache_size = cache_size
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._slots = asyncio.Semaphore(max_concurrent)

    @staticmethod
    def cache_key(dot_source: str) -> str:
        return hashlib.sha256(f"{RENDERER_VERSION}\n{dot_source}".encode()).hexdigest()

    async def render(self, definition: GraphDefinition) -> str | None:
        if len(definition.tasks) > self._max_tasks or len(definition.linkages) > self._max_linkages:
            logger.warning(
                "graph not rendered: %d tasks / %d linkages exceed the limit",
                len(definition.tasks),
                len(definition.linkages),
            )
            return None
        dot_source = to_dot(definition)
        key = self.cache_key(dot_source)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        try:
            async with self._slots:
                raw = await self._run_dot(dot_source)
        except DotFailed as failure:
            logger.warning("graph not rendered: %s", failure)
            return None
        svg = sanitise_svg(raw, link_titles(definition))
        if svg is None:
            logger.warning("graph not rendered: dot's output is not parsable SVG")
            return None
        self._cache[key] = svg
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return svg

    async def _run_dot(self, dot_source: str) -> str:
        executable = shutil.which(self._dot_binary)
        if executable is None:
            raise DotFailed(f"{self._dot_binary!r} is not installed")
        try:
            process = await asyncio.create_subprocess_exec(
                executable,
                "-Tsvg",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as error:
            raise DotFailed(f"cannot start {executable}: {error}") from error
        feeding = asyncio.create_task(self._feed(process, dot_source))
        try:
            async with asyncio.timeout(self._timeout_seconds):
                output = await self._read_bounded(process)
                returncode = await process.wait()
        except TimeoutError as error:
            raise DotFailed(f"dot took longer than {self._timeout_seconds} s") from error
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if returncode != 0:
            raise DotFailed(f"dot exited with {returncode}")
        return output.decode("utf-8", errors="replace")

    @staticmethod
    async def _feed(process: asyncio.subprocess.Process, dot_source: str) -> None:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(dot_source.encode())
            await process.stdin.drain()
            process.stdin.close()

    async def _read_bounded(self, process: asyncio.subprocess.Process) -> bytes:
        assert process.stdout is not None
        chunks: list[bytes] = []
        size = 0
        while chunk := await process.stdout.read(65536):
            size += len(chunk)
            if size > self._max_output_bytes:
                raise DotFailed(f"dot's output exceeds {self._max_output_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
