"""Who is calling: the API key and bearer token of a request turned into a role and claims.

Services render the resulting ``CredentialError`` in their own protocol's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ownbase.keys import KeyRing, TokenError

REQUEST_ROLES = ("anon", "authenticated", "service_role")


class CredentialError(Exception):
    def __init__(self, message: str, reason: str = "invalid", status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # "missing" | "invalid" | "expired" | "claims" | "role"
        self.status = status


@dataclass(frozen=True)
class AuthContext:
    role: str
    claims: dict[str, Any] = field(default_factory=dict)
    token: str | None = None  # the verified JWT, if any

    @property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None

    @property
    def is_service(self) -> bool:
        return self.role == "service_role"


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _opaque_role(keys: KeyRing, value: str) -> str | None:
    if value in keys.secret_keys:
        return "service_role"
    if value in keys.publishable_keys:
        return "anon"
    return None


def resolve(
    keys: KeyRing,
    headers: Mapping[str, str],
    query_apikey: str | None = None,
    *,
    require_key: bool = True,
) -> AuthContext:
    """Resolve the caller. ``headers`` keys must be lower-case (Starlette's Headers are)."""
    apikey = headers.get("apikey") or query_apikey
    bearer = _bearer(headers)
    if apikey and apikey.startswith("sb_") and _opaque_role(keys, apikey) is None:
        raise CredentialError("Invalid API key", "invalid")
    if bearer and bearer.startswith("sb_"):
        role = _opaque_role(keys, bearer)
        if role is None:
            raise CredentialError("Invalid API key", "invalid")
        return AuthContext(role=role, claims={"role": role})
    token = bearer or apikey
    if not token:
        if require_key:
            raise CredentialError("No API key found in request", "missing")
        return AuthContext(role="anon", claims={"role": "anon"})
    if token.startswith("sb_"):
        role = _opaque_role(keys, token)
        assert role is not None
        return AuthContext(role=role, claims={"role": role})
    try:
        claims = keys.verify(token)
    except TokenError as exc:
        raise CredentialError(exc.message, exc.reason) from None
    role = claims.get("role") or "anon"
    if role not in REQUEST_ROLES:
        raise CredentialError(f'role "{role}" does not exist', "role")
    return AuthContext(role=role, claims=claims, token=token)
