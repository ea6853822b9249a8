from __future__ import annotations

from typing import Any

import httpx
import pytest
from zuora_client import (
    AuthenticationError,
    BadRequestError,
    BaseUrlNotAllowedError,
    InvalidResponseError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
    ZuoraError,
)
from zuora_client._errors import error_from_response, error_message

RID = "8f3c1f3e-1111-2222-3333-444455556666"


def resp(status: int, content: str, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(
        status,
        content=content.encode(),
        headers={"Content-Type": content_type, "Zuora-Request-Id": RID},
    )


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        ('{"message": "Authentication error"}', "application/json", "Authentication error"),
        ('{"message":"An unexpected error occurred\\n"}', "text/plain", "An unexpected error"),
        (
            '{"success": false, "reasons": [{"code": 53100320, "message": "bad termType"}]}',
            "application/json",
            "53100320: bad termType",
        ),
        (
            '{"Errors": ["The workflow for the given id does not exist"]}',
            "application/json",
            "The workflow for the given id does not exist",
        ),
        (
            '{"Success": false, "Errors": [{"Code": "INVALID_ID", "Message": "bad id"}]}',
            "application/json",
            "INVALID_ID: bad id",
        ),
        (
            '{"errors": [{"title": "Workflow version is not found", "code": "invalid"}]}',
            "application/json",
            "invalid: Workflow version is not found",
        ),
        (
            '{"error": "invalid_client", "error_description": "Bad credentials"}',
            "application/json",
            "invalid_client: Bad credentials",
        ),
        ('{"error": "invalid_client"}', "application/json", "invalid_client"),
        ("upstream connect error", "text/plain", "upstream connect error"),
        (
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "text/html",
            "502 Bad Gateway",
        ),
        ("<!DOCTYPE html><html><body>x</body></html>", "text/html", "HTML error page"),
        ("", "text/plain", None),
        ("[]", "application/json", "[]"),
    ],
)
def test_error_message_shapes(content: str, content_type: str, expected: str | None) -> None:
    message = error_message(resp(500, content, content_type))
    if expected is None:
        assert message is None
    else:
        assert message is not None
        assert message.startswith(expected)


def test_error_message_truncated() -> None:
    message = error_message(resp(500, "x" * 5000, "text/plain"))
    assert message is not None
    assert len(message) <= 200


@pytest.mark.parametrize(
    ("status", "token_endpoint", "cls", "retryable"),
    [
        (400, False, BadRequestError, False),
        (401, False, AuthenticationError, False),
        (403, False, PermissionDeniedError, False),
        (404, False, NotFoundError, False),
        (409, False, ZuoraError, False),
        (429, False, RateLimitError, True),
        (500, False, ServerError, True),
        (502, False, ServerError, True),
        (503, False, ServerError, True),
        (504, False, ServerError, True),
        (505, False, ServerError, False),
        (302, False, ZuoraError, False),
        (400, True, AuthenticationError, False),
        (401, True, AuthenticationError, False),
        (403, True, PermissionDeniedError, False),
        (404, True, AuthenticationError, False),
        (429, True, RateLimitError, True),
        (503, True, ServerError, True),
    ],
)
def test_status_mapping(status: int, token_endpoint: bool, cls: type, retryable: bool) -> None:
    error = error_from_response(
        resp(status, '{"message": "m"}'), what="GET /workflows", token_endpoint=token_endpoint
    )
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.status_code == status
    assert error.request_id == RID
    assert error.body == '{"message": "m"}'
    assert f"HTTP {status}" in str(error)
    assert RID in str(error)


def test_hierarchy() -> None:
    for cls in (
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        RateLimitError,
        ServerError,
        TransportError,
        InvalidResponseError,
        BaseUrlNotAllowedError,
    ):
        assert issubclass(cls, ZuoraError)
    assert issubclass(PaginationError, InvalidResponseError)
    assert issubclass(BaseUrlNotAllowedError, ValueError)


def test_body_truncated() -> None:
    error = error_from_response(resp(500, "y" * 10_000, "text/plain"), what="GET /x")
    assert error.body is not None
    assert len(error.body) <= 2000


@pytest.mark.parametrize(
    ("status", "content", "content_type", "cls", "fragment"),
    [
        (
            500,
            '{"message":"An unexpected error occurred\\n"}',
            "text/plain",
            ServerError,
            "unexpected",
        ),
        (502, "<html><title>Bad Gateway</title></html>", "text/html", ServerError, "Bad Gateway"),
        (
            404,
            '{"Errors":["The workflow for the given id does not exist"]}',
            "application/json",
            NotFoundError,
            "does not exist",
        ),
        (403, "Forbidden", "text/plain", PermissionDeniedError, "Forbidden"),
    ],
)
async def test_errors_through_client_carry_request_id(
    z: Any,
    make_client: Any,
    status: int,
    content: str,
    content_type: str,
    cls: type[ZuoraError],
    fragment: str,
) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [resp(status, content, content_type)] * 10
    async with make_client(handler=fake, max_retries=1) as client:
        with pytest.raises(cls) as info:
            await client.get_workflow(1000)
    assert info.value.request_id == RID
    assert fragment in str(info.value)


async def test_get_workflow_unknown_id(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora(workflows=2)
    async with make_client(handler=fake) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get_workflow(424242)
        found = await client.get_workflow(1001)
    assert info.value.request_id == "req-404"
    assert found.id == 1001
    assert fake.api_requests[0].url.path == "/workflows/424242"


@pytest.mark.parametrize("bad", [True, -1, "19080", 1.5])
async def test_get_workflow_rejects_bad_ids(make_client: Any, bad: Any) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="workflow_id"):
            await client.get_workflow(bad)


async def test_get_workflow_malformed_body(z: Any, make_client: Any) -> None:
    fake = z.FakeZuora()
    fake.faults = [z.json_response(200, {"name": "no id"})]
    async with make_client(handler=fake) as client:
        with pytest.raises(InvalidResponseError, match="workflow 7: field 'id' is missing"):
            await client.get_workflow(7)


async def test_failed_calls_are_logged_with_request_id(
    z: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake = z.FakeZuora(workflows=1)
    fake.faults = [resp(503, "busy", "text/plain"), resp(404, '{"message":"nope"}')]
    caplog.set_level("INFO", logger="zuora_client")
    async with make_client(handler=fake) as client:
        with pytest.raises(NotFoundError):
            await client.get_workflow(1000)
    records = [r for r in caplog.records if r.name == "zuora_client"]
    assert len(records) == 2
    assert all(RID in r.getMessage() for r in records)
    assert "status=503" in records[0].getMessage()
    assert "status=404" in records[1].getMessage()
    assert records[1].levelname == "WARNING"
