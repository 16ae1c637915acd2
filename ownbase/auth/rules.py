"""Small rules shared by the auth endpoints: password policy, address syntax, user state, PKCE."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg
from starlette.requests import Request

from ownbase.auth import errors, users
from ownbase.auth.passwords import MAX_PASSWORD_BYTES
from ownbase.context import Context


def check_password(ctx: Context, password: str) -> None:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise errors.validation("Password cannot be longer than 72 characters")
    if len(password) < ctx.settings.auth_password_min_length:
        raise errors.weak_password(ctx.settings.auth_password_min_length)


def normalize_email(value: str) -> str:
    if not users.valid_email(value):
        raise errors.validation("Unable to validate email address: invalid format")
    return value.lower()


_E164 = re.compile(r"[1-9][0-9]{1,14}")


def normalize_phone(value: str) -> str:
    """GoTrue's E.164 check: one leading + and all spaces dropped, then 2-15 digits."""
    digits = value.replace(" ", "")
    digits = digits[1:] if digits.startswith("+") else digits
    if not _E164.fullmatch(digits):
        raise errors.invalid_phone()
    return digits


def confirmed(user: asyncpg.Record) -> bool:
    return user["email_confirmed_at"] is not None


def banned(user: asyncpg.Record) -> bool:
    until = user["banned_until"]
    return until is not None and until > datetime.now(timezone.utc)


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


def pkce_params(data: dict[str, Any]) -> tuple[str, str] | None:
    """The client's (code challenge, method), validated; None when it sent no challenge."""
    challenge = data.get("code_challenge")
    if not isinstance(challenge, str) or not challenge:
        return None
    if not 43 <= len(challenge) <= 128:
        raise errors.validation("code challenge has to be between 43 and 128 characters")
    cmethod = str(data.get("code_challenge_method") or "plain").lower()
    if cmethod not in ("s256", "plain"):
        raise errors.validation("Code challenge method not supported")
    return challenge, cmethod


async def pkce_flow(conn: asyncpg.Connection, data: dict[str, Any], user_id: Any, method: str) -> bool:
    """Record PKCE flow state when the client sent a code challenge (supabase-py's default)."""
    params = pkce_params(data)
    if params is None:
        return False
    challenge, cmethod = params
    await conn.execute("delete from auth.flow_state where user_id = $1 and authentication_method = $2",
                       user_id, method)
    await conn.execute(
        """insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,
               provider_type, created_at, updated_at, authentication_method)
           values ($1, $2, $3, $4, $5, 'email', now(), now(), $6)""",
        uuid.uuid4(), user_id, str(uuid.uuid4()), cmethod, challenge, method)
    return True
