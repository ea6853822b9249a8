"""The vendored axe-core is what its manifest says, and the check really detects violations."""

from __future__ import annotations

import hashlib
import json

import pytest
from playwright.sync_api import Page

from .axe import VENDOR, assert_accessible, axe_violations


def _entries() -> list[dict[str, str]]:
    entries: list[dict[str, str]] = json.loads((VENDOR / "manifest.json").read_text())["files"]
    return entries


def test_every_vendored_file_matches_its_manifest_hash() -> None:
    entries = _entries()
    assert {e["file"] for e in entries} == {p.name for p in VENDOR.iterdir()} - {"manifest.json"}
    for entry in entries:
        content = (VENDOR / entry["file"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry["file"]
        assert entry["name"] == "axe-core" and entry["license"] == "MPL-2.0"
    axe = next(e for e in entries if e["file"] == "axe.min.js")
    assert (VENDOR / "axe.min.js").read_text()[:40].startswith(f"/*! axe v{axe['version']}")


def test_check_fails_on_a_page_with_serious_violations(signed_out_page: Page) -> None:
    # The sign-in page's own CSP stays in force: axe must run there all the same.
    page = signed_out_page
    page.evaluate(
        """() => {
            const img = document.createElement("img");
            img.src = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";
            document.querySelector("main").append(img);
        }"""
    )
    assert "image-alt" in {v["id"] for v in axe_violations(page)}
    with pytest.raises(AssertionError, match="image-alt"):
        assert_accessible(page)
