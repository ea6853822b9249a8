"""Turning failures into one clear line and an exit code (never a traceback)."""

from __future__ import annotations

from application.errors import DomainError
from sqlalchemy.exc import DBAPIError, OperationalError
from workflow_store.errors import StoreError
from zuora_client import ZuoraError


class CliError(Exception):
    """A failure to report to the user as is (a problem with the command line itself)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def explain(exc: BaseException) -> str:
    """A one-line reason for a known failure; free of secrets by construction."""
    if isinstance(exc, DomainError):
        return exc.detail  # the use case's own words (never a secret or a refused URL)
    if isinstance(exc, CliError | StoreError | ZuoraError):
        return str(exc)
    if isinstance(exc, OperationalError | DBAPIError):
        orig = getattr(exc, "orig", None)
        detail = str(orig or exc).strip().splitlines()[0] if str(orig or exc).strip() else ""
        return f"database error: {detail}"[:300]
    if isinstance(exc, ConnectionError | OSError):
        return f"connection failed: {exc}"
    return f"unexpected error ({type(exc).__name__}): {exc}"
