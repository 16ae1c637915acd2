"""Authenticator assurance level of a caller's session, read from the database (not the token:
a token minted before an unenroll still says aal2)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ownbase.auth import users


async def session_aal(conn: asyncpg.Connection, claims: dict[str, Any]) -> str:
    sid = claims.get("session_id")
    if not isinstance(sid, str) or not users.is_uuid(sid):
        return "aal1"
    return await conn.fetchval("select aal from auth.sessions where id = $1", uuid.UUID(sid)) or "aal1"


async def has_verified_factor(conn: asyncpg.Connection, user_id: Any) -> bool:
    return bool(await conn.fetchval(
        "select 1 from auth.mfa_factors where user_id = $1 and status = 'verified' limit 1", user_id))


async def below_reachable(conn: asyncpg.Connection, user_id: Any, claims: dict[str, Any]) -> bool:
    """True when the user could be at aal2 (a verified factor) but this session is not."""
    return await has_verified_factor(conn, user_id) and await session_aal(conn, claims) != "aal2"
