"""Verify a provider's OpenID Connect ID token as GoTrue does: signature by the issuer's JWKS,
expiry, issuer, audience (one of the configured client ids), nonce and ``at_hash``.

Failures are GoTrue's OAuth-style errors (``{"error": "invalid request", ...}``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import jwt

from ownbase.auth import providers
from ownbase.auth.errors import OAuthError
from ownbase.auth.outbound import ProviderError
from ownbase.auth.providers import Provider
from ownbase.context import Context

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
APPLE_ISSUERS = ("https://appleid.apple.com", "https://account.apple.com")
AZURE_PREFIXES = ("https://login.microsoftonline.com/", "https://sts.windows.net/")


def bad_token() -> OAuthError:
    return OAuthError("invalid request", "Bad ID token")


def issuer_ok(provider: Provider, iss: Any) -> bool:
    if not isinstance(iss, str):
        return False
    if iss.rstrip("/") == provider.base:
        return True
    if provider.name == "apple":
        return iss in APPLE_ISSUERS and provider.base in APPLE_ISSUERS
    if provider.name == "azure":
        # Multi-tenant apps see each tenant's own issuer under the Microsoft hosts.
        return iss.startswith(AZURE_PREFIXES) and provider.base.startswith(AZURE_PREFIXES)
    return False


def _half_hash(value: str, alg: str) -> str:
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]](value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


async def verify(ctx: Context, provider: Provider, token: str, *, nonce: str = "", access_token: str = "",
                 accepted_audiences: tuple[str, ...] | None = None, check_nonce: bool = True) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise bad_token() from None
    alg = header.get("alg")
    kid = header.get("kid")
    if alg not in ALGORITHMS or (kid is not None and not isinstance(kid, str)):
        raise bad_token()
    try:
        jwk = await providers.signing_key(ctx, provider, kid)
        if jwk is None:
            raise bad_token()
        key = jwt.PyJWK(jwk, algorithm=alg)
        claims = jwt.decode(token, key.key, algorithms=[alg],
                            options={"verify_aud": False, "verify_iss": False, "verify_iat": False,
                                     "require": ["exp", "iss"]})
    except (ProviderError, jwt.PyJWTError, ValueError, TypeError):
        raise bad_token() from None
    if not isinstance(claims, dict) or not issuer_ok(provider, claims.get("iss")):
        raise bad_token()
    if access_token and isinstance(claims.get("at_hash"), str):
        if not hmac.compare_digest(_half_hash(access_token, alg), claims["at_hash"]):
            raise bad_token()
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise OAuthError("invalid request", "Missing sub claim in id_token")
    audiences = accepted_audiences if accepted_audiences is not None else provider.client_ids
    aud = claims.get("aud")
    token_auds = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
    if not any(a and a in token_auds for a in audiences):
        raise OAuthError("invalid request", f"Unacceptable audience in id_token: [{' '.join(token_auds)}]")
    if check_nonce:
        token_nonce = claims.get("nonce")
        if bool(nonce) != bool(token_nonce):
            raise OAuthError("invalid request",
                             "Passed nonce and nonce in id_token should either both exist or not.")
        if nonce:
            expected = hashlib.sha256(nonce.encode()).hexdigest()
            if not isinstance(token_nonce, str) or not hmac.compare_digest(expected, token_nonce):
                raise OAuthError("invalid nonce", "Nonces mismatch")
    return claims
