"""Zuora's own endpoints: ``POST /oauth/token``, ``GET /workflows`` and ``GET /workflows/{id}``.

Bodies are built with ``json.dumps`` directly (list items are serialized once and cached), so a page
of 50 costs well under a millisecond of CPU.
"""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .kit import WWW_AUTHENTICATE, ZuoraKit, dumps
from .state import Tenant

MAX_PAGE_LENGTH = 50  # documented cap of GET /workflows (zuora-api.md §4.1)
_BOOL_FILTERS = (
    ("callout_trigger", "calloutTrigger"),
    ("ondemand_trigger", "ondemandTrigger"),
    ("scheduled_trigger", "scheduledTrigger"),
)


#: The extra headers of a token answer.
TOKEN_HEADERS = {
    "Cache-Control": "no-store",
    "X-RateLimit-Limit-minute": "100",
    "X-RateLimit-Remaining-minute": "99",
}


def token_payload(
    tenant: Tenant, entities: tuple[str, ...], token_value: str, jti: str
) -> dict[str, Any]:
    """The body of a token answer (shared with ``fast.FastPath``, which pre-renders it)."""
    ttl = tenant.faults.token_ttl_s
    scope = " ".join(
        [f"user.{tenant.user_id}"]
        + [f"entity.{e}" for e in entities]
        + [f"tenant.{tenant.tenant_number}"]
    )
    return {
        "access_token": token_value,
        "token_type": "bearer",
        "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
        "scope": scope,
        "jti": jti,
    }


def page_body(tenant: Tenant, ids: list[int], page: int, page_length: int, base: str) -> str:
    """The body of list page ``page`` over ``ids`` (already filtered), shaped by the tenant's
    page faults; ``base`` prefixes ``next_page``. Shared with ``fast.FastPath``, which caches it."""
    faults = tenant.faults
    size = min(page_length, faults.max_page_length)
    start = (page - 1) * size
    if page > 1:
        start = max(0, start - faults.page_overlap)
    end = start + size
    has_more = end < len(ids)
    if faults.repeat_previous_page and page > 1:
        start, end = max(0, start - size), start
    parts = [text for i in ids[start:end] if (text := tenant.item_json(i)) is not None]
    if page in faults.empty_pages:
        parts = []
    pagination: dict[str, Any] = {"page": page, "page_length": len(parts)}
    if has_more:
        pagination["next_page"] = f"{base}/workflows?page={page + 1}&page_length={page_length}"
    elif faults.last_page_next_page == "null":
        pagination["next_page"] = None
    elif faults.last_page_next_page == "empty":
        pagination["next_page"] = ""
    return '{"data":[' + ",".join(parts) + '],"pagination":' + json.dumps(pagination) + "}"


def _oauth_error(error: str, description: str) -> bytes:
    return dumps({"error": error, "error_description": description})


