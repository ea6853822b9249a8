"""Requests of the definition endpoints: ``GET /workflows/{id}/export`` and ``.../versions``.

Only the paths and the argument checks live here; the requests go through ZuoraClient's one
request path (token, retries, limits, deadlines), and the bodies are parsed by
``_definition_models``.
"""

from __future__ import annotations

import re
from typing import Any

#: A version label (``1``, ``0.2``, ``0.0.2``; zuora-workflow-export.md §1.2) or ``latest``.
_VERSION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+){0,2}|latest)$")


def check_workflow_id(workflow_id: int) -> int:
    if isinstance(workflow_id, bool) or not isinstance(workflow_id, int) or workflow_id < 0:
        raise ValueError(f"workflow_id must be a non-negative int, got {workflow_id!r}")
    return workflow_id


def export_request(workflow_id: int, version: str | None) -> tuple[str, dict[str, Any] | None]:
    """(path, query) of an export; ``version`` None exports the active version."""
    path = f"/workflows/{check_workflow_id(workflow_id)}/export"
    if version is None:
        return path, None
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValueError(
            f"version must be a version label such as '0.0.2' or 'latest', got {version!r}"
        )
    return path, {"version": version}


def versions_path(workflow_id: int) -> str:
    return f"/workflows/{check_workflow_id(workflow_id)}/versions"
