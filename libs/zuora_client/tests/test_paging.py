from __future__ import annotations

from typing import Any

import httpx
import pytest
from zuora_client import InvalidResponseError, PaginationError, ZuoraClient


def page(ids: list[int], next_page: Any = "absent", **extra: Any) -> dict[str, Any]:
    pagination: dict[str, Any] = {"page": 1, "page_length": len(ids)}
    if next_page != "absent":
        pagination["next_page"] = next_page
    body: dict[str, Any] = {
        "data": [{"id": i, "name": f"wf {i}"} for i in ids],
        "pagination": pagination,
    }
    body.update(extra)
    return body


NEXT = "https://rest.zuora.com/workflows?page=2&page_length=2"


@pytest.mark.parametrize(
    ("pages", "expected_ids", "expected_requests"),
    [
        pytest.param([page([1, 2])], [1, 2], 1, id="next_page absent"),
        pytest.param([page([1, 2], None)], [1, 2], 1, id="next_page null"),
        pytest.param([page([1, 2], "")], [1, 2], 1, id="next_page empty"),
        pytest.param([page([1, 2], "  ")], [1, 2], 1, id="next_page blank"),
        pytest.param([page([1, 2], False)], [1, 2], 1, id="next_page false"),
        pytest.param([{"data": [{"id": 1, "name": "a"}]}], [1], 1, id="pagination missing"),
        pytest.param(
            [{"data": [{"id": 1, "name": "a"}], "pagination": None}], [1], 1, id="pagination null"
        ),
        pytest.param([page([1, 2], NEXT), page([3])], [1, 2, 3], 2, id="next_page url"),
        pytest.param([page([1, 2], 2), page([3], None)], [1, 2, 3], 2, id="next_page integer"),
        pytest.param([page([1, 2], "2"), page([3], None)], [1, 2, 3], 2, id="next_page str num"),
        pytest.param([page([])], [], 1, id="empty tenant: one empty last page"),
        pytest.param([page([1, 2], NEXT), page([], None)], [1, 2], 2, id="empty last page ends"),
        pytest.param(
            [page([1], NEXT), page([2], NEXT), page([3])],
            [1, 2, 3],
            3,
            id="short pages with next_page are followed",
        ),
        pytest.param(
            [page([1, 2], NEXT), page([2, 3], NEXT), page([3, 4])],
            [1, 2, 3, 4],
            3,
            id="overlapping pages are deduped, first wins",
        ),
        pytest.param([page([5, 5, 6])], [5, 6], 1, id="duplicate within one page"),
    ],
)
async def test_paging_termination(
    z: Any,
    make_client: Any,
    pages: list[Any],
    expected_ids: list[int],
    expected_requests: int,
) -> None:
    fake = z.FakeZuora()
    fake.pages = pages
    async with make_client(handler=fake) as client:
        workflows = await client.list_workflows(page_length=2)
    assert [w.id for w in workflows] == expected_ids
    assert len(fake.api_requests) == expected_requests
    assert client.stats.pages == expected_requests
    for number, request in enumerate(fake.api_requests, start=1):
        assert request.url.params["page"] == str(number)
        assert request.url.params["page_length"] == "2"


@pytest.mark.parametrize(
    ("pages", "error", "match"),
    [
        pytest.param(
            [page([1, 2], NEXT), page([1, 2], NEXT)],
            PaginationError,
            "page 2 added no new workflow id",
            id="repeated page",
        ),
        pytest.param(
            [page([1], NEXT), page([2], NEXT), page([2, 1], NEXT)],
            PaginationError,
            "page 3",
            id="page of old ids",
        ),
        pytest.param(
            [page([], NEXT)],
            PaginationError,
            "page 1 is empty but announces a next page",
            id="empty first page with next_page",
        ),
        pytest.param(
            [page([1, 2], NEXT), page([], NEXT), page([3])],
            PaginationError,
            "page 2 is empty but announces a next page",
            id="empty middle page with next_page",
        ),
        pytest.param(
            [["not", "an", "object"]], InvalidResponseError, "not a JSON object", id="list"
        ),
        pytest.param(
            [{"data": {"id": 1}}], InvalidResponseError, "'data' is not a list", id="data"
        ),
        pytest.param([{"pagination": {}}], InvalidResponseError, "'data'", id="data missing"),
        pytest.param(
            [{"data": [{"id": 1, "name": "a"}], "pagination": "x"}],
            InvalidResponseError,
            "'pagination' is not an object",
            id="pagination string",
        ),
        pytest.param(
            [page([1], {"page": 2})], InvalidResponseError, "next_page", id="next_page object"
        ),
        pytest.param(
            [page([1, 2], NEXT), {"data": [{"id": 3, "name": "c"}, {"name": "no id"}]}],
            InvalidResponseError,
            "workflow item 1 on page 2: field 'id' is missing",
            id="malformed item is not dropped",
        ),
    ],
)
async def test_paging_errors(
    z: Any, make_client: Any, pages: list[Any], error: type[Exception], match: str
) -> None:
    fake = z.FakeZuora()
    fake.pages = pages
    async with make_client(handler=fake) as client:
        with pytest.raises(error, match=match):
            await client.list_workflows(page_length=2)


