"""A scriptable in-memory Zuora (an httpx.MockTransport handler) and client factories."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from zuora_client import HostGuards, TokenCache, ZuoraClient, ZuoraCredentials

BASE = "https://rest.apisandbox.zuora.com"
CLIENT_ID = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"
SECRET = "s3cr3t=Sup3r+Secret/Value"


def wf_item(wf_id: int, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wf_id,
        "name": f"Workflow {wf_id}",
        "description": "",
        "status": "Active",
        "calloutTrigger": False,
        "ondemandTrigger": True,
        "scheduledTrigger": False,
        "interval": None,
        "timezone": None,
        "createdAt": "2024-02-04T13:39:10.530Z",
        "updatedAt": "2025-07-23T11:43:48.576Z",
        "active_version": {
            "id": wf_id + 1,
            "version": "0.0.1",
            "status": "Active",
            "type": "Workflow::Setup",
            "description": "",
        },
        "latest_inactive_verisons": [],
    }
    item.update(extra)
    return item


def json_response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    if body is None:
        return httpx.Response(status, headers=hdrs)
    return httpx.Response(status, json=body, headers=hdrs)


class FakeZuora:
    """Serves /oauth/token, GET /workflows and GET /workflows/{id}.

    ``faults`` / ``token_faults`` are responses (or exceptions) served first, one per request.
    ``pages`` overrides the list endpoint with literal page bodies (page N -> pages[N-1]).
    """

    def __init__(self, workflows: int | list[dict[str, Any]] = 0, page_cap: int = 50) -> None:
        if isinstance(workflows, int):
            workflows = [wf_item(1000 + i) for i in range(workflows)]
        self.workflows = workflows
        self.page_cap = page_cap
        self.next_page_style = "url"  # url | int | absent | null | empty
        self.next_page_host = "https://rest.zuora.com"
        self.pages: list[Any] | None = None
        self.faults: list[httpx.Response | Exception] = []
        self.token_faults: list[httpx.Response | Exception] = []
        self.tokens: set[str] = set()
        self.expires_in: float = 3599
        self.requests: list[httpx.Request] = []
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/oauth/token":
            self.token_requests.append(request)
            return self._token(request)
        self.api_requests.append(request)
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return fault
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return json_response(
                401,
                {"message": "Authentication error"},
                WWW_Authenticate="Bearer realm=Zuora API",
                Zuora_Request_Id=str(uuid.uuid4()),
            )
        path = request.url.path
        if path == "/workflows":
            return self._list(request)
        if path.startswith("/workflows/"):
            wf_id = path.rsplit("/", 1)[1]
            for item in self.workflows:
                if str(item["id"]) == wf_id:
                    return json_response(200, item)
            return json_response(
                404,
                {"Errors": ["The workflow for the given id does not exist"]},
                Zuora_Request_Id="req-404",
            )
        return json_response(404, {"message": "no Route matched with those values"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        if self.token_faults:
            fault = self.token_faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return fault
        form = dict(httpx.QueryParams(request.content.decode()))
        if (
            form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != SECRET
            or form.get("grant_type") != "client_credentials"
        ):
            return json_response(
                401, {"error": "invalid_client", "error_description": "Bad credentials"}
            )
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return json_response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "scope": "tenant.19",
                "jti": uuid.uuid4().hex,
            },
        )

    def _list(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        length = min(int(request.url.params.get("page_length", "20")), self.page_cap)
        if self.pages is not None:
            body = self.pages[page - 1] if page <= len(self.pages) else {"data": []}
            if isinstance(body, httpx.Response):
                return body
            return json_response(200, body)
        start = (page - 1) * length
        data = self.workflows[start : start + length]
        pagination: dict[str, Any] = {"page": page, "page_length": len(data)}
        if start + length < len(self.workflows):
            style = self.next_page_style
            if style in ("url", "absent", "null", "empty"):
                pagination["next_page"] = (
                    f"{self.next_page_host}/workflows?page={page + 1}&page_length={length}"
                )
            elif style == "int":
                pagination["next_page"] = page + 1
        elif self.next_page_style == "null":
            pagination["next_page"] = None
        elif self.next_page_style == "empty":
            pagination["next_page"] = ""
        return json_response(200, {"data": data, "pagination": pagination})


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> FakeZuora:
    return FakeZuora()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def creds() -> ZuoraCredentials:
    return ZuoraCredentials(base_url=BASE, client_id=CLIENT_ID, client_secret=SECRET)


MakeClient = Callable[..., ZuoraClient]


@pytest.fixture
def make_client(fake: FakeZuora, sleeps: Sleeps, creds: ZuoraCredentials) -> MakeClient:
    """ZuoraClient factory over ``fake`` with a fresh token cache, fresh host guards (limiter and
    breaker: no state leaks between tests) and a recording no-op sleep."""
    cache = TokenCache()
    guards = HostGuards()

    def factory(**kwargs: Any) -> ZuoraClient:
        kwargs.setdefault("transport", httpx.MockTransport(kwargs.pop("handler", fake)))
        kwargs.setdefault("token_cache", cache)
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("host_guards", guards)
        return ZuoraClient(kwargs.pop("credentials", creds), **kwargs)

    return factory


def body_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


@pytest.fixture
def z() -> Any:
    """Helpers for test modules (test files cannot import each other under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        BASE=BASE,
        CLIENT_ID=CLIENT_ID,
        SECRET=SECRET,
        FakeZuora=FakeZuora,
        Sleeps=Sleeps,
        wf_item=wf_item,
        json_response=json_response,
        body_json=body_json,
    )


SandboxClient = Callable[..., ZuoraClient]


@pytest.fixture
def sandbox_client(zuora_sandbox: Any) -> SandboxClient:
    """``sandbox_client(tenant, **kwargs)``: a ZuoraClient for a tenant of the real-HTTP sandbox,
    with a fresh token cache, host guards of this test only and short backoffs (each keyword can
    be overridden)."""
    guards = HostGuards()

    def factory(tenant: Any, **kwargs: Any) -> ZuoraClient:
        creds = ZuoraCredentials(
            base_url=zuora_sandbox.base_url,
            client_id=tenant.client_id,
            client_secret=tenant.client_secret,
        )
        kwargs.setdefault("token_cache", TokenCache())
        kwargs.setdefault("backoff_base", 0.01)
        kwargs.setdefault("backoff_cap", 0.05)
        kwargs.setdefault("host_guards", guards)
        return ZuoraClient(creds, allowed_base_urls=(zuora_sandbox.base_url,), **kwargs)

    return factory
