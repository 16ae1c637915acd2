"""First-factor passkeys under /auth/v1/passkeys, as supabase-js calls them (auth.experimental.passkey):
registration and sign-in ceremonies, listing, renaming and removing a user's passkeys, and the
admin list/delete. Off unless OWNBASE_AUTH_PASSKEY_ENABLED; then every /passkeys route answers
GoTrue's passkey_disabled before anything else (the admin routes are not gated, as in GoTrue)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ownbase.auth import aal, ceremony, errors, sessions, users
from ownbase.auth.account import current_user
from ownbase.auth.rules import banned, confirmed, user_agent
from ownbase.auth.web import admin_target_user_id, body, client_ip, ctx_of, limit, string, user_caller

MAX_NAME = 120
Handler = Callable[[Request], Awaitable[Any]]


def disabled_error() -> errors.AuthError:
    return errors.AuthError(404, "passkey_disabled", "Passkeys are disabled")


def gated(handler: Handler) -> Handler:
    """GoTrue checks the feature switch before authentication, limits and the body."""
    async def endpoint(request: Request) -> Any:
        if not ctx_of(request).settings.auth_passkey_enabled:
            raise disabled_error()
        return await handler(request)

    return endpoint


def _failed(exc: ceremony.CeremonyError) -> errors.AuthError:
    return errors.AuthError(400, "webauthn_verification_failed",
                            "Invalid credential response" if exc.parse else "Credential verification failed")


def item_json(row: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(row["id"])}
    if row["friendly_name"]:
        out["friendly_name"] = row["friendly_name"]
    out["created_at"] = users.ts(row["created_at"])
    if row["last_used_at"] is not None:
        out["last_used_at"] = users.ts(row["last_used_at"])
    return out


async def _caller(conn: asyncpg.Connection, request: Request) -> tuple[asyncpg.Record, dict[str, Any]]:
    auth = user_caller(request)
    user = await current_user(conn, auth.claims, lock=True)
    return user, auth.claims


def _not_anonymous(claims: dict[str, Any]) -> None:
    if claims.get("is_anonymous") is True:
        raise errors.AuthError(403, "no_authorization", "Anonymous user not allowed to perform these actions")


async def _require_aal2_if_mfa(conn: asyncpg.Connection, user: asyncpg.Record, claims: dict[str, Any]) -> None:
    """Users with a verified MFA factor manage passkeys only from an aal2 session."""
    if await aal.below_reachable(conn, user["id"], claims):
        raise errors.AuthError(403, "insufficient_aal",
                               "AAL2 session is required to manage passkeys when MFA is enabled")


def _ceremony_input(data: dict[str, Any]) -> tuple[uuid.UUID, dict[str, Any]]:
    raw = data.get("challenge_id")
    if raw is None or raw == "":
        raise errors.validation("challenge_id is required")
    if not isinstance(raw, str) or not users.is_uuid(raw):
        raise errors.validation("challenge_id must be a valid UUID")
    credential = data.get("credential")
    if credential is None:
        raise errors.validation("credential is required")
    if not isinstance(credential, dict):
        raise errors.AuthError(400, "webauthn_verification_failed", "Invalid credential response")
    return uuid.UUID(raw), credential


async def _consume(conn: asyncpg.Connection, challenge_id: uuid.UUID, kind: str, user_id: Any = None) -> bytes:
    """Take the challenge (one use, typed; registration ones bound to their user)."""
    row = await conn.fetchrow(
        """delete from auth.webauthn_challenges where id = $1 and challenge_type = $2
             and user_id is not distinct from $3 returning *""", challenge_id, kind, user_id)
    if row is None:
        raise errors.AuthError(400, "webauthn_challenge_not_found", "Challenge not found or already used")
    if row["expires_at"] < datetime.now(timezone.utc):
        raise errors.AuthError(400, "webauthn_challenge_expired", "Challenge has expired")
    data = users._obj(row["session_data"])
    return ceremony.unb64(str(data.get("challenge", "")))


async def _store_challenge(conn: asyncpg.Connection, request: Request, kind: str, challenge: bytes,
                           user_id: Any = None) -> tuple[uuid.UUID, int]:
    expiry = ctx_of(request).settings.auth_webauthn_challenge_expiry
    # Expired challenges are swept here, so unanswered ceremonies cannot pile up.
    await conn.execute("delete from auth.webauthn_challenges where expires_at < now()")
    challenge_id = uuid.uuid4()
    expires = await conn.fetchval(
        """insert into auth.webauthn_challenges (id, user_id, challenge_type, session_data, created_at, expires_at)
           values ($1, $2, $3, $4::jsonb, now(), now() + make_interval(secs => $5)) returning expires_at""",
        challenge_id, user_id, kind, json.dumps({"challenge": ceremony.b64(challenge)}), float(expiry))
    return challenge_id, int(expires.timestamp())


# --- registration --------------------------------------------------------------------------------

async def registration_options(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user, claims = await _caller(conn, request)
        _not_anonymous(claims)
        await body(request)
        if user["is_sso_user"]:
            raise errors.validation("SSO users cannot register passkeys", 422)
        await _require_aal2_if_mfa(conn, user, claims)
        existing = [r["credential_id"] for r in await conn.fetch(
            "select credential_id from auth.webauthn_credentials where user_id = $1", user["id"])]
        if len(existing) >= s.auth_passkey_max_per_user:
            raise errors.AuthError(422, "too_many_passkeys", "Maximum number of passkeys reached")
        name = user["email"] or user["phone"] or str(user["id"])
        meta = users._obj(user["raw_user_meta_data"])
        display = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else name
        options, challenge = ceremony.registration_options(
            ceremony.relying_party(s), user_handle=str(user["id"]).encode(), name=name, display_name=display,
            exclude=[bytes(c) for c in existing], timeout_ms=s.auth_webauthn_challenge_expiry * 1000)
        challenge_id, expires = await _store_challenge(conn, request, "registration", challenge, user["id"])
    return {"challenge_id": str(challenge_id), "options": options, "expires_at": expires}


async def registration_verify(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            user, claims = await _caller(conn, request)
            _not_anonymous(claims)
            challenge_id, credential = _ceremony_input(await body(request))
            await _require_aal2_if_mfa(conn, user, claims)
            try:
                challenge = await _consume(conn, challenge_id, "registration", user["id"])
            except errors.AuthError as err:
                failure: errors.AuthError | None = err
            else:
                failure = None
        if failure is not None:  # raised after commit: an expired challenge is gone for good
            raise failure
        try:
            parsed = ceremony.parse_registration(credential)
            new = ceremony.verify_registration(ceremony.relying_party(s), parsed, challenge)
        except ceremony.CeremonyError as exc:
            raise _failed(exc) from None
        async with conn.transaction():
            await current_user(conn, claims, lock=True)
            if await conn.fetchval("select 1 from auth.webauthn_credentials where credential_id = $1",
                                   new.credential_id):
                raise errors.AuthError(422, "webauthn_credential_exists", "This credential is already registered")
            count = await conn.fetchval("select count(*) from auth.webauthn_credentials where user_id = $1",
                                        user["id"])
            if count >= s.auth_passkey_max_per_user:
                raise errors.AuthError(422, "too_many_passkeys", "Maximum number of passkeys reached")
            row = await conn.fetchrow(
                """insert into auth.webauthn_credentials (id, user_id, credential_id, public_key, attestation_type,
                       aaguid, sign_count, transports, backup_eligible, backed_up, friendly_name)
                   values ($1, $2, $3, $4, $5, $6::uuid, $7, $8::jsonb, $9, $10, $11) returning *""",
                uuid.uuid4(), user["id"], new.credential_id, new.public_key, new.attestation_type,
                new.aaguid, new.sign_count, json.dumps(new.transports), new.backup_eligible,
                new.backed_up, ceremony.KNOWN_AAGUIDS.get(new.aaguid, "Passkey"))
            await users.audit(conn, "passkey_registered", user, client_ip(request), "user",
                              {"passkey_id": str(row["id"])})
    return {"id": str(row["id"]), "friendly_name": row["friendly_name"], "created_at": users.ts(row["created_at"])}


# --- sign-in -------------------------------------------------------------------------------------

async def authentication_options(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    await body(request)
    await limit(request, "passkey", s.auth_rate_limit_passkey)
    options, challenge = ceremony.authentication_options(ceremony.relying_party(s),
                                                         timeout_ms=s.auth_webauthn_challenge_expiry * 1000)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        challenge_id, expires = await _store_challenge(conn, request, "authentication", challenge)
    return {"challenge_id": str(challenge_id), "options": options, "expires_at": expires}


async def authentication_verify(request: Request) -> Any:
    ctx = ctx_of(request)
    s = ctx.settings
    challenge_id, credential = _ceremony_input(await body(request))
    try:
        parsed = ceremony.parse_assertion(credential)
    except ceremony.CeremonyError as exc:
        raise _failed(exc) from None
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            try:
                challenge = await _consume(conn, challenge_id, "authentication")
            except errors.AuthError as err:
                failure: errors.AuthError | None = err
            else:
                failure = None
        if failure is not None:
            raise failure
        async with conn.transaction():
            row = await conn.fetchrow("select * from auth.webauthn_credentials where credential_id = $1 for update",
                                      parsed.raw_id)
            handle = parsed.response.user_handle
            if row is None or (handle is not None and handle != str(row["user_id"]).encode()):
                raise _failed(ceremony.CeremonyError(parse=False))
            try:
                count, backed_up = ceremony.verify_assertion(ceremony.relying_party(s), parsed, challenge,
                                                             public_key=bytes(row["public_key"]),
                                                             sign_count=row["sign_count"])
            except ceremony.CeremonyError as exc:
                raise _failed(exc) from None
            user = await users.by_id(conn, str(row["user_id"]))
            if user is None:
                raise _failed(ceremony.CeremonyError(parse=False))
            if not confirmed(user) and not s.auth_autoconfirm:
                raise errors.AuthError(403, "email_not_confirmed", "Email not confirmed")
            if banned(user):
                raise errors.AuthError(403, "user_banned", "User is banned")
            await conn.execute(
                """update auth.webauthn_credentials set sign_count = $2, backed_up = $3, last_used_at = now(),
                       updated_at = now() where id = $1""", row["id"], count, backed_up)
            ip = client_ip(request)
            reply = await sessions.create(conn, ctx, user, "passkey", ip=ip, user_agent=user_agent(request))
            await users.audit(conn, "login", user, ip, "account", {"provider": "passkey"})
    return reply


# --- management ----------------------------------------------------------------------------------

async def _own(conn: asyncpg.Connection, request: Request, user_id: Any) -> asyncpg.Record:
    passkey_id = request.path_params["passkey_id"]
    row = None
    if users.is_uuid(passkey_id):
        row = await conn.fetchrow("select * from auth.webauthn_credentials where id = $1 and user_id = $2",
                                  uuid.UUID(passkey_id), user_id)
    if row is None:
        raise errors.validation("Passkey not found", 404)
    return row


async def _list(conn: asyncpg.Connection, user_id: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch("select * from auth.webauthn_credentials where user_id = $1 order by created_at",
                            user_id)
    return [item_json(r) for r in rows]


async def list_mine(request: Request) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn:
        user, _ = await _caller(conn, request)
        return JSONResponse(await _list(conn, user["id"]))


async def update(request: Request) -> Any:
    async with ctx_of(request).db.owner.acquire() as conn, conn.transaction():
        user, _ = await _caller(conn, request)
        data = await body(request)
        row = await _own(conn, request, user["id"])
        name = string(data, "friendly_name").strip()
        if not name:
            raise errors.validation("friendly_name is required")
        if len(name) > MAX_NAME:
            raise errors.validation(f"friendly_name must be {MAX_NAME} characters or less")
        row = await conn.fetchrow("update auth.webauthn_credentials set friendly_name = $2, updated_at = now()"
                                  " where id = $1 returning *", row["id"], name)
        return item_json(row)


async def delete(request: Request) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn, conn.transaction():
        user, claims = await _caller(conn, request)
        row = await _own(conn, request, user["id"])
        await _require_aal2_if_mfa(conn, user, claims)
        await conn.execute("delete from auth.webauthn_credentials where id = $1", row["id"])
        await users.audit(conn, "passkey_deleted", user, client_ip(request), "user", {"passkey_id": str(row["id"])})
    return Response(status_code=204)


async def admin_list(request: Request) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn:
        return JSONResponse(await _list(conn, await admin_target_user_id(conn, request)))


async def admin_delete(request: Request) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn, conn.transaction():
        row = await _own(conn, request, await admin_target_user_id(conn, request))
        await conn.execute("delete from auth.webauthn_credentials where id = $1", row["id"])
    return Response(status_code=204)
