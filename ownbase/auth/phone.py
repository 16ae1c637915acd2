"""The phone provider: sign-up and sign-in with phone + password or SMS codes, phone change, resend.

Numbers are stored as GoTrue stores them: E.164 digits without the ``+``. Codes live in
``auth.one_time_tokens`` as keyed hashes of GoTrue's SHA-224 token hash (``confirmation_token``
for sign-up/sign-in, ``phone_change_token`` for a change), single use, valid
``OWNBASE_AUTH_SMS_OTP_TTL`` seconds. Sending checks GoTrue's per-user interval, then the
per-number and project-wide hourly budgets, then hands the text to the send-SMS hook or the SMS
backend (ownbase/sms).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg
from starlette.requests import Request

from ownbase.auth import errors, hooks, otp, sessions, users
from ownbase.auth.passwords import hash_password
from ownbase.auth.rules import banned, normalize_phone, pkce_params, user_agent
from ownbase.auth.tokens import stored_hash
from ownbase.auth.web import client_ip
from ownbase.context import Context
from ownbase.settings import Settings
from ownbase.sms.sender import Sms, SmsError, SmsSender

TOKEN_TYPE = {"confirmation": "confirmation_token", "phone_change": "phone_change_token",
              "reauthentication": "reauthentication_token"}
SENT_AT = {"confirmation": "confirmation_sent_at", "phone_change": "phone_change_sent_at",
           "reauthentication": "reauthentication_sent_at"}
_CODE = re.compile(r"\{\{\s*\.Code\s*\}\}")
CHANNEL_ERROR = ("Invalid channel, supported values are 'sms' or 'whatsapp'. 'whatsapp' is only supported if "
                 "Twilio or Twilio Verify is used as the provider.")


def test_otps(settings: Settings) -> dict[str, str]:
    """GoTrue's test numbers: {number: fixed code} while OWNBASE_AUTH_SMS_TEST_OTP_VALID_UNTIL has not
    passed. ValueError for a malformed setting (checked at start-up)."""
    if not settings.auth_sms_test_otp.strip():
        return {}
    if settings.auth_sms_test_otp_valid_until:
        until = datetime.fromisoformat(settings.auth_sms_test_otp_valid_until.replace("Z", "+00:00"))
        if until.tzinfo is None:
            raise ValueError("OWNBASE_AUTH_SMS_TEST_OTP_VALID_UNTIL: needs a time zone (RFC 3339)")
        if until < datetime.now(timezone.utc):
            return {}
    found: dict[str, str] = {}
    for pair in (p.strip() for p in settings.auth_sms_test_otp.split(",") if p.strip()):
        number, _, code = pair.partition(":")
        digits = number.replace(" ", "").removeprefix("+")
        if not digits.isdigit() or not code.strip().isdigit():
            raise ValueError("OWNBASE_AUTH_SMS_TEST_OTP: expected <phone>:<code>,<phone>:<code>")
        found[digits] = code.strip()
    return found


def validate(settings: Settings) -> None:
    test_otps(settings)


def sender(ctx: Context) -> SmsSender:
    state = ctx.state.setdefault("auth", {})
    if "sms" not in state:
        state["sms"] = SmsSender(ctx.settings, ctx.db.owner)
    return state["sms"]  # type: ignore[no-any-return]


def check_channel(ctx: Context, data: dict[str, Any]) -> None:
    channel = data.get("channel")
    if channel in (None, "", "sms"):
        return
    hook_on = hooks.configured(ctx, "send_sms") is not None
    if hook_on or (channel == "whatsapp" and ctx.settings.auth_sms_provider == "twilio"):
        return
    raise errors.validation(CHANNEL_ERROR)


def login_number(value: str) -> str:
    """The password grant only drops one leading + and spaces (no E.164 check), as GoTrue."""
    digits = value.replace(" ", "")
    return digits[1:] if digits.startswith("+") else digits


async def by_phone(conn: asyncpg.Connection, number: str, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " for update" if lock else ""
    return await conn.fetchrow(f"select * from auth.users where phone = $1{suffix}", number)


async def _identity(conn: asyncpg.Connection, user_id: Any, extra: dict[str, Any]) -> None:
    """Create the user's phone identity (provider_id = user id), or merge ``extra`` into it."""
    uid = users._u(user_id)
    data = {"sub": str(uid), "email_verified": False, "phone_verified": False, **extra}
    await conn.execute(
        """insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
               created_at, updated_at)
           select $1::uuid::text, $1::uuid, $2::jsonb, 'phone', now(), now(), now()
           where not exists (select 1 from auth.identities where user_id = $1::uuid and provider = 'phone')""",
        uid, data)
    await conn.execute(
        """update auth.identities set identity_data = identity_data || $2::jsonb, updated_at = now()
           where user_id = $1 and provider = 'phone'""", uid, extra)


