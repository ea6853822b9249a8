"""The admin API's error, answered as ``application/problem+json`` (RFC 9457) by the app."""

from __future__ import annotations


class Problem(Exception):
    """An admin-API error: HTTP ``status``, a short ``title`` and an optional ``detail``."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
