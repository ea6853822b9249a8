"""Web UI sessions: an operator signs in once with an API key and gets a signed cookie.

The cookie holds no key: only an id derived from the key's hash (HMAC under the session
secret), the expiry and the session's CSRF token, signed with HMAC-SHA256. Every request
checks the signature, the expiry and that the key id still belongs to a configured key, so
removing a key from ``API_KEYS`` (a rotation) signs its sessions out at the next restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

__all__ = ["SESSION_COOKIE", "SessionCodec", "UiSession", "derive_session_secret"]

SESSION_COOKIE = "zws_ui_session"
_VERSION = 1


@dataclass(frozen=True)
class UiSession:
    key_id: str
    csrf_token: str
    expires_at: int


def derive_session_secret(material: str) -> bytes:
    """A signing key of its own for the UI, derived from ``material`` (never used raw)."""
    return hmac.new(material.encode("utf-8"), b"zws-ui-session-v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Issues and reads session cookies for the configured API keys."""

    def __init__(self, secret: bytes, key_hashes: Iterable[bytes], *, max_age: float) -> None:
        self._secret = secret
        self._max_age = max_age
        self._key_ids = {self._key_id(h): h for h in key_hashes}

    @property
    def max_age(self) -> int:
        return int(self._max_age)

    def _key_id(self, key_hash: bytes) -> str:
        return hmac.new(self._secret, b"key:" + key_hash, hashlib.sha256).hexdigest()[:32]

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, key_hash: bytes, *, now: float | None = None) -> tuple[str, UiSession]:
        """A new session (fresh CSRF token) for a key already verified by the caller."""
        issued = time.time() if now is None else now
        session = UiSession(
            key_id=self._key_id(key_hash),
            csrf_token=secrets.token_urlsafe(32),
            expires_at=int(issued + self._max_age),
        )
        payload = orjson.dumps(
            {"v": _VERSION, "k": session.key_id, "c": session.csrf_token, "e": session.expires_at}
        )
        return f"{_b64(payload)}.{_b64(self._sign(payload))}", session

    def read(self, cookie: str | None, *, now: float | None = None) -> UiSession | None:
        """The session in ``cookie`` if it is genuine, unexpired and its key still configured."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
            return None
        body, signature = cookie.split(".")
        try:
            payload, mac = _unb64(body), _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._sign(payload)):
            return None
        try:
            data = orjson.loads(payload)
            session = UiSession(key_id=data["k"], csrf_token=data["c"], expires_at=int(data["e"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if data.get("v") != _VERSION or session.key_id not in self._key_ids:
            return None
        if session.expires_at <= (time.time() if now is None else now):
            return None
        return session
