"""The request helpers every route family shares: Zuora's headers and counters, authentication,
fault rolls, and the admin API's JSON in and out.

One ``ZuoraKit`` per app, bound to its ``SandboxState``; the routers (``zuora_routes``,
``admin_routes``, ``fault_routes``, ``definition_routes``) take it as their only argument, so a new
endpoint family is one more module of that shape.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .problems import Problem
from .state import RATE_LIMIT_HEADER, SandboxState, Tenant

ADMIN_PREFIX = "/_sandbox"
TENANT_PATH = ADMIN_PREFIX + "/tenants/{name}"
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


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def _num(value: float) -> str:
    """``1`` for 1.0, ``0.25`` for 0.25 (header values)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def admin(data: Any, status: int = 200) -> Response:
    """An admin API answer (plain JSON, no Zuora headers, not counted)."""
    return Response(dumps(data), status_code=status, media_type=JSON)


async def json_body(request: Request) -> dict[str, Any]:
    """The admin request's JSON object (``{}`` for an empty body); a problem otherwise."""
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


def seed_field(data: dict[str, Any]) -> int | str:
    seed = data.get("seed", 0)
    if not isinstance(seed, int | str) or isinstance(seed, bool):
        raise Problem(422, "Invalid field", "seed must be an integer or a string")
    return seed


def reject_unknown(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Problem(422, "Unknown field", ", ".join(unknown))


class ZuoraKit:
    """The helpers that need the app's ``SandboxState`` (tenants, tokens, latency)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    json_body = staticmethod(json_body)

    # ----------------------------------------------------------------- Zuora answers
    def zuora_headers(self, request: Request, tenant: Tenant | None) -> dict[str, str]:
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
        self,
        request: Request,
        tenant: Tenant | None,
        status: int,
        body: bytes | str,
        media_type: str = JSON,
        extra: dict[str, str] | None = None,
    ) -> Response:
        """A Zuora API answer: Zuora's headers, counted in the tenant's status stats."""
        headers = self.zuora_headers(request, tenant)
        if extra:
            headers.update(extra)
        if tenant is not None:
            tenant.stats.count_status(status)
        return Response(body, status_code=status, headers=headers, media_type=media_type)

    def respond_api(self, request: Request, tenant: Tenant, body: bytes | str) -> Response:
        """A 200 answer of an API GET, shaped by the tenant's body faults (oversize, drip)."""
        raw = body.encode() if isinstance(body, str) else body
        stream = tenant.faults.body_stream(raw)
        if stream is None:
            return self.respond(request, tenant, 200, raw)
        tenant.stats.count_status(200)
        return StreamingResponse(
            stream, status_code=200, headers=self.zuora_headers(request, tenant), media_type=JSON
        )

    def unauthorized(self, request: Request, tenant: Tenant | None) -> Response:
        # The message text is UNCONFIRMED (zuora-api.md §7): the spec gives only {"message": str}.
        return self.respond(
            request,
            tenant,
            401,
            b'{"message":"Authentication error"}',
            extra={"WWW-Authenticate": WWW_AUTHENTICATE},
        )

    def bad_request(self, request: Request, tenant: Tenant | None, message: str) -> Response:
        # 400 bodies of /workflows are undocumented ("Invalid input"): {"message": ...} is a guess.
        return self.respond(request, tenant, 400, dumps({"message": message}))

    # ----------------------------------------------------------------- injected faults
    def server_error(self, request: Request, tenant: Tenant, status: int) -> Response:
        tenant.stats.injected_errors += 1
        mode = tenant.faults.error_body
        if mode == "html":
            reason = _REASONS.get(status, "Error")
            html = _HTML_ERROR.format(status=status, reason=reason)
            return self.respond(request, tenant, status, html, "text/html")
        media = JSON if mode == "json" else "text/plain"
        return self.respond(request, tenant, status, SERVER_ERROR_TEXT, media)

    def rate_limited(self, request: Request, tenant: Tenant) -> Response:
        faults = tenant.faults
        tenant.stats.injected_errors += 1
        extra = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(faults.rate_limit_reset)}
        if faults.rate_limit_retry_after is not None:
            extra["Retry-After"] = _num(faults.rate_limit_retry_after)
        # The 429 body is UNCONFIRMED (zuora-api.md §6): Kong's wording is used as a guess.
        return self.respond(
            request, tenant, 429, b'{"message":"API rate limit exceeded"}', extra=extra
        )

    def roll_fault(
        self, request: Request, tenant: Tenant, rate_limit_rate: float, error_rate: float
    ) -> Response | None:
        """A 429 or 5xx answer drawn from the tenant's seeded fault sequence, or ``None``."""
        if rate_limit_rate <= 0 and error_rate <= 0:
            return None
        rng = tenant.fault_rng
        roll = rng.random()
        if roll < rate_limit_rate:
            return self.rate_limited(request, tenant)
        if roll < rate_limit_rate + error_rate:
            return self.server_error(request, tenant, rng.choice(tenant.faults.error_statuses))
        return None

    async def delay(self, tenant: Tenant | None) -> None:
        total = self.state.latency_ms + (tenant.faults.latency_ms if tenant else 0)
        if total > 0:
            await asyncio.sleep(total / 1000)

    # ----------------------------------------------------------------- authentication
    async def authenticate(self, request: Request) -> tuple[Tenant | None, Response | None]:
        """The bearer token's tenant, and the error to answer instead (``None`` when valid)."""
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        token = self.state.resolve_token(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            await self.delay(None)
            return None, self.unauthorized(request, None)
        tenant = token.tenant
        await self.delay(tenant)
        if token.expires_at <= self.state.clock():
            return tenant, self.unauthorized(request, tenant)
        header = request.headers.get("zuora-entity-ids")
        if header:
            wanted = [part.strip() for part in header.split(",") if part.strip()]
            if not wanted or any(e not in token.entity_ids for e in wanted):
                # UNCONFIRMED status and body (zuora-api.md §8).
                return tenant, self.bad_request(
                    request, tenant, "The entity in Zuora-Entity-Ids is not accessible"
                )
        elif len(token.entity_ids) >= 2:
            # UNCONFIRMED status and body (zuora-api.md §8: the real error is not documented).
            return tenant, self.bad_request(
                request,
                tenant,
                "Multiple entities are accessible with this token: "
                "specify one in the Zuora-Entity-Ids header",
            )
        return tenant, None

    # ----------------------------------------------------------------- admin API
    def tenant_of(self, request: Request) -> Tenant:
        """The tenant named by the ``{name}`` path parameter; a 404 problem otherwise."""
        name = request.path_params["name"]
        tenant = self.state.tenants.get(name)
        if tenant is None:
            raise Problem(404, "Unknown tenant", f"no tenant named {name!r}")
        return tenant
