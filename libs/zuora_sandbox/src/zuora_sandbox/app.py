"""The ASGI app: Zuora's ``/oauth/token`` and ``/workflows`` endpoints, plus the ``/_sandbox``
admin API.

Bodies are built with ``json.dumps`` directly (list items are serialized once and cached), so a page
of 50 costs well under a millisecond of CPU.

WARNING: the admin API under ``/_sandbox`` has no authentication. It is a test tool: never expose a
sandbox beyond loopback or a private test network.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .definition_routes import ZuoraKit, definition_routes
from .faults import Faults
from .problems import Problem
from .state import RATE_LIMIT_HEADER, SandboxState, Tenant

MAX_PAGE_LENGTH = 50  # documented cap of GET /workflows (zuora-api.md §4.1)
WWW_AUTHENTICATE = "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API"
JSON = "application/json"
SERVER_ERROR_TEXT = '{"message":"An unexpected error occurred"}'
_HTML_ERROR = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
    429: "Too Many Requests",
}
_BOOL_FILTERS = (
    ("callout_trigger", "calloutTrigger"),
    ("ondemand_trigger", "ondemandTrigger"),
    ("scheduled_trigger", "scheduledTrigger"),
)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def _num(value: float) -> str:
    """``1`` for 1.0, ``0.25`` for 0.25 (header values)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def create_app(state: SandboxState) -> Starlette:
    """The sandbox as a Starlette (ASGI) app serving ``state``."""

    # ----------------------------------------------------------------- helpers
    def zuora_headers(request: Request, tenant: Tenant | None) -> dict[str, str]:
        headers = {"Zuora-Request-Id": str(uuid.uuid4())}
        track = request.headers.get("zuora-track-id")
        if track is not None:
            headers["Zuora-Track-Id"] = track
        remaining, reset = tenant.rate_limit_headers() if tenant else ("50000", "60")
        headers["RateLimit-Limit"] = RATE_LIMIT_HEADER
        headers["RateLimit-Remaining"] = remaining
        headers["RateLimit-Reset"] = reset
        return headers

    def respond(
        request: Request,
        tenant: Tenant | None,
        status: int,
        body: bytes | str,
        media_type: str = JSON,
        extra: dict[str, str] | None = None,
    ) -> Response:
        headers = zuora_headers(request, tenant)
        if extra:
            headers.update(extra)
        if tenant is not None:
            tenant.stats.count_status(status)
        return Response(body, status_code=status, headers=headers, media_type=media_type)

    def respond_api(request: Request, tenant: Tenant, body: bytes | str) -> Response:
        """A 200 answer of an API GET, shaped by the tenant's body faults (oversize, drip)."""
        raw = body.encode() if isinstance(body, str) else body
        stream = tenant.faults.body_stream(raw)
        if stream is None:
            return respond(request, tenant, 200, raw)
        tenant.stats.count_status(200)
        return StreamingResponse(
            stream, status_code=200, headers=zuora_headers(request, tenant), media_type=JSON
        )

    def unauthorized(request: Request, tenant: Tenant | None) -> Response:
        # The message text is UNCONFIRMED (zuora-api.md §7): the spec gives only {"message": str}.
        return respond(
            request,
            tenant,
            401,
            b'{"message":"Authentication error"}',
            extra={"WWW-Authenticate": WWW_AUTHENTICATE},
        )

    def server_error(request: Request, tenant: Tenant, status: int) -> Response:
        tenant.stats.injected_errors += 1
        mode = tenant.faults.error_body
        if mode == "html":
            reason = _REASONS.get(status, "Error")
            html = _HTML_ERROR.format(status=status, reason=reason)
            return respond(request, tenant, status, html, "text/html")
        media = JSON if mode == "json" else "text/plain"
        return respond(request, tenant, status, SERVER_ERROR_TEXT, media)

    def rate_limited(request: Request, tenant: Tenant) -> Response:
        faults = tenant.faults
        tenant.stats.injected_errors += 1
        extra = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(faults.rate_limit_reset)}
        if faults.rate_limit_retry_after is not None:
            extra["Retry-After"] = _num(faults.rate_limit_retry_after)
        # The 429 body is UNCONFIRMED (zuora-api.md §6): Kong's wording is used as a guess.
        return respond(request, tenant, 429, b'{"message":"API rate limit exceeded"}', extra=extra)

    def roll_fault(
        request: Request, tenant: Tenant, rate_limit_rate: float, error_rate: float
    ) -> Response | None:
        if rate_limit_rate <= 0 and error_rate <= 0:
            return None
        rng = tenant.fault_rng
        roll = rng.random()
        if roll < rate_limit_rate:
            return rate_limited(request, tenant)
        if roll < rate_limit_rate + error_rate:
            return server_error(request, tenant, rng.choice(tenant.faults.error_statuses))
        return None

    async def delay(tenant: Tenant | None) -> None:
        total = state.latency_ms + (tenant.faults.latency_ms if tenant else 0)
        if total > 0:
            await asyncio.sleep(total / 1000)

    def bad_request(request: Request, tenant: Tenant | None, message: str) -> Response:
        # 400 bodies of /workflows are undocumented ("Invalid input"): {"message": ...} is a guess.
        return respond(request, tenant, 400, _dumps({"message": message}))

    async def authenticate(request: Request) -> tuple[Tenant | None, Response | None]:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        token = state.resolve_token(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            await delay(None)
            return None, unauthorized(request, None)
        tenant = token.tenant
        await delay(tenant)
        if token.expires_at <= state.clock():
            return tenant, unauthorized(request, tenant)
        header = request.headers.get("zuora-entity-ids")
        if header:
            wanted = [part.strip() for part in header.split(",") if part.strip()]
            if not wanted or any(e not in token.entity_ids for e in wanted):
                # UNCONFIRMED status and body (zuora-api.md §8).
                return tenant, bad_request(
                    request, tenant, "The entity in Zuora-Entity-Ids is not accessible"
                )
        elif len(token.entity_ids) >= 2:
            # UNCONFIRMED status and body (zuora-api.md §8: the real error is not documented).
            return tenant, bad_request(
                request,
                tenant,
                "Multiple entities are accessible with this token: "
                "specify one in the Zuora-Entity-Ids header",
            )
        return tenant, None

    # ----------------------------------------------------------------- Zuora endpoints
    async def oauth_token(request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        body = await request.body()
        if "application/x-www-form-urlencoded" not in ctype.lower():
            await delay(None)
            return respond(
                request,
                None,
                400,
                _dumps(
                    {
                        "error": "invalid_request",
                        "error_description": "Content-Type must be "
                        "application/x-www-form-urlencoded",
                    }
                ),
            )
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            form = {}
        tenant = state.tenant_by_client_id(form.get("client_id", ""))
        if tenant is not None:
            tenant.stats.token_requests += 1
        await delay(tenant)
        # Error bodies below follow RFC 6749 and are guesses: UNCONFIRMED in Zuora's docs (§2).
        if not form.get("client_id") or not form.get("client_secret"):
            return respond(
                request,
                tenant,
                400,
                _dumps(
                    {
                        "error": "invalid_request",
                        "error_description": "client_id and client_secret are required",
                    }
                ),
            )
        if form.get("grant_type") != "client_credentials":
            return respond(
                request,
                tenant,
                400,
                _dumps(
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "grant_type must be client_credentials",
                    }
                ),
            )
        if tenant is None or not hmac.compare_digest(
            tenant.client_secret.encode(), form["client_secret"].encode()
        ):
            # GUESS, UNCONFIRMED (zuora-api.md §2): no source shows Zuora's answer to bad
            # credentials; 401 with an OAuth-style body is what the T2 project assumed too.
            return respond(
                request,
                tenant,
                401,
                b'{"error":"invalid_client","error_description":"Bad client credentials"}',
                extra={"WWW-Authenticate": WWW_AUTHENTICATE},
            )
        faults = tenant.faults
        fault = roll_fault(request, tenant, faults.token_rate_limit_rate, faults.token_error_rate)
        if fault is not None:
            return fault
        entity_header = request.headers.get("zuora-entity-ids")
        entities = tuple(tenant.entity_ids)
        if entity_header:
            wanted = tuple(p.strip() for p in entity_header.split(",") if p.strip())
            if not wanted or any(e not in tenant.entity_ids for e in wanted):
                return respond(
                    request,
                    tenant,
                    400,
                    _dumps({"error": "invalid_request", "error_description": "Unknown entity id"}),
                )
            entities = wanted
        token_value, _token = tenant.issue_token(entities)
        ttl = faults.token_ttl_s
        scope = " ".join(
            [f"user.{tenant.user_id}"]
            + [f"entity.{e}" for e in entities]
            + [f"tenant.{tenant.tenant_number}"]
        )
        payload = {
            "access_token": token_value,
            "token_type": "bearer",
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "scope": scope,
            "jti": uuid.uuid4().hex,
        }
        return respond(
            request,
            tenant,
            200,
            _dumps(payload),
            extra={
                "Cache-Control": "no-store",
                "X-RateLimit-Limit-minute": "100",
                "X-RateLimit-Remaining-minute": "99",
            },
        )

    async def list_workflows(request: Request) -> Response:
        tenant, error = await authenticate(request)
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
            return bad_request(request, tenant, "page and page_length must be integers")
        if page < 1 or page_length < 1:
            return bad_request(request, tenant, "page and page_length must be >= 1")
        if page_length > MAX_PAGE_LENGTH:
            if faults.oversize_page_length == "reject":
                return bad_request(
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
                return bad_request(request, tenant, f"{param} must be true or false")
            checks.append((key, lowered == "true"))
        for param in ("name", "interval"):
            raw = query.get(param)
            if raw is not None:
                checks.append((param, raw))  # exact match: semantics UNCONFIRMED (§9.10)

        if page in faults.fail_pages:
            return server_error(request, tenant, 500)
        fault = roll_fault(request, tenant, faults.rate_limit_rate, faults.error_rate)
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
            base = state.base_url_hint or str(request.base_url).rstrip("/")
            pagination["next_page"] = f"{base}/workflows?page={page + 1}&page_length={page_length}"
        elif faults.last_page_next_page == "null":
            pagination["next_page"] = None
        elif faults.last_page_next_page == "empty":
            pagination["next_page"] = ""
        body = '{"data":[' + ",".join(parts) + '],"pagination":' + json.dumps(pagination) + "}"
        return respond_api(request, tenant, body)

    async def get_workflow(request: Request) -> Response:
        tenant, error = await authenticate(request)
        if tenant is not None:
            tenant.stats.get_requests += 1
        if error is not None or tenant is None:
            assert error is not None
            return error
        faults = tenant.faults
        fault = roll_fault(request, tenant, faults.rate_limit_rate, faults.error_rate)
        if fault is not None:
            return fault
        raw_id = request.path_params["workflow_id"]
        item = tenant.detail(int(raw_id)) if raw_id.isdigit() else None
        if item is None:
            # Assumed to match DELETE/PATCH's documented 404 body (UNCONFIRMED for GET, §5).
            return respond(
                request,
                tenant,
                404,
                b'{"Errors":["The workflow for the given id does not exist"]}',
            )
        return respond_api(request, tenant, _dumps(item))

    # ----------------------------------------------------------------- admin API
    def admin(data: Any, status: int = 200) -> Response:
        return Response(_dumps(data), status_code=status, media_type=JSON)

    async def json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise Problem(400, "Malformed JSON", str(exc)) from exc
        if not isinstance(data, dict):
            raise Problem(400, "Body must be a JSON object")
        return data

    def tenant_of(request: Request) -> Tenant:
        name = request.path_params["name"]
        tenant = state.tenants.get(name)
        if tenant is None:
            raise Problem(404, "Unknown tenant", f"no tenant named {name!r}")
        return tenant

    def int_field(data: dict[str, Any], key: str, default: int, maximum: int = 10**7) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
            raise Problem(422, "Invalid field", f"{key} must be an integer in 0..{maximum}")
        return value

    def opt_str(data: dict[str, Any], key: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise Problem(422, "Invalid field", f"{key} must be a string")
        return value

    async def health(request: Request) -> Response:
        return admin({"status": "ok", "tenants": len(state.tenants)})

    async def reset_all(request: Request) -> Response:
        state.reset()
        return admin({"status": "reset"})

    async def tenants_list(request: Request) -> Response:
        return admin([t.summary() for t in list(state.tenants.values())])

    async def tenants_create(request: Request) -> Response:
        data = await json_body(request)
        allowed = {"name", "workflow_count", "seed", "client_id", "client_secret", "entity_ids"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise Problem(422, "Unknown field", ", ".join(unknown))
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise Problem(422, "Invalid field", "name must be a non-empty string")
        seed = data.get("seed", 0)
        if not isinstance(seed, int | str) or isinstance(seed, bool):
            raise Problem(422, "Invalid field", "seed must be an integer or a string")
        entity_ids = data.get("entity_ids")
        if entity_ids is not None and (
            not isinstance(entity_ids, list) or not all(isinstance(e, str) for e in entity_ids)
        ):
            raise Problem(422, "Invalid field", "entity_ids must be a list of strings")
        if name in state.tenants:
            raise Problem(409, "Tenant exists", f"tenant {name!r} already exists")
        try:
            tenant = state.add_tenant(
                name,
                workflow_count=int_field(data, "workflow_count", 0),
                seed=seed,
                client_id=opt_str(data, "client_id"),
                client_secret=opt_str(data, "client_secret"),
                entity_ids=entity_ids,
            )
        except ValueError as exc:
            status = 409 if "already" in str(exc) else 422
            raise Problem(status, "Cannot create tenant", str(exc)) from exc
        return admin(tenant.summary(), 201)

    async def tenant_get(request: Request) -> Response:
        return admin(tenant_of(request).summary())

    async def tenant_delete(request: Request) -> Response:
        tenant = tenant_of(request)
        state.remove_tenant(tenant.name)
        return Response(status_code=204)

    async def workflows_list(request: Request) -> Response:
        tenant = tenant_of(request)
        items = [tenant.workflows[i] for i in tenant.sorted_ids() if i in tenant.workflows]
        return admin({"workflows": items, "count": len(items)})

    async def workflow_put(request: Request) -> Response:
        tenant = tenant_of(request)
        wf_id: int = request.path_params["wf_id"]
        item = await json_body(request)
        if item.get("id", wf_id) != wf_id:
            raise Problem(422, "Id mismatch", "the body's id differs from the path")
        item = {"id": wf_id, **item}
        created = wf_id not in tenant.workflows
        tenant.put_workflow(item)
        return admin(item, 201 if created else 200)

    async def workflow_patch(request: Request) -> Response:
        tenant = tenant_of(request)
        wf_id: int = request.path_params["wf_id"]
        changes = await json_body(request)
        try:
            item = tenant.update_workflow(wf_id, **changes)
        except KeyError as exc:
            raise Problem(404, "Unknown workflow", f"no workflow {wf_id}") from exc
        except ValueError as exc:
            raise Problem(422, "Invalid change", str(exc)) from exc
        return admin(item)

    async def workflow_delete(request: Request) -> Response:
        tenant = tenant_of(request)
        wf_id: int = request.path_params["wf_id"]
        try:
            tenant.delete_workflow(wf_id)
        except KeyError as exc:
            raise Problem(404, "Unknown workflow", f"no workflow {wf_id}") from exc
        return Response(status_code=204)

    async def churn(request: Request) -> Response:
        tenant = tenant_of(request)
        data = await json_body(request)
        unknown = sorted(set(data) - {"change", "add", "delete", "seed"})
        if unknown:
            raise Problem(422, "Unknown field", ", ".join(unknown))
        seed = data.get("seed", 0)
        if not isinstance(seed, int | str) or isinstance(seed, bool):
            raise Problem(422, "Invalid field", "seed must be an integer or a string")
        try:
            result = tenant.churn(
                change=int_field(data, "change", 0),
                add=int_field(data, "add", 0),
                delete=int_field(data, "delete", 0),
                seed=seed,
            )
        except ValueError as exc:
            raise Problem(422, "Cannot churn", str(exc)) from exc
        return admin(result)

    async def faults_get(request: Request) -> Response:
        return admin(tenant_of(request).faults.to_dict())

    async def faults_put(request: Request) -> Response:
        tenant = tenant_of(request)
        data = await json_body(request)
        if request.method == "PATCH":
            data = {**tenant.faults.to_dict(), **data}
        try:
            tenant.faults = Faults.from_dict(data)
        except ValueError as exc:
            raise Problem(422, "Invalid faults", str(exc)) from exc
        return admin(tenant.faults.to_dict())

    async def stats_get(request: Request) -> Response:
        return admin(tenant_of(request).stats.to_dict())

    async def stats_reset(request: Request) -> Response:
        tenant = tenant_of(request)
        tenant.stats.reset()
        return admin(tenant.stats.to_dict())

    async def expire_tokens(request: Request) -> Response:
        tenant_of(request).expire_tokens()
        return admin({"status": "expired"})

    # ----------------------------------------------------------------- errors
    async def problem_handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        body = {"type": "about:blank", "title": exc.title, "status": exc.status}
        if exc.detail:
            body["detail"] = exc.detail
        return Response(_dumps(body), status_code=exc.status, media_type="application/problem+json")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/_sandbox"):
            body = {"type": "about:blank", "title": exc.detail, "status": exc.status_code}
            return Response(
                _dumps(body), status_code=exc.status_code, media_type="application/problem+json"
            )
        message = "no Route matched with those values" if exc.status_code == 404 else exc.detail
        # Kong-style gateway error for routes that do not exist (seen by T2, zuora-api.md §7).
        return respond(request, None, exc.status_code, _dumps({"message": message}))

    tenant_path = "/_sandbox/tenants/{name}"
    kit = ZuoraKit(
        authenticate=authenticate,
        respond=respond,
        roll_fault=roll_fault,
        server_error=server_error,
        json_body=json_body,
        tenant_of=tenant_of,
    )
    routes = [
        Route("/oauth/token", oauth_token, methods=["POST"]),
        Route("/workflows", list_workflows, methods=["GET"]),
        Route("/workflows/{workflow_id}", get_workflow, methods=["GET"]),
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/reset", reset_all, methods=["POST"]),
        Route("/_sandbox/tenants", tenants_list, methods=["GET"]),
        Route("/_sandbox/tenants", tenants_create, methods=["POST"]),
        Route(tenant_path, tenant_get, methods=["GET"]),
        Route(tenant_path, tenant_delete, methods=["DELETE"]),
        Route(f"{tenant_path}/workflows", workflows_list, methods=["GET"]),
        Route(f"{tenant_path}/workflows/{{wf_id:int}}", workflow_put, methods=["PUT"]),
        Route(f"{tenant_path}/workflows/{{wf_id:int}}", workflow_patch, methods=["PATCH"]),
        Route(f"{tenant_path}/workflows/{{wf_id:int}}", workflow_delete, methods=["DELETE"]),
        Route(f"{tenant_path}/churn", churn, methods=["POST"]),
        Route(f"{tenant_path}/faults", faults_get, methods=["GET"]),
        Route(f"{tenant_path}/faults", faults_put, methods=["PUT", "PATCH"]),
        Route(f"{tenant_path}/stats", stats_get, methods=["GET"]),
        Route(f"{tenant_path}/stats/reset", stats_reset, methods=["POST"]),
        Route(f"{tenant_path}/expire-tokens", expire_tokens, methods=["POST"]),
        *definition_routes(kit),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={Problem: problem_handler, HTTPException: http_error},
    )
    app.state.sandbox = state
    return app


__all__ = ["MAX_PAGE_LENGTH", "Problem", "create_app"]
