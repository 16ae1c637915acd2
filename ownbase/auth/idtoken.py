"""POST /token?grant_type=id_token (signInWithIdToken) and grant_type=web3 (always disabled).

With the provider enabled (providers.py) the ID token is verified (oidc.py) and the user signed in
or, with ``link_identity``, the identity linked to the caller. With it disabled, each check GoTrue
makes before it would verify the token is made in GoTrue's order, so the caller gets the same
error, ending in ``provider_disabled``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.requests import Request

from ownbase.auth import accounts, errors, oidc, profiles, providers, sessions, users
from ownbase.auth.account import current_user
from ownbase.auth.rules import user_agent
from ownbase.auth.web import body, client_ip, ctx_of, limit, string, user_caller

APPLE_ISSUERS = ("https://appleid.apple.com", "https://account.apple.com")
AZURE_PREFIXES = ("https://login.microsoftonline.com/", "https://sts.windows.net/")
# provider -> the issuer GoTrue names in "Provider (issuer ...) is not enabled"
FIXED_ISSUERS = {
    "google": "https://accounts.google.com",
    "facebook": "https://www.facebook.com",
    "kakao": "https://kauth.kakao.com",
    "snapchat": "https://accounts.snapchat.com/accounts/oauth2/token",
    "vercel_marketplace": "https://marketplace.vercel.com",
}
# GOTRUE_EXTERNAL_ALLOWED_ID_TOKEN_ISSUERS' default
ALLOWED_ISSUERS = ("https://appleid.apple.com", "https://accounts.google.com")


def _token_issuer(id_token: str) -> str | None:
    """The unverified ``iss`` of a JWT, only to pick the provider as GoTrue does."""
    parts = id_token.split(".")
    if len(parts) != 3 or len(parts[1]) > 64 * 1024:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    iss = payload.get("iss") if isinstance(payload, dict) else None
    return iss if isinstance(iss, str) else None


def _disabled(issuer: str) -> errors.AuthError:
    return errors.AuthError(400, "provider_disabled", f'Provider (issuer "{issuer}") is not enabled')


def _resolve(provider: str, issuer: str, id_token: str) -> errors.AuthError:
    """The error GoTrue's provider resolution ends in when no provider is enabled."""
    if provider == "apple" or issuer in APPLE_ISSUERS:
        detected = _token_issuer(id_token)
        if detected is None:
            return errors.validation("Unable to detect issuer in ID token for Apple provider")
        if detected not in APPLE_ISSUERS:
            return errors.validation("Detected ID token issuer is not an Apple ID token issuer")
        if issuer and issuer != detected:
            return errors.validation("Provided issuer does not match ID token issuer")
        return _disabled(detected)
    if provider == "azure" or issuer.startswith(AZURE_PREFIXES):
        detected = issuer if issuer.startswith(AZURE_PREFIXES) else _token_issuer(id_token)
        if detected is None:
            return errors.validation("Unable to detect issuer in ID token for Azure provider")
        if not detected.startswith(AZURE_PREFIXES):
            return errors.validation("Detected ID token issuer is not an Azure ID token issuer")
        return _disabled(detected)
    for name, fixed in FIXED_ISSUERS.items():
        if provider == name or issuer == fixed:
            return _disabled(fixed)
    if provider == "keycloak":
        return _disabled("")  # GOTRUE_EXTERNAL_KEYCLOAK_URL is not set
    if provider.startswith("custom:"):
        return errors.validation("Custom OAuth providers are disabled")
    if issuer not in ALLOWED_ISSUERS:
        return errors.validation(f'Custom OIDC provider "{provider}" not allowed')
    return _disabled(issuer)


async def id_token_grant(request: Request) -> Any:
    data = await body(request)
    await limit(request, "token", ctx_of(request).settings.auth_rate_limit_token)
    id_token = string(data, "id_token")
    provider, client_id, issuer = string(data, "provider"), string(data, "client_id"), string(data, "issuer")
    if not id_token:
        raise errors.OAuthError("invalid request", "id_token required")
    if not provider and not (client_id and issuer):
        raise errors.OAuthError("invalid request", "provider or client_id and issuer required")
    if data.get("link_identity") is True and not request.headers.get("authorization"):
        raise errors.OAuthError("invalid request", "Linking requires a valid user access token in Authorization")
    enabled = _enabled(request, provider.lower(), issuer, id_token)
    if enabled is None:
        raise _resolve(provider.lower(), issuer, id_token)
    return await _sign_in(request, enabled, data, id_token)


def _enabled(request: Request, provider: str, issuer: str, id_token: str) -> providers.Provider | None:
    """The enabled provider the request names (by name, or by an issuer), after GoTrue's Apple checks."""
    settings = ctx_of(request).settings
    name = provider
    if not name:
        for candidate in providers.enabled_names(settings):
            found = providers.get(settings, candidate)
            if found is not None and issuer and (issuer.rstrip("/") == found.base or oidc.issuer_ok(found, issuer)):
                name = candidate
                break
    found = providers.get(settings, name) if name else None
    if found is None:
        return None
    if found.name == "apple":
        detected = _token_issuer(id_token)
        if detected is None:
            raise errors.validation("Unable to detect issuer in ID token for Apple provider")
        if not oidc.issuer_ok(found, detected):
            raise errors.validation("Detected ID token issuer is not an Apple ID token issuer")
        if issuer and issuer != detected:
            raise errors.validation("Provided issuer does not match ID token issuer")
    return found


async def _sign_in(request: Request, provider: providers.Provider, data: dict[str, Any], id_token: str) -> Any:
    ctx = ctx_of(request)
    claims = await oidc.verify(ctx, provider, id_token, nonce=string(data, "nonce"),
                               access_token=string(data, "access_token"))
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    verified = provider.name == "apple" or claims.get("email_verified") in (True, "true")
    profile = profiles.Profile(provider.name, str(claims["sub"]),
                               [profiles.Email(email.lower(), bool(verified), True)] if email else [],
                               profiles.identity_data(claims, sub=str(claims["sub"]), email=email,
                                                      verified=bool(verified and email)))
    ip = client_ip(request)
    linking = data.get("link_identity") is True
    caller = user_caller(request) if linking else None
    refused: errors.AuthError | None = None
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            if caller is not None:
                target = await current_user(conn, caller.claims, lock=True)
                user = await accounts.link(conn, ctx, target, profile)
                await users.audit(conn, "identity_linked", user, ip, "account", {"provider": provider.name})
            else:
                user, created = await accounts.sign_in(conn, ctx, profile)
                if created:
                    await users.audit(conn, "user_signedup", user, ip, "team", {"provider": provider.name})
                refused = await accounts.refuse_unverified(conn, ctx, user, profile, redirect_to=None)
            if refused is None:
                await users.audit(conn, "login", user, ip, "account", {"provider": provider.name})
                return await sessions.create(conn, ctx, user, "oauth", ip=ip, user_agent=user_agent(request))
    assert refused is not None
    raise refused  # after the commit: GoTrue keeps the user


async def web3_grant(request: Request) -> Any:
    await body(request)
    raise errors.AuthError(422, "web3_provider_disabled", "Web3 provider is disabled")
