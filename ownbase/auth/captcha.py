"""CAPTCHA checks (hCaptcha, Cloudflare Turnstile) on the routes GoTrue protects.

The client sends ``gotrue_meta_security.captcha_token`` in the JSON body; the token is checked with
the provider's siteverify endpoint (form ``secret``, ``response``, ``remoteip``). Requests made with
the service-role key skip the check, as GoTrue skips it for admin tokens.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request

from ownbase.auth import errors
from ownbase.auth.web import caller, client_ip, ctx_of
from ownbase.settings import Settings

VERIFY_URLS = {"hcaptcha": "https://hcaptcha.com/siteverify",
               "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify"}
MAX_TOKEN = 16 * 1024  # real tokens are a few KiB; longer ones are refused without asking anyone


def validate(settings: Settings) -> None:
    if settings.auth_captcha_enabled and not settings.auth_captcha_secret.strip():
        raise ValueError("OWNBASE_AUTH_CAPTCHA_SECRET: required when OWNBASE_AUTH_CAPTCHA_ENABLED is true")


def _admin(request: Request) -> bool:
    if not request.headers.get("authorization"):
        return False
    try:
        return caller(request).role == "service_role"
    except errors.AuthError:
        return False


async def check(request: Request, data: dict[str, Any]) -> None:
    """Raise GoTrue's captcha_failed unless CAPTCHA is off, the caller is admin, or the token verifies."""
    s = ctx_of(request).settings
    if not s.auth_captcha_enabled or _admin(request):
        return
    meta = data.get("gotrue_meta_security")
    token = meta.get("captcha_token") if isinstance(meta, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise errors.captcha_failed("no captcha_token found")
    if len(token) > MAX_TOKEN:
        raise errors.captcha_failed("invalid-input-response")
    url = s.auth_captcha_verify_url or VERIFY_URLS[s.auth_captcha_provider]
    form = {"secret": s.auth_captcha_secret.strip(), "response": token.strip(), "remoteip": client_ip(request)}
    try:
        async with httpx.AsyncClient(timeout=s.auth_captcha_timeout, follow_redirects=False) as client:
            reply = (await client.post(url, data=form)).json()
    except (httpx.HTTPError, ValueError):
        raise errors.AuthError(500, "unexpected_failure", "captcha verification process failed") from None
    if not isinstance(reply, dict):
        raise errors.AuthError(500, "unexpected_failure", "captcha verification process failed")
    if reply.get("success") is True:
        return
    codes = reply.get("error-codes")
    reasons = [str(c) for c in codes] if isinstance(codes, list) else []
    raise errors.captcha_failed(", ".join(reasons))
