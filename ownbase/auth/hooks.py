"""Auth hooks as Supabase defines them: a PostgreSQL function or an HTTP endpoint that GoTrue calls
at fixed points (access-token issue, sending mail/SMS, password and MFA verification attempts).

Configured by ``OWNBASE_AUTH_HOOK_<NAME>_URI`` (``pg-functions://<any>/<schema>/<function>``, an
``https://`` URL, or ``http://`` on a loopback host) and ``..._SECRETS`` (Standard Webhooks
``v1,whsec_<base64>`` secrets, ``|``-separated). Payloads, answers and errors follow GoTrue: a hook
may answer ``{"error": {"http_code": n, "message": m}}`` and the client gets HTTP n with message m.

The MFA code calls :func:`mfa_verification_attempt` through its hook point after checking a code
(installed by lifecycle.startup; see docs/auth.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from standardwebhooks import Webhook

from ownbase.auth import errors
from ownbase.context import Context
from ownbase.settings import Settings

log = logging.getLogger("ownbase.auth")
# setting stem -> GoTrue's hook name in the payload metadata
HOOKS = {
    "custom_access_token": "customize-access-token",
    "send_email": "send-email",
    "send_sms": "send-sms",
    "password_verification_attempt": "password-verification",
    "mfa_verification_attempt": "mfa-verification",
}
_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,62}")
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "host.docker.internal")
HTTP_DEADLINE = 5.0  # seconds for the whole HTTP call, all attempts (GoTrue's)
HTTP_ATTEMPTS = 3
HTTP_BACKOFF = 2.0
MAX_RESPONSE = 200 * 1024
PG_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class Hook:
    name: str  # setting stem, e.g. custom_access_token
    uri: str
    secrets: tuple[str, ...]  # the whsec_ parts of the v1 secrets
    function: tuple[str, str] | None  # (schema, function) for pg-functions://


def parse(name: str, uri: str, secrets: str) -> Hook:
    """Check one hook's settings; ValueError says what is wrong."""
    function = None
    if uri.startswith("pg-functions://"):
        parts = uri[len("pg-functions://"):].split("/")
        if len(parts) != 3 or not all(_IDENT.fullmatch(p) for p in parts[1:]):
            raise ValueError("expected pg-functions://<database>/<schema>/<function>")
        function = (parts[1], parts[2])
    else:
        split = urlsplit(uri)
        if split.scheme == "http" and split.hostname not in _LOOPBACK:
            raise ValueError("http:// hooks are only allowed on localhost; use https://")
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ValueError("expected pg-functions://..., https://... or http://localhost...")
    keys: list[str] = []
    for item in (p.strip() for p in secrets.split("|") if p.strip()):
        version, _, key = item.partition(",")
        if version == "v1a":
            continue  # asymmetric secrets: accepted, never used for signing (as GoTrue)
        if version != "v1" or not key.startswith("whsec_"):
            raise ValueError("secrets must look like v1,whsec_<base64>")
        try:
            Webhook(key)
        except Exception:  # noqa: BLE001 - the library raises several types for bad base64
            raise ValueError("a v1 secret is not valid base64") from None
        keys.append(key)
    return Hook(name, uri, tuple(keys), function)


def validate(settings: Settings) -> None:
    """Refuse to start with a malformed hook setting (called at auth start-up)."""
    for name in HOOKS:
        uri = getattr(settings, f"auth_hook_{name}_uri")
        if uri:
            try:
                parse(name, uri, getattr(settings, f"auth_hook_{name}_secrets"))
            except ValueError as exc:
                raise ValueError(f"OWNBASE_AUTH_HOOK_{name.upper()}_URI: {exc}") from None


def configured(ctx: Context, name: str) -> Hook | None:
    uri = getattr(ctx.settings, f"auth_hook_{name}_uri")
    if not uri:
        return None
    cache = ctx.state.setdefault("auth", {}).setdefault("hooks", {})
    if name not in cache:
        cache[name] = parse(name, uri, getattr(ctx.settings, f"auth_hook_{name}_secrets"))
    return cache[name]  # type: ignore[no-any-return]


def _unexpected(message: str) -> errors.AuthError:
    return errors.AuthError(500, "unexpected_failure", message)


async def invoke(ctx: Context, hook: Hook, payload: dict[str, Any], *, conn: asyncpg.Connection | None = None,
                 ip: str = "") -> dict[str, Any]:
    """Run ``hook`` with ``payload`` (metadata added); return its output or raise its error."""
    now = datetime.now(timezone.utc)
    body = {**payload, "metadata": {"uuid": str(uuid.uuid4()), "time": now.isoformat(), "name": HOOKS[hook.name],
                                    "ip_address": ip}}
    if hook.function is not None:
        out = await _pg(ctx, hook, body, conn)
    else:
        out = await _http(hook, json.dumps(body, default=str).encode())
    failure = out.get("error")
    if isinstance(failure, dict) and isinstance(failure.get("message"), str) and failure["message"]:
        status = failure.get("http_code")
        status = status if isinstance(status, int) and 400 <= status <= 599 else 500
        raise errors.AuthError(status, "unexpected_failure" if status == 500 else "unknown", failure["message"],
                               sb_header=False)
    return out


