"""The one retry policy: what is retried and how long to wait (zuora-api.md §6)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

#: The longest wait a server hint is taken to ask for. Larger values (a hint of many digits parses
#: to ``inf``) are clamped, so every consumer of a hint can turn it into an int or a timedelta.
MAX_RETRY_AFTER_SECONDS = 86_400.0

_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)")


def is_retryable_exception(exc: BaseException) -> bool:
    """Timeouts and connection-level failures; not protocol misuse such as a bad URL."""
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def _first_number(value: str | None) -> float | None:
    if value is None:
        return None
    match = _NUMBER.match(value)
    return float(match.group(1)) if match else None


def retry_after_seconds(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """What the server asks us to wait, in seconds (at most :data:`MAX_RETRY_AFTER_SECONDS`),
    or None.

    ``Retry-After`` (delta-seconds or an HTTP-date) wins; otherwise ``RateLimit-Reset`` when
    ``RateLimit-Remaining`` is 0. Header names are case-insensitive (pass ``httpx.Headers``).
    """
    hint = _server_hint(headers, now)
    return None if hint is None else min(hint, MAX_RETRY_AFTER_SECONDS)


def _server_hint(headers: Mapping[str, str], now: Callable[[], float]) -> float | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after is not None:
        seconds = _first_number(retry_after)
        if seconds is None:
            try:
                when = parsedate_to_datetime(retry_after.strip())
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None and when.tzinfo is not None:
                seconds = max(0.0, when.timestamp() - now())
        if seconds is not None:
            return seconds
    remaining = _first_number(lowered.get("ratelimit-remaining"))
    if remaining is not None and remaining <= 0:
        return _first_number(lowered.get("ratelimit-reset"))
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; server hints are a minimum.

    ``max_retries`` retries means ``max_retries + 1`` attempts. A server hint longer than
    ``max_retry_wait`` is not slept on: the caller raises RateLimitError at once.
    """

    max_retries: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_retry_wait: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.backoff_base < 0 or self.backoff_cap < 0 or self.max_retry_wait < 0:
            raise ValueError("backoff_base, backoff_cap and max_retry_wait must be >= 0")

    def backoff(self, attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Full-jitter wait before retry number ``attempt + 1`` (attempt counts from 0)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(attempt, 62))
        return rng(0.0, ceiling)

    def wait(
        self,
        attempt: int,
        hint: float | None,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> float:
        """Seconds to sleep: the jittered backoff, but never less than the server's hint."""
        jittered = self.backoff(attempt, rng)
        return jittered if hint is None else max(hint, jittered)

    def hint_too_long(self, hint: float | None) -> bool:
        return hint is not None and hint > self.max_retry_wait
