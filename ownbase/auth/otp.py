"""One-time tokens (codes and link hashes) and the mails that carry them.

The database keeps only a keyed hash of GoTrue's link hash; a code is single use (the row is deleted
when consumed) and expires after ``OWNBASE_AUTH_OTP_TTL`` seconds. The per-address mail budget is
counted in Postgres under an advisory lock, so it holds across every ownbase process.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import asyncpg

from ownbase.auth import errors, hooks, users
from ownbase.auth.redirects import allowed
from ownbase.auth.tokens import link_token_hash, new_otp, stored_hash
from ownbase.context import Context
from ownbase.mail import templates
from ownbase.mail.mailer import MailError, Mailer

# verification type -> (one_time_tokens.token_type, auth.users column mirroring it, mail kind)
TOKEN_TYPES = {
    "signup": "confirmation_token",
    "invite": "confirmation_token",
    "magiclink": "recovery_token",
    "recovery": "recovery_token",
    "email_change": "email_change_token_new",
    "email_change_current": "email_change_token_current",
    "reauthentication": "reauthentication_token",
}
# Mails that count against the per-address hourly budget (everything a user can trigger).
BUDGETED = {"confirmation", "magiclink", "recovery", "email_change"}


def _secret(ctx: Context) -> str:
    cached = ctx.state.setdefault("auth", {}).get("otp_secret")
    if cached is None:
        cached = ctx.keys.derive_secret("auth-otp")
        ctx.state["auth"]["otp_secret"] = cached
    return cached


def mailer(ctx: Context) -> Mailer:
    m = ctx.state.setdefault("auth", {}).get("mailer")
    if m is None:
        m = Mailer(ctx.settings, ctx.db.owner)
        ctx.state["auth"]["mailer"] = m
    return m


def budget_key(ctx: Context, address: str) -> str:
    """The budget table's key for an address: a keyed hash, so the table never names anyone (it
    also counts attempts for addresses that have no account)."""
    return stored_hash(_secret(ctx), "mail-budget:" + address.lower())


async def check_budget(conn: asyncpg.Connection, ctx: Context, address: str, kind: str,
                       user: asyncpg.Record | None) -> None:
    """Refuse with 429 when the address used up its hourly budget; otherwise record this send.

    Called for unknown addresses too (``user`` None, nothing is mailed), so that the 429 does not
    tell registered addresses from unknown ones."""
    s = ctx.settings
    key = budget_key(ctx, address)
    await conn.execute("select pg_advisory_xact_lock(hashtext('ownbase-auth-mail:' || $1))", key)
    if s.auth_email_send_interval > 0:
        last = await conn.fetchval(
            "select max(sent_at) from ownbase.auth_email_sends where address = $1", key)
        if last is not None:
            wait = s.auth_email_send_interval - (datetime.now(timezone.utc) - last).total_seconds()
            if wait > 0:
                raise errors.send_interval(int(wait) + 1)
    if s.auth_otp_max_per_hour > 0 and kind in BUDGETED:
        count = await conn.fetchval(
            "select count(*) from ownbase.auth_email_sends where address = $1"
            " and sent_at > now() - interval '1 hour'", key)
        if count >= s.auth_otp_max_per_hour:
            raise errors.email_rate_limited()
    await conn.execute("insert into ownbase.auth_email_sends (address, kind) values ($1, $2)", key, kind)
    # Keep the table small: only the last hour (and the send interval) matter. Look at the 50
    # oldest rows only, so the cleanup costs the same however large the table is.
    await conn.execute(
        """delete from ownbase.auth_email_sends where id in (
             select id from (select id, sent_at from ownbase.auth_email_sends order by id limit 50) oldest
              where sent_at < now() - interval '1 day')""")


async def issue(conn: asyncpg.Connection, ctx: Context, user_id: Any, token_type: str,
                relates_to: str, length: int | None = None, code: str | None = None) -> tuple[str, str]:
    """Create (replace) the user's token of this type; return (code, link token hash)."""
    code = code or new_otp(length or ctx.settings.auth_otp_length)
    token_hash = link_token_hash(relates_to, code)
    await conn.execute(
        """insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to, created_at, updated_at)
           values ($1, $2, $3, $4, $5, now() at time zone 'utc', now() at time zone 'utc')
           on conflict (user_id, token_type) do update set token_hash = excluded.token_hash,
               relates_to = excluded.relates_to, created_at = excluded.created_at,
               updated_at = excluded.updated_at""",
        uuid.uuid4(), users._u(user_id), token_type, stored_hash(_secret(ctx), token_hash),
        relates_to.lower())
    return code, token_hash


