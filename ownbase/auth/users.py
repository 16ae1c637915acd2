"""auth.users / auth.identities rows: SQL and their GoTrue JSON shapes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def valid_email(value: str) -> bool:
    return len(value) <= 255 and EMAIL_RE.match(value) is not None


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def _obj(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def identity_json(row: asyncpg.Record) -> dict[str, Any]:
    data = _obj(row["identity_data"])
    out: dict[str, Any] = {
        "identity_id": str(row["id"]),
        "id": row["provider_id"],
        "user_id": str(row["user_id"]),
        "identity_data": data,
        "provider": row["provider"],
        "last_sign_in_at": ts(row["last_sign_in_at"]),
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }
    if row["email"]:
        out["email"] = row["email"]
    return out


def factor_json(row: asyncpg.Record) -> dict[str, Any]:
    """GoTrue's MFA factor object (factors exist here only when copied from Supabase)."""
    out: dict[str, Any] = {"id": str(row["id"]), "created_at": ts(row["created_at"]),
                           "updated_at": ts(row["updated_at"]), "status": row["status"],
                           "factor_type": row["factor_type"], "phone": row["phone"] or "",
                           "last_challenged_at": ts(row["last_challenged_at"])}
    if row["friendly_name"]:
        out["friendly_name"] = row["friendly_name"]
    return out


async def factors(conn: asyncpg.Connection, user_id: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch("select * from auth.mfa_factors where user_id = $1 order by created_at", _u(user_id))
    return [factor_json(r) for r in rows]


def user_json(row: asyncpg.Record, identities: list[asyncpg.Record] | None) -> dict[str, Any]:
    """GoTrue's user object, keys in GoTrue's order; starred keys omitted when empty."""
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "aud": row["aud"] or "authenticated",
        "role": row["role"] or "authenticated",
        "email": row["email"] or "",
    }

    def opt(key: str, value: Any) -> None:
        if value not in (None, ""):
            out[key] = value

    opt("email_confirmed_at", ts(row["email_confirmed_at"]))
    opt("invited_at", ts(row["invited_at"]))
    out["phone"] = row["phone"] or ""
    opt("phone_confirmed_at", ts(row["phone_confirmed_at"]))
    opt("confirmation_sent_at", ts(row["confirmation_sent_at"]))
    opt("confirmed_at", ts(row["confirmed_at"]))
    opt("recovery_sent_at", ts(row["recovery_sent_at"]))
    opt("new_email", row["email_change"])
    opt("email_change_sent_at", ts(row["email_change_sent_at"]))
    opt("new_phone", row["phone_change"])
    opt("phone_change_sent_at", ts(row["phone_change_sent_at"]))
    opt("reauthentication_sent_at", ts(row["reauthentication_sent_at"]))
    opt("last_sign_in_at", ts(row["last_sign_in_at"]))
    out["app_metadata"] = _obj(row["raw_app_meta_data"])
    out["user_metadata"] = _obj(row["raw_user_meta_data"])
    out["identities"] = None if identities is None else [identity_json(i) for i in identities]
    out["created_at"] = ts(row["created_at"])
    out["updated_at"] = ts(row["updated_at"])
    opt("banned_until", ts(row["banned_until"]))
    opt("deleted_at", ts(row["deleted_at"]))
    out["is_anonymous"] = bool(row["is_anonymous"])
    return out


async def by_id(conn: asyncpg.Connection, user_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " for update" if lock else ""
    return await conn.fetchrow(f"select * from auth.users where id = $1{suffix}", uuid.UUID(user_id))


async def by_email(conn: asyncpg.Connection, email: str, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " for update" if lock else ""
    return await conn.fetchrow(
        f"select * from auth.users where lower(email) = lower($1) and not is_sso_user"
        f" order by created_at limit 1{suffix}", email)


async def identities(conn: asyncpg.Connection, user_id: Any) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "select * from auth.identities where user_id = $1 order by created_at", _u(user_id)))


