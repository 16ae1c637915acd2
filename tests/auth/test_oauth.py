"""Sign-in with OAuth / OIDC providers through supabase-py, against a real local OpenID Connect
provider (oidc-provider-mock) and a GitHub-style OAuth stand-in, driven like a browser: PKCE and
implicit flows, the browser-bound state, reused codes, unlisted redirects, account matching by
verified email, identities copied from Supabase, ID-token sign-in and identity linking."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supabase_auth.errors import AuthApiError

from tests.auth.conftest import last_mail, link_of, py_client, unique_email
from tests.auth.oauth_standins import (
    Browser,
    GitHubStandIn,
    GitHubUser,
    fragment_of,
    mint,
    oidc_provider,
    query_of,
    serve,
    set_user,
)
from tests.conftest import ServerHandle, sql

APP = "http://app.example"
SITE = "http://site.example"
NEW = {"X-Supabase-Api-Version": "2024-01-01"}


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    with oidc_provider() as url:
        yield url


@pytest.fixture(scope="module")
def github() -> Iterator[tuple[GitHubStandIn, str]]:
    standin = GitHubStandIn()
    with serve(standin.app()) as url:
        yield standin, url


@pytest.fixture(scope="module")
def oauth_server(server_factory: Callable[..., ServerHandle], idp: str,
                 github: tuple[GitHubStandIn, str]) -> ServerHandle:
    return server_factory({
        "OWNBASE_SITE_URL": SITE,
        "OWNBASE_AUTH_REDIRECT_ALLOW_LIST": f"{APP}/**",
        "OWNBASE_AUTH_MANUAL_LINKING_ENABLED": "true",
        "OWNBASE_AUTH_ANONYMOUS_SIGNINS": "true",
        "OWNBASE_AUTH_EXTERNAL_AZURE_ENABLED": "true",
        "OWNBASE_AUTH_EXTERNAL_AZURE_CLIENT_ID": "azure-client",
        "OWNBASE_AUTH_EXTERNAL_AZURE_SECRET": "azure-secret",
        "OWNBASE_AUTH_EXTERNAL_AZURE_URL": idp,
        "OWNBASE_AUTH_EXTERNAL_GOOGLE_ENABLED": "true",
        "OWNBASE_AUTH_EXTERNAL_GOOGLE_CLIENT_ID": "google-client,ios-client",
        "OWNBASE_AUTH_EXTERNAL_GOOGLE_SECRET": "google-secret",
        "OWNBASE_AUTH_EXTERNAL_GOOGLE_URL": idp,
        "OWNBASE_AUTH_EXTERNAL_APPLE_ENABLED": "true",
        "OWNBASE_AUTH_EXTERNAL_APPLE_CLIENT_ID": "apple-client",
        "OWNBASE_AUTH_EXTERNAL_APPLE_SECRET": "apple-secret-jwt",
        "OWNBASE_AUTH_EXTERNAL_APPLE_URL": idp,
        "OWNBASE_AUTH_EXTERNAL_OIDC_PROVIDER": "mock",
        "OWNBASE_AUTH_EXTERNAL_OIDC_ISSUER": idp + "/.well-known/openid-configuration",
        "OWNBASE_AUTH_EXTERNAL_OIDC_CLIENT_ID": "mock-client",
        "OWNBASE_AUTH_EXTERNAL_OIDC_SECRET": "mock-secret",
        "OWNBASE_AUTH_EXTERNAL_GITHUB_ENABLED": "true",
        "OWNBASE_AUTH_EXTERNAL_GITHUB_CLIENT_ID": github[0].client_id,
        "OWNBASE_AUTH_EXTERNAL_GITHUB_SECRET": github[0].client_secret,
        "OWNBASE_AUTH_EXTERNAL_GITHUB_URL": github[1],
        **{f"OWNBASE_AUTH_EXTERNAL_{p}_{k}": v for p in ("GITLAB", "DISCORD") for k, v in (
            ("ENABLED", "true"), ("CLIENT_ID", github[0].client_id), ("SECRET", github[0].client_secret),
            ("URL", github[1]))},
    })


@pytest.fixture()
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def oidc_user(idp: str, *, verified: bool = True, email: str | None = None) -> tuple[str, str]:
    sub, email = f"sub-{uuid.uuid4().hex[:10]}", email or unique_email("oidc")
    set_user(idp, sub, {"email": email, "email_verified": verified, "name": "Olivia Idp"})
    return sub, email


def gh_user(github: tuple[GitHubStandIn, str], email: str, *, verified: bool = True) -> GitHubUser:
    user = GitHubUser(id=int(time.time() * 1000) % 10**9 + len(github[0].users), login=f"gh{uuid.uuid4().hex[:8]}",
                      emails=[{"email": email, "primary": True, "verified": verified}], name="Gil Hub")
    github[0].users[user.login] = user
    return user


def error_of(fn: Callable[[], Any]) -> AuthApiError:
    with pytest.raises(AuthApiError) as exc:
        fn()
    return exc.value


# --- the PKCE flow (supabase-py's default) ------------------------------------------------------

def test_pkce_flow_signs_in_and_the_code_works_once(oauth_server: ServerHandle, idp: str, browser: Browser) -> None:
    sub, email = oidc_user(idp)
    sb = py_client(oauth_server, flow="pkce")
    url = sb.auth.sign_in_with_oauth({"provider": "google", "options": {"redirect_to": f"{APP}/welcome"}}).url
    landed = browser.go(url, sub=sub)
    assert landed.startswith(f"{APP}/welcome?code="), landed
    code = query_of(landed)["code"]
    verifier = sb.auth._storage.get_item(f"{sb.auth._storage_key}-code-verifier")
    session = sb.auth.exchange_code_for_session({"auth_code": code}).session
    assert session is not None and session.user.email == email
    assert session.provider_token and session.provider_refresh_token  # the provider's tokens, handed back
    # ... and they are the provider's real ones: its userinfo answers to the access token.
    info = httpx.get(f"{idp}/userinfo", headers={"authorization": f"Bearer {session.provider_token}"}).json()
    assert info["sub"] == sub
    assert session.user.app_metadata == {"provider": "google", "providers": ["google"]}
    [identity] = session.user.identities or []
    assert (identity.provider, identity.id) == ("google", sub)
    assert identity.identity_data["email_verified"] is True and identity.identity_data["name"] == "Olivia Idp"
    assert session.user.email_confirmed_at is not None
    amr = json.loads(_b64(session.access_token.split(".")[1]))["amr"]
    assert amr[0]["method"] == "oauth"
    # The code is single-use: a second exchange (same verifier) is refused.
    again = py_client(oauth_server, flow="pkce")
    err = error_of(lambda: again.auth.exchange_code_for_session({"auth_code": code, "code_verifier": verifier,
                                                                 "redirect_to": ""}))
    assert err.code == "flow_state_not_found"
    # Signing in again lands on the same user.
    sb2 = py_client(oauth_server, flow="pkce")
    url2 = sb2.auth.sign_in_with_oauth({"provider": "google", "options": {"redirect_to": f"{APP}/welcome"}}).url
    code2 = query_of(browser.go(url2, sub=sub))["code"]
    assert sb2.auth.exchange_code_for_session({"auth_code": code2}).user.id == session.user.id


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_replayed_callback_is_refused(oauth_server: ServerHandle, idp: str, browser: Browser) -> None:
    sub, _ = oidc_user(idp)
    # The generic OIDC issuer is GoTrue's "custom:<name>" (supabase-py's types do not list it: by hand).
    url = oauth_server.url + "/auth/v1/authorize?" + urlencode({
        "provider": "custom:mock", "redirect_to": f"{APP}/x", "code_challenge": "c" * 43,
        "code_challenge_method": "plain"})
    provider_url = browser.to_provider(url)
    assert "scope=openid+email+profile" in provider_url
    callback = browser.http.post(provider_url, data={"sub": sub}).headers["location"]
    assert callback.startswith(oauth_server.url + "/auth/v1/callback?")
    first = browser.http.get(callback)
    assert first.status_code == 302 and first.headers["location"].startswith(f"{APP}/x?code=")
    second = browser.http.get(callback)
    assert second.status_code == 303
    assert query_of(second.headers["location"])["error_code"] in ("flow_state_already_used", "bad_oauth_state")
    assert second.headers["location"].startswith(SITE)


def test_state_from_another_browser_is_refused(oauth_server: ServerHandle, idp: str) -> None:
    """Login CSRF: a callback URL started in the attacker's browser does not work in the victim's."""
    sub, _ = oidc_user(idp)
    attacker, victim = Browser(), Browser()
    try:
        url = py_client(oauth_server, flow="pkce").auth.sign_in_with_oauth(
            {"provider": "google", "options": {"redirect_to": f"{APP}/x"}}).url
        provider_url = attacker.to_provider(url)
        callback = attacker.http.post(provider_url, data={"sub": sub}).headers["location"]
        r = victim.http.get(callback)
        assert r.status_code == 303
        assert query_of(r.headers["location"]) == {"error": "invalid_request", "error_code": "bad_oauth_state",
                                                   "error_description": "OAuth callback with invalid state"}
        # The rightful browser can still finish (the refused attempt consumed nothing).
        assert attacker.http.get(callback).headers["location"].startswith(f"{APP}/x?code=")
    finally:
        attacker.close()
        victim.close()


def test_wrong_or_unknown_state_is_refused(oauth_server: ServerHandle, idp: str, browser: Browser) -> None:
    sub, _ = oidc_user(idp)
    url = py_client(oauth_server, flow="pkce").auth.sign_in_with_oauth({"provider": "google"}).url
    provider_url = browser.to_provider(url)
    callback = browser.http.post(provider_url, data={"sub": sub}).headers["location"]
    params = query_of(callback)
    for state, code, message in ((str(uuid.uuid4()), "bad_oauth_state", "OAuth state not found or expired"),
                                 ("not-a-uuid", "bad_oauth_state", "OAuth state parameter is invalid"),
                                 ("", "bad_oauth_callback", "OAuth state parameter missing")):
        r = browser.http.get(oauth_server.url + "/auth/v1/callback", params={"code": params["code"], "state": state})
        assert r.status_code == 303
        assert query_of(r.headers["location"])["error_code"] == code
        assert query_of(r.headers["location"])["error_description"] == message
    # An expired state (older than GoTrue's 5 minutes).
    sql(oauth_server, "update auth.flow_state set created_at = now() - interval '6 minutes' where id = $1",
        uuid.UUID(params["state"]))
    r = browser.http.get(callback)
    assert query_of(r.headers["location"])["error_description"] == "OAuth state has expired"


def test_refusal_at_the_provider_is_relayed(oauth_server: ServerHandle, browser: Browser) -> None:
    url = py_client(oauth_server, flow="pkce").auth.sign_in_with_oauth(
        {"provider": "google", "options": {"redirect_to": f"{APP}/in"}}).url
    provider_url = browser.to_provider(url)
    # What a provider sends back when the user says no (RFC 6749 4.1.2.1, state included).
    r = browser.http.get(oauth_server.url + "/auth/v1/callback", params={
        "error": "access_denied", "error_description": "The user said no", "state": query_of(provider_url)["state"]})
    assert r.status_code == 302 and r.headers["location"].startswith(f"{APP}/in?")
    q = query_of(r.headers["location"])
    assert (q["error"], q["error_description"]) == ("access_denied", "The user said no") and "error_code" not in q
    assert "ownbase-oauth-" in r.headers.get("set-cookie", "")  # the binding cookie is cleared


def test_unlisted_redirect_falls_back_to_the_site_url(oauth_server: ServerHandle, idp: str, browser: Browser) -> None:
    sub, email = oidc_user(idp)
    sb = py_client(oauth_server, flow="pkce")
    url = sb.auth.sign_in_with_oauth({"provider": "google",
                                      "options": {"redirect_to": "http://evil.example/steal"}}).url
    landed = browser.go(url, sub=sub)
    assert landed.startswith(f"{SITE}?code=") or landed.startswith(f"{SITE}/?code="), landed
    assert sb.auth.exchange_code_for_session({"auth_code": query_of(landed)["code"]}).user.email == email


def test_authorize_checks_its_parameters(oauth_server: ServerHandle) -> None:
    c = httpx.Client(base_url=oauth_server.url + "/auth/v1", headers=NEW)
    cases = {
        "provider=google&code_challenge=" + "a" * 43: "PKCE flow requires code_challenge_method and code_challenge",
        "provider=google&code_challenge=abc&code_challenge_method=s256":
            "code challenge has to be between 43 and 128 characters",
        "provider=google&code_challenge=" + "a" * 42 + "!&code_challenge_method=s256":
            "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
        "provider=google&code_challenge=" + "a" * 43 + "&code_challenge_method=md5": "Invalid code_challenge_method",
        "provider=bitbucket": "Unsupported provider: provider is not enabled",
        "provider=custom:other": "Unsupported provider: custom provider other not found",
        "provider=nope": "Unsupported provider: Provider nope could not be found",
    }
    for query, message in cases.items():
        r = c.get("/authorize?" + query)
        assert (r.status_code, r.json()) == (400, {"code": "validation_failed", "message": message}), query
    settings_json = c.get("/settings").json()["external"]
    assert settings_json["google"] is True and settings_json["github"] is True and settings_json["apple"] is True
    assert settings_json["gitlab"] is True and settings_json["bitbucket"] is False


# --- implicit flow and a provider without OIDC (GitHub-style) ---------------------------------------

def test_implicit_flow_with_github(oauth_server: ServerHandle, github: tuple[GitHubStandIn, str],
                                   browser: Browser) -> None:
    email = unique_email("gh")
    user = gh_user(github, email)
    sb = py_client(oauth_server)  # implicit
    url = sb.auth.sign_in_with_oauth({"provider": "github", "options": {
        "redirect_to": f"{APP}/in?tab=1", "query_params": {"login_hint": user.login}}}).url
    landed = browser.go(url)
    assert landed.startswith(f"{APP}/in?tab=1#"), landed
    frag = fragment_of(landed)
    assert frag["token_type"] == "bearer" and frag["provider_token"].startswith("gho_") and "sb" in frag
    me = sb.auth.get_user(frag["access_token"]).user
    assert me.email == email
    [identity] = me.identities or []
    assert (identity.provider, identity.id) == ("github", str(user.id))
    assert identity.identity_data["user_name"] == user.login
    assert identity.identity_data["iss"] == github[1] + "/api/v3"
    assert sb.auth.refresh_session(frag["refresh_token"]).session is not None
    # The implicit flow's state is deleted once the tokens are issued.
    assert sql(oauth_server, "select count(*) as n from auth.flow_state where provider_type = 'github'"
               " and user_id = $1", uuid.UUID(me.id))[0]["n"] == 0


def test_apple_form_post_callback(oauth_server: ServerHandle, idp: str, browser: Browser) -> None:
    """Apple answers with a form POST carrying the user's name (first sign-in only); its email counts
    as verified."""
    sub, email = oidc_user(idp, verified=False)
    sb = py_client(oauth_server, flow="pkce")
    url = sb.auth.sign_in_with_oauth({"provider": "apple", "options": {"redirect_to": f"{APP}/apple",
                                                                       "scopes": "openid email"}}).url
    provider_url = browser.to_provider(url)
    assert query_of(provider_url)["response_mode"] == "form_post"
    answer = query_of(browser.http.post(provider_url, data={"sub": sub}).headers["location"])
    form = {"code": answer["code"], "state": answer["state"],
            "user": json.dumps({"name": {"firstName": "Ann", "lastName": "Apple"}, "email": email})}
    r = httpx.post(oauth_server.url + "/auth/v1/callback", data=form)
    assert r.status_code == 302 and r.headers["location"].startswith(f"{APP}/apple?code="), r.headers
    user = sb.auth.exchange_code_for_session({"auth_code": query_of(r.headers["location"])["code"]}).user
    assert user.email == email and user.email_confirmed_at is not None
    assert user.user_metadata["full_name"] == "Ann Apple"


@pytest.mark.parametrize("provider", ["gitlab", "discord"])
def test_gitlab_and_discord(oauth_server: ServerHandle, github: tuple[GitHubStandIn, str], browser: Browser,
                            provider: str) -> None:
    email = unique_email(provider)
    user = gh_user(github, email)
    sb = py_client(oauth_server, flow="pkce")
    url = sb.auth.sign_in_with_oauth({"provider": provider, "options": {  # type: ignore[typeddict-item]
        "redirect_to": f"{APP}/", "query_params": {"login_hint": user.login}}}).url
    scope = query_of(browser.to_provider(url))["scope"]
    assert scope == {"gitlab": "read_user", "discord": "email identify"}[provider]
    landed = browser.go(url)
    me = sb.auth.exchange_code_for_session({"auth_code": query_of(landed)["code"]}).user
    assert me.email == email and me.email_confirmed_at is not None
    [identity] = me.identities or []
    assert (identity.provider, identity.id, identity.identity_data["user_name"]) == (provider, str(user.id), user.login)


def test_unverified_provider_email_is_not_signed_in(oauth_server: ServerHandle, github: tuple[GitHubStandIn, str],
                                                    browser: Browser) -> None:
    email = unique_email("ghu")
    user = gh_user(github, email, verified=False)
    url = py_client(oauth_server).auth.sign_in_with_oauth({"provider": "github", "options": {
        "redirect_to": f"{APP}/in", "query_params": {"login_hint": user.login}}}).url
    landed = browser.go(url)
    q = query_of(landed)
    assert q["error_code"] == "provider_email_needs_verification" and q["error"] == "access_denied"
    assert q["error_description"] == "Unverified email with github. A confirmation email has been sent to your" \
                                     " github email"
    rows = sql(oauth_server, "select u.email_confirmed_at from auth.identities i join auth.users u on u.id = i.user_id"
               " where i.provider = 'github' and i.provider_id = $1", str(user.id))
    assert len(rows) == 1 and rows[0]["email_confirmed_at"] is None  # kept, as GoTrue keeps it
    # The mailed link confirms the address; then the provider signs the user in.
    r = httpx.get(link_of(last_mail(oauth_server, email, "confirmation")), follow_redirects=False)
    assert r.status_code == 303 and "access_token=" in r.headers["location"]
    sb = py_client(oauth_server)
    url = sb.auth.sign_in_with_oauth({"provider": "github", "options": {
        "redirect_to": f"{APP}/in", "query_params": {"login_hint": user.login}}}).url
    assert sb.auth.get_user(fragment_of(browser.go(url))["access_token"]).user.email == email


def test_banned_user_is_refused(oauth_server: ServerHandle, github: tuple[GitHubStandIn, str],
                                browser: Browser) -> None:
    user = gh_user(github, unique_email("banned"))
    sb = py_client(oauth_server)
    options = {"redirect_to": f"{APP}/in", "query_params": {"login_hint": user.login}}
    first = fragment_of(browser.go(sb.auth.sign_in_with_oauth({"provider": "github", "options": options}).url))
    me = sb.auth.get_user(first["access_token"]).user
    py_client(oauth_server, oauth_server.service_key).auth.admin.update_user_by_id(me.id, {"ban_duration": "24h"})
    landed = browser.go(sb.auth.sign_in_with_oauth({"provider": "github", "options": options}).url)
    q = query_of(landed)
    assert (q["error"], q["error_code"], q["error_description"]) == ("access_denied", "user_banned", "User is banned")
    assert fragment_of(landed)["error_code"] == "user_banned" and "access_token" not in fragment_of(landed)


def test_verified_email_links_to_the_existing_user(oauth_server: ServerHandle, idp: str, browser: Browser) -> None:
    email = unique_email("existing")
    admin = py_client(oauth_server, oauth_server.service_key)
    existing = admin.auth.admin.create_user({"email": email, "password": "secret123", "email_confirm": True}).user
    sub, _ = oidc_user(idp, email=email.upper())
    sb = py_client(oauth_server, flow="pkce")
    url = sb.auth.sign_in_with_oauth({"provider": "google", "options": {"redirect_to": f"{APP}/"}}).url
    user = sb.auth.exchange_code_for_session({"auth_code": query_of(browser.go(url, sub=sub))["code"]}).user
    assert user.id == existing.id
    assert sorted(i.provider for i in user.identities or []) == ["email", "google"]
    assert user.app_metadata["providers"] == ["email", "google"] and user.app_metadata["provider"] == "email"
    # An unverified address does not take over an account: a new user, refused until verified.
    sub2, _ = oidc_user(idp, email=email, verified=False)
    url = py_client(oauth_server, flow="pkce").auth.sign_in_with_oauth({"provider": "google",
                                                                         "options": {"redirect_to": f"{APP}/"}}).url
    assert query_of(browser.go(url, sub=sub2))["error_code"] == "provider_email_needs_verification"
    owners = sql(oauth_server, "select user_id from auth.identities where provider = 'google' and provider_id = $1", sub2)
    assert [r["user_id"] for r in owners] != [uuid.UUID(existing.id)]


def test_squatted_unconfirmed_account_loses_the_squatters_password(oauth_server: ServerHandle, idp: str,
                                                                  browser: Browser) -> None:
    """Someone signs up with the owner's address and never confirms; the owner then signs in with a
    provider that verified the address: same account, but the squatter's password is gone."""
    email = unique_email("squat")
    squatter = py_client(oauth_server)
    signed = squatter.auth.sign_up({"email": email, "password": "squatter-pw",
                                    "options": {"data": {"evil": True}}}).user
    assert signed is not None and signed.email_confirmed_at is None
    sub, _ = oidc_user(idp, email=email)
    sb = py_client(oauth_server, flow="pkce")
    url = sb.auth.sign_in_with_oauth({"provider": "google", "options": {"redirect_to": f"{APP}/"}}).url
    user = sb.auth.exchange_code_for_session({"auth_code": query_of(browser.go(url, sub=sub))["code"]}).user
    assert user.id == signed.id and user.email_confirmed_at is not None
    assert [i.provider for i in user.identities or []] == ["google"]
    assert "evil" not in user.user_metadata
    err = error_of(lambda: py_client(oauth_server).auth.sign_in_with_password({"email": email,
                                                                               "password": "squatter-pw"}))
    assert err.code == "invalid_credentials"


