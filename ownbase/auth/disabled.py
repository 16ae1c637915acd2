"""GoTrue features ownbase does not build (SAML SSO, MFA, passkeys, OAuth server, custom providers,
SCIM), answered as GoTrue answers with the feature turned off.

Clients then get GoTrue's own error codes (``saml_provider_disabled``, ``mfa_totp_enroll_not_enabled``,
``passkey_disabled`` ...) instead of an unknown error. Where GoTrue checks the caller
first (the ``/user`` and ``/admin`` route groups), so does this module.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ownbase.auth import errors, users
from ownbase.auth.account import current_user
from ownbase.auth.web import admin_caller, body, ctx_of, string, user_caller


def _off(code: str, message: str) -> errors.AuthError:
    return errors.AuthError(404, code, message)


async def _signed_in(request: Request, *, allow_anonymous: bool = True) -> asyncpg.Record:
    """GoTrue's requireAuthentication: a valid token of an existing user and session."""
    auth = user_caller(request)
    async with ctx_of(request).db.owner.acquire() as conn:
        user = await current_user(conn, auth.claims)
    if not allow_anonymous and auth.claims.get("is_anonymous") is True:
        raise errors.AuthError(403, "no_authorization", "Anonymous user not allowed to perform these actions")
    return user


# --- whole features that are off -----------------------------------------------------------------

async def saml(request: Request) -> Any:
    raise _off("saml_provider_disabled", "SAML 2.0 is disabled")


async def passkeys(request: Request) -> Any:
    raise _off("passkey_disabled", "Passkeys are disabled")


async def oauth_server(request: Request) -> Any:
    raise _off("feature_disabled", "OAuth server is disabled")


async def user_oauth_grants(request: Request) -> Any:
    await _signed_in(request)
    raise _off("feature_disabled", "OAuth server is disabled")


async def admin_oauth_server(request: Request) -> Any:
    admin_caller(request)
    raise _off("feature_disabled", "OAuth server is disabled")


async def admin_custom_providers(request: Request) -> Any:
    admin_caller(request)
    raise _off("feature_disabled", "Custom OAuth providers are disabled")


async def scim(request: Request) -> Any:
    raise _off("feature_disabled", "SCIM server is disabled")


# --- SSO providers (admin): none exist and none can be made ----------------------------------------

async def admin_sso_providers(request: Request) -> Any:
    admin_caller(request)
    if request.method == "GET":
        return {"items": []}
    raise _off("saml_provider_disabled", "SAML 2.0 is disabled")


async def admin_sso_provider(request: Request) -> Any:
    admin_caller(request)
    raise _off("sso_provider_not_found", "SSO Identity Provider not found")


# --- MFA: enrolment and verification are off; factors copied from Supabase can be listed/removed --

ENROLL_OFF = {"totp": ("mfa_totp_enroll_not_enabled", "MFA enroll is disabled for TOTP"),
              "phone": ("mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone"),
              "webauthn": ("mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn")}
VERIFY_OFF = {"totp": ("mfa_totp_verify_not_enabled", "MFA verification is disabled for TOTP"),
              "phone": ("mfa_phone_verify_not_enabled", "MFA verification is disabled for Phone"),
              # GoTrue's own quirk: the WebAuthn verify switch reports the enroll code.
              "webauthn": ("mfa_webauthn_enroll_not_enabled", "MFA verification is disabled for WebAuthn")}


async def enroll(request: Request) -> Any:
    await _signed_in(request, allow_anonymous=False)
    data = await body(request)
    ftype = string(data, "factor_type")
    if ftype not in ENROLL_OFF:
        raise errors.validation("factor_type needs to be totp, phone, or webauthn")
    raise errors.AuthError(422, *ENROLL_OFF[ftype])


async def _factor(request: Request, user_id: Any, param: str = "factor_id") -> asyncpg.Record:
    factor_id = request.path_params[param]
    if not users.is_uuid(factor_id):
        raise errors.validation("factor_id must be an UUID", 404)
    row = await ctx_of(request).db.owner.fetchrow(
        "select * from auth.mfa_factors where id = $1 and user_id = $2", uuid.UUID(factor_id), user_id)
    if row is None:
        raise errors.AuthError(404, "mfa_factor_not_found", "Factor not found")
    return row


async def challenge_or_verify(request: Request) -> Any:
    user = await _signed_in(request, allow_anonymous=False)
    factor = await _factor(request, user["id"])
    code, message = VERIFY_OFF.get(factor["factor_type"], VERIFY_OFF["totp"])
    raise errors.AuthError(422, code, message)


async def unenroll(request: Request) -> Any:
    user = await _signed_in(request, allow_anonymous=False)
    factor = await _factor(request, user["id"])
    if factor["status"] == "verified":
        # No ownbase session reaches aal2 (MFA verification is off).
        raise errors.AuthError(422, "insufficient_aal", "AAL2 required to unenroll verified factor")
    await ctx_of(request).db.owner.execute("delete from auth.mfa_factors where id = $1", factor["id"])
    return {"id": str(factor["id"])}


async def _admin_user_id(request: Request) -> Any:
    admin_caller(request)
    user_id = request.path_params["user_id"]
    if not users.is_uuid(user_id):
        raise errors.validation("user_id must be an UUID", 404)
    async with ctx_of(request).db.owner.acquire() as conn:
        user = await users.by_id(conn, str(user_id))
    if user is None:
        raise errors.user_not_found(admin=True)
    return user["id"]


async def admin_factors(request: Request) -> Response:
    user_id = await _admin_user_id(request)
    rows = await ctx_of(request).db.owner.fetch(
        "select * from auth.mfa_factors where user_id = $1 order by created_at", user_id)
    return JSONResponse([users.factor_json(r) for r in rows])


async def admin_factor(request: Request) -> Any:
    user_id = await _admin_user_id(request)
    factor = await _factor(request, user_id)
    pool = ctx_of(request).db.owner
    if request.method == "DELETE":
        await pool.execute("delete from auth.mfa_factors where id = $1", factor["id"])
        return users.factor_json(factor)
    data = await body(request)
    name = string(data, "friendly_name") or factor["friendly_name"]
    row = await pool.fetchrow("update auth.mfa_factors set friendly_name = $2, updated_at = now()"
                              " where id = $1 returning *", factor["id"], name)
    return users.factor_json(row)


async def admin_passkeys(request: Request) -> Response:
    await _admin_user_id(request)
    return JSONResponse([])


async def admin_passkey(request: Request) -> Any:
    await _admin_user_id(request)
    raise errors.validation("Passkey not found", 404)
