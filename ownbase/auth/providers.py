"""OAuth / OIDC sign-in providers configured by settings (GoTrue's ``GOTRUE_EXTERNAL_<P>_*``).

Each provider has GoTrue's default scopes and endpoints; ``OWNBASE_AUTH_EXTERNAL_<P>_URL`` moves
its base URL (self-hosted GitLab, an Azure tenant, GitHub Enterprise, or a local stand-in in
tests). OIDC providers (Google, Apple, Azure, the generic issuer) find their endpoints and keys by
discovery, cached per process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ownbase.auth import errors
from ownbase.auth.outbound import ProviderError, fetch_json
from ownbase.context import Context
from ownbase.settings import Settings

BUILT_IN = ("google", "github", "apple", "azure", "gitlab", "discord")
DISCOVERY_TTL = 3600  # GOTRUE_EXTERNAL_OIDC_PROVIDER_CACHE_TTL
JWKS_REFETCH = 60  # an unknown key id refetches the key set at most this often


@dataclass(frozen=True)
class Provider:
    name: str
    kind: str  # "oidc" (discovery + id_token) or "oauth2" (token + profile API)
    client_ids: tuple[str, ...]
    secret: str
    scopes: tuple[str, ...]
    base: str  # OIDC: the issuer; OAuth2: the web host
    api: str = ""  # OAuth2 profile API base
    authorize_url: str = ""  # OAuth2 only; OIDC ones come from discovery
    token_url: str = ""
    form_post: bool = False  # Apple answers the callback with a form POST
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def client_id(self) -> str:
        return self.client_ids[0] if self.client_ids else ""


def _url(settings: Settings, name: str, default: str) -> str:
    return (getattr(settings, f"auth_external_{name}_url") or default).rstrip("/")


def _built_in(settings: Settings, name: str) -> Provider:
    ids = tuple(i for i in getattr(settings, f"auth_external_{name}_client_id") if i)
    secret = getattr(settings, f"auth_external_{name}_secret")
    extra_scopes = tuple(getattr(settings, f"auth_external_{name}_scopes"))
    if name == "google":
        return Provider(name, "oidc", ids, secret, ("email", "profile") + extra_scopes,
                        _url(settings, name, "https://accounts.google.com"))
    if name == "apple":
        return Provider(name, "oidc", ids, secret, extra_scopes,
                        _url(settings, name, "https://appleid.apple.com"), form_post=True)
    if name == "azure":
        return Provider(name, "oidc", ids, secret, ("openid",) + extra_scopes,
                        _url(settings, name, "https://login.microsoftonline.com/common/v2.0"))
    if name == "github":
        custom = getattr(settings, "auth_external_github_url")
        base = _url(settings, name, "https://github.com")
        api = f"{base}/api/v3" if custom else "https://api.github.com"
        return Provider(name, "oauth2", ids, secret, ("user:email",) + extra_scopes, base, api,
                        f"{base}/login/oauth/authorize", f"{base}/login/oauth/access_token")
    if name == "gitlab":
        base = _url(settings, name, "https://gitlab.com")
        return Provider(name, "oauth2", ids, secret, ("read_user",) + extra_scopes, base, f"{base}/api/v4",
                        f"{base}/oauth/authorize", f"{base}/oauth/token")
    assert name == "discord"
    base = _url(settings, name, "https://discord.com")
    return Provider(name, "oauth2", ids, secret, ("email", "identify") + extra_scopes, base, f"{base}/api",
                    f"{base}/api/oauth2/authorize", f"{base}/api/oauth2/token")


def issuer_of(value: str) -> str:
    """The issuer, also when the setting holds the discovery document's URL."""
    return value.strip().removesuffix("/.well-known/openid-configuration").rstrip("/")


def custom_name(settings: Settings) -> str:
    return f"custom:{settings.auth_external_oidc_provider}" if settings.auth_external_oidc_provider else ""


def enabled_names(settings: Settings) -> list[str]:
    names = [n for n in BUILT_IN if getattr(settings, f"auth_external_{n}_enabled")]
    if settings.auth_external_oidc_provider and settings.auth_external_oidc_issuer:
        names.append(custom_name(settings))
    return names


def get(settings: Settings, name: str) -> Provider | None:
    """The enabled provider ``name`` (lower-case), or None."""
    if name in BUILT_IN and getattr(settings, f"auth_external_{name}_enabled"):
        return _built_in(settings, name)
    if name and name == custom_name(settings) and settings.auth_external_oidc_issuer:
        ids = tuple(i for i in settings.auth_external_oidc_client_id if i)
        return Provider(name, "oidc", ids, settings.auth_external_oidc_secret,
                        tuple(settings.auth_external_oidc_scopes), issuer_of(settings.auth_external_oidc_issuer))
    return None


def for_redirect(settings: Settings, name: str, known: tuple[str, ...]) -> Provider:
    """The provider for /authorize, or GoTrue's ``Unsupported provider: <reason>`` error."""
    provider = get(settings, name)
    if provider is None:
        if name in known:
            reason = "provider is not enabled"
        elif name.startswith("custom:"):
            reason = f"custom provider {name[7:]} not found" if settings.auth_external_oidc_provider \
                else "custom OAuth providers are disabled"
        else:
            reason = f"Provider {name} could not be found"
        raise errors.validation("Unsupported provider: " + reason)
    if not provider.client_id:
        raise errors.validation("Unsupported provider: missing OAuth client ID")
    if not provider.secret:
        raise errors.validation("Unsupported provider: missing OAuth secret")
    return provider


# --- OIDC discovery and key sets, cached per process ---------------------------------------------

def _cache(ctx: Context) -> dict[str, Any]:
    return ctx.state.setdefault("auth", {}).setdefault("oidc", {})  # type: ignore[no-any-return]


async def discovery(ctx: Context, provider: Provider) -> dict[str, Any]:
    cache = _cache(ctx)
    key = "doc:" + provider.base
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < DISCOVERY_TTL:
        return hit[1]  # type: ignore[no-any-return]
    doc = await fetch_json("GET", provider.base + "/.well-known/openid-configuration")
    if not isinstance(doc, dict):
        raise ProviderError(f"OIDC discovery document of {provider.base} is not an object")
    for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(needed), str):
            raise ProviderError(f"OIDC discovery document of {provider.base} has no {needed}")
    cache[key] = (time.monotonic(), doc)
    return doc


async def signing_key(ctx: Context, provider: Provider, kid: str | None) -> dict[str, Any] | None:
    """The issuer's JWK with ``kid`` (the only key when the token names none)."""
    cache = _cache(ctx)
    key = "jwks:" + provider.base
    hit = cache.get(key)
    fresh = hit is not None and time.monotonic() - hit[0] < DISCOVERY_TTL

    def pick(keys: list[dict[str, Any]]) -> dict[str, Any] | None:
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        return next((k for k in keys if k.get("kid") == kid), None)

    if fresh:
        found = pick(hit[1])
        if found is not None or time.monotonic() - hit[0] < JWKS_REFETCH:
            return found
    doc = await discovery(ctx, provider)
    jwks = await fetch_json("GET", doc["jwks_uri"])
    found = jwks.get("keys") if isinstance(jwks, dict) else None
    keys = [k for k in found if isinstance(k, dict)] if isinstance(found, list) else []
    cache[key] = (time.monotonic(), keys)
    return pick(keys)