async def test_iter_pages_hands_over_malformed_items_and_goes_on(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora()
    bad = [
        {"id": 3, "name": 42},
        {"id": 2**63, "name": "too big"},
        {"name": "no id"},
    ]
    fake.pages = [
        page([1], NEXT),
        {"data": [*bad, {"id": 4, "name": "ok"}], "pagination": {"next_page": NEXT}},
        {"data": [{"id": 5, "name": "x"}]},
    ]
    async with make_client(handler=fake) as client:
        pages = [p async for p in client.iter_pages(page_length=2)]
    assert [[w.id for w in p.workflows] for p in pages] == [[1], [4], [5]]
    rejected = pages[1].rejected
    assert [r.workflow_id for r in rejected] == [3, 2**63, None]
    assert "field 'name' is not a string" in rejected[0].reason
    assert "field 'id' is out of range" in rejected[1].reason
    assert "field 'id' is missing" in rejected[2].reason


async def test_page_of_only_malformed_items_is_not_taken_for_a_repeat(
    z: Any, make_client: Any
) -> None:
    fake = z.FakeZuora()
    fake.pages = [page([1], NEXT), {"data": [{"id": 1, "name": None}]}]
    async with make_client(handler=fake) as client:
        pages = [p async for p in client.iter_pages(page_length=2)]
    assert [len(p.rejected) for p in pages] == [0, 1]


async def test_non_json_page_is_invalid(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora()
    fake.pages = [httpx.Response(200, text="<html>oops</html>")]
    async with make_client(handler=fake) as client:
        with pytest.raises(InvalidResponseError, match="not JSON"):
            await client.list_workflows()


async def test_max_pages_raises(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=10)
    async with make_client(handler=fake, max_pages=3) as client:
        with pytest.raises(PaginationError, match="max_pages=3"):
            await client.list_workflows(page_length=2)
    assert len(fake.api_requests) == 3


async def test_max_pages_exactly_enough(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=6)
    async with make_client(handler=fake, max_pages=3) as client:
        assert len(await client.list_workflows(page_length=2)) == 6


@pytest.mark.parametrize("style", ["url", "int", "null", "empty", "absent"])
async def test_listing_with_every_last_page_style(z: Any, make_client: Any, style: str) -> None:
    fake = z.FakeZuora(workflows=237)
    fake.next_page_style = style
    async with make_client(handler=fake) as client:
        workflows = await client.list_workflows()
    assert sorted(w.id for w in workflows) == list(range(1000, 1237))
    assert len(fake.api_requests) == 5
    assert len(fake.token_requests) == 1
    assert client.stats.pages == 5


async def test_server_capping_page_length_is_followed(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=237, page_cap=20)
    async with make_client(handler=fake) as client:
        workflows = await client.list_workflows(page_length=50)
    assert len(workflows) == 237
    assert len(fake.api_requests) == 12


async def test_next_page_host_is_never_followed(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=5)
    fake.next_page_host = "https://evil.example.com"
    async with make_client(handler=fake) as client:
        assert len(await client.list_workflows(page_length=2)) == 5
    assert {r.url.host for r in fake.requests} == {"rest.apisandbox.zuora.com"}


async def test_iter_pages_reports_numbers_and_new_ids(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora()
    fake.pages = [page([1, 2], NEXT), page([2, 3], NEXT), page([4])]
    async with make_client(handler=fake) as client:
        pages = [p async for p in client.iter_pages(page_length=2)]
    assert [p.number for p in pages] == [1, 2, 3]
    assert [[w.id for w in p.workflows] for p in pages] == [[1, 2], [3], [4]]
    assert [p.item_count for p in pages] == [2, 2, 1]


async def test_iter_workflows_yields_each_once(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=7)
    async with make_client(handler=fake) as client:
        ids = [wf.id async for wf in client.iter_workflows(page_length=3)]
    assert ids == list(range(1000, 1007))


@pytest.mark.parametrize("length", [0, -1, 51, 1000])
async def test_page_length_out_of_range(make_client: Any, length: int) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="page_length"):
            client.iter_pages(page_length=length)
        with pytest.raises(ValueError, match="page_length"):
            await client.list_workflows(page_length=length)


async def test_default_page_length_is_50(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=1)
    client: ZuoraClient
    async with make_client(handler=fake) as client:
        await client.list_workflows()
    assert fake.api_requests[0].url.params["page_length"] == "50"
    assert fake.api_requests[0].url.path == "/workflows"


async def test_items_the_caller_holds_are_handed_over_raw_and_the_rest_parsed(
    z: Any, make_client: Any
) -> None:
    """``unchanged``: an item it accepts is not parsed (even one that would not parse) and
    comes back raw; it is asked once per id, only for items with a valid id."""
    fake = z.FakeZuora()
    held = {"id": 2, "name": 42}  # would be rejected if parsed
    fake.pages = [
        {"data": [{"id": 1, "name": "a"}, held], "pagination": {"next_page": NEXT}},
        {"data": [{"id": 2, "name": "dup"}, {"id": "3", "name": "c"}, {"name": "no id"}]},
    ]
    asked: list[int] = []

    def unchanged(workflow_id: int, item: dict[str, Any]) -> bool:
        asked.append(workflow_id)
        return workflow_id in (2, 3)

    async with make_client(handler=fake) as client:
        pages = [p async for p in client.iter_pages(page_length=2, unchanged=unchanged)]
    assert asked == [1, 2, 3]  # not the repeated id 2, not the item without an id
    assert [[w.id for w in p.workflows] for p in pages] == [[1], []]
    assert pages[0].unchanged == {2: held} and pages[1].unchanged == {3: {"id": "3", "name": "c"}}
    assert [r.workflow_id for r in pages[1].rejected] == [None]


async def test_a_repeated_page_of_held_items_is_still_a_repeat(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora()
    fake.pages = [page([1, 2], NEXT), page([1, 2], NEXT)]
    async with make_client(handler=fake) as client:
        with pytest.raises(PaginationError, match="added no new workflow id"):
            [p async for p in client.iter_pages(page_length=2, unchanged=lambda i, item: True)]
