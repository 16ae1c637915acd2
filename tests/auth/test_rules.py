"""Configurable security rules: reauthentication nonce, secure email change, redirect allow-list,
resend, revocation beating the reuse window, concurrent refreshes, and pure helpers."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import jwt as pyjwt
import pytest
from supabase_auth.errors import AuthApiError

from ownbase.auth.admin import parse_ban
from ownbase.auth.redirects import allowed
from ownbase.auth.tokens import link_token_hash, new_otp, pkce_challenge_ok
from ownbase.settings import Settings
from tests.auth.conftest import code_of, last_mail, link_of, mails, py_client, unique_email
from tests.conftest import ServerHandle, sql


@pytest.fixture(scope="module")
def secure(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_AUTOCONFIRM": "true", "OWNBASE_AUTH_SECURE_PASSWORD_CHANGE": "true",
                           "OWNBASE_AUTH_SECURE_EMAIL_CHANGE": "true"})


def test_password_change_needs_reauthentication_nonce(secure: ServerHandle) -> None:
    sb = py_client(secure)
    email = unique_email("nonce")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    with pytest.raises(AuthApiError) as exc:
        sb.auth.update_user({"password": "another456"})
    assert exc.value.code == "reauthentication_needed"
    with pytest.raises(AuthApiError) as exc:
        sb.auth.update_user({"password": "another456", "nonce": "000000"})
    assert exc.value.code == "reauthentication_not_valid"
    sb.auth.reauthenticate()
    nonce = code_of(last_mail(secure, email, "reauthentication"))
    sb.auth.update_user({"password": "another456", "nonce": nonce})
    assert py_client(secure).auth.sign_in_with_password({"email": email, "password": "another456"}).session


def test_secure_email_change_needs_both_addresses(secure: ServerHandle) -> None:
    sb = py_client(secure)
    old, new = unique_email("old"), unique_email("new")
    sb.auth.sign_up({"email": old, "password": "secret123"})
    sb.auth.update_user({"email": new})
    new_code = code_of(last_mail(secure, new, "email_change"))
    old_code = code_of(last_mail(secure, old, "email_change"))
    first = sb.auth.verify_otp({"email": new, "token": new_code, "type": "email_change"})
    assert first.session is None  # half done: GoTrue's {"msg", "code": "200"} reply
    assert sql(secure, "select email from auth.users where email = $1", old)
    done = sb.auth.verify_otp({"email": old, "token": old_code, "type": "email_change"})
    assert done.user is not None and done.user.email == new


def test_redirect_allow_list(auto_server: ServerHandle) -> None:
    sb = py_client(auto_server)
    ok_mail, bad_mail = unique_email("redir"), unique_email("redir")
    for email in (ok_mail, bad_mail):
        sb.auth.sign_up({"email": email, "password": "secret123"})
    sb.auth.sign_in_with_otp({"email": ok_mail, "options": {"email_redirect_to": "http://app.example/welcome"}})
    sb.auth.sign_in_with_otp({"email": bad_mail, "options": {"email_redirect_to": "https://evil.example/x"}})
    ok_link, bad_link = link_of(last_mail(auto_server, ok_mail)), link_of(last_mail(auto_server, bad_mail))
    assert parse_qs(urlsplit(ok_link).query)["redirect_to"] == ["http://app.example/welcome"]
    assert parse_qs(urlsplit(bad_link).query)["redirect_to"] == ["http://localhost:3000"]
    # Tampering with the link's redirect_to does not help either: GET /verify re-checks it.
    tampered = bad_link.replace("redirect_to=http%3A%2F%2Flocalhost%3A3000", "redirect_to=https%3A%2F%2Fevil.example")
    r = httpx.get(tampered, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("http://localhost:3000#access_token=")
    r = httpx.get(ok_link, follow_redirects=False)
    assert r.headers["location"].startswith("http://app.example/welcome#access_token=")
    assert "type=magiclink" in r.headers["location"]


def test_resend_signup_confirmation(server: ServerHandle) -> None:
    sb = py_client(server)
    email = unique_email("resend")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    first = code_of(last_mail(server, email))
    sb.auth.resend({"type": "signup", "email": email})
    assert len(mails(server, email)) == 2
    second = code_of(last_mail(server, email))
    # Only the newest code works.
    if first != second:
        with pytest.raises(AuthApiError):
            sb.auth.verify_otp({"email": email, "token": first, "type": "signup"})
    assert sb.auth.verify_otp({"email": email, "token": second, "type": "signup"}).session is not None


def test_signout_beats_the_reuse_window(auto_server: ServerHandle) -> None:
    sb = py_client(auto_server)
    email = unique_email("revoke")
    first = sb.auth.sign_up({"email": email, "password": "secret123"}).session
    second = sb.auth.refresh_session(first.refresh_token).session
    sb.auth.sign_out({"scope": "local"})
    for token in (first.refresh_token, second.refresh_token):  # first is still inside the 10 s window
        with pytest.raises(AuthApiError):
            py_client(auto_server).auth.refresh_session(token)
    actions = {r["a"] for r in sql(auto_server, "select payload->>'action' as a from auth.audit_log_entries"
                                                " where payload->>'actor_username' = $1", email)}
    assert {"user_signedup", "login", "token_refreshed", "logout"} <= actions


def test_concurrent_refreshes_of_one_token_agree(auto_server: ServerHandle) -> None:
    email = unique_email("tabs")
    session = py_client(auto_server).auth.sign_up({"email": email, "password": "secret123"}).session

    def refresh(_: int) -> str:
        r = httpx.post(auto_server.url + "/auth/v1/token?grant_type=refresh_token",
                       json={"refresh_token": session.refresh_token}, headers={"apikey": auto_server.anon_key})
        assert r.status_code == 200, r.text
        return str(r.json()["refresh_token"])

    with ThreadPoolExecutor(6) as pool:
        results = set(pool.map(refresh, range(6)))
    assert len(results) == 1  # every tab ends up with the same current token
    n = sql(auto_server, "select count(*) as n from auth.refresh_tokens r join auth.users u on u.id::text = r.user_id"
                         " where u.email = $1 and not r.revoked", email)[0]["n"]
    assert n == 1


@pytest.mark.parametrize(("url", "ok"), [
    ("http://localhost:3000/after", True),
    ("http://app.example/anything/deep", True),
    ("https://evil.example/", False),
    ("javascript:alert(1)", False),
    ("http://localhost:3000.evil.example/", False),
])
def test_redirect_rules(url: str, ok: bool) -> None:
    s = Settings(site_url="http://localhost:3000", auth_redirect_allow_list=["http://app.example/**"])
    assert allowed(s, url) is ok


def test_pure_helpers() -> None:
    codes = {new_otp(6) for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    assert link_token_hash("A@B.co", "123456") == link_token_hash("a@b.co", "123456")
    assert len(link_token_hash("a@b.co", "123456")) == 56  # sha224 hex, as GoTrue
    assert pkce_challenge_ok("v" * 43, "v" * 43, "plain")
    assert not pkce_challenge_ok("v" * 43, "w" * 43, "plain")
    assert parse_ban("none") is None and parse_ban("1h30m") is not None
    with pytest.raises(Exception):
        parse_ban("forever")


def test_disabled_signup_and_send_interval(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_AUTH_DISABLE_SIGNUP": "true", "OWNBASE_AUTH_EMAIL_SEND_INTERVAL": "60"})
    sb = py_client(srv)
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_up({"email": unique_email("closed"), "password": "secret123"})
    assert exc.value.code == "signup_disabled" and exc.value.status == 422
    settings = httpx.get(srv.url + "/auth/v1/settings").json()
    assert settings["disable_signup"] is True
    email = unique_email("interval")
    py_client(srv, srv.service_key).auth.admin.create_user(
        {"email": email, "password": "secret123", "email_confirm": True})
    sb.auth.sign_in_with_otp({"email": email})
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_in_with_otp({"email": email})
    assert exc.value.code == "over_email_send_rate_limit"
    assert exc.value.message.startswith("For security purposes, you can only request this after ")
    too_long = httpx.post(srv.url + "/auth/v1/admin/users", json={"email": unique_email(), "password": "x" * 73},
                          headers={"apikey": srv.service_key, "Authorization": f"Bearer {srv.service_key}",
                                   "X-Supabase-Api-Version": "2024-01-01"})
    assert too_long.status_code == 400
    assert too_long.json()["message"] == "Password cannot be longer than 72 characters"


def test_imported_supabase_user_with_cost_10_hash_signs_in(server: ServerHandle) -> None:
    email = unique_email("imported")
    uid = uuid.uuid4()
    hashed = bcrypt.hashpw(b"from-supabase", bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()
    assert hashed.startswith("$2a$10$")
    # A row as Supabase's pg_dump of auth.users carries it.
    sql(server, """insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
                       email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
                       confirmation_token, recovery_token, email_change_token_new, email_change, is_super_admin)
                   values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, $3,
                       now(), '{"provider":"email","providers":["email"]}', '{"name":"Imp"}', now(), now(),
                       '', '', '', '', false)""", uid, email, hashed)
    res = py_client(server).auth.sign_in_with_password({"email": email, "password": "from-supabase"})
    assert res.user is not None and res.user.id == str(uid) and res.user.user_metadata == {"name": "Imp"}
    # New hashes use the configured cost (the test env lowers it to 4; the shipped default is 12).
    sb = py_client(server)
    sb.auth.sign_in_with_password({"email": email, "password": "from-supabase"})
    sb.auth.update_user({"password": "now-ownbase"})
    stored = sql(server, "select encrypted_password from auth.users where id = $1", uid)[0]["encrypted_password"]
    assert stored.startswith("$2b$04$")
    fields = Settings.model_fields
    assert fields["auth_bcrypt_cost"].default == 12 and fields["auth_access_token_ttl"].default == 900
    assert fields["auth_refresh_token_ttl"].default == 7 * 24 * 3600 and fields["auth_otp_ttl"].default == 900
    assert fields["auth_otp_max_per_hour"].default == 3 and fields["auth_password_min_length"].default == 6


def test_copied_supabase_session_keeps_refreshing(server: ServerHandle) -> None:
    email = unique_email("session")
    uid, sid = uuid.uuid4(), uuid.uuid4()
    sql(server, """insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                       raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
                   values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, '',
                       now(), '{"provider":"email","providers":["email"]}', '{}', now(), now())""", uid, email)
    sql(server, "insert into auth.sessions (id, user_id, created_at, updated_at, aal) values ($1, $2, now(), now(), 'aal1')",
        sid, uid)
    sql(server, """insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
                   values ('00000000-0000-0000-0000-000000000000', 'supabasetoken12', $1, false, now(), now(), $2)""",
        str(uid), sid)
    res = py_client(server).auth.refresh_session("supabasetoken12")
    assert res.session is not None and res.user is not None and res.user.id == str(uid)
    claims = py_client(server).auth.get_user(res.session.access_token)
    assert claims is not None and claims.user.email == email

    assert pyjwt.decode(res.session.access_token, options={"verify_signature": False})["session_id"] == str(sid)
