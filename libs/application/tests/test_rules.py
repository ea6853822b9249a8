"""The one set of rules for customer fields (the API's schemas are built from the same
constants; see services/customer-api/tests for the 422s)."""

from __future__ import annotations

import pytest
from application import rules
from application.errors import BaseUrlNotAllowed, InvalidInput

ALLOWED = ("http://127.0.0.1:8080",)


@pytest.mark.parametrize("name", ["Acme", "A", "Acme Corp (EU)", "Ünïcode name", "a" * 200])
def test_names_accepted(name: str) -> None:
    assert rules.customer_name(name) == name


@pytest.mark.parametrize(
    "name", ["", " Acme", "Acme ", "\tAcme", "Ac\x00me", "Ac\x7fme", "a" * 201, "\ud800"]
)
def test_names_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.customer_name(name)
    assert refused.value.field == "name"


def test_base_urls_are_normalised_and_checked_against_the_allowed_list() -> None:
    assert rules.base_url("https://rest.zuora.com/", ()) == "https://rest.zuora.com"
    assert rules.base_url("http://127.0.0.1:8080", ALLOWED) == "http://127.0.0.1:8080"
    for bad in ("http://127.0.0.1:8081", "https://rest.zuora.com.evil.com", "", "x" * 300):
        with pytest.raises(BaseUrlNotAllowed):
            rules.base_url(bad, ALLOWED)


def test_allow_deletes_bounds() -> None:
    assert rules.allow_deletes(None) is None and rules.allow_deletes(0) == 0
    with pytest.raises(InvalidInput):
        rules.allow_deletes(-1)