def test_identity_copied_from_supabase_lands_on_the_same_user(oauth_server: ServerHandle,
                                                              github: tuple[GitHubStandIn, str],
                                                              browser: Browser) -> None:
    # As `ownbase migrate users` copies them: the Supabase user id and its GitHub identity.
    user_id, old_email = uuid.uuid4(), unique_email("migrated")
    gh = gh_user(github, unique_email("new-address"))
    sql(oauth_server, """insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
            email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
            confirmation_token, recovery_token, email_change_token_new, email_change)
        values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, '',
            now(), '{"provider": "github", "providers": ["github"]}', '{}', now(), now(), '', '', '', '')""",
        user_id, old_email)
    sql(oauth_server, """insert into auth.identities (provider_id, user_id, identity_data, provider, created_at,
            updated_at) values ($1, $2, $3::jsonb, 'github', now(), now())""",
        str(gh.id), user_id, json.dumps({"sub": str(gh.id), "email": old_email}))
    sb = py_client(oauth_server)
    url = sb.auth.sign_in_with_oauth({"provider": "github", "options": {
        "redirect_to": f"{APP}/", "query_params": {"login_hint": gh.login}}}).url
    frag = fragment_of(browser.go(url))
    me = sb.auth.get_user(frag["access_token"]).user
    assert me.id == str(user_id) and me.email == old_email
    assert len(me.identities or []) == 1


