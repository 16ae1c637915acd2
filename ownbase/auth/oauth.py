"""Sign-in with OAuth / OIDC providers: GET /authorize, GET|POST /callback, GET /user/identities/authorize.

The ``state`` sent to the provider is the id of an ``auth.flow_state`` row (GoTrue's form), valid
for 5 minutes and used once. It is also bound to the browser that started the flow: /authorize sets
a cookie holding an HMAC of the state (keyed by a secret derived from the signing key), and the
callback refuses a state whose cookie is missing or wrong, so a callback URL made in one browser
cannot be completed in another (login CSRF). PKCE flows end in ``?code=`` for
``exchangeCodeForSession``; implicit flows in the tokens in the URL fragment.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ownbase.auth import accounts, errors, profiles, providers, redirects, sessions, users
from ownbase.auth.outbound import ProviderError
from ownbase.auth.rules import user_agent
from ownbase.auth.web import MAX_BODY, client_ip, ctx_of, limit
from ownbase.context import Context

log = logging.getLogger("ownbase.auth")
FLOW_TTL = 300  # GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION (default and minimum)
CLEANUP_AFTER = timedelta(hours=1)
COOKIE_PREFIX = "ownbase-oauth-"
CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]+$")
# Never forwarded to the provider (GoTrue strips these case-insensitively) ...
RESERVED = {"client_id", "client_secret", "redirect_uri", "response_type", "state", "code_challenge",
            "code_challenge_method", "code_verifier"}
# ... nor what ownbase reads itself.
OWN = {"provider", "scopes", "invite_token"}


def callback_url(ctx: Context) -> str:
    return f"{ctx.settings.api_url}/auth/v1/callback"


def _cookie_path(ctx: Context) -> str:
    # The path the browser will call back on (OWNBASE_PUBLIC_URL may put ownbase under a prefix).
    return urlsplit(callback_url(ctx)).path


def _binding(ctx: Context, state: uuid.UUID) -> str:
    secret = ctx.keys.derive_secret("oauth-state-cookie").encode()
    return hmac.new(secret, state.bytes, hashlib.sha256).hexdigest()


def _pkce(query: Any) -> tuple[str, str] | None:
    challenge, method = query.get("code_challenge", ""), query.get("code_challenge_method", "")
    if not challenge and not method:
        return None
    if not challenge or not method:
        raise errors.validation("PKCE flow requires code_challenge_method and code_challenge")
    if not 43 <= len(challenge) <= 128:
        raise errors.validation("code challenge has to be between 43 and 128 characters")
    if not CHALLENGE.match(challenge):
        raise errors.validation("code challenge can only contain alphanumeric characters, hyphens, periods,"
                                " underscores and tildes")
    if method.lower() not in ("s256", "plain"):
        raise errors.validation("Invalid code_challenge_method")
    return challenge, method.lower()


def _redirect_target(request: Request) -> str:
    settings = ctx_of(request).settings
    wanted = request.query_params.get("redirect_to") or request.headers.get("referer") or ""
    return wanted if wanted and redirects.allowed(settings, wanted) else settings.site_url


async def authorize(request: Request, known: tuple[str, ...], linking_target: Any = None) -> Response:
    """GET /authorize (and /user/identities/authorize with ``linking_target``)."""
    ctx = ctx_of(request)
    settings = ctx.settings
    query = request.query_params
    name = query.get("provider", "").lower()
    provider = providers.for_redirect(settings, name, known)
    pkce = _pkce(query)
    await limit(request, "authorize", settings.auth_rate_limit_token)
    target = _redirect_target(request)
    scopes: list[str] = list(provider.scopes)
    for part in query.get("scopes", "").replace(",", " ").split():
        if part not in scopes:
            scopes.append(part)
    try:
        endpoint = (await providers.discovery(ctx, provider))["authorization_endpoint"] \
            if provider.kind == "oidc" else provider.authorize_url
    except ProviderError as exc:
        log.warning("provider %s unreachable: %s", provider.name, exc)
        raise errors.AuthError(502, "unexpected_failure", f"Unable to reach the {provider.name} provider") from None
    skip = query.get("skip_http_redirect") == "true"
    https = settings.api_url.startswith("https://")
    # Apple posts its answer cross-site: a cookie reaches that POST only as SameSite=None; Secure.
    bound = not skip and (https or not provider.form_post)
    state = uuid.uuid4()
    async with ctx.db.owner.acquire() as conn:
        await conn.execute("delete from auth.flow_state where authentication_method = 'oauth' and created_at < $1",
                           datetime.now(timezone.utc) - CLEANUP_AFTER)
        await conn.execute(
            """insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,
                   provider_type, provider_access_token, provider_refresh_token, created_at, updated_at,
                   authentication_method, referrer, linking_target_id, browser_bound)
               values ($1, null, $2, $3, $4, $5, '', '', now(), now(), 'oauth', $6, $7, $8)""",
            state, str(uuid.uuid4()) if pkce else "", pkce[1] if pkce else "", pkce[0] if pkce else "",
            provider.name, target, linking_target, bound)
    params: dict[str, str] = {"client_id": provider.client_id, "redirect_uri": callback_url(ctx),
                              "response_type": "code", "state": str(state)}
    if scopes:
        params["scope"] = " ".join(scopes)
    if provider.form_post:
        params["response_mode"] = "form_post"
    for key, value in query.multi_items():
        if key.lower() not in RESERVED and key not in OWN and key not in params:
            params[key] = value
    url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
    if skip:
        return JSONResponse({"url": url})
    response = RedirectResponse(url, status_code=302)
    if bound:
        response.set_cookie(COOKIE_PREFIX + state.hex, _binding(ctx, state), max_age=FLOW_TTL,
                            path=_cookie_path(ctx), httponly=True, secure=https,
                            samesite="none" if https else "lax")
    return response


# --- the callback ------------------------------------------------------------------------------

def _with_query(url: str, extra: dict[str, str], fragment: str | None = None) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query),
                       parts.fragment if fragment is None else fragment))


def _state_error(ctx: Context, code: str, message: str) -> Response:
    """State problems go to the site URL (never a referrer an attacker may have chosen), 303."""
    error = "invalid_request" if code != "user_not_found" else "server_error"
    return RedirectResponse(_with_query(ctx.settings.site_url, {"error": error, "error_code": code,
                                                                 "error_description": message}), status_code=303)


def _error_name(err: errors.AuthError) -> str:
    if err.code in ("signup_disabled", "user_banned", "provider_email_needs_verification"):
        return "access_denied"
    return {400: "invalid_request", 401: "unauthorized_client", 403: "access_denied", 500: "server_error",
            503: "temporarily_unavailable"}.get(err.status, "server_error")


def _error_redirect(target: str, err: errors.AuthError) -> Response:
    fields = {"error": _error_name(err), "error_code": err.code, "error_description": err.message}
    fragment = urlencode(sorted({**fields, "sb": ""}.items()))
    return RedirectResponse(_with_query(target, fields, fragment), status_code=302)


async def _params(request: Request) -> dict[str, str]:
    if request.method == "POST":
        raw = await request.body()
        return dict(parse_qsl(raw[:MAX_BODY].decode("utf-8", "replace"))) if raw else {}
    return dict(request.query_params)


def _forget_cookie(ctx: Context, response: Response, state: uuid.UUID) -> Response:
    response.delete_cookie(COOKIE_PREFIX + state.hex, path=_cookie_path(ctx))
    return response


async def callback(request: Request) -> Response:
    ctx = ctx_of(request)
    params = await _params(request)
    state = params.get("state", "")
    if not state:
        return _state_error(ctx, "bad_oauth_callback", "OAuth state parameter missing")
    if not users.is_uuid(state):
        return _state_error(ctx, "bad_oauth_state", "OAuth state parameter is invalid")
    state_id = uuid.UUID(state)
    flow = await ctx.db.owner.fetchrow("select * from auth.flow_state where id = $1", state_id)
    if flow is None or flow["authentication_method"] != "oauth":
        return _state_error(ctx, "bad_oauth_state", "OAuth state not found or expired")
    if flow["created_at"] + timedelta(seconds=FLOW_TTL) < datetime.now(timezone.utc):
        await ctx.db.owner.execute("delete from auth.flow_state where id = $1", state_id)
        return _state_error(ctx, "bad_oauth_state", "OAuth state has expired")
    if flow["code_challenge"] and flow["user_id"] is not None:
        return _state_error(ctx, "flow_state_already_used", "State has already been used")
    if flow["browser_bound"]:
        cookie = request.cookies.get(COOKIE_PREFIX + state_id.hex, "")
        if not hmac.compare_digest(cookie.encode(), _binding(ctx, state_id).encode()):
            return _state_error(ctx, "bad_oauth_state", "OAuth callback with invalid state")
    if flow["linking_target_id"] is not None:
        async with ctx.db.owner.acquire() as conn:
            if await users.by_id(conn, str(flow["linking_target_id"])) is None:
                return _state_error(ctx, "user_not_found", "Linking target user not found")
    target = ctx.settings.auth_external_redirect_url or flow["referrer"] or ctx.settings.site_url
    if params.get("error"):
        relayed = {"error": params["error"], "error_description": params.get("error_description", "")}
        fragment = urlencode(sorted({**relayed, "sb": ""}.items()))
        return _forget_cookie(ctx, RedirectResponse(_with_query(target, relayed, fragment), status_code=302),
                              state_id)
    try:
        response = await _finish(request, ctx, flow, params, target)
    except errors.AuthError as err:
        if err.status >= 500:
            log.warning("oauth callback failed: %s", err.message)
        response = _error_redirect(target, err)
    return _forget_cookie(ctx, response, state_id)


async def _finish(request: Request, ctx: Context, flow: asyncpg.Record, params: dict[str, str],
                  target: str) -> Response:
    code = params.get("code", "")
    if not code:
        raise errors.AuthError(400, "bad_oauth_callback", "OAuth callback with missing authorization code missing")
    provider = providers.get(ctx.settings, flow["provider_type"])
    if provider is None:
        raise errors.AuthError(400, "oauth_provider_not_supported", "Unsupported provider: provider is not enabled")
    tokens = await profiles.exchange(ctx, provider, code, callback_url(ctx))
    profile = await profiles.fetch(ctx, provider, tokens, params.get("user", ""))
    if not profile.emails:
        raise errors.AuthError(500, "unexpected_failure", "Error getting user email from external provider")
    ip = client_ip(request)
    refused: errors.AuthError | None = None
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            if flow["linking_target_id"] is not None:
                linked = await users.by_id(conn, str(flow["linking_target_id"]), lock=True)
                if linked is None:
                    raise errors.AuthError(422, "user_not_found", "Linking target user not found")
                user = await accounts.link(conn, ctx, linked, profile)
                await users.audit(conn, "identity_linked", user, ip, "account", {"provider": provider.name})
            else:
                user, created = await accounts.sign_in(conn, ctx, profile)
                if created:
                    await users.audit(conn, "user_signedup", user, ip, "team", {"provider": provider.name})
                refused = await accounts.refuse_unverified(conn, ctx, user, profile, redirect_to=target)
                if refused is None:
                    await users.audit(conn, "login", user, ip, "account", {"provider": provider.name})
            if refused is None and flow["code_challenge"]:
                auth_code = await conn.fetchval(
                    """update auth.flow_state set user_id = $2, provider_access_token = $3,
                           provider_refresh_token = $4, auth_code_issued_at = now(), updated_at = now()
                       where id = $1 and user_id is null returning auth_code""",
                    flow["id"], user["id"], profile.access_token, profile.refresh_token)
                if auth_code is None:
                    raise errors.AuthError(400, "flow_state_already_used", "State has already been used")
                return RedirectResponse(_with_query(target, {"code": auth_code}), status_code=302)
            if refused is None:
                deleted = await conn.fetchval("delete from auth.flow_state where id = $1 returning id", flow["id"])
                if deleted is None:
                    raise errors.AuthError(400, "flow_state_already_used", "State has already been used")
                reply = await sessions.create(conn, ctx, user, "oauth", ip=ip, user_agent=user_agent(request))
    if refused is not None:
        return _error_redirect(target, refused)  # the user stays, committed, as GoTrue keeps it
    fragment: dict[str, Any] = {
        "access_token": reply["access_token"], "expires_at": reply["expires_at"],
        "expires_in": reply["expires_in"], "provider_token": profile.access_token,
        "refresh_token": reply["refresh_token"], "sb": "", "token_type": "bearer"}
    if profile.refresh_token:
        fragment["provider_refresh_token"] = profile.refresh_token
    parts = urlsplit(target)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, urlencode(sorted(fragment.items()))))
    return RedirectResponse(url, status_code=302)
