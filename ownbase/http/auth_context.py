"""Who is calling: the API key and bearer token of a request turned into a role and claims.

Services render the resulting ``CredentialError`` in their own protocol's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ownbase.keys import KeyRing, TokenError

REQUEST_ROLES = ("anon", "authenticated", "service_role")


class CredentialError(Exception):
    def __init__(self, message: str, reason: str = "invalid", status: int = 401, role: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # "missing" | "invalid" | "expired" | "claims" | "role"
        self.status = status
        self.role = role  # the refused role claim (reason "role")


async def role_refusal(pool: Any, role: Any) -> tuple[int, str, str]:
    """(status, SQLSTATE, message) PostgREST gives for a role claim the authenticator cannot use.

    A role that exists but is not one the authenticator may switch to (itself, supabase_admin,
    pg_read_server_files...) fails SET ROLE with 42501; a role that does not exist with 22023.
    """
    if isinstance(role, str) and role and "\x00" not in role:
        exists = await pool.fetchval("select exists(select 1 from pg_catalog.pg_roles where rolname = $1)", role)
        if exists:
            return 403, "42501", f'permission denied to set role "{role}"'
    return 401, "22023", f'role "{role}" does not exist'


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
        raise CredentialError(f'role "{role}" does not exist', "role", role=role)
    return AuthContext(role=role, claims=claims, token=token)
