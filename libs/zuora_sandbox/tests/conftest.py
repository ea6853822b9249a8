"""Helpers for the sandbox's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from zuora_sandbox import SandboxState, Tenant, create_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """A thin Zuora-speaking client for tests (ASGI transport, no network)."""

    def __init__(self, client: httpx.AsyncClient, state: SandboxState) -> None:
        self.client = client
        self.state = state

    async def token_response(self, tenant: Tenant, **headers: str) -> httpx.Response:
        return await self.client.post(
            "/oauth/token",
            data={
                "client_id": tenant.client_id,
                "client_secret": tenant.client_secret,
                "grant_type": "client_credentials",
            },
            headers=headers,
        )

    async def token(self, tenant: Tenant) -> str:
        response = await self.token_response(tenant)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def get(self, tenant: Tenant, path: str, **params: Any) -> httpx.Response:
        token = await self.token(tenant)
        return await self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )

    async def get_with(self, token: str, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )

    async def list_all(self, token: str, page_length: int = 50) -> list[httpx.Response]:
        """Follow pages until next_page is absent/null/empty or an error (at most 100 pages)."""
        responses = []
        for page in range(1, 101):
            response = await self.get_with(token, "/workflows", page=page, page_length=page_length)
            responses.append(response)
            if response.status_code != 200 or not response.json()["pagination"].get("next_page"):
                break
        return responses


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SandboxState:
    return SandboxState(clock=clock)


@pytest.fixture
async def api(state: SandboxState) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        yield Api(client, state)
