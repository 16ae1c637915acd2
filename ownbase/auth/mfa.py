"""MFA with TOTP factors, as GoTrue: POST /factors (enroll), /factors/{id}/challenge, /verify,
DELETE /factors/{id}, and the admin factor routes. Verifying a code steps the session up to aal2;
unenrolling the factor steps its sessions back down. Phone and WebAuthn factors stay disabled and
answer as GoTrue does with them off (disabled.py)."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ownbase.auth import aal, errors, sessions, totp, users
from ownbase.auth.account import current_user
from ownbase.auth.disabled import ENROLL_OFF, VERIFY_OFF
from ownbase.auth.web import admin_target_user_id, body, client_ip, ctx_of, string, user_caller
from ownbase.context import Context

AMR_OF = {"totp": "totp", "phone": "mfa/phone", "webauthn": "mfa/webauthn"}
MAX_NAME = 255  # longer friendly names would only bloat rows

# --- the mfa_verification_attempt hook's call site ------------------------------------------------
# Supabase's MFA verification attempt hook: called after every code check with
# {"user_id", "factor_id", "factor_type", "valid"}; answering {"decision": "reject", "message": ...}
# signs the user out everywhere and refuses the attempt. ownbase's hooks module installs the real
# hook with set_verification_attempt_hook(); the default lets every attempt through.
AttemptHook = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any] | None]]


async def _no_hook(ctx: Context, payload: dict[str, Any]) -> dict[str, Any] | None:
    return None


_attempt_hook: AttemptHook = _no_hook


def set_verification_attempt_hook(hook: AttemptHook | None) -> None:
    global _attempt_hook
    _attempt_hook = hook or _no_hook


async def verification_attempt(ctx: Context, payload: dict[str, Any]) -> str | None:
    """The rejection message when the hook rejects the attempt, else None."""
    answer = await _attempt_hook(ctx, payload) or {}
    if answer.get("decision") != "reject":
        return None
    return str(answer.get("message") or "Further MFA verification attempts will be rejected.")


# --- helpers -------------------------------------------------------------------------------------

async def _limit(request: Request, kind: str) -> None:
    """GoTrue's MFA limiter: N per minute per IP with a burst of 2N, one bucket per route."""
    ctx = ctx_of(request)
    per_minute = ctx.settings.auth_rate_limit_mfa
    decision = await ctx.limiter.hit(f"auth:mfa_{kind}:{client_ip(request)}", 2 * per_minute, 120)
    if not decision.allowed:
        raise errors.rate_limited(decision.retry_after)


async def _caller(request: Request, conn: asyncpg.Connection) -> tuple[asyncpg.Record, Any, str]:
    """The signed-in, non-anonymous user, their session id (or None) and that session's aal."""
    auth = user_caller(request)
    user = await current_user(conn, auth.claims, lock=True)
    if auth.claims.get("is_anonymous") is True:
        raise errors.AuthError(403, "no_authorization", "Anonymous user not allowed to perform these actions")
    sid = auth.claims.get("session_id")
    if not isinstance(sid, str) or not users.is_uuid(sid):
        return user, None, "aal1"
    return user, uuid.UUID(sid), await aal.session_aal(conn, auth.claims)


async def _factor(conn: asyncpg.Connection, request: Request, user_id: Any, *, lock: bool = False) -> asyncpg.Record:
    factor_id = request.path_params["factor_id"]
    if not users.is_uuid(factor_id):
        raise errors.validation("factor_id must be an UUID", 404)
    row = await conn.fetchrow("select * from auth.mfa_factors where id = $1 and user_id = $2"
                              + (" for update" if lock else ""), uuid.UUID(factor_id), user_id)
    if row is None:
        raise errors.AuthError(404, "mfa_factor_not_found", "Factor not found")
    return row


def _challenge_expiry(ctx: Context) -> int:
    return max(300, ctx.settings.auth_mfa_challenge_expiry)  # GoTrue raises lower values to 300


def _ip(request: Request) -> str:
    """The caller's address as PostgreSQL's inet prints it (a unix-socket peer has none)."""
    try:
        return str(ipaddress.ip_address(client_ip(request)))
    except ValueError:
        return "0.0.0.0"


async def _step_down(conn: asyncpg.Connection, factor: asyncpg.Record) -> None:
    """Sessions that reached aal2 with ``factor`` lose that method and fall back to aal1."""
    sids = [r["id"] for r in await conn.fetch("select id from auth.sessions where factor_id = $1", factor["id"])]
    if not sids:
        return
    await conn.execute("delete from auth.mfa_amr_claims where session_id = any($1::uuid[])"
                       " and authentication_method = $2", sids, AMR_OF.get(factor["factor_type"], "totp"))
    await conn.execute("update auth.sessions set aal = 'aal1', factor_id = null, updated_at = now()"
                       " where id = any($1::uuid[])", sids)


# --- user routes ---------------------------------------------------------------------------------

