"""get_workflow_export / list_workflow_versions: parsing, errors and the request path."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from zuora_client import (
    BadRequestError,
    CanvasPosition,
    InvalidResponseError,
    NotFoundError,
    RequestEvent,
    ServerError,
    WorkflowExport,
)
from zuora_client._definition_models import parse_css


def export_body(**workflow: Any) -> dict[str, Any]:
    """A small snake_case export in the shape of the spec's example."""
    return {
        "workflow": {"id": 286, "name": "Call Echo", "type": "Workflow::Setup", **workflow},
        "tasks": [
            {"id": 849, "name": "Call Echo", "action_type": "Callout", "task_id": None},
            {"id": 850, "name": "Notify", "action_type": "Email", "task_id": 849},
        ],
        "linkages": [
            {
                "linkage_type": "Start",
                "source_task_id": None,
                "source_workflow_id": 286,
                "target_task_id": 849,
            },
            {
                "linkage_type": "Success",
                "source_task_id": 849,
                "source_workflow_id": None,
                "target_task_id": 850,
            },
        ],
    }


async def test_export_request_path_query_and_endpoint_label(make_client, fake, z) -> None:
    events: list[RequestEvent] = []
    fake.faults = [z.json_response(200, export_body())]
    async with make_client(on_request=events.append) as client:
        export = await client.get_workflow_export(286, version="0.0.2")
    request = fake.api_requests[-1]
    assert request.url.path == "/workflows/286/export"
    assert dict(request.url.params) == {"version": "0.0.2"}
    assert [e.endpoint for e in events] == ["token", "export"]
    assert [t.id for t in export.tasks] == [849, 850]
    assert [link.is_entry for link in export.linkages] == [True, False]


async def test_export_without_version_sends_no_query(make_client, fake, z) -> None:
    fake.faults = [z.json_response(200, export_body())]
    async with make_client() as client:
        await client.get_workflow_export(286)
    assert fake.api_requests[-1].url.query == b""


async def test_versions_request_and_endpoint_label(make_client, fake, z) -> None:
    events: list[RequestEvent] = []
    body = {"data": [{"id": 49, "version": "0.0.2"}, {"id": 48, "version": 1}]}
    fake.faults = [z.json_response(200, body)]
    async with make_client(on_request=events.append) as client:
        versions = await client.list_workflow_versions(48)
    assert fake.api_requests[-1].url.path == "/workflows/48/versions"
    assert events[-1].endpoint == "versions"
    assert [(v.id, v.version) for v in versions] == [(49, "0.0.2"), (48, "1")]  # server order


@pytest.mark.parametrize("version", ["", "1.2.3.4", "v1", "latest ", "../x", 2])
async def test_bad_version_is_refused_before_any_request(make_client, fake, version) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="version"):
            await client.get_workflow_export(1, version=version)
    assert fake.requests == []


@pytest.mark.parametrize("workflow_id", [-1, True, "12", 1.0])
async def test_bad_workflow_id_is_refused(make_client, fake, workflow_id) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="workflow_id"):
            await client.get_workflow_export(workflow_id)
        with pytest.raises(ValueError, match="workflow_id"):
            await client.list_workflow_versions(workflow_id)
    assert fake.requests == []


async def test_export_retries_5xx_like_the_listing(make_client, fake, sleeps, z) -> None:
    fake.faults = [z.json_response(503), z.json_response(502), z.json_response(200, export_body())]
    async with make_client() as client:
        export = await client.get_workflow_export(286, "latest")
        assert client.stats.retries == 2
    assert export.workflow.id == 286
    assert len(sleeps) == 2


async def test_export_gives_up_after_max_retries(make_client, fake, z) -> None:
    fake.faults = [z.json_response(500)] * 3
    async with make_client(max_retries=2) as client:
        with pytest.raises(ServerError):
            await client.get_workflow_export(286)
    assert len(fake.api_requests) == 3


