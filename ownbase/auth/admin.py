"""GoTrue's admin API (service-role key only): users CRUD, generate_link, invite."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ownbase.auth import errors, otp, users
from ownbase.auth import phone as phones
from ownbase.auth.rules import check_password, normalize_phone
from ownbase.auth.passwords import hash_password
from ownbase.auth.web import admin_caller, body, client_ip, ctx_of, obj, string

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_ban(value: str) -> datetime | None:
    """``none`` lifts a ban; otherwise a Go duration such as ``24h`` or ``1h30m``."""
    if value == "none":
        return None
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise errors.validation("invalid format for ban duration: " + value)
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def _user_id(request: Request) -> str:
    value = request.path_params["user_id"]
    if not users.is_uuid(value):
        raise errors.validation("user_id must be an UUID", 404)
    return str(value)


async def _reply(conn: asyncpg.Connection, user_id: Any) -> dict[str, Any]:
    user = await users.by_id(conn, str(user_id))
    assert user is not None
    return users.user_json(user, await users.identities(conn, user["id"]))


async def create_user(request: Request) -> Any:
    ctx = ctx_of(request)
    admin_caller(request)
    data = await body(request)
    email, phone, password = string(data, "email"), string(data, "phone"), string(data, "password")
    if not email and not phone:
        raise errors.validation("Cannot create a user without either an email or phone")
    number = normalize_phone(phone) if phone else ""
    if number and not ctx.settings.auth_phone_enabled:
        raise errors.phone_disabled("signups")
    if (email or not number) and not users.valid_email(email):
        raise errors.validation("Unable to validate email address: invalid format")
    if password:
        check_password(ctx, password)
    meta = obj(data, "user_metadata") or obj(data, "data")
    app_meta = obj(data, "app_metadata")
    role = string(data, "role") or "authenticated"
    hashed = await hash_password(password, ctx.settings.auth_bcrypt_cost) if password else None
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        if email and await users.by_email(conn, email) is not None:
            raise errors.email_exists()
        if number and await phones.by_phone(conn, number) is not None:
            raise errors.phone_exists()
        try:
            user = await users.create(conn, email=email or None, password_hash=hashed, user_metadata=meta,
                                      app_metadata=app_meta, confirmed=data.get("email_confirm") is True,
                                      role=role, phone=number or None)
        except asyncpg.UniqueViolationError:
            raise (errors.email_exists() if email else errors.phone_exists()) from None
        if number:
            await phones.admin_created(conn, user["id"], meta, confirmed=data.get("phone_confirm") is True)
        if isinstance(data.get("ban_duration"), str):
            await conn.execute("update auth.users set banned_until = $2 where id = $1", user["id"],
                               parse_ban(data["ban_duration"]))
        if data.get("email_confirm") is True:
            await users.confirm_email(conn, user["id"])
        await users.audit(conn, "user_signedup", user, client_ip(request), "team",
                          {"provider": "email" if email else "phone"})
        return await _reply(conn, user["id"])


_UINT64_MAX = 2**64 - 1


def _go_quote(raw: str) -> str:
    return '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _page_param(request: Request, name: str, default: int) -> int:
    """GoTrue parses page/per_page with strconv.ParseUint: ASCII digits only, at most 2**64-1."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        reason = "invalid syntax"
    elif len(raw.lstrip("0")) > 20 or int(raw) > _UINT64_MAX:  # length first: int() of huge text is slow
        reason = "value out of range"
    else:
        return int(raw)
    raise errors.validation(f"Bad Pagination Parameters: strconv.ParseUint: parsing {_go_quote(raw)}: {reason}")


