"""Content hash of a workflow item: the change detector of the reconciliation.

The hash covers the item exactly as Zuora sent it (canonical JSON: sorted keys, no spaces), so any
change Zuora reports - including the inactive-version list we do not keep in typed columns - is
seen, while key order or whitespace differences between responses are not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(item: Mapping[str, Any]) -> bytes:
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(item: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(item)).hexdigest()