async def enroll(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user, _, level = await _caller(request, conn)
        data = await body(request)
        ftype = string(data, "factor_type")
        if ftype not in ENROLL_OFF:
            raise errors.validation("factor_type needs to be totp, phone, or webauthn")
        if ftype != "totp" or not s.auth_mfa_totp_enroll_enabled:
            raise errors.AuthError(422, *ENROLL_OFF[ftype])
        name = string(data, "friendly_name")
        if len(name) > MAX_NAME:
            raise errors.validation(f"friendly_name must be {MAX_NAME} characters or less")
        issuer = string(data, "issuer") or totp.default_issuer(s.site_url)
        if len(issuer) > MAX_NAME:
            raise errors.validation(f"issuer must be {MAX_NAME} characters or less")
        await conn.execute(
            """delete from auth.mfa_factors f where f.user_id = $1 and f.status = 'unverified'
                 and f.created_at < now() - make_interval(secs => $2)
                 and not exists (select 1 from auth.mfa_challenges c where c.factor_id = f.id)""",
            user["id"], float(max(300, s.auth_mfa_factor_expiry)))
        counts = await conn.fetchrow(
            """select count(*) as total, count(*) filter (where status = 'verified') as verified,
                      count(*) filter (where coalesce(friendly_name, '') = $2) as same_name
               from auth.mfa_factors where user_id = $1""", user["id"], name)
        if counts["same_name"]:
            raise errors.AuthError(422, "mfa_factor_name_conflict",
                                   f'A factor with the friendly name "{name}" for this user already exists')
        if counts["total"] >= s.auth_mfa_max_enrolled_factors or counts["verified"] >= s.auth_mfa_max_verified_factors:
            raise errors.AuthError(422, "too_many_enrolled_mfa_factors",
                                   "Maximum number of verified factors reached, unenroll to continue")
        if counts["verified"] and level != "aal2":
            raise errors.AuthError(403, "insufficient_aal", "AAL2 required to enroll a new factor")
        secret = totp.new_secret()
        link = totp.uri(secret, user["email"] or "", issuer)
        try:
            qr_code = await asyncio.to_thread(totp.qr_svg, link)  # up to a few hundred ms for long URIs
        except totp.TooLong:
            raise errors.validation("issuer is too long for a QR code") from None
        factor_id = uuid.uuid4()
        await conn.execute(
            """insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at,
                   updated_at, secret) values ($1, $2, $3, 'totp', 'unverified', now(), now(), $4)""",
            factor_id, user["id"], name or None, secret)
        await users.audit(conn, "factor_in_progress", user, client_ip(request), "factor",
                          {"factor_id": str(factor_id), "factor_type": "totp"})
    return {"id": str(factor_id), "type": "totp", "friendly_name": name,
            "totp": {"qr_code": qr_code, "secret": secret, "uri": link}}


async def challenge(request: Request) -> Any:
    ctx = ctx_of(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user, _, _ = await _caller(request, conn)
        await _limit(request, "challenge")
        factor = await _factor(conn, request, user["id"], lock=True)
        _check_verify_enabled(ctx, factor)
        challenge_id = uuid.uuid4()
        created = await conn.fetchval(
            """insert into auth.mfa_challenges (id, factor_id, created_at, ip_address)
               values ($1, $2, now(), $3::inet) returning created_at""", challenge_id, factor["id"], _ip(request))
        # clock_timestamp: Supabase keeps last_challenged_at unique across all factors.
        await conn.execute("update auth.mfa_factors set last_challenged_at = clock_timestamp(), updated_at = now()"
                           " where id = $1", factor["id"])
    expires = int(created.timestamp()) + _challenge_expiry(ctx)
    return {"id": str(challenge_id), "type": factor["factor_type"], "expires_at": expires}


def _check_verify_enabled(ctx: Context, factor: asyncpg.Record) -> None:
    ftype = factor["factor_type"]
    if ftype != "totp" or not ctx.settings.auth_mfa_totp_verify_enabled:
        raise errors.AuthError(422, *VERIFY_OFF.get(ftype, VERIFY_OFF["totp"]))


async def verify(request: Request) -> Any:
    ctx = ctx_of(request)
    ip = client_ip(request)
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            user, sid, _ = await _caller(request, conn)
            await _limit(request, "verify")
            data = await body(request)
            factor = await _factor(conn, request, user["id"], lock=True)
            outcome = await _verify_in_tx(conn, ctx, request, data, user, sid, factor)
            if not isinstance(outcome, errors.AuthError):
                await users.audit(conn, "mfa_code_login", user, ip, "factor", {"factor_id": str(factor["id"])})
                return outcome
        # Failures whose side effects must stay (expired challenge removed, sessions ended by the hook)
        # are committed above and raised here.
        raise outcome


async def _verify_in_tx(conn: asyncpg.Connection, ctx: Context, request: Request, data: dict[str, Any],
                        user: asyncpg.Record, sid: Any, factor: asyncpg.Record) -> dict[str, Any] | errors.AuthError:
    raw_id = data.get("challenge_id")
    if not isinstance(raw_id, str) or not users.is_uuid(raw_id):
        raise errors.bad_json("challenge_id must be a UUID")
    code = string(data, "code")
    if not code:
        raise errors.validation("Code needs to be non-empty")
    _check_verify_enabled(ctx, factor)
    if sid is None:
        raise errors.session_not_found()
    row = await conn.fetchrow("select * from auth.mfa_challenges where id = $1 and factor_id = $2 for update",
                              uuid.UUID(raw_id), factor["id"])
    if row is None:
        raise errors.AuthError(422, "mfa_factor_not_found", "MFA factor with the provided challenge ID not found")
    if row["verified_at"] is not None or str(row["ip_address"]) != _ip(request):
        raise errors.AuthError(422, "mfa_ip_address_mismatch", "Challenge and verify IP addresses mismatch.")
    if row["created_at"] + timedelta(seconds=_challenge_expiry(ctx)) < datetime.now(timezone.utc):
        await conn.execute("delete from auth.mfa_challenges where id = $1", row["id"])
        return errors.AuthError(422, "mfa_challenge_expired",
                                f"MFA challenge {row['id']} has expired, verify against another challenge"
                                " or create a new challenge.")
    step = totp.matching_step(factor["secret"] or "", code)
    last = await conn.fetchval("select last_step from ownbase.auth_totp_steps where factor_id = $1", factor["id"])
    valid = step is not None and (last is None or step > last)  # a code already used never works again
    rejected = await verification_attempt(ctx, {"user_id": str(user["id"]), "factor_id": str(factor["id"]),
                                                "factor_type": factor["factor_type"], "valid": valid})
    if rejected is not None:
        await conn.execute("delete from auth.sessions where user_id = $1", user["id"])
        return errors.AuthError(403, "mfa_verification_rejected", rejected)
    if not valid:
        raise errors.AuthError(422, "mfa_verification_failed", "Invalid TOTP code entered")
    await conn.execute(
        """insert into ownbase.auth_totp_steps (factor_id, last_step) values ($1, $2)
           on conflict (factor_id) do update set last_step = excluded.last_step""", factor["id"], step)
    await conn.execute("update auth.mfa_challenges set verified_at = now() where id = $1", row["id"])
    await conn.execute("update auth.mfa_factors set status = 'verified', updated_at = now() where id = $1",
                       factor["id"])
    await conn.execute(
        """insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
           values ($1, now(), now(), 'totp', $2)
           on conflict (session_id, authentication_method) do update set updated_at = now()""",
        sid, uuid.uuid4())
    await conn.execute("update auth.sessions set aal = 'aal2', factor_id = $2, updated_at = now() where id = $1",
                       sid, factor["id"])
    # Like GoTrue: other sessions below aal2 end, and abandoned enrolments of the same type go.
    await conn.execute("delete from auth.sessions where user_id = $1 and id <> $2"
                       " and coalesce(aal, 'aal1') <> 'aal2'", user["id"], sid)
    await conn.execute("delete from auth.mfa_factors where user_id = $1 and id <> $2 and status = 'unverified'"
                       " and factor_type = $3", user["id"], factor["id"], factor["factor_type"])
    return await sessions.reissue(conn, ctx, user, sid, AMR_OF[factor["factor_type"]])


async def unenroll(request: Request) -> Any:
    ctx = ctx_of(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user, _, level = await _caller(request, conn)
        factor = await _factor(conn, request, user["id"], lock=True)
        if factor["status"] == "verified" and level != "aal2":
            raise errors.AuthError(422, "insufficient_aal", "AAL2 required to unenroll verified factor")
        await _step_down(conn, factor)
        await conn.execute("delete from auth.mfa_factors where id = $1", factor["id"])
        await users.audit(conn, "factor_deleted", user, client_ip(request), "factor",
                          {"factor_id": str(factor["id"])})
    return {"id": str(factor["id"])}


# --- admin routes --------------------------------------------------------------------------------

async def admin_factors(request: Request) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn:
        user_id = await admin_target_user_id(conn, request)
        return JSONResponse(await users.factors(conn, user_id))


async def admin_factor(request: Request) -> Any:
    async with ctx_of(request).db.owner.acquire() as conn, conn.transaction():
        user_id = await admin_target_user_id(conn, request)
        factor = await _factor(conn, request, user_id, lock=True)
        if request.method == "DELETE":
            await _step_down(conn, factor)
            await conn.execute("delete from auth.mfa_factors where id = $1", factor["id"])
            return users.factor_json(factor)
        data = await body(request)
        name = string(data, "friendly_name") or factor["friendly_name"]
        if name and len(name) > MAX_NAME:
            raise errors.validation(f"friendly_name must be {MAX_NAME} characters or less")
        row = await conn.fetchrow("update auth.mfa_factors set friendly_name = $2, updated_at = now()"
                                  " where id = $1 returning *", factor["id"], name)
        return users.factor_json(row)
