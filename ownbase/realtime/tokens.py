"""Turning the token a socket or channel presents into (role, claims, expiry), Supabase-style:
the JWT must carry ``role`` and a numeric ``exp``; ``sb_…`` keys map to their role."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jwt

from ownbase.keys import KeyRing, TokenError
from ownbase.realtime import errors

REQUEST_ROLES = ("anon", "authenticated", "service_role")


class TokenProblem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Identity:
    role: str
    claims: dict[str, Any] = field(default_factory=dict)
    token: str = ""
    exp: float | None = None  # None: never expires (opaque keys)

    @cached_property
    def group_key(self) -> tuple[str, str]:
        """Subscribers with equal keys see exactly the same rows under RLS. Computed once: change
        delivery asks for it per subscriber and per change."""
        import json

        return self.role, json.dumps(self.claims, sort_keys=True, default=str)


def identify(keys: KeyRing, token: str) -> Identity:
    if not token:
        raise TokenProblem(errors.API_KEY_MISSING)
    if token.startswith("sb_"):
        if token in keys.secret_keys:
            return Identity("service_role", {"role": "service_role"}, token)
        if token in keys.publishable_keys:
            return Identity("anon", {"role": "anon"}, token)
        raise TokenProblem(errors.JWT_INVALID)
    try:
        claims = keys.verify(token)
    except TokenError as exc:
        if exc.reason == "expired":
            raise TokenProblem(errors.token_expired_ago(_expired_for(token))) from None
        if exc.reason == "claims":
            raise TokenProblem(errors.JWT_FIELDS_REQUIRED) from None
        if "cryptographic" in exc.message or "suitable key" in exc.message:
            raise TokenProblem(errors.JWT_SIGNATURE) from None
        raise TokenProblem(errors.JWT_INVALID) from None
    role = claims.get("role")
    exp = claims.get("exp")
    if not isinstance(role, str) or not isinstance(exp, (int, float)):
        raise TokenProblem(errors.JWT_FIELDS_REQUIRED)
    if role not in REQUEST_ROLES:
        raise TokenProblem(errors.JWT_INVALID)
    return Identity(role, dict(claims), token, float(exp))


def _expired_for(token: str) -> int:
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        return int(time.time() - float(exp))
    except Exception:  # noqa: BLE001
        return 0
