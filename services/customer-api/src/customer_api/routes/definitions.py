"""/customers/{id}/workflows/{zuora_id}/definition...: a workflow's stored definition, its
download, its history and the diff of two stored versions (all from the database)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Response

from customer_api.deps import SessionDep
from customer_api.handlers import definitions
from customer_api.problems import problem_responses

router = APIRouter(
    prefix="/customers/{customer_id}/workflows/{zuora_id}", tags=["workflow definitions"]
)

ZuoraId = Annotated[int, Path(ge=0, le=2**63 - 1, description="The workflow's Zuora id.")]
HashPrefix = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9a-fA-F]{4,64}$",
        description="A stored definition's content hash, or a unique prefix (4+ hex digits).",
    ),
]


def _json(data: Any, **headers: str) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
    return Response(body, media_type="application/json", headers=headers or None)


def _ok(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {}}}}


@router.get(
    "/definition",
    summary="A workflow's current definition (tasks, linkages, version, content hash)",
    response_class=Response,
    responses={**_ok("The definition"), **problem_responses(404, 409, 422)},
)
async def get_definition(
    customer_id: uuid.UUID, zuora_id: ZuoraId, session: SessionDep, hash: HashPrefix = None
) -> Response:
    return _json(await definitions.definition_view(session, customer_id, zuora_id, hash))


@router.get(
    "/definition.json",
    summary="The current definition as Zuora exported it, as a file download",
    response_class=Response,
    responses={**_ok("The export JSON (attachment)"), **problem_responses(404, 422)},
)
async def download_definition(
    customer_id: uuid.UUID, zuora_id: ZuoraId, session: SessionDep
) -> Response:
    document, file_name = await definitions.definition_download(session, customer_id, zuora_id)
    return _json(document, **{"Content-Disposition": f'attachment; filename="{file_name}"'})


@router.get(
    "/definition/history",
    summary="The stored definitions of a workflow, newest first",
    response_class=Response,
    responses={**_ok("The history"), **problem_responses(404, 422)},
)
async def definition_history(
    customer_id: uuid.UUID, zuora_id: ZuoraId, session: SessionDep
) -> Response:
    return _json(await definitions.definition_history_view(session, customer_id, zuora_id))


@router.get(
    "/definition/diff",
    summary="Tasks added / removed / changed (field by field) and linkages added / removed "
    "between two stored definitions (default: the one before the current, and the current)",
    response_class=Response,
    responses={**_ok("The diff"), **problem_responses(404, 409, 422)},
)
async def definition_diff(
    customer_id: uuid.UUID,
    zuora_id: ZuoraId,
    session: SessionDep,
    from_: Annotated[HashPrefix, Query(alias="from")] = None,
    to: HashPrefix = None,
) -> Response:
    return _json(
        await definitions.diff_view(session, customer_id, zuora_id, from_hash=from_, to_hash=to)
    )
