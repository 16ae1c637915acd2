"""Manual identity linking (GoTrue's ``GOTRUE_SECURITY_MANUAL_LINKING_ENABLED``, off by default):
GET /user/identities/authorize (linkIdentity) and DELETE /user/identities/{id} (unlinkIdentity).
getUserIdentities reads ``identities`` of GET /user."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from ownbase.auth import accounts, errors, oauth, users
from ownbase.auth.account import current_user
from ownbase.auth.web import client_ip, ctx_of, user_caller


async def _signed_in(request: Request) -> asyncpg.Record:
    """The caller (anonymous users too), then the manual-linking switch, in GoTrue's order."""
    auth = user_caller(request)
    async with ctx_of(request).db.owner.acquire() as conn:
        user = await current_user(conn, auth.claims)
    if not ctx_of(request).settings.auth_manual_linking_enabled:
        raise errors.AuthError(404, "manual_linking_disabled", "Manual linking is disabled")
    return user


async def link_authorize(request: Request, known: tuple[str, ...]) -> Response:
    user = await _signed_in(request)
    return await oauth.authorize(request, known, linking_target=user["id"])


async def unlink(request: Request) -> Any:
    user = await _signed_in(request)
    raw = request.path_params["identity_id"]
    if not users.is_uuid(raw):
        raise errors.validation("identity_id must be an UUID", 404)
    ctx = ctx_of(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        locked = await users.by_id(conn, str(user["id"]), lock=True)
        assert locked is not None
        await accounts.unlink(conn, locked, uuid.UUID(raw))
        await users.audit(conn, "identity_unlinked", locked, client_ip(request), "account")
    return {}
