"""Per-tenant fault-injection knobs.

Every field defaults to "no fault". A :class:`Faults` instance is mutable: tests may change a field
on ``tenant.faults`` while the sandbox is serving, and the next request sees it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

LAST_PAGE_MODES = ("omit", "null", "empty")
#: The largest oversized answer the sandbox will generate (it streams it; nothing is buffered).
MAX_OVERSIZE_BYTES = 4 * 1024**3
#: A dripping body sends the rest at once after this long, so no response lives for ever.
MAX_DRIP_SECONDS = 600.0
_CHUNK = 64 * 1024
OVERSIZE_MODES = ("clamp", "reject")
ERROR_BODY_MODES = ("json", "text", "html")


@dataclass
class Faults:
    """Fault knobs of one tenant.

    They apply only to requests made with that tenant's token or credentials.
    """

    #: Extra delay added to every request of the tenant (token and API).
    latency_ms: float = 0
    #: Share (0..1) of API GET requests (list and single) answered with an injected error.
    error_rate: float = 0
    #: Statuses the injected errors are drawn from (uniformly).
    error_statuses: list[int] = field(default_factory=lambda: [503])
    #: "json" → application/json ``{"message":"An unexpected error occurred"}``; "text" → the
    #: same JSON text served as text/plain; "html" → an HTML error page (from a load balancer).
    error_body: str = "json"
    #: Share (0..1) of API GET requests answered 429.
    rate_limit_rate: float = 0
    #: ``Retry-After`` seconds on an injected 429; ``None`` → no ``Retry-After`` header (the 429
    #: then only carries ``RateLimit-Remaining: 0`` and ``RateLimit-Reset: rate_limit_reset``).
    rate_limit_retry_after: float | None = 1.0
    #: ``RateLimit-Reset`` seconds sent on an injected 429.
    rate_limit_reset: int = 1
    #: Lifetime of newly issued tokens (``expires_in``), seconds. Tokens expire by the clock.
    token_ttl_s: float = 3599
    #: How the last page of ``GET /workflows`` signals the end: "omit" the ``next_page`` key,
    #: send ``null``, or send ``""``.
    last_page_next_page: str = "omit"
    #: ``page_length`` above 50: "clamp" to 50, or "reject" with a 400.
    oversize_page_length: str = "clamp"
    #: The server's own page-size cap. Below 50 it simulates a server that serves shorter pages than
    #: asked (still WITH ``next_page`` while items remain).
    max_page_length: int = 50
    #: These page numbers of ``GET /workflows`` always answer 500.
    fail_pages: list[int] = field(default_factory=list)
    #: These page numbers of ``GET /workflows`` answer 200 with no items, yet still announce the
    #: next page when there is one (a glitch that must not end the listing "cleanly").
    empty_pages: list[int] = field(default_factory=list)
    #: Broken server: every page > 1 is answered with the previous page's items.
    repeat_previous_page: bool = False
    #: Pages > 1 start this many items earlier than they should, so items repeat across pages (as if
    #: workflows were created before the cursor during a scan).
    page_overlap: int = 0
    #: Share (0..1) of ``POST /oauth/token`` requests answered with an ``error_statuses`` error.
    token_error_rate: float = 0
    #: Share (0..1) of ``POST /oauth/token`` requests answered 429 (the AUTH rate limit).
    token_rate_limit_rate: float = 0
    #: API GET answers (list and single) become a valid JSON object of this many bytes, generated
    #: chunk by chunk while it is sent (never held in memory), with no Content-Length. 0 = off.
    oversize_body_bytes: int = 0
    #: API GET answers send their headers at once, then the body one byte every this many
    #: seconds (a drip that stays inside any per-read timeout). 0 = off.
    drip_interval_s: float = 0
    #: Seed of the ``random.Random`` deciding which requests fail: the same seed and the same
    #: request sequence give the same faults. ``None`` → unseeded.
    fault_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """Build from a JSON-like dict over the defaults; raises ``ValueError`` on bad input."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        faults = cls()
        for name, value in data.items():
            setattr(faults, name, _coerce(name, value))
        faults.validate()
        return faults

    def validate(self) -> None:
        """Raise ``ValueError`` if a knob has an impossible value."""
        for name in ("error_rate", "rate_limit_rate", "token_error_rate", "token_rate_limit_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.rate_limit_rate + self.error_rate > 1:
            raise ValueError("rate_limit_rate + error_rate must not exceed 1")
        if self.token_rate_limit_rate + self.token_error_rate > 1:
            raise ValueError("token_rate_limit_rate + token_error_rate must not exceed 1")
        if not self.error_statuses:
            raise ValueError("error_statuses must not be empty")
        if any(not 100 <= s <= 599 for s in self.error_statuses):
            raise ValueError("error_statuses must be HTTP statuses")
        if self.error_body not in ERROR_BODY_MODES:
            raise ValueError(f"error_body must be one of {ERROR_BODY_MODES}")
        if self.last_page_next_page not in LAST_PAGE_MODES:
            raise ValueError(f"last_page_next_page must be one of {LAST_PAGE_MODES}")
        if self.oversize_page_length not in OVERSIZE_MODES:
            raise ValueError(f"oversize_page_length must be one of {OVERSIZE_MODES}")
        if self.max_page_length < 1:
            raise ValueError("max_page_length must be >= 1")
        if self.latency_ms < 0 or self.token_ttl_s < 0 or self.page_overlap < 0:
            raise ValueError("latency_ms, token_ttl_s and page_overlap must be >= 0")
        if self.rate_limit_retry_after is not None and self.rate_limit_retry_after < 0:
            raise ValueError("rate_limit_retry_after must be >= 0 or null")
        if not 0 <= self.oversize_body_bytes <= MAX_OVERSIZE_BYTES:
            raise ValueError(f"oversize_body_bytes must be between 0 and {MAX_OVERSIZE_BYTES}")
        if self.drip_interval_s < 0:
            raise ValueError("drip_interval_s must be >= 0")

    def body_stream(self, body: bytes) -> AsyncIterator[bytes] | None:
        """The streamed body replacing ``body`` (an API GET answer), or None to send it as is."""
        if self.oversize_body_bytes:
            return oversized_body(self.oversize_body_bytes)
        if self.drip_interval_s:
            return dripped_body(body, self.drip_interval_s)
        return None


async def oversized_body(size: int) -> AsyncIterator[bytes]:
    """``{"data":[],"pagination":{},"padding":"xxx…"}``, exactly ``size`` bytes (or the bare
    prefix and suffix when ``size`` is smaller), in chunks of 64 KiB."""
    head, tail = b'{"data":[],"pagination":{},"padding":"', b'"}'
    yield head
    left = max(0, size - len(head) - len(tail))
    chunk = b"x" * _CHUNK
    while left > 0:
        piece = chunk if left >= _CHUNK else chunk[:left]
        left -= len(piece)
        yield piece
    yield tail


async def dripped_body(body: bytes, interval: float) -> AsyncIterator[bytes]:
    """``body`` one byte per ``interval`` seconds; the rest at once after MAX_DRIP_SECONDS."""
    started = time.monotonic()
    for index in range(len(body)):
        if time.monotonic() - started > MAX_DRIP_SECONDS:
            yield body[index:]
            return
        await asyncio.sleep(interval)
        yield body[index : index + 1]


_FLOATS = {
    "latency_ms",
    "error_rate",
    "rate_limit_rate",
    "token_ttl_s",
    "token_error_rate",
    "token_rate_limit_rate",
    "drip_interval_s",
}
_INTS = {"rate_limit_reset", "max_page_length", "page_overlap", "oversize_body_bytes"}
_STRS = {"error_body", "last_page_next_page", "oversize_page_length"}
_INT_LISTS = {"error_statuses", "fail_pages", "empty_pages"}


def _is_num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(name: str, value: Any) -> Any:
    if name in _FLOATS:
        if not _is_num(value):
            raise ValueError(f"{name} must be a number")
        return value
    if name == "rate_limit_retry_after":
        if value is not None and not _is_num(value):
            raise ValueError(f"{name} must be a number or null")
        return value
    if name in _INTS or name == "fault_seed":
        if value is None and name == "fault_seed":
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer")
        return value
    if name in _STRS:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value
    if name in _INT_LISTS:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ValueError(f"{name} must be a list of integers")
        return list(value)
    if name == "repeat_previous_page":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    raise ValueError(f"unknown fault field: {name}")  # pragma: no cover - guarded by from_dict
