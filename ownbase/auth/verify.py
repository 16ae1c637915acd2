"""POST /verify (codes and token hashes) and GET /verify (email links, 303 redirects as GoTrue)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus, urlencode

import asyncpg
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ownbase.auth import errors, otp, sessions, users
from ownbase.auth import phone as phones
from ownbase.auth.rules import confirmed, normalize_phone, user_agent
from ownbase.auth.web import body, client_ip, ctx_of, limit, string
from ownbase.context import Context


VERIFY_TYPES = {
    "signup": ("confirmation_token",),
    "invite": ("confirmation_token",),
    "magiclink": ("recovery_token",),
    "recovery": ("recovery_token",),
    "email": ("confirmation_token", "recovery_token"),
    "email_change": ("email_change_token_new", "email_change_token_current"),
}


PHONE_TYPES = ("sms", "phone_change")

SECURE_CHANGE_MESSAGE = "Confirmation link accepted. Please proceed to confirm link sent to the other email"


async def _apply_verification(conn: asyncpg.Connection, ctx: Context, row: asyncpg.Record,
                              ip: str) -> tuple[asyncpg.Record, str | None]:
    """Apply a consumed token to its user. Returns (user, message) — message for a half-done
    secure email change."""
    user = await users.by_id(conn, str(row["user_id"]), lock=True)
    if user is None:
        raise errors.otp_expired()
    kind = row["token_type"]
    if kind == "confirmation_token" or kind == "recovery_token":
        if not confirmed(user):
            await users.confirm_email(conn, user["id"])
        await users.audit(conn, "user_signedup" if kind == "confirmation_token" else "login", user, ip,
                          "team" if kind == "confirmation_token" else "account")
    elif kind in ("email_change_token_new", "email_change_token_current"):
        if not user["email_change"]:
            raise errors.otp_expired()
        other = "email_change_token_current" if kind == "email_change_token_new" else "email_change_token_new"
        pending = await conn.fetchval(
            "select 1 from auth.one_time_tokens where user_id = $1 and token_type = $2", user["id"], other)
        if pending:
            await conn.execute("update auth.users set email_change_confirm_status = 1 where id = $1", user["id"])
            return user, SECURE_CHANGE_MESSAGE
        await users.change_email(conn, user["id"], user["email_change"])
        await users.audit(conn, "user_modified", user, ip, "user")
    fresh = await users.by_id(conn, str(user["id"]))
    assert fresh is not None
    return fresh, None


def _verify_params(vtype: str, code: str, token_hash: str, email: str) -> None:
    if not vtype:
        raise errors.validation("Verify requires a verification type")
    if vtype not in VERIFY_TYPES:
        raise errors.validation("Unsupported verification type")
    if not code and not token_hash:
        raise errors.validation("Verify requires either a token or a token hash")
    if token_hash and (code or email):
        raise errors.validation("Only the token_hash and type should be provided")


async def verify_post(request: Request) -> Any:
    ctx = ctx_of(request)
    data = await body(request)
    await limit(request, "verify", ctx.settings.auth_rate_limit_verify)
    vtype, code = string(data, "type"), string(data, "token")
    token_hash, email = string(data, "token_hash"), string(data, "email")
    phone = string(data, "phone")
    if vtype in PHONE_TYPES or (phone and not email):
        # No user here has a pending phone code (phone sign-in is not built): GoTrue's answers.
        if not vtype:
            raise errors.validation("Verify requires a verification type")
        if not code and not token_hash:
            raise errors.validation("Verify requires either a token or a token hash")
        if ctx.settings.auth_phone_enabled and vtype in PHONE_TYPES:
            return await phones.verify(request, ctx, vtype, code, phone)
        normalize_phone(phone)
        raise errors.otp_expired()
    _verify_params(vtype, code, token_hash, email)
    if code and not users.valid_email(email):
        raise errors.validation("Invalid email format", 422)
    if token_hash.startswith("pkce_"):
        token_hash = token_hash[5:]
    ip = client_ip(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        if code:
            row = await otp.consume(conn, ctx, VERIFY_TYPES[vtype], email=email, code=code.strip())
        else:
            row = await otp.consume(conn, ctx, VERIFY_TYPES[vtype], token_hash=token_hash)
        if row is None:
            raise errors.otp_expired()
        user, message = await _apply_verification(conn, ctx, row, ip)
        if message is not None:
            return {"msg": message, "code": "200"}
        return await sessions.create(conn, ctx, user, "otp", ip=ip, user_agent=user_agent(request))


def _fragment(values: dict[str, Any]) -> str:
    return urlencode(sorted(values.items()), quote_via=quote_plus)


async def verify_get(request: Request) -> Response:
    ctx = ctx_of(request)
    q = request.query_params
    vtype, token_value = q.get("type", ""), q.get("token", "")
    if not vtype:
        raise errors.validation("Verify requires a verification type")
    if vtype not in VERIFY_TYPES:
        raise errors.validation("Unsupported verification type")
    if not token_value:
        raise errors.validation("Verify requires either a token or a token hash")
    await limit(request, "verify", ctx.settings.auth_rate_limit_verify)
    target = otp.redirect_target(ctx, q.get("redirect_to"))
    pkce = token_value.startswith("pkce_")
    token_hash = token_value[5:] if pkce else token_value
    ip = client_ip(request)
    try:
        async with ctx.db.owner.acquire() as conn, conn.transaction():
            row = await otp.consume(conn, ctx, VERIFY_TYPES[vtype], token_hash=token_hash)
            if row is None:
                raise errors.otp_expired(link=True)
            user, message = await _apply_verification(conn, ctx, row, ip)
            if message is not None:
                return RedirectResponse(f"{target}#{_fragment({'message': message, 'sb': ''})}", 303)
            if pkce:
                method = {"confirmation_token": "email/signup", "recovery_token": vtype if vtype in
                          ("recovery", "magiclink") else "magiclink"}.get(row["token_type"], "email_change")
                code = await conn.fetchval(
                    """update auth.flow_state set auth_code_issued_at = now(), updated_at = now()
                       where id = (select id from auth.flow_state where user_id = $1
                                   order by (authentication_method = $2) desc, created_at desc limit 1)
                       returning auth_code""", user["id"], method)
                if code is not None:
                    sep = "&" if "?" in target else "?"
                    return RedirectResponse(f"{target}{sep}code={code}", 303)
            session = await sessions.create(conn, ctx, user, "otp", ip=ip, user_agent=user_agent(request))
    except errors.AuthError as err:
        kind = {400: "invalid_request", 401: "unauthorized_client", 403: "access_denied",
                503: "temporarily_unavailable"}.get(err.status, "server_error")
        frag = _fragment({"error": kind, "error_code": err.code, "error_description": err.message, "sb": ""})
        return RedirectResponse(f"{target}#{frag}", 303)
    frag = _fragment({
        "access_token": session["access_token"], "expires_at": session["expires_at"],
        "expires_in": session["expires_in"], "refresh_token": session["refresh_token"], "sb": "",
        "token_type": "bearer", "type": vtype,
    })
    return RedirectResponse(f"{target}#{frag}", 303)