def test_signups_off_and_fixed_redirect(server_factory: Callable[..., ServerHandle], idp: str,
                                       browser: Browser) -> None:
    closed = server_factory({
        "OWNBASE_SITE_URL": SITE, "OWNBASE_AUTH_DISABLE_SIGNUP": "true",
        "OWNBASE_AUTH_EXTERNAL_REDIRECT_URL": f"{APP}/fixed",
        "OWNBASE_AUTH_EXTERNAL_GOOGLE_ENABLED": "true", "OWNBASE_AUTH_EXTERNAL_GOOGLE_CLIENT_ID": "google-client",
        "OWNBASE_AUTH_EXTERNAL_GOOGLE_SECRET": "s", "OWNBASE_AUTH_EXTERNAL_GOOGLE_URL": idp})
    sub, email = oidc_user(idp)
    url = py_client(closed, flow="pkce").auth.sign_in_with_oauth({"provider": "google"}).url
    landed = browser.go(url, sub=sub)
    assert landed.startswith(f"{APP}/fixed?")
    q = query_of(landed)
    assert (q["error"], q["error_code"]) == ("access_denied", "signup_disabled")
    assert sql(closed, "select 1 from auth.identities where provider_id = $1", sub) == []
    # An existing user still signs in (linked by its verified email).
    py_client(closed, closed.service_key).auth.admin.create_user({"email": email, "email_confirm": True})
    sb = py_client(closed, flow="pkce")
    landed = browser.go(sb.auth.sign_in_with_oauth({"provider": "google"}).url, sub=sub)
    assert sb.auth.exchange_code_for_session({"auth_code": query_of(landed)["code"]}).user.email == email


