"""The allow-list of REST base URLs (no SSRF through customer records)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from ._errors import BaseUrlNotAllowedError

#: Zuora's official REST base URLs (zuora-api.md §1).
OFFICIAL_BASE_URLS: frozenset[str] = frozenset(
    {
        "https://rest.na.zuora.com",  # US Cloud 1 Production
        "https://rest.sandbox.na.zuora.com",  # US Cloud 1 API Sandbox
        "https://rest.zuora.com",  # US Cloud 2 Production
        "https://rest.apisandbox.zuora.com",  # US Cloud 2 API Sandbox
        "https://rest.test.zuora.com",  # US Developer & Central Sandbox
        "https://rest.pt1.zuora.com",  # US Performance Test
        "https://rest.eu.zuora.com",  # EU Production
        "https://rest.sandbox.eu.zuora.com",  # EU API Sandbox
        "https://rest.test.eu.zuora.com",  # EU Developer & Central Sandbox
        "https://rest.ap.zuora.com",  # APAC Production
        "https://rest.test.ap.zuora.com",  # APAC Developer & Central Sandbox
    }
)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_RE = re.compile(r"^[a-z0-9.\-]+$|^\[[0-9a-f:.]+\]$")


def normalize_base_url(url: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash.

    Raises BaseUrlNotAllowedError for anything that is not a bare origin: a path, query, fragment,
    userinfo, whitespace, or a scheme other than http/https.
    """
    if not isinstance(url, str) or not url or url != url.strip():
        raise BaseUrlNotAllowedError(f"invalid base URL {url!r}")
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        raise BaseUrlNotAllowedError(f"invalid base URL {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BaseUrlNotAllowedError(f"base URL {url!r} must use http or https")
    if "@" in parts.netloc:
        raise BaseUrlNotAllowedError(f"base URL {url!r} must not contain credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise BaseUrlNotAllowedError(f"base URL {url!r} must not have a path, query or fragment")
    host = (parts.hostname or "").lower()
    if not host or not _HOST_RE.match(host if ":" not in host else f"[{host}]"):
        raise BaseUrlNotAllowedError(f"base URL {url!r} has an invalid host")
    try:
        port = parts.port
    except ValueError:
        raise BaseUrlNotAllowedError(f"base URL {url!r} has an invalid port") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}"


def check_base_url(url: str, allowed_base_urls: Iterable[str] = ()) -> str:
    """Return the normalised ``url`` if it is an official Zuora REST host or explicitly allowed.

    Scheme, host and port must match exactly. Raises BaseUrlNotAllowedError otherwise.
    """
    normalized = normalize_base_url(url)
    if normalized in OFFICIAL_BASE_URLS:
        return normalized
    if isinstance(allowed_base_urls, str):
        allowed_base_urls = (allowed_base_urls,)
    allowed = {normalize_base_url(extra) for extra in allowed_base_urls}
    if normalized in allowed:
        return normalized
    raise BaseUrlNotAllowedError(
        f"base URL {normalized!r} is not an official Zuora REST host "
        "and is not in allowed_base_urls"
    )
