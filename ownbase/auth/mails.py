"""Endpoints that mail a code + link: POST /otp (/magiclink), /recover, /resend."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ownbase.auth import captcha, errors, otp, users
from ownbase.auth import phone as phones
from ownbase.auth.rules import confirmed, normalize_email, normalize_phone, pkce_flow, pkce_params
from ownbase.auth.web import body, client_ip, ctx_of, limit, obj, string


async def otp_route(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    data = await body(request)
    await limit(request, "otp", s.auth_rate_limit_otp)
    await captcha.check(request, data)
    email, phone = string(data, "email"), string(data, "phone")
    if email and phone:
        raise errors.validation("Only an email address or phone number should be provided")
    if phone:
        # GoTrue: with create_user false an unknown (E.164-checked) phone is otp_disabled; then
        # the phone provider (never configured here) is off.
        number = normalize_phone(phone)
        if data.get("create_user", True) is False:
            async with ctx.db.owner.acquire() as conn:
                if await conn.fetchval("select 1 from auth.users where phone = $1", number) is None:
                    raise errors.otp_disabled()
        if s.auth_phone_enabled:
            return await phones.otp_signin(request, ctx, data, number, obj(data, "data"))
        raise errors.phone_disabled("provider")
    if not email:
        raise errors.validation("An email address is required")
    email = normalize_email(email)
    create_user = data.get("create_user", True) is not False
    meta = obj(data, "data")
    redirect_to = request.query_params.get("redirect_to")
    ip = client_ip(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_email(conn, email, lock=True)
        if user is None:
            if not create_user:
                raise errors.otp_disabled()
            if s.auth_disable_signup:
                raise errors.signup_disabled()
            user = await users.create(conn, email=email, password_hash=None, user_metadata=meta)
            await users.audit(conn, "user_signedup", user, ip, "team", {"provider": "email"})
        if confirmed(user):
            pkce = await pkce_flow(conn, data, user["id"], "magiclink")
            await otp.send(conn, ctx, user, "magiclink", redirect_to=redirect_to, pkce=pkce)
        else:
            pkce = await pkce_flow(conn, data, user["id"], "email/signup")
            await otp.send(conn, ctx, user, "confirmation", redirect_to=redirect_to, pkce=pkce)
    return {}


async def recover(request: Request) -> Any:
    ctx = ctx_of(request)
    data = await body(request)
    await limit(request, "otp", ctx.settings.auth_rate_limit_otp)
    await captcha.check(request, data)
    email = string(data, "email")
    if not email:
        raise errors.validation("Password recovery requires an email")
    email = normalize_email(email)
    pkce_params(data)  # a bad challenge is refused whether or not the address is known
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_email(conn, email, lock=True)
        if user is None:
            # Unknown addresses get the same reply, 429 included: their attempts count the same.
            await otp.check_budget(conn, ctx, email, "recovery", None)
            return {}
        pkce = await pkce_flow(conn, data, user["id"], "recovery")
        await otp.send(conn, ctx, user, "recovery", redirect_to=request.query_params.get("redirect_to"),
                       pkce=pkce)
        await users.audit(conn, "user_recovery_requested", user, client_ip(request), "user")
    return {}


async def resend(request: Request) -> Any:
    ctx = ctx_of(request)
    data = await body(request)
    await limit(request, "otp", ctx.settings.auth_rate_limit_otp)
    await captcha.check(request, data)
    vtype, email = string(data, "type"), string(data, "email")
    if vtype in ("sms", "phone_change"):
        if not ctx.settings.auth_phone_enabled:
            raise errors.phone_disabled("logins")
        return await phones.resend(request, ctx, vtype, string(data, "phone"))
    if vtype not in ("signup", "email_change"):
        raise errors.validation("Missing one of these types: signup, email_change, sms, phone_change")
    if not email:
        raise errors.validation("An email address is required")
    email = normalize_email(email)
    redirect_to = request.query_params.get("redirect_to")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        if vtype == "signup":
            user = await users.by_email(conn, email, lock=True)
            if user is not None and not confirmed(user):
                await otp.send(conn, ctx, user, "confirmation", redirect_to=redirect_to)
                return {}
        else:
            user = await conn.fetchrow(
                "select * from auth.users where lower(email_change) = $1 or lower(email) = $1"
                " order by (lower(email_change) = $1) desc limit 1 for update", email)
            if user is not None and user["email_change"]:
                await otp.send(conn, ctx, user, "email_change", redirect_to=redirect_to,
                               to=user["email_change"])
                return {}
        # Nothing to resend: count the attempt anyway, so a 429 tells nothing about the address.
        await otp.check_budget(conn, ctx, email, "confirmation" if vtype == "signup" else "email_change", None)
    return {}