async def list_users(request: Request) -> Response:
    ctx = ctx_of(request)
    admin_caller(request)
    page = max(1, _page_param(request, "page", 1))
    per_page = _page_param(request, "per_page", 50) or 50
    per_page = min(per_page, 1000)
    flt = request.query_params.get("filter", "")
    if "\x00" in flt:
        raise errors.validation("Bad Pagination Parameters: filter contains a NUL character")
    where, args = "", []
    if flt:
        where = (" where email ilike $1 or raw_user_meta_data->>'full_name' ilike $1")
        args.append("%" + flt.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    offset = (page - 1) * per_page
    async with ctx.db.owner.acquire() as conn:
        total = await conn.fetchval(f"select count(*) from auth.users{where}", *args)
        rows = []
        if offset < total:  # past the end (even past bigint): an empty page, no query
            n = len(args)
            rows = await conn.fetch(
                f"select * from auth.users{where} order by created_at desc, id desc"
                f" limit ${n + 1} offset ${n + 2}", *args, per_page, offset)
    headers = {"x-total-count": str(total)}
    base = f"{ctx.settings.api_url}/auth/v1/admin/users"
    last = max(1, -(-total // per_page))
    links = []
    if page < last:
        links.append(f'<{base}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
    links.append(f'<{base}?{urlencode({"page": last, "per_page": per_page})}>; rel="last"')
    headers["link"] = ", ".join(links)
    return JSONResponse({"users": [users.user_json(r, None) for r in rows], "aud": "authenticated"},
                        headers=headers)


async def get_user(request: Request) -> Any:
    ctx = ctx_of(request)
    admin_caller(request)
    user_id = _user_id(request)
    async with ctx.db.owner.acquire() as conn:
        if await users.by_id(conn, user_id) is None:
            raise errors.user_not_found(admin=True)
        return await _reply(conn, user_id)


async def update_user(request: Request) -> Any:
    ctx = ctx_of(request)
    admin_caller(request)
    user_id = _user_id(request)
    data = await body(request)
    email, password = string(data, "email"), string(data, "password")
    if password:
        check_password(ctx, password)
    hashed = await hash_password(password, ctx.settings.auth_bcrypt_cost) if password else None
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_id(conn, user_id, lock=True)
        if user is None:
            raise errors.user_not_found(admin=True)
        if email and email.lower() != (user["email"] or ""):
            if not users.valid_email(email):
                raise errors.validation("Unable to validate email address: invalid format")
            if await users.by_email(conn, email) is not None:
                raise errors.email_exists()
            await users.change_email(conn, user["id"], email)
        if hashed:
            await users.set_password(conn, user["id"], hashed)
        if data.get("email_confirm") is True:
            await users.confirm_email(conn, user["id"])
        if "user_metadata" in data:
            await users.merge_metadata(conn, user["id"], "raw_user_meta_data", obj(data, "user_metadata"))
        if "app_metadata" in data:
            await users.merge_metadata(conn, user["id"], "raw_app_meta_data", obj(data, "app_metadata"))
        if string(data, "role"):
            await conn.execute("update auth.users set role = $2 where id = $1", user["id"], data["role"])
        if isinstance(data.get("ban_duration"), str):
            until = parse_ban(data["ban_duration"])
            await conn.execute("update auth.users set banned_until = $2, updated_at = now() where id = $1",
                               user["id"], until)
            if until is not None:
                await conn.execute("delete from auth.sessions where user_id = $1", user["id"])
        await users.audit(conn, "user_modified", user, client_ip(request), "user")
        return await _reply(conn, user["id"])


async def delete_user(request: Request) -> Any:
    ctx = ctx_of(request)
    admin_caller(request)
    user_id = _user_id(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_id(conn, user_id, lock=True)
        if user is None:
            raise errors.user_not_found(admin=True)
        await users.delete(conn, user_id)
        await users.audit(conn, "user_deleted", user, client_ip(request), "team")
    return {}


async def invite(request: Request) -> Any:
    ctx = ctx_of(request)
    admin_caller(request)
    data = await body(request)
    email = string(data, "email")
    if not users.valid_email(email):
        raise errors.validation("Unable to validate email address: invalid format")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_email(conn, email, lock=True)
        if user is not None and user["email_confirmed_at"] is not None:
            raise errors.email_exists()
        if user is None:
            user = await users.create(conn, email=email, password_hash=None, user_metadata=obj(data, "data"),
                                      invited=True)
        await otp.send(conn, ctx, user, "invite", redirect_to=request.query_params.get("redirect_to"),
                       budget=False)
        await users.audit(conn, "user_invited", user, client_ip(request), "team")
        return await _reply(conn, user["id"])


LINK_TYPES = {"signup": "signup", "invite": "invite", "magiclink": "magiclink", "recovery": "recovery",
              "email_change_current": "email_change", "email_change_new": "email_change"}


async def generate_link(request: Request) -> Any:
    ctx = ctx_of(request)
    admin_caller(request)
    data = await body(request)
    ltype, email = string(data, "type"), string(data, "email")
    if ltype not in LINK_TYPES:
        raise errors.validation("Invalid email action link type requested: " + ltype)
    if not users.valid_email(email):
        raise errors.validation("Unable to validate email address: invalid format")
    redirect_to = string(data, "redirect_to") or request.query_params.get("redirect_to")
    meta = obj(data, "data")
    password = string(data, "password")
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await users.by_email(conn, email, lock=True)
        to = None
        token_type = None
        if ltype == "signup":
            if user is not None and user["email_confirmed_at"] is not None:
                raise errors.email_exists()
            if user is None:
                if not password:
                    raise errors.validation("Signup requires a valid password")
                check_password(ctx, password)
                hashed = await hash_password(password, ctx.settings.auth_bcrypt_cost)
                user = await users.create(conn, email=email, password_hash=hashed, user_metadata=meta)
        elif ltype == "invite":
            if user is not None and user["email_confirmed_at"] is not None:
                raise errors.email_exists()
            if user is None:
                user = await users.create(conn, email=email, password_hash=None, user_metadata=meta,
                                          invited=True)
        elif ltype == "magiclink":
            if user is None:
                user = await users.create(conn, email=email, password_hash=None, user_metadata=meta)
        elif ltype == "recovery":
            if user is None:
                raise errors.AuthError(404, "user_not_found", "User with this email not found")
        else:
            if user is None:
                raise errors.AuthError(404, "user_not_found", "User with this email not found")
            new_email = string(data, "new_email")
            if not users.valid_email(new_email):
                raise errors.validation("Unable to validate email address: invalid format")
            if await users.by_email(conn, new_email) is not None:
                raise errors.email_exists()
            await conn.execute("update auth.users set email_change = $2 where id = $1", user["id"],
                               new_email.lower())
            if ltype == "email_change_new":
                to = new_email
            else:
                to, token_type = user["email"], "email_change_token_current"
        info = await otp.prepare(conn, ctx, user, LINK_TYPES[ltype], redirect_to=redirect_to, to=to,
                                 token_type=token_type)
        reply = await _reply(conn, user["id"])
    # The link itself says type=email_change (what /verify takes, as GoTrue's links do); the reply
    # names the type asked for, which is what supabase-js/-py validate.
    reply.update({"action_link": info["link"], "email_otp": info["code"], "hashed_token": info["token_hash"],
                  "verification_type": ltype, "redirect_to": info["redirect_to"]})
    return reply