async def consume(conn: asyncpg.Connection, ctx: Context, token_types: tuple[str, ...], *,
                  email: str | None = None, code: str | None = None,
                  token_hash: str | None = None, ttl: int | None = None) -> asyncpg.Record | None:
    """Find and delete a matching unexpired token; return its row (user_id, token_type, relates_to)."""
    if token_hash is None:
        assert email is not None and code is not None
        token_hash = link_token_hash(email, code)
    hashed = stored_hash(_secret(ctx), token_hash.lower())
    args: list[Any] = [hashed, list(token_types)]
    where = "token_hash = $1 and token_type = any($2::text[])"
    if email is not None:
        args.append(email.lower())
        where += " and relates_to = $3"
    row = await conn.fetchrow(f"delete from auth.one_time_tokens where {where} returning *", *args)
    if row is None:
        return None
    created = row["created_at"].replace(tzinfo=timezone.utc)
    if created + timedelta(seconds=ttl or ctx.settings.auth_otp_ttl) < datetime.now(timezone.utc):
        return None
    return row


def redirect_target(ctx: Context, requested: str | None) -> str:
    """``redirect_to`` if the allow-list (or the site URL's origin) permits it, else the site URL."""
    if requested and allowed(ctx.settings, requested):
        return requested
    return ctx.settings.site_url


def action_link(ctx: Context, token_hash: str, vtype: str, redirect_to: str) -> str:
    # Built from configured URLs only, never from request headers (GHSA-3529-5m8x-rpv3).
    query = urlencode({"token": token_hash, "type": vtype, "redirect_to": redirect_to})
    return f"{ctx.settings.api_url}/auth/v1/verify?{query}"


async def prepare(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, vtype: str, *,
                  redirect_to: str | None, to: str | None = None, token_type: str | None = None,
                  pkce: bool = False) -> dict[str, str]:
    """Issue a token of ``vtype`` for ``user`` and build its link (no mail: generate_link uses this)."""
    address = (to or user["email"] or "").lower()
    token_type = token_type or TOKEN_TYPES[vtype]
    code, token_hash = await issue(conn, ctx, user["id"], token_type, address)
    link_token = ("pkce_" + token_hash) if pkce else token_hash
    target = redirect_target(ctx, redirect_to)
    return {"code": code, "token_hash": token_hash, "link": action_link(ctx, link_token, vtype, target),
            "redirect_to": target, "type": vtype, "to": address}


KIND_VTYPE = {"confirmation": "signup", "magiclink": "magiclink", "recovery": "recovery",
              "email_change": "email_change", "invite": "invite", "reauthentication": "reauthentication"}
SENT_AT = {"confirmation": "confirmation_sent_at", "invite": "invite_sent", "magiclink": "recovery_sent_at",
           "recovery": "recovery_sent_at", "email_change": "email_change_sent_at",
           "reauthentication": "reauthentication_sent_at"}


async def send(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, kind: str, *,
               redirect_to: str | None, to: str | None = None, token_type: str | None = None,
               budget: bool = True, pkce: bool = False) -> dict[str, str]:
    """Issue a token, send the ``kind`` mail with link + code, stamp the user's *_sent_at column."""
    address = (to or user["email"] or "").lower()
    if budget:
        await check_budget(conn, ctx, address, kind, user)
    info = await prepare(conn, ctx, user, KIND_VTYPE[kind], redirect_to=redirect_to, to=address,
                         token_type=token_type, pkce=pkce)
    message = templates.render(ctx.settings, kind, address, {
        "ConfirmationURL": info["link"], "Token": info["code"], "TokenHash": info["token_hash"],
        "RedirectTo": info["redirect_to"],
        "NewEmail": (user["email_change"] or address) if kind == "email_change" else "",
        "Email": user["email"] or address, "Data": users._obj(user["raw_user_meta_data"]),
    })
    column = SENT_AT[kind]
    if column == "invite_sent":
        await conn.execute("update auth.users set invited_at = now(), confirmation_sent_at = now()"
                           " where id = $1", user["id"])
    else:
        await conn.execute(f"update auth.users set {column} = now() where id = $1", user["id"])
    if hooks.configured(ctx, "send_email") is not None:
        # The hook replaces the mail backend (the budget above still applies).
        fresh = await users.by_id(conn, str(user["id"]))
        assert fresh is not None
        await hooks.send_email(conn, ctx, users.user_json(fresh, await users.identities(conn, fresh["id"])), {
            "token": info["code"], "token_hash": ("pkce_" if pkce else "") + info["token_hash"],
            "redirect_to": info["redirect_to"], "email_action_type": KIND_VTYPE[kind],
            "site_url": ctx.settings.site_url, "old_email": (user["email"] or "") if kind == "email_change" else "",
            "provider": "email"})
        return info
    try:
        await mailer(ctx).send(message)
    except MailError:
        # GoTrue's reply; the transaction (user, token) rolls back, the outbox row says why.
        label = {"confirmation": "confirmation", "magiclink": "magic link", "recovery": "recovery",
                 "email_change": "email change", "invite": "invite",
                 "reauthentication": "reauthentication"}[kind]
        raise errors.AuthError(500, "unexpected_failure", f"Error sending {label} email") from None
    return info
