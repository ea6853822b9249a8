"""Sign-in with an API key (once) and sign-out: the only UI routes open without a session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from customer_api.ui.auth import LOGIN_COOKIE, CsrfRejectedError, UiDep, require_session
from customer_api.ui.csrf import origin_allowed, token_matches
from customer_api.ui.session import SESSION_COOKIE

__all__ = ["router", "safe_next"]

router = APIRouter()

_LOGIN_COOKIE_AGE = 3600
_HOME = "/ui/"


def safe_next(target: str | None) -> str:
    """Only paths inside the UI: ``next`` never redirects elsewhere (no open redirect)."""
    if (
        not target
        or not target.startswith("/ui/")
        or target.startswith("/ui//")
        or "\\" in target
        or any(ord(ch) < 0x21 for ch in target)
    ):
        return _HOME
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(
    request: Request,
    ui: UiDep,
    *,
    next_path: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    nonce = ui.new_login_nonce()
    response = ui.templates.render(
        request,
        "login.html",
        {"next": next_path, "error": error, "login_token": ui.login_token(nonce)},
        status_code=status_code,
        fragment=False,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=_LOGIN_COOKIE_AGE,
        path="/ui/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@router.get("/login", include_in_schema=False)
async def login_form(request: Request, ui: UiDep, next: str | None = None) -> Response:
    if ui.codec.read(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, ui, next_path=safe_next(next))


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    ui: UiDep,
    api_key: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = _HOME,
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not origin_allowed(request) or not nonce:
        raise CsrfRejectedError("the sign-in form did not come from this site")
    if not token_matches(csrf_token, ui.login_token(nonce)):
        raise CsrfRejectedError("the sign-in form is out of date; reload it")
    key_hash = ui.key_hash_if_valid(api_key.strip())
    if key_hash is None:
        return _login_page(
            request,
            ui,
            next_path=safe_next(next),
            error="That API key is not accepted. Use one of the keys in API_KEYS.",
            status_code=401,
        )
    cookie, _ = ui.codec.issue(key_hash)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=ui.codec.max_age,
        path="/ui/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/ui/")
    return response


@router.post("/logout", include_in_schema=False, dependencies=[Depends(require_session)])
async def logout(request: Request) -> Response:
    # htmx follows HX-Redirect; a plain form follows the 303.
    response: Response = (
        Response(status_code=204, headers={"HX-Redirect": "/ui/login"})
        if request.headers.get("hx-request") == "true"
        else RedirectResponse("/ui/login", status_code=303)
    )
    response.delete_cookie(SESSION_COOKIE, path="/ui/", httponly=True, samesite="lax")
    return response
