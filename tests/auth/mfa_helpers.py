"""Helpers for the MFA and passkey tests: users, sign-ins, TOTP codes computed from the enrolled
secret (as an authenticator app would), token claims and raw GoTrue-shaped requests."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import pyotp
import pytest
from supabase import Client
from supabase_auth.errors import AuthApiError

from tests.auth.conftest import py_client, unique_email
from tests.conftest import ServerHandle

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
PASSWORD = "secret123"


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def code_at(secret: str, offset: int = 0) -> str:
    """The code of the current 30-second step (+ offset steps)."""
    return pyotp.TOTP(secret).generate_otp(int(time.time()) // 30 + offset)


def wrong_code(secret: str) -> str:
    """A code no step within the skew accepts."""
    valid = {code_at(secret, d) for d in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)


def new_user(server: ServerHandle, tag: str) -> tuple[str, str]:
    email = unique_email(tag)
    user = py_client(server, server.service_key).auth.admin.create_user(
        {"email": email, "password": PASSWORD, "email_confirm": True}).user
    return email, user.id


def signed_in(server: ServerHandle, email: str) -> Client:
    sb = py_client(server)
    sb.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return sb


def api_error(call: Callable[[], Any]) -> tuple[str | None, int]:
    with pytest.raises(AuthApiError) as exc:
        call()
    return exc.value.code, exc.value.status


def token_of(sb: Client) -> str:
    session = sb.auth.get_session()
    assert session is not None
    return session.access_token


def send(server: ServerHandle, method: str, path: str, token: str | None, body: Any = None,
         **kw: Any) -> httpx.Response:
    headers = {"apikey": server.anon_key, **NEW, **kw.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, server.url + "/auth/v1" + path, headers=headers, json=body, timeout=30, **kw)


@dataclass
class SteppedUp:
    """A user whose session ``sb`` verified TOTP factor ``factor_id`` with ``code``."""
    email: str
    user_id: str
    sb: Client
    factor_id: str
    secret: str
    code: str
    pre_mfa_refresh_token: str
    reply: Any


def step_up(server: ServerHandle, tag: str, name: str = "phone") -> SteppedUp:
    email, user_id = new_user(server, tag)
    sb = signed_in(server, email)
    before = sb.auth.get_session()
    assert before is not None
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": name})
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    code = code_at(enrolled.totp.secret)
    reply = sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id, "code": code})
    return SteppedUp(email, user_id, sb, enrolled.id, enrolled.totp.secret, code, before.refresh_token, reply)
