"""The operator web UI, served by the API process under ``/ui/``.

Server-rendered Jinja2 pages with htmx 2 for partial updates; assets vendored in ``static/``.
The pages call the application's handlers (``customer_api.handlers``) with the same database
session as the JSON routes, never HTTP to ourselves. Sign-in is with an API key once, then a
signed cookie (``session.py``); the JSON API never accepts that cookie (it is outside
``/ui``, where the bearer middleware alone decides).

Extension points: a page is an ``APIRouter`` in ``pages/`` listed in ``pages.PAGE_ROUTERS``;
its templates extend ``base.html`` (``{% block content %}`` is the htmx fragment).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from application.errors import DomainError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from zuora_client import OFFICIAL_BASE_URLS

from customer_api.auth import ApiKeyVerifier
from customer_api.errors import ApiError
from customer_api.problems import problem_for
from customer_api.settings import ApiSettings
from customer_api.ui.auth import CsrfRejectedError, SignInRequiredError, UiContext, require_session
from customer_api.ui.environments import base_url_choices
from customer_api.ui.headers import UI_PREFIX, UiSecurityHeadersMiddleware
from customer_api.ui.pages import PAGE_ROUTERS
from customer_api.ui.session import SessionCodec, derive_session_secret
from customer_api.ui.signin import router as signin_router
from customer_api.ui.templating import Templates, is_htmx

__all__ = ["UI_PREFIX", "install_ui"]


def _is_ui(request: Request) -> bool:
    path = request.url.path
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    ui: UiContext = request.app.state.ui
    return ui.templates.render(
        request, "error.html", {"title": title, "detail": detail}, status_code=status
    )


def _install_error_pages(app: FastAPI) -> None:
    """UI requests get HTML error pages; everything else keeps its problem+json handler."""
    api_handlers = dict(app.exception_handlers)

    async def sign_in(request: Request, exc: Exception) -> Response:
        back = request.url.path
        if request.url.query and request.method == "GET":
            back += "?" + request.url.query
        target = "/ui/login?next=" + quote(back, safe="/")
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CsrfRejectedError)
        return _error_page(request, 403, "Request refused", f"Refused: {exc.reason}.")

    def ui_or_api(kind: type[Exception]) -> Any:
        fallback = api_handlers[kind]

        async def handle(request: Request, exc: Exception) -> Response:
            if not _is_ui(request):
                return await fallback(request, exc)  # type: ignore[no-any-return]
            if isinstance(exc, ApiError):
                return _error_page(request, exc.status, exc.title, exc.detail)
            if isinstance(exc, DomainError):
                kind = problem_for(exc)
                return _error_page(request, kind.status, kind.title, exc.detail)
            if isinstance(exc, RequestValidationError):
                return _error_page(request, 404, "Not found", "There is no such page.")
            assert isinstance(exc, StarletteHTTPException)
            title = "Not found" if exc.status_code == 404 else "Error"
            detail = "There is no such page." if exc.status_code == 404 else str(exc.detail)
            return _error_page(request, exc.status_code, title, detail)

        return handle

    app.add_exception_handler(SignInRequiredError, sign_in)
    app.add_exception_handler(CsrfRejectedError, csrf_rejected)
    for kind in (DomainError, ApiError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, ui_or_api(kind))


def build_ui_context(settings: ApiSettings, verifier: ApiKeyVerifier) -> UiContext:
    secret_material = settings.ui_session_secret.get_secret_value() or (
        "enc:" + settings.store.encryption_key_list()[0]
    )
    secret = derive_session_secret(secret_material)
    return UiContext(
        codec=SessionCodec(
            secret, settings.api_key_hashes(), max_age=settings.ui_session_hours * 3600
        ),
        verifier=verifier,
        templates=Templates(),
        login_secret=derive_session_secret("login:" + secret_material),
        base_url_choices=base_url_choices(OFFICIAL_BASE_URLS, settings.store.allowed_base_urls),
        expected_interval_seconds=settings.sync_expected_interval_seconds,
        max_attempts=settings.worker_max_attempts,
    )


def install_ui(app: FastAPI, settings: ApiSettings, verifier: ApiKeyVerifier) -> None:
    """Mount the UI on ``app``: routes, static files, error pages, security headers."""
    app.state.ui = build_ui_context(settings, verifier)
    app.mount(f"{UI_PREFIX}/static", StaticFiles(packages=[("customer_api.ui", "static")]))
    public = APIRouter(prefix=UI_PREFIX, include_in_schema=False)
    public.include_router(signin_router)

    @public.get("")
    async def ui_root() -> Response:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=308)

    app.include_router(public)
    for router in PAGE_ROUTERS:
        app.include_router(
            router,
            prefix=UI_PREFIX,
            include_in_schema=False,
            dependencies=[Depends(require_session)],
        )
    _install_error_pages(app)
    app.add_middleware(UiSecurityHeadersMiddleware)