async def _pg(ctx: Context, hook: Hook, body: dict[str, Any], conn: asyncpg.Connection | None) -> dict[str, Any]:
    if conn is None:
        async with ctx.db.owner.acquire() as own, own.transaction():
            return await _pg_call(own, hook, body)
    async with conn.transaction():  # a savepoint inside the caller's transaction
        return await _pg_call(conn, hook, body)


async def _pg_call(conn: asyncpg.Connection, hook: Hook, body: dict[str, Any]) -> dict[str, Any]:
    assert hook.function is not None
    schema, function = hook.function  # both checked against _IDENT: safe to quote
    before = await conn.fetchval("select current_setting('statement_timeout')")
    await conn.execute(f"set local statement_timeout to '{PG_TIMEOUT_MS}'")
    try:
        # Sent as text, cast in SQL: independent of the connection's jsonb codec.
        raw = await conn.fetchval(f'select "{schema}"."{function}"($1::text::jsonb)', json.dumps(body, default=str))
    except asyncpg.QueryCanceledError:
        seconds = PG_TIMEOUT_MS / 1000
        raise errors.AuthError(422, "hook_timeout",
                               f"Failed to reach hook within maximum time of {seconds:.6f} seconds") from None
    except asyncpg.PostgresError as exc:
        log.warning("auth hook %s failed: %s", hook.uri, exc)
        raise _unexpected(f"Error running hook URI: {hook.uri}") from None
    await conn.execute("select set_config('statement_timeout', $1, true)", before)
    return _output(raw)


