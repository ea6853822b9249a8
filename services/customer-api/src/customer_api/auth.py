"""API-key authentication: ``Authorization: Bearer <key>`` on every route but the open ones.

Keys are kept only as SHA-256 digests; a presented key is hashed and compared in constant time
(``hmac.compare_digest``) against every configured digest, so several keys can be active during
a rotation. Enforced as ASGI middleware, before routing and body parsing: an unauthenticated
request learns nothing about routes or validation rules (it always gets 401).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from customer_api.problems import problem_response
from customer_api.settings import hash_api_key

__all__ = [
    "AUTHENTICATED",
    "OPEN_PATHS",
    "SESSION_UI_PREFIX",
    "ApiKeyAuthMiddleware",
    "ApiKeyVerifier",
]

AUTHENTICATED = "api_key_valid"
"""``request.state`` flag: the request carried a valid API key (also set on the open paths,
where ``/metrics`` shows per-customer series only to an authenticated scraper)."""

OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json"}
)
SESSION_UI_PREFIX = "/ui"
"""The web UI authenticates with its own signed session cookie (``customer_api.ui``); every
other path needs the bearer key, and a session cookie counts for nothing there."""


def _is_ui_path(path: str) -> bool:
    return path == SESSION_UI_PREFIX or path.startswith(SESSION_UI_PREFIX + "/")


class ApiKeyVerifier:
    """Checks a presented key against the configured SHA-256 digests."""

    def __init__(self, key_hashes: Iterable[bytes]) -> None:
        self._hashes = tuple(key_hashes)
        if not self._hashes:
            raise ValueError("at least one API key hash is required")

    def verify(self, key: str) -> bool:
        digest = hash_api_key(key)
        matched = False
        for stored in self._hashes:  # no early exit: the time does not tell which key matched
            matched |= hmac.compare_digest(digest, stored)
        return matched

    def verify_header(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return False
        return self.verify(credentials.strip())


class ApiKeyAuthMiddleware:
    """401 problem (with ``WWW-Authenticate: Bearer``) unless the request carries a valid key."""

    def __init__(
        self, app: ASGIApp, *, verifier: ApiKeyVerifier, open_paths: Iterable[str] = OPEN_PATHS
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_ui_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        valid = authorization is not None and self.verifier.verify_header(authorization)
        scope.setdefault("state", {})[AUTHENTICATED] = valid
        if valid or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        detail = (
            "Missing API key: send `Authorization: Bearer <key>`"
            if authorization is None
            else "Invalid API key"
        )
        response = problem_response(
            401,
            detail=detail,
            instance=scope["path"],
            headers={"WWW-Authenticate": 'Bearer realm="customer-api"'},
        )
        await response(scope, receive, send)
