"""The vendored UI assets are what the manifest says, and nothing else is vendored."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

from customer_api.ui.environments import ZUORA_ENVIRONMENTS, base_url_choices
from zuora_client import OFFICIAL_BASE_URLS

VENDOR = resources.files("customer_api.ui") / "static" / "vendor"


def _manifest() -> dict[str, object]:
    data: dict[str, object] = json.loads((VENDOR / "manifest.json").read_text())
    return data


def test_every_vendored_file_matches_its_manifest_hash() -> None:
    entries = _manifest()["files"]
    assert isinstance(entries, list)
    assert entries
    for entry in entries:
        content = (VENDOR / entry["file"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry["file"]
        assert entry["name"] and entry["version"] and entry["license"]


def test_no_vendored_file_is_missing_from_the_manifest() -> None:
    listed = {entry["file"] for entry in _manifest()["files"]}  # type: ignore[attr-defined]
    present = {f.name for f in VENDOR.iterdir() if f.name != "manifest.json"}
    assert present == listed


def test_htmx_is_version_2() -> None:
    htmx = next(e for e in _manifest()["files"] if e["file"] == "htmx.min.js")  # type: ignore[attr-defined]
    assert htmx["version"].startswith("2.")
    assert b'version:"2.' in (VENDOR / "htmx.min.js").read_bytes()


def test_environment_labels_cover_exactly_the_official_hosts() -> None:
    assert set(ZUORA_ENVIRONMENTS) == set(OFFICIAL_BASE_URLS)


def test_base_url_choices_put_the_allowed_urls_first() -> None:
    choices = base_url_choices(OFFICIAL_BASE_URLS, ["http://127.0.0.1:8123/", "not a url"])
    urls = [url for url, _ in choices]
    assert urls[0] == "http://127.0.0.1:8123"
    assert set(urls[1:]) == set(OFFICIAL_BASE_URLS)