def _output(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _unexpected("Error unmarshaling JSON output.") from None
    if not isinstance(raw, dict):
        raise _unexpected("Error unmarshaling JSON output.")
    return raw


def _headers(hook: Hook, body: bytes) -> dict[str, str]:
    msg_id = str(uuid.uuid4())
    stamp = datetime.fromtimestamp(int(time.time()), timezone.utc)
    headers = {"content-type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(int(stamp.timestamp())), "accept-encoding": "identity"}
    if hook.secrets:
        headers["webhook-signature"] = ", ".join(Webhook(k).sign(msg_id, stamp, body) for k in hook.secrets)
    return headers


async def _http(hook: Hook, body: bytes) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HTTP_DEADLINE
    timeout_error = errors.AuthError(
        422, "hook_timeout", f"Failed to reach hook within maximum time of {HTTP_DEADLINE:.6f} seconds")
    async with httpx.AsyncClient(follow_redirects=False) as client:
        for attempt in range(HTTP_ATTEMPTS):
            left = deadline - loop.time()
            if left <= 0:
                raise timeout_error
            try:
                reply = await client.post(hook.uri, content=body, headers=_headers(hook, body), timeout=left)
            except httpx.TimeoutException:
                raise timeout_error from None
            except httpx.TransportError:
                if attempt + 1 < HTTP_ATTEMPTS and deadline - loop.time() > HTTP_BACKOFF:
                    await asyncio.sleep(HTTP_BACKOFF)
                    continue
                break
            status = reply.status_code
            if status in (429, 503):
                wait = _retry_after(reply.headers.get("retry-after"))
                if wait is not None and attempt + 1 < HTTP_ATTEMPTS and deadline - loop.time() > wait:
                    await asyncio.sleep(wait)
                    continue
                raise _unexpected("Service currently unavailable due to hook")
            if status == 204:
                return {}
            if status in (200, 202):
                return _http_output(reply)
            if status == 400:
                raise _unexpected("Invalid payload sent to hook")
            if status == 401:
                raise _unexpected("Hook requires authorization token")
            raise _unexpected(f"Unexpected status code returned from hook: {status}")
    raise errors.AuthError(422, "hook_timeout_after_retry", "Failed to reach hook after maximum retries")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header in seconds; None when absent or not a number."""
    if not value or not value.strip().isdigit():
        return None
    return float(min(int(value.strip()), 60))


def _http_output(reply: httpx.Response) -> dict[str, Any]:
    ctype = reply.headers.get("content-type")
    if not ctype:
        raise errors.AuthError(400, "hook_payload_invalid_content_type",
                               "Invalid Content-Type: Missing Content-Type header")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise errors.AuthError(400, "hook_payload_invalid_content_type",
                               f"Invalid JSON response. Received content-type: {ctype}")
    if len(reply.content) > MAX_RESPONSE:
        raise errors.AuthError(422, "hook_payload_over_size_limit",
                               f"Payload size exceeded size limit of {MAX_RESPONSE} bytes")
    return _output(reply.content or b"{}")


# --- the hooks ----------------------------------------------------------------------------------

_CLAIM_TYPES: dict[str, tuple[type, ...]] = {
    "aud": (str, list), "exp": (int,), "iat": (int,), "sub": (str,), "email": (str,), "phone": (str,),
    "role": (str,), "aal": (str,), "session_id": (str,), "is_anonymous": (bool,),
}
_OPTIONAL_TYPES: dict[str, tuple[type, ...]] = {"nbf": (int,), "app_metadata": (dict,), "user_metadata": (dict,),
                                                "amr": (list,), "iss": (str,)}


def _claim_problems(claims: dict[str, Any]) -> list[str]:
    problems = []
    for key, kinds in _CLAIM_TYPES.items():
        if key not in claims:
            problems.append(f"{key}: missing properties")
        elif not isinstance(claims[key], kinds) or (bool not in kinds and isinstance(claims[key], bool)):
            problems.append(f"{key}: expected {' or '.join(k.__name__ for k in kinds)}")
    for key, kinds in _OPTIONAL_TYPES.items():
        if key in claims and claims[key] is not None and not isinstance(claims[key], kinds):
            problems.append(f"{key}: expected {kinds[0].__name__}")
    amr = claims.get("amr")
    if isinstance(amr, list) and not all(isinstance(m, (str, dict)) for m in amr):
        problems.append("amr: items must be strings or objects")
    return problems


async def customize_access_token(conn: asyncpg.Connection, ctx: Context, user_id: Any, claims: dict[str, Any],
                                 method: str) -> dict[str, Any]:
    """The custom access token hook: returns the claims to sign (unchanged when no hook is set)."""
    hook = configured(ctx, "custom_access_token")
    if hook is None:
        return claims
    out = await invoke(ctx, hook, {"user_id": str(user_id), "claims": claims, "authentication_method": method},
                       conn=conn)
    new = out.get("claims")
    if not isinstance(new, dict):
        raise _unexpected("output claims field is missing")
    problems = _claim_problems(new)
    if problems:
        raise _unexpected("output claims do not conform to the expected schema: \n- " + "\n- ".join(problems))
    return new


async def send_email(conn: asyncpg.Connection, ctx: Context, user: dict[str, Any], email_data: dict[str, Any],
                     ip: str = "") -> None:
    """The send-email hook: replaces the mail backend. ``email_data`` keys as GoTrue's (all present)."""
    hook = configured(ctx, "send_email")
    assert hook is not None
    keys = ("token", "token_hash", "redirect_to", "email_action_type", "site_url", "token_new",
            "token_hash_new", "old_email", "old_phone", "provider", "factor_type")
    data = {key: email_data.get(key, "") for key in keys}
    await invoke(ctx, hook, {"user": user, "email_data": data}, conn=conn, ip=ip)


async def send_sms(conn: asyncpg.Connection, ctx: Context, user: dict[str, Any], otp: str, phone: str,
                   sms_type: str = "", ip: str = "") -> None:
    """The send-SMS hook: replaces the SMS provider. ``phone`` is E.164 without the +, as stored."""
    hook = configured(ctx, "send_sms")
    assert hook is not None
    sms: dict[str, Any] = {"otp": otp, "phone": phone}
    if sms_type:
        sms["sms_type"] = sms_type
    await invoke(ctx, hook, {"user": user, "sms": sms}, conn=conn, ip=ip)


async def _drop_sessions(ctx: Context, user_id: Any) -> None:
    # Own connection, committed at once: the caller then raises, which rolls its transaction back.
    await ctx.db.owner.execute("delete from auth.sessions where user_id = $1", uuid.UUID(str(user_id)))


async def password_verification_attempt(ctx: Context, user_id: Any, valid: bool, ip: str = "") -> None:
    """Ask the password-verification-attempt hook; raise GoTrue's invalid_credentials on "reject".
    Call it outside any transaction that locks the user's sessions."""
    hook = configured(ctx, "password_verification_attempt")
    if hook is None:
        return
    out = await invoke(ctx, hook, {"user_id": str(user_id), "valid": bool(valid)}, ip=ip)
    if out.get("decision") == "reject":
        if out.get("should_logout_user") is True:
            await _drop_sessions(ctx, user_id)
        message = out.get("message") if isinstance(out.get("message"), str) and out.get("message") else \
            "Further password verification attempts will be rejected."
        raise errors.AuthError(400, "invalid_credentials", message)


async def mfa_verification_attempt(ctx: Context, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The MFA-verification-attempt hook, installed at the MFA code's hook point
    (``mfa.set_verification_attempt_hook``, done at auth start-up when the hook is configured).

    ``payload`` is GoTrue's ``{"user_id", "factor_id", "factor_type", "valid"}``; the hook's answer
    goes back to mfa.py, which alone acts on ``"decision": "reject"`` (ends every session of the user
    in the verify transaction and answers 403 ``mfa_verification_rejected``). Not configured: None."""
    hook = configured(ctx, "mfa_verification_attempt")
    if hook is None:
        return None
    keys = ("user_id", "factor_id", "factor_type", "valid")
    return await invoke(ctx, hook, {key: payload.get(key) for key in keys})
