"""ZuoraClient: OAuth, paging and parsing over one Transport (retries, caps, deadlines, guards)."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from ._auth import TokenCache, TokenKey, default_token_cache, token_key
from ._definition_models import WorkflowExport, WorkflowVersionInfo, parse_versions
from ._errors import (
    AuthenticationError,
    InvalidResponseError,
    scrub,
)
from ._export import check_workflow_id, export_request, versions_path
from ._guards import HostGuards, default_host_guards
from ._hosts import check_base_url
from ._models import Workflow, WorkflowPage, ZuoraCredentials
from ._paging import Listing, Unchanged, check_page_length
from ._retry import RetryPolicy
from ._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_DEADLINE,
    ClientStats,
    Endpoint,
    Reply,
    RequestHook,
    ResponseLimits,
    Transport,
)

logger = logging.getLogger("zuora_client")

USER_AGENT = "zuora-workflow-sync/0.1"
DEFAULT_TOKEN_LIFETIME = 3600.0


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (CA bundle loaded once) for every client of the process.

    httpx builds a new context per AsyncClient, and loading the CA bundle costs tens of ms of CPU:
    with one client per sync it was the top hot spot of a sync-all (docs/performance.md).
    """
    return httpx.create_ssl_context()


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: a client shared by many tenants must not carry one tenant's
    cookies into another's requests (the API authenticates by bearer token alone)."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class SharedHttpClients:
    """One ``httpx.AsyncClient`` (connection pool, keep-alive) per Zuora base URL, shared by
    every :class:`ZuoraClient` given it: no client, TLS set-up and TCP connection per sync.

    A client is tied to the event loop that made it; on another loop (a new ``asyncio.run``) the
    set starts afresh. The clients keep no cookies. Close with :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_connections: int = 128,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self, base_url: str) -> httpx.AsyncClient:
        """The client of ``base_url`` (already checked and normalised by the caller)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._clients, self._loop = {}, loop
        client = self._clients.get(base_url)
        if client is None or client.is_closed:
            client = _http_client(
                base_url,
                transport=self._transport,
                timeout=self._timeout,
                max_connections=self._max_connections,
                cookies=_no_cookies(),
            )
            self._clients[base_url] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _http_client(
    base_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None,
    timeout: float,
    max_connections: int,
    cookies: CookieJar | None = None,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        verify=_shared_ssl_context(),
        timeout=timeout,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        cookies=cookies,
    )


