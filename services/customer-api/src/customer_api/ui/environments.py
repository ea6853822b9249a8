"""The base URLs offered by the customer form: Zuora's environments, then the allowed list."""

from __future__ import annotations

from collections.abc import Iterable

from zuora_client import check_base_url

__all__ = ["ZUORA_ENVIRONMENTS", "base_url_choices"]

# Labels for zuora_client.OFFICIAL_BASE_URLS (a test keeps the two sets equal).
ZUORA_ENVIRONMENTS: dict[str, str] = {
    "https://rest.na.zuora.com": "US Cloud 1 Production",
    "https://rest.sandbox.na.zuora.com": "US Cloud 1 API Sandbox",
    "https://rest.zuora.com": "US Cloud 2 Production",
    "https://rest.apisandbox.zuora.com": "US Cloud 2 API Sandbox",
    "https://rest.test.zuora.com": "US Developer & Central Sandbox",
    "https://rest.pt1.zuora.com": "US Performance Test",
    "https://rest.eu.zuora.com": "EU Production",
    "https://rest.sandbox.eu.zuora.com": "EU API Sandbox",
    "https://rest.test.eu.zuora.com": "EU Developer & Central Sandbox",
    "https://rest.ap.zuora.com": "APAC Production",
    "https://rest.test.ap.zuora.com": "APAC Developer & Central Sandbox",
}


def base_url_choices(
    official: Iterable[str], allowed: Iterable[str]
) -> tuple[tuple[str, str], ...]:
    """``(url, label)`` pairs: the allowed extra URLs first (the ones a test or a private
    deployment uses), then Zuora's environments in a stable order."""
    choices: dict[str, str] = {}
    for url in allowed:
        try:
            normalized = check_base_url(url, (url,))
        except ValueError:
            continue
        choices.setdefault(normalized, f"{normalized} (allowed by ZUORA_ALLOWED_BASE_URLS)")
    for url in sorted(official, key=lambda u: ZUORA_ENVIRONMENTS.get(u, u)):
        choices.setdefault(url, f"{ZUORA_ENVIRONMENTS.get(url, url)} ({url})")
    return tuple(choices.items())
