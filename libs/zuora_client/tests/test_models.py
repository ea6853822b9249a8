from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zuora_client import (
    InvalidResponseError,
    Workflow,
    WorkflowVersion,
    listing_fingerprint,
    parse_timestamp,
)

FULL = {
    "id": 19080,
    "name": "Refresh products",
    "description": "Nightly catalog refresh",
    "status": "Active",
    "calloutTrigger": True,
    "ondemandTrigger": True,
    "scheduledTrigger": True,
    "interval": "0 2 * * *",
    "timezone": "Sydney",
    "priority": "High",
    "createdAt": "2024-02-04T13:39:10.530Z",
    "updatedAt": "2025-07-23T11:43:48.576Z",
    "active_version": {
        "id": 19094,
        "version": "0.0.3",
        "status": "Active",
        "type": "Workflow::Setup",
        "description": "add retry",
    },
    "latest_inactive_verisons": [
        {"id": 19081, "name": "Refresh products", "version": "0.0.1", "status": "Inactive"}
    ],
    "someFutureField": {"x": 1},
}


def test_full_item() -> None:
    wf = Workflow.from_api(copy.deepcopy(FULL))
    assert wf.id == 19080
    assert wf.name == "Refresh products"
    assert wf.description == "Nightly catalog refresh"
    assert wf.status == "Active"
    assert (wf.callout_trigger, wf.ondemand_trigger, wf.scheduled_trigger) == (True, True, True)
    assert wf.interval == "0 2 * * *"
    assert wf.timezone == "Sydney"
    assert wf.priority == "High"
    assert wf.created_at == datetime(2024, 2, 4, 13, 39, 10, 530000, tzinfo=UTC)
    assert wf.updated_at == datetime(2025, 7, 23, 11, 43, 48, 576000, tzinfo=UTC)
    assert wf.active_version == WorkflowVersion(
        id=19094, version="0.0.3", status="Active", type="Workflow::Setup", description="add retry"
    )
    assert wf.raw == FULL  # everything as received, misspelled and unknown keys included


def test_model_is_frozen() -> None:
    wf = Workflow.from_api({"id": 1, "name": "a"})
    with pytest.raises(ValueError, match="frozen"):
        wf.name = "b"  # type: ignore[misc]


def test_minimal_item() -> None:
    wf = Workflow.from_api({"id": 1, "name": "a"})
    assert wf.active_version is None
    assert wf.description is None
    assert wf.callout_trigger is None
    assert wf.created_at is None
    assert wf.raw == {"id": 1, "name": "a"}


