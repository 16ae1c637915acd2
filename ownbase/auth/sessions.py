"""Sessions, refresh-token rotation with reuse detection, and access tokens with Supabase's claims."""

from __future__ import annotations

import ipaddress
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from ownbase.auth import errors, hooks, users
from ownbase.auth.tokens import new_refresh_token
from ownbase.context import Context


MFA_METHODS = ("totp", "mfa/phone", "mfa/webauthn")  # AMR methods that make a session aal2


def _inet(ip: str) -> str | None:
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:  # e.g. a unix-socket peer
        return None


def _amr(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    rows = sorted(rows, key=lambda r: r["updated_at"], reverse=True)  # newest first, to the microsecond
    return [{"method": r["authentication_method"], "timestamp": int(r["updated_at"].timestamp())} for r in rows]


def access_token(ctx: Context, user: asyncpg.Record, session_id: Any, amr: list[dict[str, Any]],
                 aal: str = "aal1", exp_cap: int | None = None) -> tuple[str, int]:
    claims = access_claims(ctx, user, session_id, amr, aal, exp_cap)
    return ctx.keys.sign(claims), claims["exp"]


def access_claims(ctx: Context, user: asyncpg.Record, session_id: Any, amr: list[dict[str, Any]],
                  aal: str = "aal1", exp_cap: int | None = None) -> dict[str, Any]:
    s = ctx.settings
    iat = int(time.time())
    exp = iat + s.auth_access_token_ttl
    if exp_cap is not None:
        exp = max(iat, min(exp, exp_cap))
    app_meta = users._obj(user["raw_app_meta_data"])
    claims = {
        "iss": s.issuer,
        "sub": str(user["id"]),
        "aud": s.jwt_aud,
        "exp": exp,
        "iat": iat,
        "email": user["email"] or "",
        "phone": user["phone"] or "",
        "app_metadata": app_meta,
        "user_metadata": users._obj(user["raw_user_meta_data"]),
        "role": user["role"] or "authenticated",
        "aal": aal,
        "amr": amr,
        "session_id": str(session_id),
        "is_anonymous": bool(user["is_anonymous"]),
    }
    return claims


async def _reply(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, session_id: Any,
                 refresh: str, method: str = "token_refresh") -> dict[str, Any]:
    amr = _amr(list(await conn.fetch(
        "select authentication_method, updated_at from auth.mfa_amr_claims where session_id = $1",
        session_id)))
    # aal2 exactly when a second factor was verified in this session (GoTrue's rule); refresh keeps it.
    aal = "aal2" if any(m["method"] in MFA_METHODS for m in amr) else "aal1"
    found = await users.factors(conn, user["id"])
    cap = await _low_aal_deadline(conn, ctx, session_id, aal, found)
    # The custom access token hook (if set) sees the final claims (aal, amr, capped exp) and may change
    # every claim; exp is read back from its output.
    claims = await hooks.customize_access_token(conn, ctx, user["id"],
                                                access_claims(ctx, user, session_id, amr, aal, cap), method)
    token, exp = ctx.keys.sign(claims), claims["exp"]
    user_out = users.user_json(user, await users.identities(conn, user["id"]))
    if found:  # supabase-js computes the next assurance level from session.user.factors
        user_out["factors"] = found
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": exp - int(time.time()) if cap is not None else ctx.settings.auth_access_token_ttl,
        "expires_at": exp,
        "refresh_token": refresh,
        "user": user_out,
    }


async def _low_aal_deadline(conn: asyncpg.Connection, ctx: Context, session_id: Any, aal: str,
                            factors: list[dict[str, Any]]) -> int | None:
    """GoTrue's SESSIONS_ALLOW_LOW_AAL: an aal1 session of a user who could be at aal2 lives only
    that long after it began (unix time of the end), else None."""
    limit = ctx.settings.auth_sessions_allow_low_aal
    if not limit or aal == "aal2" or not any(f["status"] == "verified" for f in factors):
        return None
    created = await conn.fetchval("select created_at from auth.sessions where id = $1", session_id)
    return int(created.timestamp()) + limit if created is not None else None


async def reissue(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, session_id: Any,
                  method: str) -> dict[str, Any]:
    """A fresh refresh token for an existing session after an MFA step-up by ``method`` (an AMR
    method such as totp, passed to the custom access token hook). The session's earlier tokens are
    deleted, not revoked: the reuse grace would otherwise let a pre-MFA token mint aal2."""
    await conn.execute("delete from auth.refresh_tokens where session_id = $1", session_id)
    new = new_refresh_token()
    await conn.execute(
        """insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,
               parent, session_id)
           values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), null, $3)""",
        new, str(user["id"]), session_id)
    return await _reply(conn, ctx, user, session_id, new, method)