class ZuoraClient:
    """Async client for the Zuora Workflow REST endpoints.

    Use as ``async with ZuoraClient(creds) as client: ...`` (or call :meth:`aclose`). The
    constructor validates ``creds.base_url`` against :data:`OFFICIAL_BASE_URLS` plus
    ``allowed_base_urls`` and raises BaseUrlNotAllowedError before any request.

    ``on_request`` (optional) is called after every HTTP request with a :class:`RequestEvent`
    (endpoint, status, latency, Zuora request id): the hook for metrics, with no dependency on
    any metrics library here. An exception raised by the hook is logged and ignored.

    Every request goes through one :class:`Transport`: ``max_response_bytes`` caps each body
    (ResponseTooLargeError), ``request_deadline`` bounds each attempt, body included
    (DeadlineExceededError), and ``host_guards`` (default: process-wide) holds the host's
    token-endpoint limiter and circuit breaker (RateLimitError / CircuitOpenError).
    ``shared_http`` (optional): take the HTTP client (connection pool) of this base URL from
    it instead of building one (then ``transport``, ``timeout`` and ``max_connections`` are
    the shared set's), and leave it open on close.
    """

    def __init__(
        self,
        credentials: ZuoraCredentials,
        *,
        allowed_base_urls: Iterable[str] = (),
        timeout: float = 30.0,
        max_retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        token_cache: TokenCache | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_wait: float = 120.0,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        max_pages: int = 10_000,
        max_connections: int = 8,
        on_request: RequestHook | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
        host_guards: HostGuards | None = None,
        shared_http: SharedHttpClients | None = None,
    ) -> None:
        if max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        self._base_url = check_base_url(credentials.base_url, allowed_base_urls)
        self._credentials = credentials
        self._token_cache = token_cache if token_cache is not None else default_token_cache()
        self._token_key: TokenKey = token_key(self._base_url, credentials)
        self._max_pages = max_pages
        self.stats = ClientStats()
        # A shared pool is kept open by its owner; a client of our own is closed with us.
        self._owns_http = shared_http is None
        if shared_http is None:
            self._http = _http_client(
                self._base_url,
                transport=transport,
                timeout=timeout,
                max_connections=max_connections,
            )
        else:
            self._http = shared_http.get(self._base_url)
        guards = host_guards if host_guards is not None else default_host_guards()
        self._transport = Transport(
            self._http,
            policy=RetryPolicy(max_retries, backoff_base, backoff_cap, max_retry_wait),
            limits=ResponseLimits(max_response_bytes, request_deadline),
            guard=guards.for_host(self._base_url),
            entity_id=credentials.entity_id,
            stats=self.stats,
            sleep=sleep if sleep is not None else asyncio.sleep,
            jitter=random.Random().uniform,  # noqa: S311 - jitter, not cryptography
            on_request=on_request,
        )

    @property
    def base_url(self) -> str:
        """The normalised base URL (no trailing slash)."""
        return self._base_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def __repr__(self) -> str:
        return (
            f"ZuoraClient(base_url={self._base_url!r}, client_id={self._credentials.client_id!r})"
        )

    # ------------------------------------------------------------------ public API

    def iter_pages(
        self, page_length: int = 50, *, unchanged: Unchanged | None = None
    ) -> AsyncIterator[WorkflowPage]:
        """Pages of ``GET /workflows`` from page 1; each page holds only ids new in this
        listing. Raises ValueError at once unless 1 <= page_length <= 50. ``unchanged(id,
        item)`` (optional) tells which items the caller already holds: those are handed over
        raw in ``page.unchanged``, not parsed (a no-change listing then parses nothing)."""
        check_page_length(page_length)
        return self._iter_pages(page_length, unchanged)

    async def _iter_pages(
        self, page_length: int, unchanged: Unchanged | None = None
    ) -> AsyncIterator[WorkflowPage]:
        listing = Listing(max_pages=self._max_pages)
        while not listing.done:
            body = await self._get_json(
                "/workflows", params={"page": listing.page, "page_length": page_length}
            )
            page = listing.accept(body, unchanged)
            self.stats.pages += 1
            yield page

    async def iter_workflows(self, page_length: int = 50) -> AsyncIterator[Workflow]:
        """Every workflow of the tenant, each id once; an item that cannot be parsed raises
        InvalidResponseError (``iter_pages`` hands such items over in ``rejected`` instead)."""
        async for page in self.iter_pages(page_length):
            if page.rejected:
                raise InvalidResponseError(page.rejected[0].reason)
            for workflow in page.workflows:
                yield workflow

    async def list_workflows(self, page_length: int = 50) -> list[Workflow]:
        """The complete listing, or an exception: never a partial list."""
        return [wf async for wf in self.iter_workflows(page_length)]

    async def get_workflow(self, workflow_id: int) -> Workflow:
        """``GET /workflows/{id}``; an unknown id raises NotFoundError."""
        body = await self._get_json(f"/workflows/{check_workflow_id(workflow_id)}")
        return Workflow.from_api(body, where=f"workflow {workflow_id}")

    async def get_workflow_export(
        self, workflow_id: int, version: str | None = None
    ) -> WorkflowExport:
        """``GET /workflows/{id}/export``: the definition's tasks and linkages. ``version`` None
        exports the active version; else a label (``"0.0.2"``) or ``"latest"``. A workflow or
        version that does not exist raises NotFoundError; a malformed body InvalidResponseError;
        a bad ``workflow_id`` / ``version`` ValueError before any request."""
        path, params = export_request(workflow_id, version)
        body = await self._get_json(path, params=params, endpoint="export")
        shown = f"workflow {workflow_id} version {version or 'active'}"
        return WorkflowExport.from_api(body, where=f"export of {shown}")

    async def list_workflow_versions(self, workflow_id: int) -> list[WorkflowVersionInfo]:
        """``GET /workflows/{id}/versions``: every version of a definition, in the server's
        order. An unknown workflow raises NotFoundError."""
        body = await self._get_json(versions_path(workflow_id), endpoint="versions")
        return parse_versions(body, where=f"versions of workflow {workflow_id}")

    async def check_credentials(self) -> None:
        """Request a fresh token (ignoring the cache; cached on success). Raises
        AuthenticationError / PermissionDeniedError / RateLimitError / ServerError /
        TransportError on failure."""
        await self._token_cache.fetch_fresh(self._token_key, self._fetch_token)

    # ------------------------------------------------------------------ plumbing

    def _secrets(self, token: str | None = None) -> tuple[str, ...]:
        secret = self._credentials.client_secret.get_secret_value()
        return (secret, token) if token else (secret,)

    async def _get_token(self) -> str:
        return await self._token_cache.get_or_fetch(self._token_key, self._fetch_token)

    async def _fetch_token(self) -> tuple[str, float]:
        data = {
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret.get_secret_value(),
            "grant_type": "client_credentials",
        }

        what = "POST /oauth/token"
        response = await self._transport.request(
            "POST", "/oauth/token", what=what, endpoint="token", secrets=self._secrets(), data=data
        )
        body = _json_body(response, what, self._secrets())
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise InvalidResponseError(
                "POST /oauth/token: response has no access_token",
                status_code=response.status_code,
                request_id=response.request_id,
            )
        expires_in = body.get("expires_in")
        if isinstance(expires_in, str):
            try:
                expires_in = float(expires_in)
            except ValueError:
                expires_in = None
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            expires_in = DEFAULT_TOKEN_LIFETIME
        return token, max(0.0, float(expires_in))

    async def _get_json(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        endpoint: Endpoint | None = None,
    ) -> Any:
        """GET with a bearer token and parse the JSON body; on a 401 refresh the token once and
        retry once. Every API call of this package goes through here (and the Transport)."""
        what = f"GET {path}"
        if endpoint is None:
            endpoint = "list" if path == "/workflows" else "get"
        for refreshed in (False, True):
            token = await self._get_token()
            try:
                response = await self._transport.request(
                    "GET",
                    path,
                    what=what,
                    endpoint=endpoint,
                    secrets=self._secrets(token),
                    token=token,
                    params=params,
                )
            except AuthenticationError as exc:
                if refreshed or exc.status_code != 401:
                    raise
                logger.info("%s: 401, refreshing the token once", what)
                self._token_cache.invalidate(self._token_key, token)
                continue
            return _json_body(response, what, self._secrets(token))
        raise AssertionError("unreachable")  # pragma: no cover


def _json_body(response: Reply, what: str, secrets: tuple[str, ...]) -> Any:
    try:
        # orjson: ~4x faster than json on workflow pages (a top CPU cost of a sync-all).
        return orjson.loads(response.content)
    except ValueError:
        snippet = scrub(response.text[:200], secrets)
        raise InvalidResponseError(
            f"{what}: response is not JSON ({response.headers.get('content-type', 'no type')})",
            status_code=response.status_code,
            request_id=response.request_id,
            body=snippet,
        ) from None
