"""OpenAPI operation ids are readable and unique (generated clients name their methods by them)."""

from __future__ import annotations

import re
from collections import Counter

from customer_api.app import operation_id
from customer_api.openapi import openapi_document
from fastapi.routing import APIRoute


def _ids() -> dict[tuple[str, str], str]:
    document = openapi_document()
    return {
        (method.upper(), path): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def test_every_operation_id_is_unique_and_kebab_case() -> None:
    ids = _ids()
    assert [i for i, n in Counter(ids.values()).items() if n > 1] == []
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", i) for i in ids.values()), ids


def test_ids_are_tag_then_what_the_operation_does() -> None:
    ids = _ids()
    assert ids["POST", "/customers"] == "customers-create"
    assert ids["GET", "/customers/{customer_id}"] == "customers-get"
    assert ids["GET", "/customers/{customer_id}/workflows"] == "workflows-list"
    assert ids["GET", "/customers/{customer_id}/workflows/{zuora_id}/definition/diff"] == (
        "workflow-definitions-diff"
    )
    assert ids["POST", "/sync-runs/{run_id}/replay"] == "sync-replay-run"


def test_a_name_made_only_of_the_tag_words_falls_back_to_the_method() -> None:
    async def customers() -> None: ...

    route = APIRoute("/x", customers, methods=["GET"], tags=["customers"])
    assert operation_id(route) == "customers-get"