async def create(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, method: str, *,
                 ip: str = "", user_agent: str = "") -> dict[str, Any]:
    """A new session for ``user`` signed in by ``method`` (password, otp, anonymous, ...)."""
    session_id = uuid.uuid4()
    await conn.execute(
        """insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)
           values ($1, $2, now(), now(), 'aal1', $3, $4::inet)""",
        session_id, user["id"], user_agent[:512] or None, _inet(ip))
    await conn.execute(
        """insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
           values ($1, now(), now(), $2, $3)""", session_id, method, uuid.uuid4())
    refresh = new_refresh_token()
    await conn.execute(
        """insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,
               parent, session_id)
           values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), null, $3)""",
        refresh, str(user["id"]), session_id)
    fresh = await conn.fetchrow(
        "update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1 returning *",
        user["id"])
    await conn.execute(
        "update auth.identities set last_sign_in_at = now() where user_id = $1", user["id"])
    assert fresh is not None
    return await _reply(conn, ctx, fresh, session_id, refresh, method)


async def refresh(conn: asyncpg.Connection, ctx: Context, token: str, ip: str) -> dict[str, Any]:
    """Rotate ``token``. Runs inside a transaction; the session row lock serialises concurrent tabs.

    A revoked token presented again within the reuse interval gets the session's current token
    (two tabs refreshing at once); after the interval it is treated as stolen and the session is
    revoked. Sign-out and reuse detection delete the session, so nothing of it refreshes again.
    """
    row = await conn.fetchrow("select * from auth.refresh_tokens where token = $1", token)
    if row is None or row["session_id"] is None:
        raise errors.refresh_not_found()
    session = await conn.fetchrow(
        "select * from auth.sessions where id = $1 for update", row["session_id"])
    if session is None:
        raise errors.refresh_no_session()
    # Re-read under the session lock: another request may just have rotated it.
    row = await conn.fetchrow("select * from auth.refresh_tokens where id = $1", row["id"])
    if row is None:
        raise errors.refresh_not_found()
    now = datetime.now(timezone.utc)
    s = ctx.settings
    if session["not_after"] is not None and session["not_after"] < now:
        raise errors.refresh_session_expired()
    if row["created_at"] is not None and row["created_at"] + timedelta(seconds=s.auth_refresh_token_ttl) < now:
        raise errors.refresh_session_expired()
    user = await conn.fetchrow("select * from auth.users where id = $1", session["user_id"])
    if user is None:
        raise errors.refresh_not_found()
    if user["banned_until"] is not None and user["banned_until"] > now:
        raise errors.AuthError(400, "user_banned", "Invalid Refresh Token: User Banned")
    low_aal = s.auth_sessions_allow_low_aal
    if low_aal and (session["aal"] or "aal1") != "aal2" and session["created_at"] is not None \
            and session["created_at"] + timedelta(seconds=low_aal) < now \
            and await conn.fetchval("select 1 from auth.mfa_factors where user_id = $1 and status = 'verified'"
                                    " limit 1", user["id"]):
        raise errors.AuthError(400, "session_expired",
                               "Invalid Refresh Token: Session Expired (Low AAL: User Needs MFA Verification)")
    if row["revoked"]:
        revoked_at = row["updated_at"] or row["created_at"]
        within = revoked_at is not None and revoked_at + timedelta(seconds=s.auth_refresh_reuse_interval) > now
        current = await conn.fetchrow(
            "select token from auth.refresh_tokens where session_id = $1 and not revoked"
            " order by id desc limit 1", session["id"])
        if within and current is not None:
            return await _reply(conn, ctx, user, session["id"], current["token"])
        # Reuse outside the window: assume theft, revoke the whole session.
        await conn.execute("delete from auth.sessions where id = $1", session["id"])
        await users.audit(conn, "token_revoked", user, ip, "token", {"reason": "refresh_token_reused"})
        raise Revoked()
    await conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1", row["id"])
    new = new_refresh_token()
    await conn.execute(
        """insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,
               parent, session_id)
           values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)""",
        new, str(user["id"]), token, session["id"])
    await conn.execute(
        "update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now() where id = $1",
        session["id"])
    await users.audit(conn, "token_refreshed", user, ip, "token")
    return await _reply(conn, ctx, user, session["id"], new)


class Revoked(Exception):
    """Signals that the session was revoked: the caller commits, then replies already_used."""


async def logout(conn: asyncpg.Connection, user_id: Any, session_id: str | None, scope: str) -> None:
    uid = users._u(user_id)
    if scope == "global":
        await conn.execute("delete from auth.sessions where user_id = $1", uid)
    elif scope == "local":
        if not session_id:
            return  # a token without a session (e.g. minted elsewhere): nothing to end
        await conn.execute("delete from auth.sessions where id = $1 and user_id = $2",
                           users._u(session_id), uid)
    else:  # others
        await conn.execute("delete from auth.sessions where user_id = $1 and id <> $2", uid,
                           users._u(session_id) if session_id else uuid.uuid4())


async def session_exists(conn: asyncpg.Connection, session_id: str) -> bool:
    if not users.is_uuid(session_id):
        return False
    return bool(await conn.fetchval("select 1 from auth.sessions where id = $1", uuid.UUID(session_id)))
