"""GoTrue features ownbase does not build (SAML SSO, phone and WebAuthn MFA factors, OAuth server,
custom providers, SCIM), answered as GoTrue answers with the feature turned off. (TOTP MFA is
mfa.py; passkeys are passkeys.py; OAuth sign-in and linking are oauth.py and identities.py.)

Clients then get GoTrue's own error codes (``saml_provider_disabled``, ``mfa_totp_enroll_not_enabled``,
``passkey_disabled`` ...) instead of an unknown error. Where GoTrue checks the caller
first (the ``/user`` and ``/admin`` route groups), so does this module.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request

from ownbase.auth import errors
from ownbase.auth.account import current_user
from ownbase.auth.web import admin_caller, ctx_of, user_caller


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


# --- MFA factor types that are off (TOTP too when its settings say so): mfa.py answers with these ---

ENROLL_OFF = {"totp": ("mfa_totp_enroll_not_enabled", "MFA enroll is disabled for TOTP"),
              "phone": ("mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone"),
              "webauthn": ("mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn")}
VERIFY_OFF = {"totp": ("mfa_totp_verify_not_enabled", "MFA verification is disabled for TOTP"),
              "phone": ("mfa_phone_verify_not_enabled", "MFA verification is disabled for Phone"),
              # GoTrue's own quirk: the WebAuthn verify switch reports the enroll code.
              "webauthn": ("mfa_webauthn_enroll_not_enabled", "MFA verification is disabled for WebAuthn")}
