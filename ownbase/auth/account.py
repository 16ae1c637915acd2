"""The signed-in user: GET/PUT /user, GET /reauthenticate, POST /logout."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from ownbase.auth import aal, errors, otp, sessions, users
from ownbase.auth import phone as phones
from ownbase.auth.passwords import hash_password, verify_password
from ownbase.auth.rules import check_password, normalize_email, normalize_phone
from ownbase.auth.web import body, client_ip, ctx_of, limit, obj, string, user_caller


async def current_user(conn: asyncpg.Connection, claims: dict[str, Any], *, lock: bool = False) -> asyncpg.Record:
    user = await users.by_id(conn, claims["sub"], lock=lock)
    if user is None:
        raise errors.user_not_found()
    sid = claims.get("session_id")
    if sid and not await sessions.session_exists(conn, str(sid)):
        raise errors.session_not_found()
    return user


async def get_user(request: Request) -> Any:
    ctx = ctx_of(request)
    auth = user_caller(request)
    async with ctx.db.owner.acquire() as conn:
        user = await current_user(conn, auth.claims)
        out = users.user_json(user, await users.identities(conn, user["id"]))
        found = await users.factors(conn, user["id"])
        if found:  # GoTrue omits the key when there are none
            out["factors"] = found
        return out


async def put_user(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    auth = user_caller(request)
    data = await body(request)
    await limit(request, "otp", s.auth_rate_limit_otp)
    email, password = string(data, "email"), string(data, "password")
    nonce, current_password = string(data, "nonce"), string(data, "current_password")
    if data.get("app_metadata") is not None:
        raise errors.AuthError(403, "not_admin", "Updating app_metadata requires admin privileges")
    new_phone = normalize_phone(string(data, "phone")) if string(data, "phone") else ""
    if new_phone and not s.auth_phone_enabled:
        raise errors.phone_disabled("logins")
    if new_phone:
        phones.check_channel(ctx, data)
    ip = client_ip(request)
    redirect_to = request.query_params.get("redirect_to")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await current_user(conn, auth.claims, lock=True)
        changes_secret = bool(password) or bool(email and email.lower() != (user["email"] or ""))
        if changes_secret and await aal.below_reachable(conn, user["id"], auth.claims):
            raise errors.AuthError(401, "insufficient_aal",
                                   "AAL2 session is required to update email or password when MFA is enabled.")
        if "data" in data:
            await users.merge_metadata(conn, user["id"], "raw_user_meta_data", obj(data, "data"))
        if password:
            check_password(ctx, password)
            if user["encrypted_password"] and await verify_password(password, user["encrypted_password"],
                                                                     s.auth_bcrypt_cost):
                raise errors.same_password()
            if current_password:
                if not await verify_password(current_password, user["encrypted_password"], s.auth_bcrypt_cost):
                    raise errors.AuthError(400, "invalid_credentials", "Invalid login credentials")
            elif s.auth_secure_password_change and user["encrypted_password"]:
                if not nonce:
                    raise errors.reauthentication_needed()
                row = await otp.consume(conn, ctx, ("reauthentication_token",),  # SMS nonce: by phone
                                        email=user["email"] or user["phone"] or "", code=nonce)
                if row is None or row["user_id"] != user["id"]:
                    raise errors.reauthentication_not_valid()
            await users.set_password(conn, user["id"], await hash_password(password, s.auth_bcrypt_cost))
            await users.audit(conn, "user_updated_password", user, ip, "user")
        if email and email.lower() != (user["email"] or ""):
            new = normalize_email(email)
            taken = await users.by_email(conn, new)
            if taken is not None and taken["id"] != user["id"]:
                raise errors.email_exists()
            await conn.execute(
                "update auth.users set email_change = $2, email_change_confirm_status = 0, updated_at = now()"
                " where id = $1", user["id"], new)
            changed = await users.by_id(conn, str(user["id"]))
            assert changed is not None
            await otp.send(conn, ctx, changed, "email_change", redirect_to=redirect_to, to=new)
            if s.auth_secure_email_change and user["email"]:
                await otp.send(conn, ctx, changed, "email_change", redirect_to=redirect_to,
                               to=user["email"], token_type="email_change_token_current")
        if new_phone:
            await phones.request_change(conn, ctx, user, new_phone, ip)
        await users.audit(conn, "user_modified", user, ip, "user")
        fresh = await users.by_id(conn, str(user["id"]))
        assert fresh is not None
        return users.user_json(fresh, await users.identities(conn, fresh["id"]))


async def reauthenticate(request: Request) -> Any:
    ctx = ctx_of(request)
    auth = user_caller(request)
    await limit(request, "otp", ctx.settings.auth_rate_limit_otp)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await current_user(conn, auth.claims, lock=True)
        if not user["email"] and user["phone"] and ctx.settings.auth_phone_enabled:
            await phones.send_code(conn, ctx, user, "reauthentication", user["phone"], client_ip(request))
            return {}
        if not user["email"]:
            raise errors.validation("Reauthentication requires the user to have an email or a phone number")
        await otp.send(conn, ctx, user, "reauthentication", redirect_to=None, budget=False)
    return {}


async def logout(request: Request) -> Response:
    ctx = ctx_of(request)
    auth = user_caller(request)
    scope = request.query_params.get("scope", "local")
    if scope not in ("global", "local", "others"):
        raise errors.validation(f'Unsupported logout scope "{scope}"')
    sid = auth.claims.get("session_id")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_id(conn, auth.claims["sub"])
        await sessions.logout(conn, auth.claims["sub"], str(sid) if sid else None, scope)
        if user is not None:
            await users.audit(conn, "logout", user, client_ip(request), "account", {"scope": scope})
    return Response(status_code=204)
