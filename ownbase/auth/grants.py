"""POST /token: password, refresh_token (rotation with reuse detection) and pkce grants; id_token and
web3 answer as GoTrue with those providers disabled (idtoken.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request

from ownbase.auth import captcha, errors, hooks, idtoken, sessions, users
from ownbase.auth import phone as phones
from ownbase.auth.passwords import hash_password, needs_rehash, verify_password
from ownbase.auth.rules import banned, confirmed, user_agent
from ownbase.auth.tokens import pkce_challenge_ok
from ownbase.auth.web import body, client_ip, ctx_of, limit, string


async def token(request: Request) -> Any:
    grant = request.query_params.get("grant_type", "")
    if grant not in ("refresh_token", "pkce", "id_token"):
        # GoTrue checks CAPTCHA before the grant is known: an unknown grant gets captcha_failed.
        await captcha.check(request, await body(request))
    if grant == "password":
        return await _password_grant(request)
    if grant == "refresh_token":
        return await _refresh_grant(request)
    if grant == "pkce":
        return await _pkce_grant(request)
    if grant == "id_token":
        return await idtoken.id_token_grant(request)
    if grant == "web3":
        return await idtoken.web3_grant(request)
    raise errors.AuthError(400, "invalid_credentials", "unsupported_grant_type")


async def _password_grant(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    data = await body(request)
    await limit(request, "token", s.auth_rate_limit_token)
    email, phone, password = string(data, "email"), string(data, "phone"), string(data, "password")
    if email and phone:
        raise errors.validation("Only an email address or phone number should be provided on login.")
    if phone and not s.auth_phone_enabled:
        raise errors.phone_disabled("logins", 422)
    if not email and not phone:
        raise errors.validation("missing email or phone")
    async with ctx.db.owner.acquire() as conn:
        user = await (phones.password_user(conn, phone) if phone else users.by_email(conn, email))
    ok = await verify_password(password, user["encrypted_password"] if user is not None else None,
                               s.auth_bcrypt_cost)
    if user is not None:
        await hooks.password_verification_attempt(ctx, user["id"], ok, client_ip(request))
    if not ok or user is None:
        raise errors.invalid_credentials()
    if phone:
        phones.check_confirmed(ctx, user)
    elif not confirmed(user) and not s.auth_autoconfirm:
        raise errors.email_not_confirmed()
    if banned(user):
        raise errors.user_banned()
    ip = client_ip(request)
    rehashed = await hash_password(password, s.auth_bcrypt_cost) if needs_rehash(user["encrypted_password"]) else None
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        if rehashed is not None:  # an imported argon2 / Firebase scrypt hash becomes bcrypt
            await users.set_password(conn, user["id"], rehashed)
        reply = await sessions.create(conn, ctx, user, "password", ip=ip, user_agent=user_agent(request))
        await users.audit(conn, "login", user, ip, "account", {"provider": "phone" if phone else "email"})
    if len(password) < s.auth_password_min_length:
        reply["weak_password"] = {"message": f"Password should be at least {s.auth_password_min_length}"
                                             " characters.", "reasons": ["length"]}
    return reply


async def _refresh_grant(request: Request) -> Any:
    ctx = ctx_of(request)
    data = await body(request)
    await limit(request, "token", ctx.settings.auth_rate_limit_token)
    rt = string(data, "refresh_token")
    if not rt or len(rt) > 255:
        raise errors.validation("Refresh token is not valid")
    revoked = False
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            try:
                return await sessions.refresh(conn, ctx, rt, client_ip(request))
            except sessions.Revoked:
                revoked = True  # commit the revocation, then refuse
    assert revoked
    raise errors.refresh_already_used()


async def _pkce_grant(request: Request) -> Any:
    ctx = ctx_of(request)
    data = await body(request)
    await limit(request, "token", ctx.settings.auth_rate_limit_token)
    code, verifier = string(data, "auth_code"), string(data, "code_verifier")
    if not code or not verifier:
        raise errors.validation("invalid request: both auth code and code verifier should be non-empty")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        flow = await conn.fetchrow(
            "delete from auth.flow_state where auth_code = $1 and auth_code_issued_at is not null"
            " returning *", code)
        if flow is None:
            raise errors.AuthError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
        issued = flow["auth_code_issued_at"]
        if (datetime.now(timezone.utc) - issued).total_seconds() > 300:
            raise errors.AuthError(422, "flow_state_expired", "invalid flow state, flow state has expired")
        if not pkce_challenge_ok(verifier, flow["code_challenge"], flow["code_challenge_method"]):
            raise errors.AuthError(403, "bad_code_verifier", "code challenge does not match previously saved code verifier")
        user = await users.by_id(conn, str(flow["user_id"]))
        if user is None:
            raise errors.user_not_found(admin=True)
        reply = await sessions.create(conn, ctx, user, flow["authentication_method"],
                                      ip=client_ip(request), user_agent=user_agent(request))
        # OAuth flows hand the provider's tokens back (GoTrue: refresh only when there is one).
        if flow["provider_access_token"]:
            reply["provider_token"] = flow["provider_access_token"]
        if flow["provider_refresh_token"]:
            reply["provider_refresh_token"] = flow["provider_refresh_token"]
        return reply