def _u(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def create(
    conn: asyncpg.Connection,
    *,
    email: str | None,
    password_hash: str | None,
    user_metadata: dict[str, Any],
    app_metadata: dict[str, Any] | None = None,
    confirmed: bool = False,
    is_anonymous: bool = False,
    invited: bool = False,
    role: str = "authenticated",
    phone: str | None = None,
) -> asyncpg.Record:
    """Insert a user and its email identity (none for anonymous users)."""
    user_id = uuid.uuid4()
    providers = ["email"] if email else []
    app_meta = {"provider": "email" if email else "anonymous" if is_anonymous else "phone",
                "providers": providers or ([] if is_anonymous else ["phone"])}
    if is_anonymous:
        app_meta = {}
    app_meta.update(app_metadata or {})
    row = await conn.fetchrow(
        """insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
               email_confirmed_at, invited_at, raw_app_meta_data, raw_user_meta_data, is_super_admin,
               created_at, updated_at, is_anonymous, phone)
           values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', $2, $3, $4,
                   case when $5 then now() end, case when $6 then now() end, $7::jsonb, $8::jsonb,
                   false, now(), now(), $9, $10)
           returning *""",
        user_id, role, email.lower() if email else None, password_hash or "", confirmed, invited,
        app_meta, user_metadata, is_anonymous, phone,
    )
    if email:
        data = {"sub": str(user_id), "email": email.lower(), "email_verified": False,
                "phone_verified": False}
        for key, value in user_metadata.items():
            data.setdefault(key, value)
        await conn.execute(
            """insert into auth.identities (provider_id, user_id, identity_data, provider,
                   last_sign_in_at, created_at, updated_at)
               values ($1, $2, $3::jsonb, 'email', now(), now(), now())""",
            str(user_id), user_id, data)
    assert row is not None
    return row


async def confirm_email(conn: asyncpg.Connection, user_id: Any) -> None:
    await conn.execute(
        "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()),"
        " confirmation_token = '', updated_at = now() where id = $1", _u(user_id))
    await conn.execute(
        """update auth.identities set identity_data = identity_data || '{"email_verified": true}'::jsonb,
               updated_at = now() where user_id = $1 and provider = 'email'""", _u(user_id))


async def merge_metadata(conn: asyncpg.Connection, user_id: Any, column: str, data: dict[str, Any]) -> None:
    """GoTrue merges top-level keys and drops keys set to null."""
    assert column in ("raw_user_meta_data", "raw_app_meta_data")
    await conn.execute(
        f"""update auth.users set {column} = jsonb_strip_nulls(coalesce({column}, '{{}}'::jsonb) || $2::jsonb),
                updated_at = now() where id = $1""", _u(user_id), data)


async def set_password(conn: asyncpg.Connection, user_id: Any, password_hash: str) -> None:
    await conn.execute("update auth.users set encrypted_password = $2, updated_at = now() where id = $1",
                       _u(user_id), password_hash)


async def change_email(conn: asyncpg.Connection, user_id: Any, new_email: str) -> None:
    """Apply a confirmed email change; an anonymous user becomes a permanent email user."""
    await conn.execute(
        """update auth.users set email = $2, email_change = '', email_change_token_new = '',
               email_change_token_current = '', email_change_confirm_status = 0,
               email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now(),
               raw_app_meta_data = case when is_anonymous
                   then coalesce(raw_app_meta_data, '{}'::jsonb) || '{"provider": "email", "providers": ["email"]}'::jsonb
                   else raw_app_meta_data end,
               is_anonymous = false
           where id = $1""", _u(user_id), new_email.lower())
    await conn.execute(
        """insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
               created_at, updated_at)
           select $1::uuid::text, $1::uuid, jsonb_build_object('sub', $1::uuid::text, 'email', $2::text,
                  'email_verified', true, 'phone_verified', false), 'email', now(), now(), now()
           where not exists (select 1 from auth.identities where user_id = $1::uuid and provider = 'email')""",
        _u(user_id), new_email.lower())
    await conn.execute(
        """update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text,
               'email_verified', true), updated_at = now() where user_id = $1 and provider = 'email'""",
        _u(user_id), new_email.lower())


async def delete(conn: asyncpg.Connection, user_id: Any) -> None:
    await conn.execute("delete from auth.users where id = $1", _u(user_id))


async def audit(conn: asyncpg.Connection, action: str, actor: asyncpg.Record | None, ip: str,
                log_type: str = "account", traits: dict[str, Any] | None = None) -> None:
    payload = {
        "action": action,
        "actor_id": str(actor["id"]) if actor is not None else "00000000-0000-0000-0000-000000000000",
        "actor_username": (actor["email"] or "") if actor is not None else "",
        "actor_via_sso": False,
        "log_type": log_type,
    }
    if traits:
        payload["traits"] = traits
    await conn.execute(
        "insert into auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)"
        " values ('00000000-0000-0000-0000-000000000000', $1, $2::json, now(), $3)",
        uuid.uuid4(), payload, (ip or "")[:64])