def zuora_routes(kit: ZuoraKit) -> list[Route]:
    """The token and workflow-listing endpoints of Zuora's REST API."""
    state = kit.state

    async def oauth_token(request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        body = await request.body()
        if "application/x-www-form-urlencoded" not in ctype.lower():
            await kit.delay(None)
            return kit.respond(
                request,
                None,
                400,
                _oauth_error(
                    "invalid_request", "Content-Type must be application/x-www-form-urlencoded"
                ),
            )
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            form = {}
        tenant = state.tenant_by_client_id(form.get("client_id", ""))
        if tenant is not None:
            tenant.stats.token_requests += 1
        await kit.delay(tenant)
        # Error bodies below follow RFC 6749 and are guesses: UNCONFIRMED in Zuora's docs (§2).
        if not form.get("client_id") or not form.get("client_secret"):
            return kit.respond(
                request,
                tenant,
                400,
                _oauth_error("invalid_request", "client_id and client_secret are required"),
            )
        if form.get("grant_type") != "client_credentials":
            return kit.respond(
                request,
                tenant,
                400,
                _oauth_error("unsupported_grant_type", "grant_type must be client_credentials"),
            )
        if tenant is None or not hmac.compare_digest(
            tenant.client_secret.encode(), form["client_secret"].encode()
        ):
            # GUESS, UNCONFIRMED (zuora-api.md §2): no source shows Zuora's answer to bad
            # credentials; 401 with an OAuth-style body is what the T2 project assumed too.
            return kit.respond(
                request,
                tenant,
                401,
                b'{"error":"invalid_client","error_description":"Bad client credentials"}',
                extra={"WWW-Authenticate": WWW_AUTHENTICATE},
            )
        faults = tenant.faults
        fault = kit.roll_fault(
            request, tenant, faults.token_rate_limit_rate, faults.token_error_rate
        )
        if fault is not None:
            return fault
        entity_header = request.headers.get("zuora-entity-ids")
        entities = tuple(tenant.entity_ids)
        if entity_header:
            wanted = tuple(p.strip() for p in entity_header.split(",") if p.strip())
            if not wanted or any(e not in tenant.entity_ids for e in wanted):
                return kit.respond(
                    request, tenant, 400, _oauth_error("invalid_request", "Unknown entity id")
                )
            entities = wanted
        token_value, _token = tenant.issue_token(entities)
        return kit.respond(
            request,
            tenant,
            200,
            dumps(token_payload(tenant, entities, token_value, uuid.uuid4().hex)),
            extra=TOKEN_HEADERS,
        )

    async def list_workflows(request: Request) -> Response:
        tenant, error = await kit.authenticate(request)
        if tenant is not None:
            tenant.stats.list_requests += 1
        if error is not None or tenant is None:
            assert error is not None
            return error
        faults = tenant.faults
        query = request.query_params
        try:
            page = int(query.get("page", "1"))
            page_length = int(query.get("page_length", "20"))
        except ValueError:
            return kit.bad_request(request, tenant, "page and page_length must be integers")
        if page < 1 or page_length < 1:
            return kit.bad_request(request, tenant, "page and page_length must be >= 1")
        if page_length > MAX_PAGE_LENGTH:
            if faults.oversize_page_length == "reject":
                return kit.bad_request(
                    request, tenant, f"page_length must be less than or equal to {MAX_PAGE_LENGTH}"
                )
            page_length = MAX_PAGE_LENGTH
        checks: list[tuple[str, Any]] = []
        for param, key in _BOOL_FILTERS:
            raw = query.get(param)
            if raw is None:
                continue
            lowered = raw.lower()
            if lowered not in ("true", "false"):
                return kit.bad_request(request, tenant, f"{param} must be true or false")
            checks.append((key, lowered == "true"))
        for param in ("name", "interval"):
            raw = query.get(param)
            if raw is not None:
                checks.append((param, raw))  # exact match: semantics UNCONFIRMED (§9.10)

        if page in faults.fail_pages:
            return kit.server_error(request, tenant, 500)
        fault = kit.roll_fault(request, tenant, faults.rate_limit_rate, faults.error_rate)
        if fault is not None:
            return fault

        ids = tenant.sorted_ids()
        if checks:
            workflows = tenant.workflows
            ids = [
                i
                for i in ids
                if (item := workflows.get(i)) is not None
                and all(item.get(key) == want for key, want in checks)
            ]
        base = state.base_url_hint or str(request.base_url).rstrip("/")
        return kit.respond_api(request, tenant, page_body(tenant, ids, page, page_length, base))

    async def get_workflow(request: Request) -> Response:
        tenant, error = await kit.authenticate(request)
        if tenant is not None:
            tenant.stats.get_requests += 1
        if error is not None or tenant is None:
            assert error is not None
            return error
        faults = tenant.faults
        fault = kit.roll_fault(request, tenant, faults.rate_limit_rate, faults.error_rate)
        if fault is not None:
            return fault
        raw_id = request.path_params["workflow_id"]
        item = tenant.detail(int(raw_id)) if raw_id.isdigit() else None
        if item is None:
            # Assumed to match DELETE/PATCH's documented 404 body (UNCONFIRMED for GET, §5).
            return kit.respond(
                request,
                tenant,
                404,
                b'{"Errors":["The workflow for the given id does not exist"]}',
            )
        return kit.respond_api(request, tenant, dumps(item))

    return [
        Route("/oauth/token", oauth_token, methods=["POST"]),
        Route("/workflows", list_workflows, methods=["GET"]),
        Route("/workflows/{workflow_id}", get_workflow, methods=["GET"]),
    ]
