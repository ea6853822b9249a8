"""The workflow list served below FastAPI: ``GET /customers/{id}/workflows`` (issue 13).

Profiling the list route under ``wrk`` (py-spy, one process) showed that once PostgreSQL renders
the page document, most of the API's remaining CPU per request was FastAPI's own: route
matching, dependency solving (a sync dependency runs in the thread pool: a thread hand-off per
request), query-parameter validation and the response class. This ASGI middleware answers the
common case directly, with the same rules:

- it sits inside :class:`customer_api.auth.ApiKeyAuthMiddleware` (and the 500 middleware), so
  the API key is checked exactly as for every route, before anything else;
- it answers only a request it has fully validated with the route's own rules: the path's UUID
  in its canonical hyphenated form, ``page`` / ``page_size`` as plain decimal integers in range,
  ``q`` / ``status`` through the same pydantic types as the route (:data:`SearchText`,
  :data:`StatusText`), ``trigger`` / ``sort`` among their literal values, no query parameter of
  the route given twice. Anything else (an invalid value, an unusual but valid spelling, an empty
  page: unknown customer or past the end) goes on to the FastAPI route, which answers it as
  before, 422 and 404 problem documents included;
- the body is PostgreSQL's JSON text as bytes, with the headers Starlette's ``Response`` sends.

The FastAPI route stays declared (OpenAPI document, fallbacks, SQLite).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, get_args
from urllib.parse import parse_qsl

from pydantic import TypeAdapter, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from customer_api.auth import AUTHENTICATED
from customer_api.deps import MAX_PAGE, MAX_PAGE_SIZE
from customer_api.runtime import Runtime
from customer_api.schemas import SearchText, StatusText, WorkflowSort, WorkflowTrigger

__all__ = ["WorkflowListFastPath", "parse_list_query"]

_PATH = re.compile(
    r"/customers/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/workflows"
)
_DIGITS = re.compile(r"[1-9][0-9]{0,6}")
_SORTS = frozenset(get_args(WorkflowSort))
_TRIGGERS = frozenset(get_args(WorkflowTrigger))
_SEARCH: TypeAdapter[str] = TypeAdapter(SearchText)
_STATUS: TypeAdapter[str] = TypeAdapter(StatusText)
_PARAMS = frozenset({"page", "page_size", "q", "status", "trigger", "sort"})
_CONTENT_TYPE = (b"content-type", b"application/json")


def _bounded(text: str, upper: int) -> int | None:
    if _DIGITS.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= upper else None


def parse_list_query(query_string: bytes) -> dict[str, Any] | None:
    """The list's arguments from a query string, or None when FastAPI must answer (invalid, or
    not in the one spelling this parser takes). Parsed as Starlette does (latin-1, then
    ``parse_qsl`` keeping blank values); parameters the route does not know are ignored, as
    there."""
    args: dict[str, Any] = {"page": 1, "page_size": 50, "sort": "name"}
    if not query_string:
        return args
    seen: set[str] = set()
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name not in _PARAMS:
            continue
        if name in seen:
            return None
        seen.add(name)
        if name == "page":
            args["page"] = page = _bounded(value, MAX_PAGE)
            if page is None:
                return None
        elif name == "page_size":
            args["page_size"] = size = _bounded(value, MAX_PAGE_SIZE)
            if size is None:
                return None
        elif name == "sort" or name == "trigger":
            if value not in (_SORTS if name == "sort" else _TRIGGERS):
                return None
            args[name] = value
        else:
            try:
                args[name] = (_SEARCH if name == "q" else _STATUS).validate_python(value)
            except ValidationError:
                return None
    return args


class WorkflowListFastPath:
    """Serves a valid, authenticated, non-empty workflow-list page from the read pool."""

    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pages = self.runtime.workflow_pages
        if (
            pages is None
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("root_path")
            or not scope.get("state", {}).get(AUTHENTICATED)
        ):
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        args = parse_list_query(scope["query_string"]) if match is not None else None
        if match is None or args is None:
            await self.app(scope, receive, send)
            return
        document = await pages.page_json(uuid.UUID(match.group(1)), **args)
        if document is None:  # empty page: the route tells 404 from past-the-end
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(document)).encode()), _CONTENT_TYPE],
            }
        )
        await send({"type": "http.response.body", "body": document})
