"""Interpretation of one ``GET /workflows`` page and the listing's termination rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import InvalidResponseError, PaginationError
from ._models import MAX_WORKFLOW_ID, RejectedItem, Workflow, WorkflowPage

Unchanged = Callable[[int, dict[str, Any]], bool]
"""``unchanged(id, item)``: True when the caller already holds this exact item (e.g. its content
hash equals the stored one), which is then handed over raw instead of parsed."""

MAX_PAGE_LENGTH = 50


def check_page_length(page_length: int) -> int:
    if isinstance(page_length, bool) or not isinstance(page_length, int):
        raise TypeError("page_length must be an int")
    if not 1 <= page_length <= MAX_PAGE_LENGTH:
        raise ValueError(f"page_length must be between 1 and {MAX_PAGE_LENGTH}, got {page_length}")
    return page_length


def has_next_page(body: dict[str, Any], page: int) -> bool:
    """True when ``pagination.next_page`` is a non-empty URL or a page number.

    Missing/null ``pagination`` or a missing/null/empty ``next_page`` ends the listing. We only
    look at whether a next page exists; its number is computed, its URL is never followed.
    """
    pagination = body.get("pagination")
    if pagination is None:
        return False
    if not isinstance(pagination, dict):
        raise InvalidResponseError(f"page {page}: 'pagination' is not an object")
    next_page = pagination.get("next_page")
    if next_page is None or next_page is False:
        return False
    if isinstance(next_page, str):
        return bool(next_page.strip())
    if isinstance(next_page, int):  # bool True included
        return True
    raise InvalidResponseError(f"page {page}: 'pagination.next_page' is neither a URL nor a number")


@dataclass
class Listing:
    """State of one listing: the ids seen so far and the page to fetch next.

    A listing is complete only when it ends on a real last page: a page without a next page.
    Anything else - an empty page that still announces a next page, a page adding no new id,
    running into ``max_pages`` - raises PaginationError, because the caller deletes what a
    complete listing lacks.
    """

    max_pages: int
    page: int = 1
    seen: set[int] = field(default_factory=set)
    done: bool = False

    def accept(self, body: Any, unchanged: Unchanged | None = None) -> WorkflowPage:
        """Parse the body of page ``self.page`` and advance. Raises on a malformed body, on an
        empty page announcing a next page, on a page adding no new id, and when another page
        would exceed ``max_pages``. A malformed *item* does not raise: it is returned in
        ``rejected`` (the caller decides; ``ZuoraClient.list_workflows`` raises on it).

        ``unchanged``: asked for each object item with a valid id not seen before in this
        listing; an item it accepts is not parsed (the caller holds it already, and it parsed
        then) and goes into ``page.unchanged`` raw. The paging rules count it as any item."""
        number = self.page
        if not isinstance(body, dict):
            raise InvalidResponseError(f"page {number}: response body is not a JSON object")
        data = body.get("data")
        if not isinstance(data, list):
            raise InvalidResponseError(f"page {number}: 'data' is not a list")
        more = has_next_page(body, number)
        if not data and more:
            raise PaginationError(
                f"page {number} is empty but announces a next page: the listing is incomplete"
            )
        new: list[Workflow] = []
        rejected: list[RejectedItem] = []
        kept: dict[int, dict[str, Any]] = {}
        known_ids = 0
        for index, item in enumerate(data):
            if unchanged is not None:
                item_id = _valid_id(item)
                if item_id is not None and item_id not in self.seen and unchanged(item_id, item):
                    known_ids += 1
                    self.seen.add(item_id)
                    kept[item_id] = item
                    continue
            where = f"workflow item {index} on page {number}"
            try:
                workflow = Workflow.from_api(item, where=where)
            except InvalidResponseError as exc:
                rejected.append(RejectedItem(workflow_id=_readable_id(item), reason=str(exc)))
                continue
            known_ids += 1
            if workflow.id not in self.seen:
                self.seen.add(workflow.id)
                new.append(workflow)
        if known_ids and not new and not kept and not rejected:
            raise PaginationError(
                f"page {number} added no new workflow id ({len(data)} items, all seen before): "
                "the server is repeating pages"
            )
        if not more:
            self.done = True
        elif number >= self.max_pages:
            raise PaginationError(f"listing did not end within max_pages={self.max_pages} pages")
        else:
            self.page = number + 1
        return WorkflowPage(
            number=number,
            workflows=new,
            item_count=len(data),
            rejected=rejected,
            unchanged=kept,
        )


def _readable_id(item: Any) -> int | None:
    """The id of an item that failed to parse, when it is an integer at all (of any size)."""
    value = item.get("id") if isinstance(item, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _valid_id(item: Any) -> int | None:
    """The id ``Workflow.from_api`` would read (an integer or a string of digits, in range), or
    None (the item is then parsed, and rejected if it must be)."""
    value = _readable_id(item)
    return value if value is not None and 0 <= value <= MAX_WORKFLOW_ID else None
