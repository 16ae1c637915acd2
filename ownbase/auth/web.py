"""Request plumbing shared by the auth handlers: JSON bodies, callers, per-IP limits."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from starlette.requests import Request

from ownbase.auth import errors, users
from ownbase.auth.users import is_uuid
from ownbase.context import Context
from ownbase.http.auth_context import AuthContext, CredentialError, resolve

MAX_BODY = 1024 * 1024  # GoTrue's limit


def ctx_of(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    state = request.scope.get("state") or {}
    ip = state.get("client_ip") if isinstance(state, dict) else None
    if not ip and request.client:
        ip = request.client.host
    return str(ip or "")


async def body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise errors.AuthError(413, "request_entity_too_large",
                               f"Request body too large (max {MAX_BODY} bytes)")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise errors.bad_json(str(exc)) from None
    except RecursionError:
        raise errors.bad_json("nested too deeply") from None
    if not isinstance(data, dict):
        raise errors.bad_json("expected a JSON object")
    # Postgres text and jsonb refuse NUL characters and lone surrogates: refuse them here as a
    # 400 instead of failing later with a 500.
    try:
        _check_strings(data)
    except RecursionError:
        raise errors.bad_json("nested too deeply") from None
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_strings(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise errors.bad_json("NUL characters are not allowed")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise errors.bad_json("invalid Unicode (lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.bad_json(f"{key} must be a string")
    return value.strip() if key in ("email", "phone", "type") else value


def obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.bad_json(f"{key} must be an object")
    return value


async def limit(request: Request, kind: str, per_window: int) -> None:
    ctx = ctx_of(request)
    decision = await ctx.limiter.hit(f"auth:{kind}:{client_ip(request)}", per_window,
                                     ctx.settings.auth_rate_limit_window)
    if not decision.allowed:
        raise errors.rate_limited(decision.retry_after)


def caller(request: Request) -> AuthContext:
    """The verified bearer token, rendered as GoTrue's errors when missing or bad."""
    ctx = ctx_of(request)
    value = request.headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.no_authorization()
    try:
        return resolve(ctx.keys, request.headers, request.query_params.get("apikey"), require_key=False)
    except CredentialError as exc:
        if exc.reason == "missing":
            raise errors.no_authorization() from None
        detail = {
            "expired": "token has invalid claims: token is expired",
        }.get(exc.reason, exc.message)
        raise errors.bad_jwt(detail) from None


def user_caller(request: Request) -> AuthContext:
    auth = caller(request)
    sub = auth.claims.get("sub")
    if not sub:
        raise errors.AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
    if not isinstance(sub, str) or not _is_uuid(sub):
        raise errors.AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID")
    return auth


def admin_caller(request: Request) -> AuthContext:
    auth = caller(request)
    if auth.role != "service_role":
        raise errors.not_admin()
    return auth


def _is_uuid(value: str) -> bool:
    return is_uuid(value)


async def admin_target_user_id(conn: asyncpg.Connection, request: Request) -> Any:
    """The id of the user an admin route's ``{user_id}`` names (service role only): GoTrue's 404s."""
    admin_caller(request)
    user_id = request.path_params["user_id"]
    if not is_uuid(user_id):
        raise errors.validation("user_id must be an UUID", 404)
    user = await users.by_id(conn, str(user_id))
    if user is None:
        raise errors.user_not_found(admin=True)
    return user["id"]
