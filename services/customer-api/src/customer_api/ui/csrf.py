"""Cross-site request forgery defences for the UI's state-changing requests.

Two independent checks, both required on every unsafe method:

1. **Origin** (the logic of Go 1.25's ``CrossOriginProtection``): a browser's
   ``Sec-Fetch-Site`` must say ``same-origin`` (or ``none``: typed by the user); without it, an
   ``Origin`` header must name this host. A request with neither comes from no browser and is
   left to the token check.
2. **Token**: the session's CSRF token, sent by htmx in the ``X-CSRF-Token`` header (``app.js``
   adds it to every request) or by a plain form in the ``csrf_token`` field.

Together with the ``SameSite=Lax`` cookie this is defence in depth.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "origin_allowed",
    "submitted_token",
    "token_matches",
]

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_allowed(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host")
    if not host or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


async def submitted_token(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)  # cached: handlers read it again for free
        if isinstance(value, str):
            return value
    return None


def token_matches(submitted: str | None, expected: str) -> bool:
    if not submitted or not expected:
        return False
    return hmac.compare_digest(submitted.encode("utf-8"), expected.encode("utf-8"))