async def _confirm(conn: asyncpg.Connection, user_id: Any) -> None:
    await conn.execute(
        """update auth.users set phone_confirmed_at = coalesce(phone_confirmed_at, now()), is_anonymous = false,
               updated_at = now() where id = $1""", users._u(user_id))
    await _identity(conn, user_id, {"phone_verified": True})


async def _change(conn: asyncpg.Connection, user_id: Any, number: str) -> None:
    if await conn.fetchval("select 1 from auth.users where phone = $1 and id <> $2", number, users._u(user_id)):
        raise errors.phone_exists()
    await conn.execute(
        """update auth.users set phone = $2, phone_change = '', phone_change_token = '',
               phone_confirmed_at = now(), is_anonymous = false, updated_at = now()
           where id = $1""", users._u(user_id), number)
    await _add_provider(conn, user_id)
    await _identity(conn, user_id, {"phone": number, "phone_verified": True})


async def _add_provider(conn: asyncpg.Connection, user_id: Any) -> None:
    """List "phone" in app_metadata.providers (once), as GoTrue does for a user with a phone identity."""
    await conn.execute(
        """update auth.users set raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'::jsonb),
               '{providers}', (select coalesce(jsonb_agg(distinct p), '[]'::jsonb) from jsonb_array_elements_text(
                   coalesce(raw_app_meta_data->'providers', '[]'::jsonb) || '["phone"]'::jsonb) p))
           where id = $1""", users._u(user_id))


async def _new_user(conn: asyncpg.Connection, number: str, password_hash: str | None, meta: dict[str, Any],
                    ip: str) -> asyncpg.Record:
    try:
        user = await users.create(conn, email=None, password_hash=password_hash, user_metadata=meta, phone=number)
    except asyncpg.UniqueViolationError:
        raise errors.user_already_exists() from None
    await _identity(conn, user["id"], {key: value for key, value in meta.items()
                                       if key not in ("sub", "email_verified", "phone_verified")})
    await users.audit(conn, "user_signedup", user, ip, "team", {"provider": "phone"})
    return user


async def admin_created(conn: asyncpg.Connection, user_id: Any, meta: dict[str, Any], *, confirmed: bool) -> None:
    """POST /admin/users with a phone: the phone identity, confirmed with ``phone_confirm: true``."""
    await _identity(conn, user_id, {key: value for key, value in meta.items()
                                    if key not in ("sub", "email_verified", "phone_verified")})
    await _add_provider(conn, user_id)
    if confirmed:
        await _confirm(conn, user_id)


# --- sending ---------------------------------------------------------------------------------

async def _budget(conn: asyncpg.Connection, ctx: Context, number: str) -> None:
    """Per-number and project-wide hourly SMS budgets, counted in Postgres (all processes).
    Also called for numbers with nothing to send, so a 429 tells nothing about the number."""
    s = ctx.settings
    key = stored_hash(otp._secret(ctx), "sms-budget:" + number)
    await conn.execute("select pg_advisory_xact_lock(hashtext('ownbase-auth-sms:' || $1))", key)
    if s.auth_sms_max_per_number_per_hour > 0:
        count = await conn.fetchval("select count(*) from ownbase.auth_sms_sends where number_key = $1"
                                    " and sent_at > now() - interval '1 hour'", key)
        if count >= s.auth_sms_max_per_number_per_hour:
            raise errors.sms_rate_limited()
    if s.auth_sms_max_per_hour > 0 and not s.auth_sms_autoconfirm:
        count = await conn.fetchval(
            "select count(*) from ownbase.auth_sms_sends where sent_at > now() - interval '1 hour'")
        if count >= s.auth_sms_max_per_hour:
            raise errors.sms_rate_limited()
    await conn.execute("insert into ownbase.auth_sms_sends (number_key) values ($1)", key)
    await conn.execute(
        """delete from ownbase.auth_sms_sends where id in (
             select id from (select id, sent_at from ownbase.auth_sms_sends order by id limit 50) oldest
              where sent_at < now() - interval '1 day')""")


