"""Contract: the client parses every example of Zuora's OpenAPI fragment (tests/data/, a copy of
/work/shared/zuora-openapi-workflows.json, transcribed from Zuora's v1 spec)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from zuora_client import (
    NotFoundError,
    PermissionDeniedError,
    Workflow,
    WorkflowExport,
    ZuoraError,
)
from zuora_client._errors import BadRequestError, error_from_response

SPEC = json.loads((Path(__file__).parent / "data" / "zuora-openapi-workflows.json").read_text())


def examples() -> list[tuple[str, int, Any]]:
    found = []
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                for content in (response.get("content") or {}).values():
                    if "example" in content:
                        found.append((f"{method.upper()} {path}", int(status), content["example"]))
    return found


EXAMPLES = examples()
ERRORS = [(op, status, body) for op, status, body in EXAMPLES if status >= 400]
#: Success examples of operations this client does not call (writes, runs), and why.
NOT_CALLED = {
    "DELETE /workflows/{workflow_id}": "write operation, the mirror is read-only",
    "DELETE /workflows/versions/{version_id}": "write operation, the mirror is read-only",
    "GET /workflows/workflow_runs/{workflow_run_id}": "runs are not mirrored",
}


def by_operation(operation: str, status: int = 200) -> Any:
    (body,) = [b for op, st, b in EXAMPLES if op == operation and st == status]
    return body


def test_the_fragment_has_the_examples_this_file_covers() -> None:
    successes = {op for op, status, _ in EXAMPLES if status < 400}
    covered = {
        "POST /oauth/token",
        "GET /workflows",
        "GET /workflows/{workflow_id}",
        "PATCH /workflows/{workflow_id}",
        "GET /workflows/{workflow_id}/export",
        "GET /workflows/{workflow_id}/versions",
        "GET /workflows/tasks",
        "GET /workflows/tasks/{task_id}",
    }
    assert successes == covered | set(NOT_CALLED)
    assert len(ERRORS) == 6


async def test_export_example_through_the_client(make_client, fake, z) -> None:
    body = by_operation("GET /workflows/{workflow_id}/export")
    fake.faults = [z.json_response(200, body)]
    async with make_client() as client:
        export = await client.get_workflow_export(286)
    workflow = export.workflow
    assert (workflow.id, workflow.name, workflow.version, workflow.type) == (
        286,
        "Call Echo",
        "0.0.1",
        "Workflow::Setup",
    )
    assert (workflow.callout_trigger, workflow.ondemand_trigger, workflow.scheduled_trigger) == (
        True,
        True,
        False,
    )
    assert (workflow.sync_trigger, workflow.delete_ttl, workflow.priority) == (False, 60, "Medium")
    assert workflow.css is not None and (workflow.css.top, workflow.css.left) == (40, 30)
    (task,) = export.tasks
    assert (task.id, task.name, task.action_type) == (849, "Call Echo", "Callout")
    assert task.call_type == "SOAP"
    assert (task.concurrent_limit, task.priority, task.parent_task_id) == (9999999, "Medium", None)
    assert task.css is not None and (task.css.top, task.css.left) == (160, 470)
    assert task.tags == []  # the example's [""]
    assert task.parameters["url"] == "http://scooterlabs.com/echo"
    (link,) = export.linkages
    assert (link.linkage_type, link.source_workflow_id, link.target_task_id) == ("Start", 286, 849)
    assert link.is_entry
    assert export.raw == body


async def test_versions_example_through_the_client(make_client, fake, z) -> None:
    fake.faults = [z.json_response(200, by_operation("GET /workflows/{workflow_id}/versions"))]
    async with make_client() as client:
        versions = await client.list_workflow_versions(48)
    assert [(v.id, v.version, v.name) for v in versions] == [
        (48, "0.0.1", "New test workflow"),
        (49, "0.0.2", "New test workflow"),
    ]
    first = versions[0]
    assert (first.callout_trigger, first.ondemand_trigger, first.scheduled_trigger) == (
        True,
        True,
        False,
    )
    assert first.created_at is not None and first.created_at.isoformat() == (
        "2019-05-31T14:52:38.171000+00:00"
    )
    assert first.updated_at is not None and first.updated_at.year == 2019
    assert first.interval is None and first.status is None  # both optional


async def test_token_example_through_the_client(make_client, fake, z) -> None:
    body = by_operation("POST /oauth/token")
    fake.token_faults = [z.json_response(200, body)]
    fake.faults = [z.json_response(200, {"data": []})]
    async with make_client() as client:
        await client.list_workflow_versions(1)
    assert fake.api_requests[-1].headers["Authorization"] == f"Bearer {body['access_token']}"


@pytest.mark.parametrize(
    "operation",
    ["GET /workflows/{workflow_id}", "PATCH /workflows/{workflow_id}"],
)
def test_single_workflow_examples_parse(operation: str) -> None:
    body = by_operation(operation)
    workflow = Workflow.from_api(body)
    assert workflow.id == body["id"] and workflow.name == body["name"]


def test_list_example_parses() -> None:
    body = by_operation("GET /workflows")
    workflows = [Workflow.from_api(item) for item in body["data"]]
    assert [w.id for w in workflows] == [item["id"] for item in body["data"]]
    assert all(w.active_version is not None for w in workflows)


@pytest.mark.parametrize("operation", ["GET /workflows/tasks", "GET /workflows/tasks/{task_id}"])
def test_task_examples_parse_as_export_tasks(operation: str) -> None:
    """The Task schema is shared by the tasks endpoints and the export: its (task-run) examples,
    with instance fields and a status, must parse as export tasks too."""
    body = by_operation(operation)
    items = body["data"] if operation == "GET /workflows/tasks" else [body]
    export = WorkflowExport.from_api({"workflow": {"id": 1}, "tasks": items})
    assert [t.id for t in export.tasks] == [item["id"] for item in items]
    assert [t.action_type for t in export.tasks] == [item["action_type"] for item in items]
    assert [t.status for t in export.tasks] == [item.get("status") for item in items]


EXPECTED_ERROR = {400: BadRequestError, 403: PermissionDeniedError, 404: NotFoundError}


@pytest.mark.parametrize(
    ("operation", "status", "body"), ERRORS, ids=[f"{op} {st}" for op, st, _ in ERRORS]
)
def test_error_examples_map_to_typed_errors_with_their_text(
    operation: str, status: int, body: Any
) -> None:
    response = httpx.Response(status, json=body, headers={"Zuora-Request-Id": "r" * 36})
    error = error_from_response(response, what=operation)
    assert type(error) is EXPECTED_ERROR.get(status, ZuoraError)
    assert error.status_code == status
    items = body.get("errors") or body.get("Errors") or body.get("reasons")
    first = items[0]
    text = first if isinstance(first, str) else first["title"]
    assert text[:60] in str(error)