def test_snake_case_keys() -> None:
    item = {
        "id": 2,
        "name": "x",
        "callout_trigger": False,
        "ondemand_trigger": True,
        "scheduled_trigger": True,
        "created_at": "2021-02-04T13:39:10.530+08:00",
        "updated_at": "2019-09-19 18:25:33 UTC",
    }
    wf = Workflow.from_api(item)
    assert (wf.callout_trigger, wf.ondemand_trigger, wf.scheduled_trigger) == (False, True, True)
    assert wf.created_at == datetime(2021, 2, 4, 5, 39, 10, 530000, tzinfo=UTC)
    assert wf.updated_at == datetime(2019, 9, 19, 18, 25, 33, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "attr", "expected"),
    [
        ({"id": "19080"}, "id", 19080),
        ({"interval": ""}, "interval", None),
        ({"interval": "   "}, "interval", None),
        ({"interval": None}, "interval", None),
        ({"active_version": None}, "active_version", None),
        ({"active_version": {}}, "active_version", WorkflowVersion()),
        ({"description": ""}, "description", ""),
        ({"timezone": None}, "timezone", None),
        ({"createdAt": ""}, "created_at", None),
        (
            {"createdAt": None, "created_at": "2020-01-01T00:00:00Z"},
            "created_at",
            datetime(2020, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_tolerances(changes: dict[str, Any], attr: str, expected: Any) -> None:
    item = {**copy.deepcopy(FULL), **changes}
    assert getattr(Workflow.from_api(item), attr) == expected


def test_active_version_absent() -> None:
    item = copy.deepcopy(FULL)
    del item["active_version"]
    assert Workflow.from_api(item).active_version is None


def test_active_version_tolerances() -> None:
    item = {"id": 1, "name": "a", "active_version": {"id": "5", "version": 2, "extra": True}}
    version = Workflow.from_api(item).active_version
    assert version == WorkflowVersion(id=5, version="2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-05-31T14:52:38.171Z", datetime(2019, 5, 31, 14, 52, 38, 171000, tzinfo=UTC)),
        ("2019-05-31T14:52:38Z", datetime(2019, 5, 31, 14, 52, 38, tzinfo=UTC)),
        ("2019-05-31T14:52:38z", datetime(2019, 5, 31, 14, 52, 38, tzinfo=UTC)),
        (
            "2021-02-04T13:39:10.530+08:00",
            datetime(2021, 2, 4, 13, 39, 10, 530000, tzinfo=timezone(timedelta(hours=8))),
        ),
        ("2021-02-04T13:39:10+0800", datetime(2021, 2, 4, 5, 39, 10, tzinfo=UTC)),
        ("2019-09-19 18:25:33", datetime(2019, 9, 19, 18, 25, 33, tzinfo=UTC)),
        ("2019-09-19 18:25:33 UTC", datetime(2019, 9, 19, 18, 25, 33, tzinfo=UTC)),
        ("2019-09-19T18:25:33.123456789Z", datetime(2019, 9, 19, 18, 25, 33, 123456, tzinfo=UTC)),
        (" 2019-09-19 18:25:33 ", datetime(2019, 9, 19, 18, 25, 33, tzinfo=UTC)),
        ("yesterday", None),
        ("2019-13-45 99:99:99", None),
        ("2019-09-19T18:25:33+08:00 UTC", None),
        ("", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "a"}, "field 'id' is missing"),
        ({"id": None, "name": "a"}, "field 'id' is missing"),
        ({"id": "abc", "name": "a"}, "field 'id' is not an integer"),
        ({"id": "-3", "name": "a"}, "field 'id' is not an integer"),
        ({"id": "1e3", "name": "a"}, "field 'id' is not an integer"),
        ({"id": 1.5, "name": "a"}, "field 'id' is not an integer"),
        ({"id": True, "name": "a"}, "field 'id' is not an integer"),
        ({"id": [1], "name": "a"}, "field 'id' is not an integer"),
        ({"id": 1}, "field 'name' is missing"),
        ({"id": 1, "name": 5}, "field 'name' is not a string"),
        ({"id": 1, "name": "a", "status": 1}, "field 'status' is not a string"),
        (
            {"id": 1, "name": "a", "calloutTrigger": "yes"},
            "field 'calloutTrigger' is not a boolean",
        ),
        (
            {"id": 1, "name": "a", "scheduled_trigger": 1},
            "field 'scheduled_trigger' is not a boolean",
        ),
        (
            {"id": 1, "name": "a", "createdAt": "soon"},
            "field 'createdAt' is not a parsable timestamp",
        ),
        ({"id": 1, "name": "a", "updatedAt": 1700000000}, "field 'updatedAt' is not a timestamp"),
        ({"id": 1, "name": "a", "active_version": "v1"}, "field 'active_version' is not an object"),
        ({"id": 1, "name": "a", "active_version": []}, "field 'active_version' is not an object"),
        ({"id": 1, "name": "a", "active_version": {"id": "x"}}, "field 'active_version.id'"),
        ({"id": 1, "name": "a", "active_version": {"status": 3}}, "field 'active_version.status'"),
    ],
)
def test_malformed_items_name_the_field(item: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResponseError, match=message) as info:
        Workflow.from_api(item, where="workflow item 3 on page 2")
    assert str(info.value).startswith("workflow item 3 on page 2: field ")


@pytest.mark.parametrize("item", [None, [], "x", 5])
def test_item_not_an_object(item: Any) -> None:
    with pytest.raises(InvalidResponseError, match="expected a JSON object"):
        Workflow.from_api(item)


# ---------------------------------------------------------------- property-based

