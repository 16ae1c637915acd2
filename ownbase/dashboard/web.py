"""HTTP plumbing of the dashboard: session guard, CSRF check, JSON replies, templates."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Awaitable, Callable

import asyncpg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ownbase.dashboard.accounts import Session, csrf_ok, load_session
from ownbase.dashboard.idents import BadInput

COOKIE = "ownbase_dashboard"
HERE = Path(__file__).parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
MAX_JSON = 2_000_000

Handler = Callable[[Request, Session], Awaitable[Response]]


def err(status: int, message: str, code: str = "bad_request") -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def page(name: str, **values: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**values)
    return HTMLResponse(html, headers={
        "cache-control": "no-store",
        # Everything the page needs is served from /dashboard; no inline script, no other origin.
        "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:;"
                                   " frame-src 'self' blob:; object-src 'self' blob:; frame-ancestors 'none'",
        "x-frame-options": "DENY", "referrer-policy": "same-origin"})


def ctx_of(request: Request) -> Any:
    return request.app.state.ctx


def same_origin(request: Request) -> bool:
    """Browsers send Origin on cross-site POSTs: refuse those outright (defence beside the token)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    public = request.app.state.settings.api_url  # behind a proxy that rewrites Host
    return origin.split("://", 1)[-1] == host or origin == public


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_JSON:
        raise BadInput("body too large")
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise BadInput("the body must be JSON") from None


def guarded(*, html: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Every dashboard route but login and static files: a live session, and on writes its CSRF token."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            ctx = ctx_of(request)
            session = await load_session(ctx.db.owner, request.cookies.get(COOKIE))
            if session is None:
                if html:
                    return RedirectResponse("/dashboard/login", status_code=303)
                return err(401, "sign in to the dashboard first", "not_signed_in")
            if request.method in UNSAFE:
                token = request.headers.get("x-csrf-token")
                if not same_origin(request) or not csrf_ok(session, token):
                    return err(403, "missing or wrong CSRF token", "csrf")
            try:
                return await handler(request, session)
            except BadInput as exc:
                return err(400, str(exc))
            except (ValueError, TypeError) as exc:
                return err(400, f"invalid input: {exc}")
            except asyncpg.PostgresError as exc:
                return err(400, getattr(exc, "message", str(exc)), getattr(exc, "sqlstate", None) or "database")
        return endpoint

    return wrap