# --- signInWithIdToken -------------------------------------------------------------------------

def test_id_token_sign_in(oauth_server: ServerHandle, idp: str) -> None:
    sub, email = f"idt-{uuid.uuid4().hex[:8]}", unique_email("idt")
    nonce = "raw-nonce-" + uuid.uuid4().hex
    hashed = hashlib.sha256(nonce.encode()).hexdigest()
    good = mint(idp, {"sub": sub, "aud": "ios-client", "email": email, "email_verified": True, "nonce": hashed})
    sb = py_client(oauth_server)
    session = sb.auth.sign_in_with_id_token({"provider": "google", "token": good, "nonce": nonce}).session
    assert session is not None and session.user.email == email
    assert [(i.provider, i.id) for i in session.user.identities or []] == [("google", sub)]
    # Apple (iss from the token, email always verified), same provider keys.
    apple = mint(idp, {"sub": "apple-" + sub, "aud": "apple-client", "email": unique_email("apple")})
    assert sb.auth.sign_in_with_id_token({"provider": "apple", "token": apple}).user.email_confirmed_at
    azure = mint(idp, {"sub": "azure-" + sub, "aud": "azure-client", "email": unique_email("azure"),
                       "email_verified": True})
    assert sb.auth.sign_in_with_id_token({"provider": "azure", "token": azure}).user.identities[0].provider == "azure"
    # Tokens for another provider's client are not accepted as this one's.
    assert error_of(lambda: sb.auth.sign_in_with_id_token({"provider": "azure", "token": apple})).message == \
        "Unacceptable audience in id_token: [apple-client]"

    def refused(token: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        r = httpx.post(oauth_server.url + "/auth/v1/token?grant_type=id_token", headers={"apikey": oauth_server.anon_key},
                       json={"provider": "google", "id_token": token, **extra})
        return r.status_code, r.json()

    bad_nonce = mint(idp, {"sub": sub, "aud": "google-client", "nonce": hashlib.sha256(b"other").hexdigest()})
    assert refused(bad_nonce, nonce=nonce) == (400, {"error": "invalid nonce", "error_description": "Nonces mismatch"})
    assert refused(good) == (400, {"error": "invalid request", "error_description":
                                   "Passed nonce and nonce in id_token should either both exist or not."})
    wrong_aud = mint(idp, {"sub": sub, "aud": "someone-else"})
    assert refused(wrong_aud) == (400, {"error": "invalid request",
                                        "error_description": "Unacceptable audience in id_token: [someone-else]"})
    now = int(time.time())
    expired = mint(idp, {"sub": sub, "aud": "google-client", "iat": now - 7200, "exp": now - 3600})
    assert refused(expired) == (400, {"error": "invalid request", "error_description": "Bad ID token"})
    access = "provider-access-token"
    at_hash = base64.urlsafe_b64encode(hashlib.sha256(access.encode()).digest()[:16]).rstrip(b"=").decode()
    with_hash = mint(idp, {"sub": sub, "aud": "google-client", "at_hash": at_hash})
    assert refused(with_hash, access_token="another-token")[1]["error_description"] == "Bad ID token"
    assert refused(with_hash, access_token=access)[0] == 200
    forged = good.rsplit(".", 1)[0] + "." + "A" * 342
    assert refused(forged, nonce=nonce)[1]["error_description"] == "Bad ID token"
    # supabase-py shows GoTrue's message.
    assert error_of(lambda: sb.auth.sign_in_with_id_token({"provider": "google", "token": wrong_aud})).message == \
        "Unacceptable audience in id_token: [someone-else]"


# --- identity linking ----------------------------------------------------------------------------

def test_link_and_unlink_identities(oauth_server: ServerHandle, github: tuple[GitHubStandIn, str], idp: str,
                                    browser: Browser) -> None:
    email = unique_email("linker")
    sb = py_client(oauth_server, flow="pkce")
    admin = py_client(oauth_server, oauth_server.service_key)
    admin.auth.admin.create_user({"email": email, "password": "secret123", "email_confirm": True})
    sb.auth.sign_in_with_password({"email": email, "password": "secret123"})
    gh = gh_user(github, unique_email("other-address"))
    url = sb.auth.link_identity({"provider": "github", "options": {
        "redirect_to": f"{APP}/linked", "query_params": {"login_hint": gh.login}}}).url
    assert url.startswith(github[1] + "/login/oauth/authorize?")
    landed = browser.go(url)
    session = sb.auth.exchange_code_for_session({"auth_code": query_of(landed)["code"]}).session
    assert session is not None and session.user.email == email
    identities = sb.auth.get_user_identities().identities
    assert sorted(i.provider for i in identities) == ["email", "github"]
    assert sb.auth.get_user().user.app_metadata["providers"] == ["email", "github"]
    # The same GitHub account cannot be linked twice.
    again = sb.auth.link_identity({"provider": "github", "options": {
        "redirect_to": f"{APP}/linked", "query_params": {"login_hint": gh.login}}}).url
    q = query_of(browser.go(again))
    assert (q["error_code"], q["error_description"]) == ("identity_already_exists", "Identity is already linked")
    # ... nor to someone else.
    other = py_client(oauth_server, flow="pkce")
    other.auth.sign_in_anonymously()
    url = other.auth.link_identity({"provider": "github", "options": {
        "redirect_to": f"{APP}/linked", "query_params": {"login_hint": gh.login}}}).url
    q = query_of(browser.go(url))
    assert (q["error_code"], q["error_description"]) == ("identity_already_exists",
                                                         "Identity is already linked to another user")
    # Linking an ID token to the signed-in user.
    sub = f"link-{uuid.uuid4().hex[:8]}"
    token = mint(idp, {"sub": sub, "aud": "google-client"})
    r = httpx.post(oauth_server.url + "/auth/v1/token?grant_type=id_token",
                   headers={"apikey": oauth_server.anon_key, "authorization": f"Bearer {session.access_token}"},
                   json={"provider": "google", "id_token": token, "link_identity": True})
    assert r.status_code == 200 and r.json()["user"]["id"] == session.user.id
    assert sorted(i["provider"] for i in r.json()["user"]["identities"]) == ["email", "github", "google"]
    # Unlink github, then google; the last one stays.
    for provider in ("github", "google"):
        identity = next(i for i in sb.auth.get_user_identities().identities if i.provider == provider)
        sb.auth.unlink_identity(identity)
    left = sb.auth.get_user_identities().identities
    assert [i.provider for i in left] == ["email"]
    assert sb.auth.get_user().user.app_metadata["providers"] == ["email"]
    err = error_of(lambda: sb.auth.unlink_identity(left[0]))
    assert (err.code, err.message) == ("single_identity_not_deletable",
                                       "User must have at least 1 identity after unlinking")
    c = oauth_server.client(token=sb.auth.get_session().access_token)
    r = c.delete("/auth/v1/user/identities/not-a-uuid", headers=NEW)
    assert (r.status_code, r.json()["code"]) == (404, "validation_failed")


def test_anonymous_user_becomes_permanent_by_linking(oauth_server: ServerHandle, idp: str,
                                                    browser: Browser) -> None:
    sb = py_client(oauth_server, flow="pkce")
    anon = sb.auth.sign_in_anonymously().user
    assert anon is not None and anon.is_anonymous
    sub, email = oidc_user(idp)
    url = sb.auth.link_identity({"provider": "google", "options": {"redirect_to": f"{APP}/keep"}}).url
    user = sb.auth.exchange_code_for_session({"auth_code": query_of(browser.go(url, sub=sub))["code"]}).user
    assert user.id == anon.id and user.email == email and not user.is_anonymous
    assert user.email_confirmed_at is not None
    assert [i.provider for i in user.identities or []] == ["google"]
    # From now on the provider signs this user in.
    sb2 = py_client(oauth_server, flow="pkce")
    url = sb2.auth.sign_in_with_oauth({"provider": "google", "options": {"redirect_to": f"{APP}/"}}).url
    assert sb2.auth.exchange_code_for_session({"auth_code": query_of(browser.go(url, sub=sub))["code"]}).user.id == anon.id


# --- supabase-js ----------------------------------------------------------------------------------

def test_supabase_js_oauth(oauth_server: ServerHandle, idp: str) -> None:
    node = shutil.which("node")
    assert node, "node is required"
    js_dir = Path(__file__).resolve().parents[1] / "js"
    env = {**os.environ, "OWNBASE_URL": oauth_server.url, "OWNBASE_ANON_KEY": oauth_server.anon_key,
           "OWNBASE_SERVICE_KEY": oauth_server.service_key, "OIDC_URL": idp}
    proc = subprocess.run([node, "--test", "--test-reporter=spec", "oauth.node.mjs"], cwd=js_dir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:] + oauth_server.log()


# --- no 5xx for any input on the new routes -------------------------------------------------------

text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=60)