async def test_versions_401_refreshes_the_token_once(make_client, fake, z) -> None:
    fake.faults = [z.json_response(401, {"message": "Authentication error"})]
    fake.faults.append(z.json_response(200, {"data": []}))
    async with make_client() as client:
        assert await client.list_workflow_versions(48) == []
    assert len(fake.token_requests) == 2


MISSING = "Workflow version '9' is not found."


@pytest.mark.parametrize(
    "body",
    [
        {"errors": [{"code": "invalid", "status": 400, "title": MISSING}]},  # the spec's quirk
        {"Errors": [{"code": "invalid", "status": 404, "title": MISSING}]},
        {"errors": [MISSING]},
        {"Errors": [MISSING]},
    ],
)
async def test_404_for_a_missing_version_is_not_found(make_client, fake, z, body) -> None:
    fake.faults = [z.json_response(404, body, Zuora_Request_Id="rid-404")]
    async with make_client() as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get_workflow_export(286, "9")
    assert caught.value.status_code == 404  # the HTTP status wins over errors[].status
    assert caught.value.request_id == "rid-404"
    assert MISSING in str(caught.value)
    assert not caught.value.retryable
    assert len(fake.api_requests) == 1


async def test_unknown_workflow_versions_is_not_found(make_client, fake, z) -> None:
    body = {"Errors": ["The workflow for the given id does not exist"]}
    fake.faults = [z.json_response(404, body)]
    async with make_client() as client:
        with pytest.raises(NotFoundError, match="does not exist"):
            await client.list_workflow_versions(5)


# ---------------------------------------------------------------------------------- parsing


def test_camel_case_keys_are_read_like_snake_case() -> None:
    body = {
        "workflow": {
            "id": "286",
            "calloutTrigger": True,
            "ondemandTrigger": False,
            "scheduledTrigger": True,
            "syncTrigger": False,
            "callType": "BATCH",
            "deleteTtl": 30,
            "version": "0.0.3",
        },
        "tasks": [
            {
                "id": 1,
                "actionType": "Query",
                "callType": "SOAP",
                "concurrentLimit": 10,
                "taskId": None,
                "objectId": 77,
            }
        ],
        "linkages": [
            {
                "linkageType": "Start",
                "sourceWorkflowId": 286,
                "sourceTaskId": None,
                "targetTaskId": 1,
            }
        ],
    }
    export = WorkflowExport.from_api(body)
    wf = export.workflow
    assert (wf.id, wf.callout_trigger, wf.ondemand_trigger, wf.scheduled_trigger) == (
        286,
        True,
        False,
        True,
    )
    assert (wf.sync_trigger, wf.call_type, wf.delete_ttl) == (False, "BATCH", 30)
    assert wf.version == "0.0.3"
    task = export.tasks[0]
    assert (task.action_type, task.call_type, task.concurrent_limit, task.object_id) == (
        "Query",
        "SOAP",
        10,
        "77",
    )
    link = export.linkages[0]
    assert (link.linkage_type, link.source_workflow_id, link.target_task_id) == ("Start", 286, 1)
    assert link.is_entry


@pytest.mark.parametrize(
    ("css", "expected"),
    [
        ({"top": "40px", "left": "30px"}, CanvasPosition(top=40, left=30)),
        ({"top": "-80px", "left": "470px"}, CanvasPosition(top=-80, left=470)),
        ({"top": " 12.6PX ", "left": 5}, CanvasPosition(top=13, left=5)),
        ({"top": "160px"}, CanvasPosition(top=160, left=None)),
        ({"top": "auto", "left": "calc(1px)"}, None),
        ({"top": True}, None),
        ("40px", None),
        (None, None),
    ],
)
def test_css_positions(css: Any, expected: CanvasPosition | None) -> None:
    assert parse_css(css) == expected


