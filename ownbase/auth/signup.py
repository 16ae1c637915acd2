"""POST /signup: email + password sign-up (with or without confirmation) and anonymous sign-in."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg
from starlette.requests import Request

from ownbase.auth import captcha, errors, otp, sessions, users
from ownbase.auth import phone as phones
from ownbase.auth.passwords import hash_password
from ownbase.auth.rules import check_password, confirmed, normalize_email, pkce_flow, user_agent
from ownbase.auth.web import body, client_ip, ctx_of, limit, obj, string


async def signup(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    data = await body(request)
    email, phone, password = string(data, "email"), string(data, "phone"), string(data, "password")
    meta = obj(data, "data")
    ip = client_ip(request)
    await captcha.check(request, data)
    if not email and not phone:
        if not s.auth_anonymous_signins:
            raise errors.anonymous_disabled()
        await limit(request, "anonymous", s.auth_rate_limit_signup)
        async with ctx.db.owner.acquire() as conn, conn.transaction():
            user = await users.create(conn, email=None, password_hash=None, user_metadata=meta,
                                      confirmed=False, is_anonymous=True)
            await users.audit(conn, "user_signedup", user, ip, "team", {"provider": "anonymous"})
            return await sessions.create(conn, ctx, user, "anonymous", ip=ip, user_agent=user_agent(request))
    if s.auth_disable_signup:
        raise errors.signup_disabled()
    await limit(request, "signup", s.auth_rate_limit_signup)
    # GoTrue's order: password, strength, one address only, then the provider, then the address.
    if not password:
        raise errors.validation("Signup requires a valid password")
    check_password(ctx, password)
    if email and phone:
        raise errors.validation("Only an email address or phone number should be provided on signup.")
    if phone:
        if not s.auth_phone_enabled:
            raise errors.phone_disabled("signups")
        return await phones.signup(request, ctx, data, phone, password, meta)
    email = normalize_email(email)
    # Hash before looking the address up, so known and unknown addresses cost the same time.
    hashed = await hash_password(password, s.auth_bcrypt_cost)
    redirect_to = request.query_params.get("redirect_to")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        existing = await users.by_email(conn, email, lock=True)
        if existing is not None:
            if confirmed(existing):
                if s.auth_autoconfirm:
                    raise errors.user_already_exists()
                await users.audit(conn, "user_repeated_signup", existing, ip, "user")
                # No mail goes out, but the attempt counts as one: repeating the sign-up of a new
                # address ends in 429, so this one must too.
                await otp.check_budget(conn, ctx, email, "confirmation", None)
                return _fake_user(email)
            # Unconfirmed: send the confirmation again, reply as for a new sign-up.
            pkce = await pkce_flow(conn, data, existing["id"], "email/signup")
            await otp.send(conn, ctx, existing, "confirmation", redirect_to=redirect_to, pkce=pkce)
            fresh = await users.by_id(conn, str(existing["id"]))
            assert fresh is not None
            return users.user_json(fresh, await users.identities(conn, fresh["id"]))
        try:
            user = await users.create(conn, email=email, password_hash=hashed, user_metadata=meta,
                                      confirmed=s.auth_autoconfirm)
        except asyncpg.UniqueViolationError:
            raise errors.user_already_exists() from None
        await users.audit(conn, "user_signedup", user, ip, "team", {"provider": "email"})
        if s.auth_autoconfirm:
            await users.audit(conn, "login", user, ip, "account", {"provider": "email"})
            return await sessions.create(conn, ctx, user, "password", ip=ip, user_agent=user_agent(request))
        pkce = await pkce_flow(conn, data, user["id"], "email/signup")
        await otp.send(conn, ctx, user, "confirmation", redirect_to=redirect_to, pkce=pkce)
        await users.audit(conn, "user_confirmation_requested", user, ip, "user")
        fresh = await users.by_id(conn, str(user["id"]))
        assert fresh is not None
        return users.user_json(fresh, await users.identities(conn, user["id"]))


def _fake_user(email: str) -> dict[str, Any]:
    """What GoTrue answers for a confirmed address when confirmations are on: no enumeration."""
    now = users.ts(datetime.now(timezone.utc))
    return {
        "id": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated", "email": email,
        "phone": "", "confirmation_sent_at": now,
        "app_metadata": {"provider": "email", "providers": ["email"]}, "user_metadata": {},
        "identities": [], "created_at": now, "updated_at": now, "is_anonymous": False,
    }
