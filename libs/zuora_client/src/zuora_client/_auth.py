"""OAuth token cache shared by client instances, with single-flight refresh."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import ZuoraCredentials

TokenKey = tuple[str, str, str, str | None]
"""(normalised base_url, client_id, SHA-256 of the client secret, entity_id)"""


def token_key(base_url: str, credentials: ZuoraCredentials) -> TokenKey:
    """The key of the token these exact credentials get: a record with the same client id but
    another (say, wrong) secret never reuses it, so a bad secret fails at once instead of riding
    on a token fetched with the good one (reliability-audit S3). Only a digest of the secret is
    kept in the key."""
    secret = credentials.client_secret.get_secret_value().encode()
    digest = hashlib.sha256(secret).hexdigest()
    return (base_url, credentials.client_id, digest, credentials.entity_id)


MAX_EXPIRY_MARGIN = 300.0


def expiry_margin(expires_in: float) -> float:
    """Refresh 5 minutes early, but a short-lived token keeps 90 % of its life."""
    return min(MAX_EXPIRY_MARGIN, expires_in / 10)


@dataclass(frozen=True)
class _Entry:
    token: str
    valid_until: float  # on the cache's clock


class TokenCache:
    """Access tokens keyed by :func:`token_key`, valid until ``expires_in`` minus
    :func:`expiry_margin`.

    Concurrent ``get_or_fetch`` calls for one key on one event loop share one fetch. In-flight
    fetches are kept per running loop, so a cache outlives event loops (e.g. pytest's per-test
    loops); the tokens themselves are loop-independent.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[TokenKey, _Entry] = {}
        self._inflight: dict[tuple[asyncio.AbstractEventLoop, TokenKey], asyncio.Task[str]] = {}
        self._mutex = threading.Lock()  # guards the dicts across threads (each has its own loop)

    def get(self, key: TokenKey) -> str | None:
        """A still-valid cached token, or None."""
        with self._mutex:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() >= entry.valid_until:
                del self._entries[key]
                return None
            return entry.token

    def put(self, key: TokenKey, token: str, expires_in: float) -> None:
        valid_until = self._clock() + expires_in - expiry_margin(expires_in)
        with self._mutex:
            self._entries[key] = _Entry(token, valid_until)

    def invalidate(self, key: TokenKey, token: str | None = None) -> None:
        """Forget the key's token; with ``token``, only if it is still that token (so a 401 on
        an old token does not throw away a fresh one another task just fetched)."""
        with self._mutex:
            entry = self._entries.get(key)
            if entry is not None and (token is None or entry.token == token):
                del self._entries[key]

    def clear(self) -> None:
        with self._mutex:
            self._entries.clear()

    async def get_or_fetch(
        self, key: TokenKey, fetch: Callable[[], Awaitable[tuple[str, float]]]
    ) -> str:
        """The cached token, or the result of ``fetch()`` -> (token, expires_in), stored.

        Callers that arrive while a fetch for the key is running on this loop wait for it
        and share its result or its exception. A caller being cancelled does not cancel the
        shared fetch.
        """
        token = self.get(key)
        if token is not None:
            return token
        loop = asyncio.get_running_loop()
        with self._mutex:
            for stale in [k for k in self._inflight if k[0].is_closed()]:
                del self._inflight[stale]
            task = self._inflight.get((loop, key))
            if task is None:
                task = loop.create_task(self._fetch_and_store(key, fetch))
                self._inflight[(loop, key)] = task
                task.add_done_callback(lambda t: self._forget(loop, key, t))
        return await asyncio.shield(task)

    async def fetch_fresh(
        self, key: TokenKey, fetch: Callable[[], Awaitable[tuple[str, float]]]
    ) -> str:
        """Always fetch a new token (ignoring the cache) and store it on success."""
        return await self._fetch_and_store(key, fetch)

    async def _fetch_and_store(
        self, key: TokenKey, fetch: Callable[[], Awaitable[tuple[str, float]]]
    ) -> str:
        token, expires_in = await fetch()
        self.put(key, token, expires_in)
        return token

    def _forget(
        self, loop: asyncio.AbstractEventLoop, key: TokenKey, task: asyncio.Task[str]
    ) -> None:
        with self._mutex:
            if self._inflight.get((loop, key)) is task:
                del self._inflight[(loop, key)]
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter may have been cancelled


_default_cache = TokenCache()


def default_token_cache() -> TokenCache:
    """The process-wide cache used when ZuoraClient gets no ``token_cache``."""
    return _default_cache