@pytest.fixture(scope="module")
def fuzz_token(oauth_server: ServerHandle) -> str:
    email = unique_email("fuzz")
    admin = py_client(oauth_server, oauth_server.service_key)
    admin.auth.admin.create_user({"email": email, "password": "secret123", "email_confirm": True})
    sb = py_client(oauth_server)
    return sb.auth.sign_in_with_password({"email": email, "password": "secret123"}).session.access_token


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(["provider", "redirect_to", "scopes", "code_challenge",
                                        "code_challenge_method", "skip_http_redirect", "state", "code",
                                        "error", "user", "x"]), text, max_size=6),
       st.sampled_from(["/authorize", "/callback", "/user/identities/authorize"]), st.booleans())
def test_fuzz_oauth_routes_never_5xx(oauth_server: ServerHandle, fuzz_token: str, params: dict[str, str],
                                     path: str, post: bool) -> None:
    headers = {"apikey": oauth_server.anon_key, "authorization": f"Bearer {fuzz_token}", **NEW}
    if post and path == "/callback":
        r = httpx.post(oauth_server.url + "/auth/v1" + path, data=params, headers=headers)
    else:
        r = httpx.get(oauth_server.url + "/auth/v1" + path, params=params, headers=headers)
    assert r.status_code < 500, (path, params, r.text)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.fixed_dictionaries({}, optional={"provider": st.sampled_from(["google", "apple", "custom:mock", "github", ""])
                                           | text, "id_token": text, "nonce": text, "issuer": text,
                                           "client_id": text, "access_token": text,
                                           "link_identity": st.booleans()}),
       text | st.uuids().map(str))
def test_fuzz_id_token_and_unlink_never_5xx(oauth_server: ServerHandle, fuzz_token: str, body: dict[str, Any],
                                            identity: str) -> None:
    r = httpx.post(oauth_server.url + "/auth/v1/token?grant_type=id_token", json=body,
                   headers={"apikey": oauth_server.anon_key, "authorization": f"Bearer {fuzz_token}"})
    assert r.status_code < 500, (body, r.text)
    r = httpx.delete(oauth_server.url + "/auth/v1/user/identities/" + (quote(identity, safe="") or "x"),
                     headers={"apikey": oauth_server.anon_key, "authorization": f"Bearer {fuzz_token}"})
    assert r.status_code < 500, (identity, r.text)