def test_free_text_linkage_and_action_types_and_unknown_keys_kept() -> None:
    body = export_body()
    body["workflow_definition"] = {"name": "x", "category": "Billing"}
    body["tasks"][0]["action_type"] = "Script::JavaScript"
    body["tasks"][0]["subprocess_id"] = 5
    body["linkages"][0]["linkage_type"] = "InvoicePosted"
    body["linkages"][1]["linkage_type"] = "For Each"
    body["linkages"].append(
        {"linkage_type": "Case_Else", "source_task_id": 850, "target_task_id": 849}
    )
    export = WorkflowExport.from_api(body)
    assert export.tasks[0].action_type == "Script::JavaScript"
    types = [link.linkage_type for link in export.linkages]
    assert types == ["InvoicePosted", "For Each", "Case_Else"]
    assert export.raw["workflow_definition"] == {"name": "x", "category": "Billing"}
    assert export.tasks[0].raw["subprocess_id"] == 5
    assert export.linkages[2].source_workflow_id is None


def test_empty_tags_are_dropped_and_absent_lists_are_empty() -> None:
    body = {"workflow": {"id": 1}, "tasks": [{"id": 2, "tags": ["", "billing", " "]}]}
    export = WorkflowExport.from_api(body)
    assert export.tasks[0].tags == ["billing"]
    assert export.linkages == []
    assert WorkflowExport.from_api({"workflow": {"id": 1}, "tasks": None}).tasks == []


def test_content_hash_ignores_key_order_and_sees_any_change() -> None:
    body = export_body()
    reordered = {key: body[key] for key in reversed(list(body))}
    reordered["workflow"] = dict(reversed(list(body["workflow"].items())))
    first = WorkflowExport.from_api(body)
    assert first.content_hash() == WorkflowExport.from_api(reordered).content_hash()
    changed = copy.deepcopy(body)
    changed["tasks"][1]["name"] = "Notify (edited)"
    assert WorkflowExport.from_api(changed).content_hash() != first.content_hash()
    assert len(first.content_hash()) == 64


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.pop("workflow"), "field 'workflow' is not an object"),
        (lambda b: b["workflow"].pop("id"), "workflow: field 'id' is missing"),
        (lambda b: b.update(tasks={"id": 1}), "field 'tasks' is not a list"),
        (lambda b: b["tasks"][1].update(id=849), "task id 849 appears twice"),
        (lambda b: b["tasks"][0].pop("id"), "tasks[0]: field 'id' is missing"),
        (lambda b: b["tasks"][0].update(tags="a,b"), "tasks[0]: field 'tags' is not a list"),
        (lambda b: b["tasks"][0].update(parameters=[]), "tasks[0]: field 'parameters'"),
        (lambda b: b["linkages"][1].pop("target_task_id"), "linkages[1]: field 'target_task_id'"),
        (lambda b: b["linkages"].append("Start"), "linkages[2]: expected a JSON object"),
        (lambda b: b["linkages"][0].update(source_task_id="x"), "is not an integer"),
    ],
)
def test_malformed_exports_raise_naming_the_field(mutate, message: str) -> None:
    body = export_body()
    mutate(body)
    with pytest.raises(InvalidResponseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        WorkflowExport.from_api(body, where="export")


async def test_malformed_versions_body_is_invalid(make_client, fake, z) -> None:
    fake.faults = [
        z.json_response(200, [{"id": 1}]),
        z.json_response(200, {"data": [{"id": 1}, {"id": 1}]}),
        z.json_response(200, {"data": [{"version": "0.0.1"}]}),
    ]
    async with make_client() as client:
        for expected in ("expected a JSON object", "appears twice", "field 'id' is missing"):
            with pytest.raises(InvalidResponseError, match=expected):
                await client.list_workflow_versions(1)


async def test_non_json_export_is_invalid(make_client, fake) -> None:
    fake.faults = [httpx.Response(200, text="<html>maintenance</html>")]
    async with make_client() as client:
        with pytest.raises(InvalidResponseError, match="not JSON"):
            await client.get_workflow_export(1)


async def test_400_invalid_version_is_bad_request(make_client, fake, z) -> None:
    title = "The input of version '1' is invalid."
    body = {"errors": [{"code": "invalid", "status": 400, "title": title}]}
    fake.faults = [z.json_response(400, body)]
    async with make_client() as client:
        with pytest.raises(BadRequestError, match=r"The input of version '1' is invalid\."):
            await client.get_workflow_export(1, "1")
