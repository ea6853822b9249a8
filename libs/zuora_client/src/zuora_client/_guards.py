"""Protection shared by every client of one Zuora host: a token-endpoint rate limiter and a
circuit breaker (reliability-audit A8).

Both are process-wide per host, not per client: one client serves one sync, and the limits are
about the host (Zuora caps ``POST /oauth/token`` at 100/min per IP, zuora-api.md §2) and about a
host that is down for every customer at once. The state is guarded by a ``threading.Lock`` and
holds no asyncio objects, so one instance serves every event loop of the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import CircuitOpenError, RateLimitError


class TokenRateLimiter:
    """A token bucket of ``rate_per_minute`` with ``burst`` slots, by reservation.

    :meth:`reserve` takes a slot at once (the bucket may go into debt) and returns how long the
    caller must wait before sending, so concurrent callers are spaced ``60 / rate`` apart without
    a queue. In any 60 s window at most ``burst + rate_per_minute`` requests start.
    """

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self._per_second = rate_per_minute / 60.0
        self._clock = clock
        self._available = float(burst)
        self._updated = clock()
        self._mutex = threading.Lock()

    def reserve(self, max_wait: float, *, what: str) -> float:
        """Seconds to wait before the request may go. Raises RateLimitError (with the wait as
        ``retry_after``, and no slot taken) when the wait would exceed ``max_wait``."""
        with self._mutex:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._available = min(float(self.burst), self._available + elapsed * self._per_second)
            self._updated = now
            wait = max(0.0, (1.0 - self._available) / self._per_second)
            if wait > max_wait:
                raise RateLimitError(
                    f"{what}: token_rate_limited: the process-wide limit of "
                    f"{self.rate_per_minute:g} token requests/min to this host is used up; "
                    f"next slot in {wait:.0f}s",
                    retry_after=wait,
                )
            self._available -= 1.0
            return wait


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures (5xx or no response), from any client.

    While open, :meth:`check` raises CircuitOpenError without a request. ``cooldown`` seconds
    after opening, one request is let through as a probe (half-open) and the circuit stays open
    for the others for another cool-down: a probe that succeeds closes it, one that fails (or
    never reports, e.g. cancelled) leaves it open until the next probe.
    """

    def __init__(
        self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        if cooldown <= 0:
            raise ValueError("cooldown must be > 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._mutex = threading.Lock()

    @property
    def is_open(self) -> bool:
        with self._mutex:
            return self._open_until is not None

    def check(self, *, what: str) -> None:
        """Return if a request may be sent now; raise CircuitOpenError otherwise."""
        with self._mutex:
            if self._open_until is None:
                return
            now = self._clock()
            if now >= self._open_until:
                self._open_until = now + self.cooldown  # admit this one request as the probe
                return
            remaining = self._open_until - now
            failures = self._failures
        raise CircuitOpenError(
            f"{what}: circuit_open: {failures} consecutive failures (5xx or no response) "
            f"from this Zuora host; no request is sent for {remaining:.0f}s",
            retry_after=remaining,
        )

    def record_success(self) -> None:
        """The host answered (any status below 500)."""
        with self._mutex:
            self._failures = 0
            self._open_until = None

    def record_failure(self) -> None:
        """A 5xx answer, or no answer at all."""
        with self._mutex:
            self._failures += 1
            if self._failures >= self.threshold:
                self._open_until = self._clock() + self.cooldown


@dataclass(frozen=True)
class HostLimits:
    """Settings of :class:`HostGuards`, the same for every host."""

    token_requests_per_minute: float = 60.0  # Zuora allows 100/min per IP
    token_burst: int = 10  # so at most 70 token requests start in any minute
    breaker_threshold: int = 10  # consecutive failures; 1 + max_retries = 6 per request
    breaker_cooldown_seconds: float = 30.0


@dataclass(frozen=True)
class HostGuard:
    limiter: TokenRateLimiter
    breaker: CircuitBreaker


class HostGuards:
    """One :class:`HostGuard` per normalised base URL, created on first use."""

    def __init__(
        self, limits: HostLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits if limits is not None else HostLimits()
        self._clock = clock
        self._guards: dict[str, HostGuard] = {}
        self._mutex = threading.Lock()

    def for_host(self, base_url: str) -> HostGuard:
        with self._mutex:
            guard = self._guards.get(base_url)
            if guard is None:
                limits = self.limits
                guard = HostGuard(
                    TokenRateLimiter(
                        limits.token_requests_per_minute, limits.token_burst, self._clock
                    ),
                    CircuitBreaker(
                        limits.breaker_threshold, limits.breaker_cooldown_seconds, self._clock
                    ),
                )
                self._guards[base_url] = guard
            return guard


_default_guards = HostGuards()


def default_host_guards() -> HostGuards:
    """The process-wide guards used when ZuoraClient gets no ``host_guards``."""
    return _default_guards
