"""User-facing GoTrue endpoints: sign-up, tokens, OTP/links, verification, the user, sign-out.

Each function takes the Starlette request and returns a JSON-able value (or a Response); routes.py
wraps them so any ``AuthError`` is rendered in GoTrue's shape.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus, urlencode

import asyncpg
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ownbase.auth import errors, otp, sessions, users
from ownbase.auth.passwords import MAX_PASSWORD_BYTES, hash_password, verify_password
from ownbase.auth.tokens import pkce_challenge_ok
from ownbase.auth.web import body, client_ip, ctx_of, limit, obj, string, user_caller
from ownbase.context import Context

VERIFY_TYPES = {
    "signup": ("confirmation_token",),
    "invite": ("confirmation_token",),
    "magiclink": ("recovery_token",),
    "recovery": ("recovery_token",),
    "email": ("confirmation_token", "recovery_token"),
    "email_change": ("email_change_token_new", "email_change_token_current"),
}
SECURE_CHANGE_MESSAGE = "Confirmation link accepted. Please proceed to confirm link sent to the other email"


def check_password(ctx: Context, password: str) -> None:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise errors.validation("Password cannot be longer than 72 characters")
    if len(password) < ctx.settings.auth_password_min_length:
        raise errors.weak_password(ctx.settings.auth_password_min_length)


def _email(value: str) -> str:
    if not users.valid_email(value):
        raise errors.validation("Unable to validate email address: invalid format")
    return value.lower()


def _confirmed(user: asyncpg.Record) -> bool:
    return user["email_confirmed_at"] is not None


def _banned(user: asyncpg.Record) -> bool:
    until = user["banned_until"]
    return until is not None and until > datetime.now(timezone.utc)


def _ua(request: Request) -> str:
    return request.headers.get("user-agent", "")


async def _pkce_flow(conn: asyncpg.Connection, data: dict[str, Any], user_id: Any, method: str) -> bool:
    """Record PKCE flow state when the client sent a code challenge (supabase-py's default)."""
    challenge = data.get("code_challenge")
    if not isinstance(challenge, str) or not challenge:
        return False
    if not 43 <= len(challenge) <= 128:
        raise errors.validation("code challenge has to be between 43 and 128 characters")
    cmethod = str(data.get("code_challenge_method") or "plain").lower()
    if cmethod not in ("s256", "plain"):
        raise errors.validation("Code challenge method not supported")
    await conn.execute("delete from auth.flow_state where user_id = $1 and authentication_method = $2",
                       user_id, method)
    await conn.execute(
        """insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,
               provider_type, created_at, updated_at, authentication_method)
           values ($1, $2, $3, $4, $5, 'email', now(), now(), $6)""",
        uuid.uuid4(), user_id, str(uuid.uuid4()), cmethod, challenge, method)
    return True


# --- sign-up -------------------------------------------------------------------------------
async def signup(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    data = await body(request)
    email, phone, password = string(data, "email"), string(data, "phone"), string(data, "password")
    meta = obj(data, "data")
    ip = client_ip(request)
    if not email and not phone:
        if not s.auth_anonymous_signins:
            raise errors.anonymous_disabled()
        await limit(request, "anonymous", s.auth_rate_limit_signup)
        async with ctx.db.owner.acquire() as conn, conn.transaction():
            user = await users.create(conn, email=None, password_hash=None, user_metadata=meta,
                                      confirmed=False, is_anonymous=True)
            await users.audit(conn, "user_signedup", user, ip, "team", {"provider": "anonymous"})
            return await sessions.create(conn, ctx, user, "anonymous", ip=ip, user_agent=_ua(request))
    if s.auth_disable_signup:
        raise errors.signup_disabled()
    if email and phone:
        raise errors.validation("Only an email address or phone number should be provided on signup.")
    if phone:
        raise errors.phone_disabled("signups")
    await limit(request, "signup", s.auth_rate_limit_signup)
    email = _email(email)
    if not password:
        raise errors.validation("Signup requires a valid password")
    check_password(ctx, password)
    # Hash before looking the address up, so known and unknown addresses cost the same time.
    hashed = await hash_password(password, s.auth_bcrypt_cost)
    redirect_to = request.query_params.get("redirect_to")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        existing = await users.by_email(conn, email, lock=True)
        if existing is not None:
            if _confirmed(existing):
                if s.auth_autoconfirm:
                    raise errors.user_already_exists()
                await users.audit(conn, "user_repeated_signup", existing, ip, "user")
                return _fake_user(email)
            # Unconfirmed: send the confirmation again, reply as for a new sign-up.
            pkce = await _pkce_flow(conn, data, existing["id"], "email/signup")
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
            return await sessions.create(conn, ctx, user, "password", ip=ip, user_agent=_ua(request))
        pkce = await _pkce_flow(conn, data, user["id"], "email/signup")
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


# --- /token ----------------------------------------------------------------------------------
async def token(request: Request) -> Any:
    grant = request.query_params.get("grant_type", "")
    if grant == "password":
        return await _password_grant(request)
    if grant == "refresh_token":
        return await _refresh_grant(request)
    if grant == "pkce":
        return await _pkce_grant(request)
    raise errors.AuthError(400, "invalid_credentials", "unsupported_grant_type")


async def _password_grant(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    data = await body(request)
    await limit(request, "token", s.auth_rate_limit_token)
    email, phone, password = string(data, "email"), string(data, "phone"), string(data, "password")
    if email and phone:
        raise errors.validation("Only an email address or phone number should be provided on login.")
    if phone:
        raise errors.phone_disabled("logins")
    if not email:
        raise errors.validation("missing email or phone")
    async with ctx.db.owner.acquire() as conn:
        user = await users.by_email(conn, email)
    ok = await verify_password(password, user["encrypted_password"] if user is not None else None,
                               s.auth_bcrypt_cost)
    if not ok or user is None:
        raise errors.invalid_credentials()
    if not _confirmed(user) and not s.auth_autoconfirm:
        raise errors.email_not_confirmed()
    if _banned(user):
        raise errors.user_banned()
    ip = client_ip(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        reply = await sessions.create(conn, ctx, user, "password", ip=ip, user_agent=_ua(request))
        await users.audit(conn, "login", user, ip, "account", {"provider": "email"})
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
        return await sessions.create(conn, ctx, user, flow["authentication_method"],
                                     ip=client_ip(request), user_agent=_ua(request))


# --- OTP, magic links, recovery, resend --------------------------------------------------------
async def otp_route(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    data = await body(request)
    await limit(request, "otp", s.auth_rate_limit_otp)
    email, phone = string(data, "email"), string(data, "phone")
    if phone and not email:
        raise errors.phone_disabled("logins")
    if not email:
        raise errors.validation("An email address is required")
    email = _email(email)
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
        if _confirmed(user):
            pkce = await _pkce_flow(conn, data, user["id"], "magiclink")
            await otp.send(conn, ctx, user, "magiclink", redirect_to=redirect_to, pkce=pkce)
        else:
            pkce = await _pkce_flow(conn, data, user["id"], "email/signup")
            await otp.send(conn, ctx, user, "confirmation", redirect_to=redirect_to, pkce=pkce)
    return {}


async def recover(request: Request) -> Any:
    ctx = ctx_of(request)
    data = await body(request)
    await limit(request, "otp", ctx.settings.auth_rate_limit_otp)
    email = string(data, "email")
    if not email:
        raise errors.validation("Password recovery requires an email")
    email = _email(email)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_email(conn, email, lock=True)
        if user is not None:  # unknown addresses get the same empty reply: no enumeration
            pkce = await _pkce_flow(conn, data, user["id"], "recovery")
            await otp.send(conn, ctx, user, "recovery", redirect_to=request.query_params.get("redirect_to"),
                           pkce=pkce)
            await users.audit(conn, "user_recovery_requested", user, client_ip(request), "user")
    return {}


async def resend(request: Request) -> Any:
    ctx = ctx_of(request)
    data = await body(request)
    await limit(request, "otp", ctx.settings.auth_rate_limit_otp)
    vtype, email = string(data, "type"), string(data, "email")
    if vtype in ("sms", "phone_change"):
        raise errors.phone_disabled("logins")
    if vtype not in ("signup", "email_change"):
        raise errors.validation("Missing one of these types: signup, email_change, sms, phone_change")
    if not email:
        raise errors.validation("An email address is required")
    email = _email(email)
    redirect_to = request.query_params.get("redirect_to")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        if vtype == "signup":
            user = await users.by_email(conn, email, lock=True)
            if user is not None and not _confirmed(user):
                await otp.send(conn, ctx, user, "confirmation", redirect_to=redirect_to)
        else:
            user = await conn.fetchrow(
                "select * from auth.users where lower(email_change) = $1 or lower(email) = $1"
                " order by (lower(email_change) = $1) desc limit 1 for update", email)
            if user is not None and user["email_change"]:
                await otp.send(conn, ctx, user, "email_change", redirect_to=redirect_to,
                               to=user["email_change"])
    return {}


# --- verification ------------------------------------------------------------------------------
async def _apply_verification(conn: asyncpg.Connection, ctx: Context, row: asyncpg.Record,
                              ip: str) -> tuple[asyncpg.Record, str | None]:
    """Apply a consumed token to its user. Returns (user, message) — message for a half-done
    secure email change."""
    user = await users.by_id(conn, str(row["user_id"]), lock=True)
    if user is None:
        raise errors.otp_expired()
    kind = row["token_type"]
    if kind == "confirmation_token" or kind == "recovery_token":
        if not _confirmed(user):
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
    if string(data, "phone") and not email:
        raise errors.phone_disabled("logins")
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
        return await sessions.create(conn, ctx, user, "otp", ip=ip, user_agent=_ua(request))


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
            session = await sessions.create(conn, ctx, user, "otp", ip=ip, user_agent=_ua(request))
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


# --- the signed-in user ------------------------------------------------------------------------
async def _current(conn: asyncpg.Connection, claims: dict[str, Any], *, lock: bool = False) -> asyncpg.Record:
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
        user = await _current(conn, auth.claims)
        return users.user_json(user, await users.identities(conn, user["id"]))


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
    if string(data, "phone"):
        raise errors.phone_disabled("logins")
    ip = client_ip(request)
    redirect_to = request.query_params.get("redirect_to")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await _current(conn, auth.claims, lock=True)
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
                row = await otp.consume(conn, ctx, ("reauthentication_token",),
                                        email=user["email"] or "", code=nonce)
                if row is None or row["user_id"] != user["id"]:
                    raise errors.reauthentication_not_valid()
            await users.set_password(conn, user["id"], await hash_password(password, s.auth_bcrypt_cost))
            await users.audit(conn, "user_updated_password", user, ip, "user")
        if email and email.lower() != (user["email"] or ""):
            new = _email(email)
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
        await users.audit(conn, "user_modified", user, ip, "user")
        fresh = await users.by_id(conn, str(user["id"]))
        assert fresh is not None
        return users.user_json(fresh, await users.identities(conn, fresh["id"]))


async def reauthenticate(request: Request) -> Any:
    ctx = ctx_of(request)
    auth = user_caller(request)
    await limit(request, "otp", ctx.settings.auth_rate_limit_otp)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await _current(conn, auth.claims, lock=True)
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
