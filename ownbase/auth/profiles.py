"""From a provider's authorization code to a profile: the code exchange, then the user's subject,
emails and GoTrue's ``identity_data`` (OIDC claims, or the GitHub / GitLab / Discord user APIs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ownbase.auth import oidc, providers
from ownbase.auth.errors import AuthError, OAuthError
from ownbase.auth.outbound import ProviderError, fetch_json
from ownbase.auth.providers import Provider
from ownbase.context import Context

# GoTrue's identity_data keys (omitted when empty), in its order.
CLAIM_KEYS = ("iss", "sub", "aud", "iat", "exp", "name", "family_name", "given_name", "middle_name", "nickname",
              "preferred_username", "profile", "picture", "website", "gender", "birthdate", "zoneinfo",
              "locale", "updated_at", "email", "email_verified", "phone", "phone_verified", "custom_claims",
              "full_name", "avatar_url", "slug", "provider_id", "user_name")


@dataclass(frozen=True)
class Email:
    address: str
    verified: bool
    primary: bool


@dataclass
class Profile:
    provider: str
    sub: str
    emails: list[Email]
    data: dict[str, Any]  # identity_data
    access_token: str = ""
    refresh_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_email(self) -> Email | None:
        return next((e for e in self.emails if e.primary), self.emails[0] if self.emails else None)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def identity_data(claims: dict[str, Any], *, sub: str, email: str, verified: bool,
                  custom: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {k: claims[k] for k in CLAIM_KEYS if claims.get(k) not in (None, "", [], {})}
    data["sub"] = sub
    data["provider_id"] = sub
    if claims.get("name") and "full_name" not in data:
        data["full_name"] = claims["name"]
    if claims.get("picture") and "avatar_url" not in data:
        data["avatar_url"] = claims["picture"]
    if claims.get("preferred_username") and "user_name" not in data:
        data["user_name"] = claims["preferred_username"]
    if email:
        data["email"] = email.lower()
    else:
        data.pop("email", None)
    data["email_verified"] = verified
    data["phone_verified"] = _truthy(claims.get("phone_verified") or claims.get("phone_number_verified"))
    if custom:
        data["custom_claims"] = custom
    return data


async def exchange(ctx: Context, provider: Provider, code: str, redirect_uri: str) -> dict[str, Any]:
    """The provider's token response for ``code``; GoTrue's 500 when that fails."""
    try:
        url = (await providers.discovery(ctx, provider))["token_endpoint"] if provider.kind == "oidc" \
            else provider.token_url
        tokens = await fetch_json("POST", url, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": provider.client_id, "client_secret": provider.secret})
    except ProviderError:
        tokens = None
    if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str) or "error" in tokens:
        raise AuthError(500, "unexpected_failure", f"Unable to exchange external code: {code[:4]}")
    return tokens


def _profile_failed() -> AuthError:
    return AuthError(500, "unexpected_failure", "Error getting user profile from external provider")


async def fetch(ctx: Context, provider: Provider, tokens: dict[str, Any], apple_user: str = "") -> Profile:
    access = str(tokens.get("access_token") or "")
    refresh = tokens.get("refresh_token")
    try:
        if provider.kind == "oidc":
            profile = await _oidc(ctx, provider, tokens, apple_user)
        else:
            profile = await {"github": _github, "gitlab": _gitlab, "discord": _discord}[provider.name](provider, access)
    except (ProviderError, OAuthError, KeyError, TypeError, ValueError, AttributeError):
        raise _profile_failed() from None
    profile.access_token = access
    profile.refresh_token = refresh if isinstance(refresh, str) else ""
    return profile


async def _oidc(ctx: Context, provider: Provider, tokens: dict[str, Any], apple_user: str) -> Profile:
    claims: dict[str, Any] = {}
    id_token = tokens.get("id_token")
    if isinstance(id_token, str) and id_token:
        # The token comes straight from the provider's token endpoint: no nonce to compare here.
        claims = await oidc.verify(ctx, provider, id_token, check_nonce=False)
    doc = await providers.discovery(ctx, provider)
    if isinstance(doc.get("userinfo_endpoint"), str) and tokens.get("access_token"):
        info = await fetch_json("GET", doc["userinfo_endpoint"],
                                headers={"authorization": f"Bearer {tokens['access_token']}"})
        if isinstance(info, dict):
            if claims and info.get("sub") != claims.get("sub"):
                raise ValueError("userinfo is about another subject")
            claims = {**info, **claims}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise ValueError("no subject")
    if apple_user:  # Apple sends the name once, as a JSON form field of the first callback
        try:
            user = json.loads(apple_user)
            name = user.get("name") or {}
            full = " ".join(p for p in (name.get("firstName"), name.get("lastName")) if isinstance(p, str) and p)
            if full:
                claims.setdefault("name", full)
        except (ValueError, AttributeError):
            pass
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    verified = provider.name == "apple" or _truthy(claims.get("email_verified"))
    custom = {"hd": claims["hd"]} if provider.name == "google" and claims.get("hd") else None
    data = identity_data(claims, sub=sub, email=email, verified=verified and bool(email), custom=custom)
    emails = [Email(email.lower(), verified, True)] if email else []
    return Profile(provider.name, sub, emails, data)


async def _github(provider: Provider, access: str) -> Profile:
    headers = {"authorization": f"Bearer {access}"}
    user = await fetch_json("GET", f"{provider.api}/user", headers=headers)
    listed = await fetch_json("GET", f"{provider.api}/user/emails", headers=headers)
    emails = [Email(str(e["email"]).lower(), bool(e.get("verified")), bool(e.get("primary")))
              for e in listed if isinstance(e, dict) and isinstance(e.get("email"), str)]
    sub = str(user["id"])
    primary = next((e for e in emails if e.primary), None)
    claims = {"iss": provider.api, "name": user.get("name"), "picture": user.get("avatar_url"),
              "preferred_username": user.get("login")}
    data = identity_data(claims, sub=sub, email=primary.address if primary else "",
                         verified=bool(primary and primary.verified))
    return Profile(provider.name, sub, emails, data)


async def _gitlab(provider: Provider, access: str) -> Profile:
    user = await fetch_json("GET", f"{provider.api}/user", headers={"authorization": f"Bearer {access}"})
    sub = str(user["id"])
    email = user.get("email") if isinstance(user.get("email"), str) else ""
    verified = bool(user.get("confirmed_at"))
    claims = {"iss": provider.base, "name": user.get("name"), "picture": user.get("avatar_url"),
              "preferred_username": user.get("username")}
    data = identity_data(claims, sub=sub, email=email, verified=verified and bool(email))
    return Profile(provider.name, sub, [Email(email.lower(), verified, True)] if email else [], data)


async def _discord(provider: Provider, access: str) -> Profile:
    user = await fetch_json("GET", f"{provider.api}/users/@me", headers={"authorization": f"Bearer {access}"})
    sub = str(user["id"])
    email = user.get("email") if isinstance(user.get("email"), str) else ""
    verified = bool(user.get("verified"))
    avatar = f"https://cdn.discordapp.com/avatars/{sub}/{user['avatar']}.png" if user.get("avatar") else None
    claims = {"iss": provider.api, "name": user.get("global_name") or user.get("username"), "picture": avatar,
              "preferred_username": user.get("username")}
    data = identity_data(claims, sub=sub, email=email, verified=verified and bool(email))
    return Profile(provider.name, sub, [Email(email.lower(), verified, True)] if email else [], data)