_text = st.text(max_size=20)
_maybe_text = st.none() | _text
_maybe_bool = st.none() | st.booleans()
_ids = st.integers(min_value=0, max_value=2**53)
_times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def _items(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    wf_id = draw(_ids)
    camel = draw(st.booleans())
    expected: dict[str, Any] = {"id": wf_id, "name": draw(_text)}
    item: dict[str, Any] = {
        "id": str(wf_id) if draw(st.booleans()) else wf_id,
        "name": expected["name"],
    }
    for snake, camel_key in [
        ("callout_trigger", "calloutTrigger"),
        ("ondemand_trigger", "ondemandTrigger"),
        ("scheduled_trigger", "scheduledTrigger"),
    ]:
        value = draw(_maybe_bool)
        expected[snake] = value
        if value is not None or draw(st.booleans()):
            item[camel_key if camel else snake] = value
    for key in ("description", "status", "timezone", "priority"):
        text = draw(_maybe_text)
        expected[key] = text
        if text is not None or draw(st.booleans()):
            item[key] = text
    interval = draw(st.sampled_from([None, "", "0 2 * * *", "*/5 * * * *"]))
    item["interval"] = interval
    expected["interval"] = interval or None
    for snake, camel_key in [("created_at", "createdAt"), ("updated_at", "updatedAt")]:
        moment = draw(st.none() | _times)
        expected[snake] = moment
        if moment is not None:
            style = draw(st.sampled_from(["iso_z", "offset", "space", "space_utc"]))
            if style == "iso_z":
                text = moment.isoformat().replace("+00:00", "Z")
            elif style == "offset":
                text = moment.astimezone(timezone(timedelta(hours=8))).isoformat()
            else:
                moment = moment.replace(microsecond=0)
                expected[snake] = moment
                text = moment.strftime("%Y-%m-%d %H:%M:%S")
                if style == "space_utc":
                    text += " UTC"
            item[camel_key if camel else snake] = text
    if draw(st.booleans()):
        item["active_version"] = draw(
            st.none() | st.fixed_dictionaries({"id": _ids, "version": _text, "status": _text})
        )
    item.update(
        draw(
            st.dictionaries(
                st.text(min_size=1, max_size=8).map(lambda k: "x_" + k), _text, max_size=3
            )
        )
    )
    if draw(st.booleans()):
        item["latest_inactive_verisons"] = []
    return item, expected


@given(_items())
def test_property_parse(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    item, expected = pair
    snapshot = copy.deepcopy(item)
    wf = Workflow.from_api(item)
    for key, value in expected.items():
        assert getattr(wf, key) == value, key
    assert wf.raw == snapshot
    assert item == snapshot  # the input is not mutated
    av = item.get("active_version")
    if av is None:
        assert wf.active_version is None
    else:
        assert wf.active_version is not None
        assert wf.active_version.id == av["id"]


@given(
    st.dictionaries(
        st.sampled_from(
            ["id", "name", "calloutTrigger", "createdAt", "active_version", "interval"]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=5)
        | st.lists(st.integers(), max_size=2),
    )
)
def test_property_never_crashes_untyped(item: dict[str, Any]) -> None:
    """Arbitrary junk either parses or raises InvalidResponseError - nothing else."""
    error: InvalidResponseError | None = None
    try:
        Workflow.from_api(item)
    except InvalidResponseError as exc:
        error = exc
    assert error is None or "field '" in str(error)


@pytest.mark.parametrize(
    "item",
    [
        {"id": 1, "name": "a"},
        {"id": 1, "name": "a", "active_version": None, "updated_at": ""},
        {"id": 1, "name": "a", "activeVersion": {"id": "7", "version": 2.5}, "updatedAt": "x"},
        {
            "id": 1,
            "name": "a",
            "active_version": {"id": 7, "version": "0.0.2"},
            "updatedAt": "2026-12-01T10:00:00Z",
        },
        {
            "id": 1,
            "name": "a",
            "active_version": {"version": 3},
            "updated_at": "2026-12-01 10:00:00",
        },
        {"id": 1, "name": "a", "active_version": "nope"},
    ],
)
def test_the_listing_fingerprint_reads_what_from_api_reads(item: dict[str, Any]) -> None:
    try:
        workflow = Workflow.from_api(item)
    except InvalidResponseError:
        with pytest.raises(InvalidResponseError):
            listing_fingerprint(item)
        return
    version = workflow.active_version
    expected = (version.id if version else None, version.version if version else None)
    assert listing_fingerprint(item) == (*expected, workflow.updated_at)