async def send_code(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, kind: str, number: str,
                    ip: str = "") -> str:
    """Issue a ``kind`` code for ``number`` and text it; return the provider's message id."""
    s = ctx.settings
    last = user[SENT_AT[kind]]
    if s.auth_sms_max_frequency > 0 and last is not None:
        last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
        wait = s.auth_sms_max_frequency - (datetime.now(timezone.utc) - last).total_seconds()
        if wait > 0:
            raise errors.sms_rate_limited(int(wait) + 1)
    fixed = test_otps(s).get(number)
    if fixed is not None:  # a test number: its fixed code, no SMS, no budget (as GoTrue)
        await otp.issue(conn, ctx, user["id"], TOKEN_TYPE[kind], number, code=fixed)
        await conn.execute(f"update auth.users set {SENT_AT[kind]} = now() where id = $1", user["id"])
        return "test-otp"
    await _budget(conn, ctx, number)
    code, _ = await otp.issue(conn, ctx, user["id"], TOKEN_TYPE[kind], number, length=s.auth_sms_otp_length)
    await conn.execute(f"update auth.users set {SENT_AT[kind]} = now() where id = $1", user["id"])
    if hooks.configured(ctx, "send_sms") is not None:
        fresh = await users.by_id(conn, str(user["id"]))
        assert fresh is not None
        await hooks.send_sms(conn, ctx, users.user_json(fresh, await users.identities(conn, fresh["id"])),
                             code, number, ip=ip)
        return ""
    try:
        return await sender(ctx).send(Sms(to="+" + number, body=_CODE.sub(code, s.auth_sms_template), kind=kind))
    except SmsError as exc:
        raise errors.AuthError(422, "sms_send_failed", f"Error sending {kind} OTP to provider: {exc}") from None


def _sent(message_id: str) -> dict[str, Any]:
    return {"message_id": message_id} if message_id else {}


# --- routes (called by signup, grants, mails, verify and account when the provider is on) -----

