"""Who may see the UI: the signed-in session dependency, the CSRF checks, the login token.

Every page router is included with ``dependencies=[Depends(require_session)]``; a page that
needs the session itself takes ``session: SignedIn``. Unsafe methods are checked for CSRF
here, before any handler runs, so no page can forget it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from customer_api.auth import ApiKeyVerifier
from customer_api.settings import hash_api_key
from customer_api.ui.csrf import SAFE_METHODS, origin_allowed, submitted_token, token_matches
from customer_api.ui.session import SESSION_COOKIE, SessionCodec, UiSession
from customer_api.ui.templating import Templates

__all__ = [
    "LOGIN_COOKIE",
    "CsrfRejectedError",
    "SignInRequiredError",
    "SignedIn",
    "UiContext",
    "UiDep",
    "require_session",
]

LOGIN_COOKIE = "zws_ui_login"


class SignInRequiredError(Exception):
    """No valid session: answered with a redirect to the sign-in page."""


class CsrfRejectedError(Exception):
    """A state-changing request failed the origin or token check: answered 403."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UiContext:
    """What the UI shares between requests (``app.state.ui``)."""

    codec: SessionCodec
    verifier: ApiKeyVerifier
    templates: Templates
    login_secret: bytes
    base_url_choices: tuple[tuple[str, str], ...]
    expected_interval_seconds: int
    max_attempts: int

    def key_hash_if_valid(self, key: str) -> bytes | None:
        return hash_api_key(key) if self.verifier.verify(key) else None

    def new_login_nonce(self) -> str:
        return secrets.token_urlsafe(24)

    def login_token(self, nonce: str) -> str:
        """The sign-in form's CSRF token: bound to the nonce in the sign-in cookie."""
        return hmac.new(self.login_secret, nonce.encode("utf-8"), hashlib.sha256).hexdigest()


def get_ui(request: Request) -> UiContext:
    ui: UiContext = request.app.state.ui
    return ui


UiDep = Annotated[UiContext, Depends(get_ui)]


async def require_session(request: Request, ui: UiDep) -> UiSession:
    session = ui.codec.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequiredError
    request.state.ui_session = session
    if request.method not in SAFE_METHODS:
        if not origin_allowed(request):
            raise CsrfRejectedError("the request did not come from this site")
        if not token_matches(await submitted_token(request), session.csrf_token):
            raise CsrfRejectedError("the form's security token is missing or out of date")
    return session


SignedIn = Annotated[UiSession, Depends(require_session)]
