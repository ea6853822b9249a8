"""JSON and text log formats, the LOG_FORMAT/APP_ENV choice, and secret redaction."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from observability.logging import (
    REDACTED,
    configure_logging,
    json_by_default,
)


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    """configure_logging into a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    handler = configure_logging("test-service", json=True, level="DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        assert [h for h in root.handlers if h not in handlers] == []


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_the_extra_fields(capture: io.StringIO) -> None:
    run_id = uuid.uuid4()
    logging.getLogger("sync_engine").info(
        "Workflow sync completed",
        extra={"customer_id": "c-1", "run_id": run_id, "stats": {"created": 3}, "pages": 2},
    )
    (line,) = lines(capture)
    assert line["message"] == "Workflow sync completed"
    assert line["level"] == "INFO" and line["logger"] == "sync_engine"
    assert line["service"] == "test-service"
    assert str(line["ts"]).endswith("Z")
    assert line["customer_id"] == "c-1" and line["run_id"] == str(run_id)
    assert line["stats"] == {"created": 3} and line["pages"] == 2


def test_exceptions_are_one_string_field(capture: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("It failed", extra={"command_id": "k"})
    (line,) = lines(capture)
    assert isinstance(line["exception"], str)
    assert "ValueError: boom" in line["exception"] and "Traceback" in line["exception"]
    assert line["command_id"] == "k"


def test_secret_looking_fields_and_bearer_tokens_are_redacted(capture: io.StringIO) -> None:
    logging.getLogger("x").warning(
        "Calling with Authorization: Bearer abcdefghijklmnop and client_secret=hunter2hunter2",
        extra={
            "client_secret": "s3cr3t-value",
            "password": "pw-value",
            "authorization": "Bearer xyz",
            "nested": {"access_token": "tok-value", "count": 1},
            "token_requests": 2,  # a count, not a secret
        },
    )
    raw = capture.getvalue()
    for secret in ("s3cr3t-value", "pw-value", "xyz", "tok-value", "abcdefghijklmnop", "hunter2"):
        assert secret not in raw
    (line,) = lines(capture)
    assert line["client_secret"] == REDACTED and line["password"] == REDACTED
    assert line["nested"] == {"access_token": REDACTED, "count": 1}
    assert line["token_requests"] == 2
    assert f"Bearer {REDACTED}" in str(line["message"])


def test_noisy_libraries_are_quieted(capture: io.StringIO) -> None:
    logging.getLogger("aiokafka.consumer").info("joined group")
    logging.getLogger("httpx").info("HTTP Request: GET ...")
    logging.getLogger("aiokafka").warning("heartbeat failed")
    assert [line["message"] for line in lines(capture)] == ["heartbeat failed"]


@pytest.mark.parametrize("as_json", [True, False])
def test_exception_text_and_tracebacks_are_redacted(as_json: bool) -> None:
    # Audit S4/M13: exc_info was formatted after the filter ran, so it was never redacted.
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("worker", json=as_json, stream=stream)
    try:
        try:
            raise ConnectionError(
                "connect to postgresql://zuora_sync:db-pass-123@db:5432/z failed; "
                "sent Authorization: Bearer abcdefghijklmnop with client_secret=hunter2hunter2"
            )
        except ConnectionError:
            logging.getLogger("x").exception("It failed")
            logging.getLogger("x").warning("Stack", stack_info=True, extra={"url": "a"})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    raw = stream.getvalue()
    assert "ConnectionError" in raw and "Traceback" in raw
    for secret in ("db-pass-123", "abcdefghijklmnop", "hunter2"):
        assert secret not in raw
    assert f"zuora_sync:{REDACTED}@db" in raw


def test_text_format_is_readable_and_keeps_the_fields() -> None:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("worker", json=False, stream=stream)
    try:
        logging.getLogger("sync_engine").info(
            "Workflow sync completed", extra={"customer_id": "c-1", "error": "a b"}
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = stream.getvalue()
    assert not text.startswith("{")
    assert "INFO" in text and "worker sync_engine: Workflow sync completed" in text
    assert "customer_id=c-1" in text and 'error="a b"' in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),
        ({"APP_ENV": "production"}, True),
        ({"APP_ENV": "development"}, False),
        ({"APP_ENV": "development", "LOG_FORMAT": "json"}, True),
        ({"LOG_FORMAT": "text"}, False),
        ({"LOG_FORMAT": " JSON "}, True),
    ],
)
def test_format_follows_log_format_then_app_env(env: dict[str, str], expected: bool) -> None:
    assert json_by_default(env) is expected


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        json_by_default({"LOG_FORMAT": "xml"})


def test_configuring_twice_keeps_one_handler() -> None:
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    first = configure_logging("a", json=True, stream=io.StringIO())
    second = configure_logging("a", json=True, stream=io.StringIO())
    try:
        assert first not in root.handlers and second in root.handlers
        assert len(root.handlers) == len(before) + 1
    finally:
        root.removeHandler(second)
        root.setLevel(level)
