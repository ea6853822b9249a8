"""The sandbox's fast mode (``zuora-sandbox --fast``), for benchmarks: the hot requests of a sync
served from pre-rendered bytes by a raw ASGI handler, so that the sandbox is not what a benchmark
measures.

``FastPath`` wraps the normal app. It answers two requests itself:

- ``GET /workflows`` with only ``page`` / ``page_length`` (1..50): the page's body is rendered once
  by the normal renderer (``zuora_routes.page_body``) and kept as bytes per tenant, page, page
  length and ``next_page`` base; the cache of a tenant is dropped when its ``revision`` changes
  (every workflow change: the admin edit and churn routes, ``put/update/delete_workflow``,
  ``churn``, ``invalidate``).
- ``POST /oauth/token`` with valid client credentials: a fresh token as in normal mode, its answer
  spliced into a per-tenant pre-rendered template (``zuora_routes.token_payload``).

Everything else - admin API, details, exports, errors, filters, entity headers, and any tenant with
a fault knob set (but ``latency_ms``) - goes to the normal app, unchanged. The answers are the same
bytes as normal mode's (same body, same headers in the same order; the per-request values
``Zuora-Request-Id``, ``RateLimit-*``, the token and its ``jti`` aside), counted in the same
per-tenant counters, after the same latency (``asyncio.sleep`` per request): proven by
``tests/test_fast.py``. One difference in timing only: a request's eligibility (token valid,
faults off) is judged when it arrives, before its latency, where normal mode judges it after.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from .faults import Faults
from .kit import dumps
from .state import RATE_LIMIT_HEADER, SandboxState, Tenant
from .zuora_routes import MAX_PAGE_LENGTH, TOKEN_HEADERS, page_body, token_payload

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = b"application/json"
_FORM = "application/x-www-form-urlencoded"
_MAX_FORM_BYTES = 64 * 1024
_TOKEN_MARK, _JTI_MARK = "@@access-token@@", "@@jti@@"
_TOKEN_EXTRA = [(k.lower().encode(), v.encode()) for k, v in TOKEN_HEADERS.items()]


@dataclass
class FastStats:
    """What the fast path served and what it handed to the normal app."""

    hits: int = 0  # answered from the fast path (pages + tokens)
    page_hits: int = 0
    token_hits: int = 0
    fallbacks: int = 0  # /workflows or /oauth/token requests handed to the normal app
    pages_rendered: int = 0  # cache misses (a page rendered and stored)
    cached_pages: int = 0
    cached_bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


def _plain_list(f: Faults) -> bool:
    """No fault knob that shapes a list answer is set (latency is applied either way)."""
    return (
        f.error_rate == 0
        and f.rate_limit_rate == 0
        and not f.fail_pages
        and not f.empty_pages
        and not f.repeat_previous_page
        and f.page_overlap == 0
        and f.max_page_length >= MAX_PAGE_LENGTH
        and f.last_page_next_page == "omit"
        and f.oversize_body_bytes == 0
        and f.drip_interval_s == 0
    )


def _plain_token(f: Faults) -> bool:
    return f.token_error_rate == 0 and f.token_rate_limit_rate == 0


class _TenantCache:
    __slots__ = ("pages", "revision", "templates")

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self.pages: dict[tuple[int, int, str], bytes] = {}
        self.templates: dict[tuple[float, tuple[str, ...]], tuple[bytes, bytes, bytes]] = {}


class FastPath:
    """ASGI app: plain list pages and token answers from cached bytes, the rest by ``app``."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state
        self.stats = FastStats()
        self._caches: weakref.WeakKeyDictionary[Tenant, _TenantCache] = weakref.WeakKeyDictionary()
        state.fast_stats = self.stats
        state.fast_path = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == "/workflows" and method == "GET":
                if await self._list(scope, send):
                    return
                self.stats.fallbacks += 1
            elif path == "/oauth/token" and method == "POST":
                handled, receive = await self._token(scope, receive, send)
                if handled:
                    return
                self.stats.fallbacks += 1
        await self.app(scope, receive, send)

    # -- caches ------------------------------------------------------------------------------
    def _cache(self, tenant: Tenant) -> _TenantCache:
        revision = tenant.revision
        cache = self._caches.get(tenant)
        if cache is None or cache.revision != revision:
            if cache is not None:
                self.stats.cached_pages -= len(cache.pages)
                self.stats.cached_bytes -= sum(len(b) for b in cache.pages.values())
            cache = _TenantCache(revision)  # the revision read BEFORE anything is rendered
            self._caches[tenant] = cache
        return cache

    def page(self, tenant: Tenant, page: int, page_length: int, base: str) -> bytes:
        """The body of a plain list page, from the cache or rendered (and cached)."""
        cache = self._cache(tenant)
        key = (page, page_length, base)
        body = cache.pages.get(key)
        if body is None:
            body = page_body(tenant, tenant.sorted_ids(), page, page_length, base).encode()
            cache.pages[key] = body
            self.stats.pages_rendered += 1
            self.stats.cached_pages += 1
            self.stats.cached_bytes += len(body)
        return body

    def token_body(self, tenant: Tenant, entities: tuple[str, ...], token: str, jti: str) -> bytes:
        cache = self._cache(tenant)
        key = (tenant.faults.token_ttl_s, entities)
        template = cache.templates.get(key)
        if template is None:
            text = dumps(token_payload(tenant, entities, _TOKEN_MARK, _JTI_MARK))
            head, _, rest = text.partition(_TOKEN_MARK.encode())
            middle, _, tail = rest.partition(_JTI_MARK.encode())
            template = (head, middle, tail)
            cache.templates[key] = template
        head, middle, tail = template
        return head + token.encode() + middle + jti.encode() + tail

    # -- answers -----------------------------------------------------------------------------
    async def _delay(self, tenant: Tenant) -> None:
        total = self.state.latency_ms + tenant.faults.latency_ms
        if total > 0:
            await asyncio.sleep(total / 1000)

    @staticmethod
    def _headers(
        tenant: Tenant, track: bytes | None, extra: list[tuple[bytes, bytes]] | None = None
    ) -> list[tuple[bytes, bytes]]:
        """``ZuoraKit.zuora_headers`` (+ ``extra``) as Starlette sends them: lower-case names."""
        remaining, reset = tenant.rate_limit_headers()
        headers = [(b"zuora-request-id", str(uuid.uuid4()).encode())]
        if track is not None:
            headers.append((b"zuora-track-id", track))
        headers += [
            (b"ratelimit-limit", RATE_LIMIT_HEADER.encode()),
            (b"ratelimit-remaining", remaining.encode()),
            (b"ratelimit-reset", reset.encode()),
        ]
        if extra:
            headers += extra
        return headers

    @staticmethod
    async def _send(send: Send, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"content-type", _JSON))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _list(self, scope: Scope, send: Send) -> bool:
        page, page_length = 1, 20
        qs = scope.get("query_string", b"")
        if qs:
            seen: set[str] = set()
            for key, value in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                if key in seen or key not in ("page", "page_length"):
                    return False
                seen.add(key)
                if not (value.isascii() and value.isdigit()):
                    return False
                if key == "page":
                    page = int(value)
                else:
                    page_length = int(value)
        if page < 1 or not 1 <= page_length <= MAX_PAGE_LENGTH:
            return False
        auth = host = track = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"host":
                host = value
            elif name == b"zuora-track-id":
                track = value
            elif name == b"zuora-entity-ids":
                return False
        if auth is None:
            return False
        scheme, _, value = auth.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return False
        state = self.state
        token = state.resolve_token(value.strip())
        if token is None or token.expires_at <= state.clock() or len(token.entity_ids) >= 2:
            return False
        tenant = token.tenant
        if not _plain_list(tenant.faults):
            return False
        base = state.base_url_hint
        if base is None:
            if host is None:
                return False
            base = f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}"
            base += scope.get("root_path", "")
        await self._delay(tenant)
        tenant.stats.list_requests += 1
        body = self.page(tenant, page, page_length, base)
        headers = self._headers(tenant, track)
        tenant.stats.count_status(200)
        self.stats.hits += 1
        self.stats.page_hits += 1
        await self._send(send, headers, body)
        return True

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> tuple[bool, Receive]:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # a disconnect: let the app see it
                return False, _replay(b"".join(chunks), message, receive)
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body", False))
            if size > _MAX_FORM_BYTES and more:
                return False, _replay(b"".join(chunks), None, receive, more=True)
        body = b"".join(chunks)
        replay = _replay(body, None, receive)
        ctype = track = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                ctype = value
            elif name == b"zuora-track-id":
                track = value
            elif name == b"zuora-entity-ids":
                return False, replay
        if ctype is None or _FORM not in ctype.decode("latin-1").lower():
            return False, replay
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            return False, replay
        tenant = self.state.tenant_by_client_id(form.get("client_id", ""))
        secret = form.get("client_secret", "")
        if (
            tenant is None
            or not secret
            or form.get("grant_type") != "client_credentials"
            or not _secret_ok(tenant, secret)
            or not _plain_token(tenant.faults)
        ):
            return False, replay
        tenant.stats.token_requests += 1
        await self._delay(tenant)
        entities = tuple(tenant.entity_ids)
        token_value, _token = tenant.issue_token(entities)
        answer = self.token_body(tenant, entities, token_value, uuid.uuid4().hex)
        headers = self._headers(tenant, track, _TOKEN_EXTRA)
        tenant.stats.count_status(200)
        self.stats.hits += 1
        self.stats.token_hits += 1
        await self._send(send, headers, answer)
        return True, replay


def _secret_ok(tenant: Tenant, secret: str) -> bool:
    return hmac.compare_digest(tenant.client_secret.encode(), secret.encode())


def _replay(
    body: bytes, pending: Message | None, receive: Receive, *, more: bool = False
) -> Receive:
    """A ``receive`` that gives the app the body already read, then whatever comes next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if body or pending is None:
                return {"type": "http.request", "body": body, "more_body": more}
        if pending is not None:
            return pending
        return await receive()

    return replayed
