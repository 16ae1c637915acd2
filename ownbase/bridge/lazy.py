"""Lazy migration: what the upstream proves while serving a request is kept locally.

Rules shared with `ownbase migrate users/files/sync` (docs/migration/bridge.md):
* a user or object keeps the upstream's id / bucket+name;
* something already present locally is never overwritten (local is newer once it exists there);
* a user copied on sign-in gets a bcrypt hash of the password just proven, nothing else secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any, AsyncIterator

from ownbase.auth.passwords import hash_password  # auth's public hashing helper (bcrypt off the loop)

log = logging.getLogger("ownbase.bridge")

_INSERT_USER = """
insert into auth.users (instance_id, id, aud, role, email, phone, encrypted_password, email_confirmed_at,
  phone_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous)
values ('00000000-0000-0000-0000-000000000000', $1::uuid, $2, $3, nullif(lower($4), ''), nullif($5, ''), $6,
  $7::timestamptz, $8::timestamptz, $9::jsonb, $10::jsonb, coalesce($11::timestamptz, now()), now(), false)
on conflict do nothing
returning id
"""
_INSERT_IDENTITY = """
insert into auth.identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
values (coalesce($1::uuid, gen_random_uuid()), $2, $3::uuid, $4::jsonb, $5, $6::timestamptz,
  coalesce($7::timestamptz, now()), now())
on conflict do nothing
"""


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


async def user_exists(pool: Any, email: str | None, phone: str | None) -> bool:
    if email:
        return bool(await pool.fetchval("select 1 from auth.users where lower(email) = lower($1) limit 1", email))
    if phone:
        return bool(await pool.fetchval("select 1 from auth.users where phone = $1 limit 1",
                                        phone.lstrip("+")))
    return False


async def copy_user(pool: Any, user: dict[str, Any], password: str, cost: int) -> bool:
    """Create the upstream's user locally (same UUID); False when it already existed."""
    hashed = await hash_password(password, cost)
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            _INSERT_USER, str(user["id"]), user.get("aud") or "authenticated", user.get("role") or "authenticated",
            user.get("email") or "", (user.get("phone") or "").lstrip("+"), hashed,
            _ts(user.get("email_confirmed_at")), _ts(user.get("phone_confirmed_at")),
            json.dumps(user.get("app_metadata") or {}), json.dumps(user.get("user_metadata") or {}),
            _ts(user.get("created_at")),
        )
        if created is None:
            return False
        for ident in user.get("identities") or []:
            if not isinstance(ident, dict) or not ident.get("provider"):
                continue
            await conn.execute(
                _INSERT_IDENTITY, ident.get("identity_id"), str(ident.get("id") or user["id"]), str(user["id"]),
                json.dumps(ident.get("identity_data") or {}), ident["provider"], _ts(ident.get("last_sign_in_at")),
                _ts(ident.get("created_at")),
            )
    return True


class ObjectCopy:
    """Feeds the bytes streaming to the client into the local storage backend (bounded queue)."""

    def __init__(self, storage: Any, caller: Any, bucket: str, name: str, content_type: str,
                 cache_control: str, limit: int) -> None:
        self.queue: asyncio.Queue[bytes | None | BaseException] = asyncio.Queue(maxsize=8)
        self.task = asyncio.create_task(storage.store(
            caller, bucket, name, self._chunks(), content_type=content_type, cache_control=cache_control,
            user_metadata=None, upsert=False, owner=None, limit=limit))

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def feed(self, chunk: bytes) -> None:
        if chunk and not self.task.done():
            await self.queue.put(chunk)

    async def finish(self, ok: bool) -> bool:
        """End the copy: kept when the whole body arrived, discarded otherwise."""
        if not self.task.done():
            await self.queue.put(None if ok else ConnectionError("upstream body incomplete"))
        try:
            await self.task
            return ok
        except Exception as exc:  # noqa: BLE001 - e.g. it appeared locally meanwhile: local wins
            log.info("lazy object copy not kept: %s", exc)
            return False
