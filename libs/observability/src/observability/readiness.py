"""A ready file: how a process without an HTTP port of its own tells its supervisor it is up.

The sync worker and the scheduler serve only ``/metrics`` (which may be disabled, or lose its
port to a neighbour), so a supervisor (``make run``, the e2e tests, the benchmarks) gives them
``READY_FILE=<path>``: the process writes its pid there once it is ready and removes the file
when it stops. Unset (production), nothing is written: Kubernetes-style probes use
``/metrics``. Readiness is never inferred from log text, which may be reworded.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from observability.settings import EnvSettings

__all__ = ["ReadinessSettings", "ReadyFile"]

log = logging.getLogger(__name__)


class ReadinessSettings(EnvSettings):
    """``READY_FILE``; a part of the worker's and the scheduler's settings."""

    model_config = SettingsConfigDict(extra="ignore")

    ready_file: Path | None = Field(
        default=None,
        description="READY_FILE: a file written (with the pid) once the process is ready and "
        "removed when it stops; for supervisors. Unset: none.",
    )


class ReadyFile:
    """The ready file of this process (a no-op without a path)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    @classmethod
    def from_settings(cls, settings: ReadinessSettings | None = None) -> ReadyFile:
        return cls((settings if settings is not None else ReadinessSettings()).ready_file)

    def mark(self) -> None:
        """Say "ready": write the pid atomically (a reader never sees a half-written file)."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(f"{os.getpid()}\n", encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:  # a supervisor's problem; the process itself runs fine
            log.warning("Could not write the ready file %s: %s", self.path, exc)

    def clear(self) -> None:
        """Say "no longer ready" (stopping)."""
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