async def signup(request: Request, ctx: Context, data: dict[str, Any], phone: str, password: str,
                 meta: dict[str, Any]) -> Any:
    s = ctx.settings
    check_channel(ctx, data)
    if pkce_params(data) is not None:
        raise errors.validation("PKCE not supported for phone signups")
    number = normalize_phone(phone)
    hashed = await hash_password(password, s.auth_bcrypt_cost)
    ip = client_ip(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await by_phone(conn, number, lock=True)
        if user is not None and user["phone_confirmed_at"] is not None:
            if s.auth_sms_autoconfirm or s.auth_autoconfirm:
                raise errors.user_already_exists()
            await users.audit(conn, "user_repeated_signup", user, ip, "user")
            await _budget(conn, ctx, number)  # counts like a real send: no enumeration by 429
            return _fake_user(number)
        if user is None:
            user = await _new_user(conn, number, hashed, meta, ip)
        else:  # unconfirmed: the new sign-up's password and data win, the code goes out again
            await users.set_password(conn, user["id"], hashed)
            await users.merge_metadata(conn, user["id"], "raw_user_meta_data", meta)
        if s.auth_sms_autoconfirm:
            await _confirm(conn, user["id"])
            fresh = await users.by_id(conn, str(user["id"]))
            assert fresh is not None
            await users.audit(conn, "login", fresh, ip, "account", {"provider": "phone"})
            return await sessions.create(conn, ctx, fresh, "password", ip=ip, user_agent=user_agent(request))
        await send_code(conn, ctx, user, "confirmation", number, ip)
        await users.audit(conn, "user_confirmation_requested", user, ip, "user")
        fresh = await users.by_id(conn, str(user["id"]))
        assert fresh is not None
        return users.user_json(fresh, await users.identities(conn, fresh["id"]))


def _fake_user(number: str) -> dict[str, Any]:
    now = users.ts(datetime.now(timezone.utc))
    return {"id": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated", "email": "",
            "phone": number, "confirmation_sent_at": now,
            "app_metadata": {"provider": "phone", "providers": ["phone"]}, "user_metadata": {},
            "identities": [], "created_at": now, "updated_at": now, "is_anonymous": False}


async def otp_signin(request: Request, ctx: Context, data: dict[str, Any], number: str,
                     meta: dict[str, Any]) -> Any:
    """POST /otp with a phone: sign-up (new or unconfirmed number) or sign-in code by SMS."""
    s = ctx.settings
    check_channel(ctx, data)
    ip = client_ip(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        user = await by_phone(conn, number, lock=True)
        if user is None:
            if data.get("create_user", True) is False:
                raise errors.otp_disabled()
            if s.auth_disable_signup:
                raise errors.signup_disabled()
            user = await _new_user(conn, number, None, meta, ip)
        confirmed = user["phone_confirmed_at"] is not None
        if not confirmed and s.auth_sms_autoconfirm:
            await _confirm(conn, user["id"])
        message_id = await send_code(conn, ctx, user, "confirmation", number, ip)
    return _sent(message_id) if confirmed or s.auth_sms_autoconfirm else {}


async def password_user(conn: asyncpg.Connection, phone: str) -> asyncpg.Record | None:
    return await by_phone(conn, login_number(phone))


def check_confirmed(ctx: Context, user: asyncpg.Record) -> None:
    if user["phone_confirmed_at"] is None and not ctx.settings.auth_sms_autoconfirm:
        raise errors.phone_not_confirmed()


async def verify(request: Request, ctx: Context, vtype: str, code: str, phone: str) -> Any:
    """POST /verify type sms or phone_change: consume the code, apply it, start a session."""
    number = normalize_phone(phone)
    if not code:
        raise errors.otp_expired()
    ip = client_ip(request)
    kind = "confirmation" if vtype == "sms" else "phone_change"
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        row = await otp.consume(conn, ctx, (TOKEN_TYPE[kind],), email=number, code=code.strip(),
                                ttl=ctx.settings.auth_sms_otp_ttl)
        if row is None:
            raise errors.otp_expired()
        user = await users.by_id(conn, str(row["user_id"]), lock=True)
        if user is None:
            raise errors.otp_expired()
        if banned(user):
            raise errors.AuthError(403, "user_banned", "User is banned")
        if kind == "confirmation":
            if user["phone"] != number:
                raise errors.otp_expired()
            await _confirm(conn, user["id"])
            await users.audit(conn, "user_signedup" if user["phone_confirmed_at"] is None else "login", user, ip,
                              "team" if user["phone_confirmed_at"] is None else "account", {"provider": "phone"})
        else:
            if user["phone_change"] != number:
                raise errors.otp_expired()
            await _change(conn, user["id"], number)
            await users.audit(conn, "user_modified", user, ip, "user")
        fresh = await users.by_id(conn, str(user["id"]))
        assert fresh is not None
        return await sessions.create(conn, ctx, fresh, "otp", ip=ip, user_agent=user_agent(request))


async def resend(request: Request, ctx: Context, vtype: str, phone: str) -> Any:
    number = normalize_phone(phone)
    ip = client_ip(request)
    async with ctx.db.owner.acquire() as conn, conn.transaction():
        if vtype == "sms":
            user = await by_phone(conn, number, lock=True)
            if user is not None and user["phone_confirmed_at"] is None:
                return _sent(await send_code(conn, ctx, user, "confirmation", number, ip))
        else:
            user = await conn.fetchrow("select * from auth.users where phone_change = $1 for update", number)
            if user is not None:
                return _sent(await send_code(conn, ctx, user, "phone_change", number, ip))
        await _budget(conn, ctx, number)  # nothing pending: the attempt counts all the same
    return {}


async def request_change(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, number: str,
                         ip: str) -> None:
    """PUT /user {phone}: text a code to the new number (or change at once under SMS autoconfirm)."""
    if number == (user["phone"] or ""):
        return
    if await conn.fetchval("select 1 from auth.users where phone = $1 and id <> $2", number, user["id"]):
        raise errors.phone_exists()
    if ctx.settings.auth_sms_autoconfirm:
        await _change(conn, user["id"], number)
        return
    await conn.execute("update auth.users set phone_change = $2, updated_at = now() where id = $1",
                       user["id"], number)
    changed = await users.by_id(conn, str(user["id"]))
    assert changed is not None
    await send_code(conn, ctx, changed, "phone_change", number, ip)
