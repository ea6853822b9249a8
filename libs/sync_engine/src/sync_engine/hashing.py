"""Content hash of a workflow item: the change detector of the reconciliation.

The hash covers the item exactly as Zuora sent it (canonical JSON: sorted keys, no spaces), so any
change Zuora reports - including the inactive-version list we do not keep in typed columns - is
seen, while key order or whitespace differences between responses are not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson


def canonical_json(item: Mapping[str, Any]) -> bytes:
    # orjson: compact UTF-8 JSON with sorted keys, several times faster than the json module.
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS)


def content_hash(item: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(item)).hexdigest()
