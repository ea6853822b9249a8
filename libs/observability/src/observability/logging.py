"""One logging setup for every service: JSON lines in production, readable text in development.

A JSON line carries ``ts``, ``level``, ``logger``, ``service``, ``message``, every field passed in
``extra=`` (customer_id, command_id, run_id, zuora_request_id, stats ...) and, for an exception,
``exception`` as one string. A redaction filter masks values whose key looks like a secret
(secret, password, token, authorization, api key) and bearer tokens inside messages: nothing logs
secrets today, this is defence in depth.
"""

from __future__ import annotations

import dataclasses
import enum
import json as jsonlib
import logging
import re
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TextIO

from observability.settings import LogSettings

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "json_by_default",
]

REDACTED = "[REDACTED]"

# Attributes every LogRecord has: anything else on a record came from ``extra=``. uvicorn's
# ``color_message`` repeats its message with terminal colour codes.
_STANDARD_RECORD = logging.LogRecord("", logging.INFO, "", 0, "", None, None)
_RECORD_ATTRIBUTES = frozenset(vars(_STANDARD_RECORD)) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}

_SECRET_KEY = re.compile(r"secret|passw|token|authorization|api[_-]?key", re.IGNORECASE)
_SECRET_IN_TEXT = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"(?i)\b(client_secret|password|access_token|refresh_token|api_key)"
            r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # The password of a URL's userinfo: postgresql://user:PASSWORD@host/db
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
)

# Third-party loggers that are chatty at INFO.
NOISY_LOGGERS: dict[str, int] = {
    "aiokafka": logging.WARNING,
    "kafka": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "apscheduler": logging.WARNING,
}


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_text(text: str) -> str:
    """``text`` with bearer tokens and ``secret=value`` pairs masked."""
    for pattern, replacement in _SECRET_IN_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if _is_secret_key(key) and value is not None and not isinstance(value, bool | int | float):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """Masks secret-looking ``extra`` fields and bearer tokens / ``secret=...`` in messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in list(vars(record).items()):
            if key in _RECORD_ATTRIBUTES or key.startswith("_"):
                continue
            redacted = _redact_value(key, value)
            if redacted is not value:
                setattr(record, key, redacted)
        if isinstance(record.msg, str):
            message = record.getMessage()
            cleaned = redact_text(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record got through ``extra=`` (in the order they were set)."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal | date):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _RedactedTracebacks(logging.Formatter):
    """Tracebacks and stacks go through the same redaction as messages.

    The filter runs before the formatter renders ``exc_info``, so exception text (a driver error
    quoting a URL, an exception message built from a request) would otherwise pass unmasked.
    """

    def formatException(self, ei: Any) -> str:
        return redact_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact_text(super().formatStack(stack_info))


class JsonFormatter(_RedactedTracebacks):
    """One JSON object per record, on one line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            payload.setdefault(key, value)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = redact_text(record.exc_text)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return jsonlib.dumps(payload, default=_to_json, ensure_ascii=False)


class TextFormatter(_RedactedTracebacks):
    """``time LEVEL service logger: message key=value ...`` for people reading a terminal."""

    def __init__(self, service: str) -> None:
        super().__init__(
            fmt=f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_text:  # cached by a handler that formatted the record before this one
            record.exc_text = redact_text(record.exc_text)
        text = super().format(record)
        fields = extra_fields(record)
        if not fields:
            return text
        head, sep, tail = text.partition("\n")  # keep a traceback below the fields
        pairs = " ".join(
            f"{key}={jsonlib.dumps(value, default=_to_json, ensure_ascii=False)}"
            if not isinstance(value, str) or " " in value or not value
            else f"{key}={value}"
            for key, value in fields.items()
            if value is not None
        )
        return f"{head} {pairs}{sep}{tail}" if pairs else text


def json_by_default(environ: Mapping[str, str] | None = None) -> bool:
    """``LOG_FORMAT`` (json | text) if set; else text when ``APP_ENV=development``, else JSON
    (:class:`observability.settings.LogSettings` read from ``environ``, default the process's)."""
    return LogSettings.from_environ(environ).use_json


_HANDLER_MARK = "_zws_observability_handler"


def configure_logging(
    service: str,
    *,
    json: bool | None = None,
    level: str | None = None,
    stream: TextIO | None = None,
    settings: LogSettings | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as JSON lines or readable text.

    ``json`` and ``level`` default to ``settings`` (a service's ``LOG_*``/``APP_ENV``), else to
    :func:`json_by_default` and ``INFO``. Replaces the handler a previous call installed
    (calling it twice is harmless), quiets noisy third-party loggers and routes FastStream's own
    logger through the root handler. Returns the installed handler.
    """
    if json is not None:
        use_json = json
    else:
        use_json = settings.use_json if settings is not None else json_by_default()
    if level is None:
        level = settings.level if settings is not None else "INFO"
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service) if use_json else TextFormatter(service))
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, noisy_level in NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(noisy_level, root.level))
    # FastStream installs its own coloured stream handler on "faststream" at import.
    faststream_logger = logging.getLogger("faststream")
    for own in list(faststream_logger.handlers):
        faststream_logger.removeHandler(own)
    faststream_logger.propagate = True
    return handler
