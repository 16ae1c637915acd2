"""Account lifecycle through supabase-py against a live ownbase (confirmations on by default)."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from supabase_auth.errors import AuthApiError

from ownbase.db.scope import RequestScope, request_scope
from tests.auth.conftest import code_of, last_mail, link_of, mails, py_client, unique_email
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}


def test_signup_requires_confirmation_then_code_confirms(server: ServerHandle) -> None:
    sb = py_client(server)
    email = unique_email("confirm")
    res = sb.auth.sign_up({"email": email, "password": "secret123", "options": {"data": {"name": "Ann"}}})
    assert res.session is None
    assert res.user is not None and res.user.email == email
    assert res.user.user_metadata["name"] == "Ann"
    assert res.user.confirmation_sent_at is not None
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_in_with_password({"email": email, "password": "secret123"})
    assert exc.value.code == "email_not_confirmed"
    mail = last_mail(server, email, "confirmation")
    code = code_of(mail)
    assert len(code) == 6
    # Only a hash is stored: the code itself appears nowhere in the token table.
    stored = sql(server, "select token_hash from auth.one_time_tokens where relates_to = $1", email)
    assert stored and all(code not in r["token_hash"] for r in stored)
    verified = sb.auth.verify_otp({"email": email, "token": code, "type": "signup"})
    assert verified.session is not None and verified.user is not None
    assert verified.user.email_confirmed_at is not None
    # The code is single use.
    with pytest.raises(AuthApiError) as exc:
        sb.auth.verify_otp({"email": email, "token": code, "type": "signup"})
    assert exc.value.code == "otp_expired"
    signed = sb.auth.sign_in_with_password({"email": email, "password": "secret123"})
    assert signed.session is not None
    audit = sql(server, "select payload->>'action' as a from auth.audit_log_entries"
                        " where payload->>'actor_username' = $1", email)
    assert {"user_signedup", "login"} <= {r["a"] for r in audit}


def test_confirmation_link_redirects_with_tokens(server: ServerHandle) -> None:
    sb = py_client(server)
    email = unique_email("link")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    link = link_of(last_mail(server, email, "confirmation"))
    assert link.startswith(server.url + "/auth/v1/verify?")
    r = httpx.get(link, follow_redirects=False)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("http://localhost:3000#")
    fragment = dict(p.split("=", 1) for p in location.split("#", 1)[1].split("&"))
    assert fragment["type"] == "signup" and fragment["token_type"] == "bearer"
    user = sb.auth.get_user(fragment["access_token"])
    assert user is not None and user.user.email == email and user.user.email_confirmed_at
    # The link is single use: a second click redirects with GoTrue's error fragment.
    again = httpx.get(link, follow_redirects=False)
    assert again.status_code == 303
    assert "#error=access_denied&error_code=otp_expired" in again.headers["location"]


def test_duplicate_signup_does_not_reveal_existing_user(server: ServerHandle, auto_server: ServerHandle) -> None:
    email = unique_email("dup")
    sb = py_client(auto_server)
    sb.auth.sign_up({"email": email, "password": "secret123"})
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_up({"email": email, "password": "secret123"})
    assert exc.value.code == "user_already_exists" and exc.value.status == 422
    # With confirmations on, a confirmed address gets a fake user (new id, no identities).
    fake = py_client(server).auth.sign_up({"email": email, "password": "other1234"})
    real_id = sql(server, "select id from auth.users where email = $1", email)[0]["id"]
    assert fake.user is not None and fake.user.id != str(real_id) and fake.user.identities == []


def test_wrong_password_and_error_shapes(auto_server: ServerHandle) -> None:
    sb = py_client(auto_server)
    email = unique_email("wrong")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_in_with_password({"email": email, "password": "nope-nope"})
    assert exc.value.code == "invalid_credentials" and exc.value.message == "Invalid login credentials"
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_in_with_password({"email": unique_email("ghost"), "password": "nope-nope"})
    assert exc.value.code == "invalid_credentials"
    url = auto_server.url + "/auth/v1/token?grant_type=password"
    body = {"email": email, "password": "bad-bad-bad"}
    new = httpx.post(url, json=body, headers={"apikey": auto_server.anon_key, **NEW})
    assert new.status_code == 400
    assert new.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    assert new.headers["x-sb-error-code"] == "invalid_credentials"
    assert new.headers["x-supabase-api-version"] == "2024-01-01"
    old = httpx.post(url, json=body, headers={"apikey": auto_server.anon_key})
    assert old.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}
    assert old.headers["x-sb-error-code"] == "invalid_credentials"
    weak = httpx.post(auto_server.url + "/auth/v1/signup", json={"email": unique_email(), "password": "123"},
                      headers={"apikey": auto_server.anon_key, **NEW})
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    assert weak.json()["weak_password"] == {"reasons": ["length"]}
    garbage = httpx.post(auto_server.url + "/auth/v1/signup", content=b"{nope",
                         headers={"apikey": auto_server.anon_key, **NEW})
    assert garbage.status_code == 400 and garbage.json()["code"] == "bad_json"


def test_autoconfirm_session_claims_and_auth_uid(auto_server: ServerHandle) -> None:
    sb = py_client(auto_server)
    email = unique_email("claims")
    res = sb.auth.sign_up({"email": email, "password": "secret123", "options": {"data": {"plan": "pro"}}})
    assert res.session is not None and res.user is not None
    assert res.session.expires_in == 900
    claims = sb.auth.get_claims()["claims"]  # verified by the client against our JWKS
    for key in ("iss", "sub", "aud", "exp", "iat", "email", "phone", "app_metadata", "user_metadata",
                "role", "aal", "amr", "session_id", "is_anonymous"):
        assert key in claims, key
    assert claims["sub"] == res.user.id and claims["role"] == "authenticated"
    assert claims["aud"] == "authenticated" and claims["amr"][0]["method"] == "password"
    assert claims["user_metadata"]["plan"] == "pro" and claims["is_anonymous"] is False
    assert claims["exp"] - claims["iat"] == 900

    async def uid() -> str:
        conn = await asyncpg.connect(auto_server.db_url)
        try:
            async with conn.transaction():
                await conn.execute("select set_config('request.jwt.claims', $1, true)",
                                   __import__("json").dumps(claims))
                return str(await conn.fetchval("select auth.uid()"))
        finally:
            await conn.close()

    assert asyncio.run(uid()) == res.user.id
    assert RequestScope and request_scope  # the same helper the data plane uses


def test_refresh_rotation_reuse_window_and_theft(auto_server: ServerHandle) -> None:
    srv = auto_server  # default reuse interval: 10 s
    sb = py_client(srv)
    email = unique_email("refresh")
    first = sb.auth.sign_up({"email": email, "password": "secret123"}).session
    assert first is not None
    second = sb.auth.refresh_session(first.refresh_token).session
    assert second is not None and second.refresh_token != first.refresh_token
    # Within the reuse interval the old token yields the session's current token (concurrent tabs).
    again = sb.auth.refresh_session(first.refresh_token).session
    assert again is not None and again.refresh_token == second.refresh_token
    # Leave the reuse window without sleeping: the old token was revoked 11 s "ago".
    sql(srv, "update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds' where token = $1",
        first.refresh_token)
    with pytest.raises(AuthApiError) as exc:
        sb.auth.refresh_session(first.refresh_token)
    assert exc.value.code == "refresh_token_already_used"
    # The whole session was revoked: the current token no longer refreshes either.
    with pytest.raises(AuthApiError) as exc:
        sb.auth.refresh_session(second.refresh_token)
    assert exc.value.code in ("refresh_token_not_found", "session_not_found")
    r = httpx.get(srv.url + "/auth/v1/user", headers={"apikey": srv.anon_key, **NEW,
                                                       "Authorization": f"Bearer {second.access_token}"})
    assert r.status_code == 403 and r.json()["code"] == "session_not_found"


def test_signout_scopes(auto_server: ServerHandle) -> None:
    email = unique_email("scopes")
    py_client(auto_server).auth.sign_up({"email": email, "password": "secret123"})

    def login():  # type: ignore[no-untyped-def]
        c = py_client(auto_server)
        return c, c.auth.sign_in_with_password({"email": email, "password": "secret123"}).session

    (a, sa), (b, sb_), (c, sc) = login(), login(), login()
    # others: a keeps its session, b and c lose theirs
    a.auth.sign_out({"scope": "others"})
    assert a.auth.refresh_session(sa.refresh_token).session is not None
    with pytest.raises(AuthApiError):
        b.auth.refresh_session(sb_.refresh_token)
    with pytest.raises(AuthApiError):
        c.auth.refresh_session(sc.refresh_token)
    # local: only the caller's session ends
    d, sd = login()
    d.auth.sign_out({"scope": "local"})
    with pytest.raises(AuthApiError):
        d.auth.refresh_session(sd.refresh_token)
    e, se = login()
    assert e.auth.refresh_session(se.refresh_token).session is not None
    # global: every session ends, reuse window or not
    f, sf = login()
    f.auth.sign_out({"scope": "global"})
    with pytest.raises(AuthApiError):
        e.auth.refresh_session(se.refresh_token)
    assert sql(auto_server, "select count(*) as n from auth.sessions s join auth.users u on u.id = s.user_id"
                            " where u.email = $1", email)[0]["n"] == 0
    bad = httpx.post(auto_server.url + "/auth/v1/logout?scope=everything",
                     headers={"apikey": auto_server.anon_key, "Authorization": f"Bearer {sf.access_token}", **NEW})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"


def test_get_and_update_user_and_email_change(auto_server: ServerHandle) -> None:
    sb = py_client(auto_server)
    email = unique_email("upd")
    sb.auth.sign_up({"email": email, "password": "secret123", "options": {"data": {"a": 1}}})
    got = sb.auth.get_user()
    assert got is not None and got.user.email == email
    upd = sb.auth.update_user({"data": {"b": 2}})
    assert upd.user.user_metadata == {"a": 1, "b": 2}
    with pytest.raises(AuthApiError) as exc:
        sb.auth.update_user({"password": "secret123"})
    assert exc.value.code == "same_password"
    sb.auth.update_user({"password": "newsecret456"})
    assert py_client(auto_server).auth.sign_in_with_password(
        {"email": email, "password": "newsecret456"}).session is not None
    new_email = unique_email("changed")
    res = sb.auth.update_user({"email": new_email})
    assert res.user.new_email == new_email and res.user.email == email
    code = code_of(last_mail(auto_server, new_email, "email_change"))
    done = sb.auth.verify_otp({"email": new_email, "token": code, "type": "email_change"})
    assert done.user is not None and done.user.email == new_email
    other = unique_email("taken")
    py_client(auto_server).auth.sign_up({"email": other, "password": "secret123"})
    with pytest.raises(AuthApiError) as exc:
        sb.auth.update_user({"email": other})
    assert exc.value.code == "email_exists"


def test_recovery_flow(auto_server: ServerHandle) -> None:
    sb = py_client(auto_server)
    email = unique_email("recover")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    sb.auth.reset_password_for_email(email)
    # Unknown addresses get the same empty success, and no mail.
    sb.auth.reset_password_for_email(unique_email("nobody"))
    code = code_of(last_mail(auto_server, email, "recovery"))
    res = sb.auth.verify_otp({"email": email, "token": code, "type": "recovery"})
    assert res.session is not None
    sb.auth.update_user({"password": "recovered789"})
    assert py_client(auto_server).auth.sign_in_with_password(
        {"email": email, "password": "recovered789"}).session is not None
    actions = {r["a"] for r in sql(auto_server, "select payload->>'action' as a from auth.audit_log_entries"
                                                " where payload->>'actor_username' = $1", email)}
    assert {"user_recovery_requested", "user_updated_password", "user_modified"} <= actions


def test_otp_sign_in_expired_and_budget(server: ServerHandle) -> None:
    srv = server  # default code validity: 15 minutes
    sb = py_client(srv)
    email = unique_email("otp")
    sb.auth.sign_in_with_otp({"email": email})  # creates the user, sends the confirmation
    first = code_of(last_mail(srv, email))
    assert sb.auth.verify_otp({"email": email, "token": first, "type": "email"}).session is not None
    sb.auth.sign_in_with_otp({"email": email, "options": {"should_create_user": False}})
    magic = last_mail(srv, email, "magiclink")
    code = code_of(magic)
    # Expire it in the database (no sleeping): the code is refused.
    sql(srv, "update auth.one_time_tokens set created_at = created_at - interval '16 minutes'"
             " where relates_to = $1", email)
    with pytest.raises(AuthApiError) as exc:
        sb.auth.verify_otp({"email": email, "token": code, "type": "magiclink"})
    assert exc.value.code == "otp_expired"
    sb.auth.sign_in_with_otp({"email": email})  # third mail this hour
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_in_with_otp({"email": email})  # fourth: refused
    assert exc.value.code == "over_email_send_rate_limit" and exc.value.status == 429
    assert len(mails(srv, email)) == 3
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_in_with_otp({"email": unique_email("nocreate"), "options": {"should_create_user": False}})
    assert exc.value.code == "otp_disabled"


def test_anonymous_sign_in(server: ServerHandle, auto_server: ServerHandle) -> None:
    with pytest.raises(AuthApiError) as exc:
        py_client(server).auth.sign_in_anonymously()
    assert exc.value.code == "anonymous_provider_disabled" and exc.value.status == 422
    sb = py_client(auto_server)
    res = sb.auth.sign_in_anonymously({"options": {"data": {"guest": True}}})
    assert res.session is not None and res.user is not None and res.user.is_anonymous
    claims = sb.auth.get_claims()["claims"]
    assert claims["is_anonymous"] is True and claims["amr"][0]["method"] == "anonymous"
    # Converting the guest: add an email, confirm it with the code, set a password.
    email = unique_email("guest")
    sb.auth.update_user({"email": email})
    code = code_of(last_mail(auto_server, email, "email_change"))
    done = sb.auth.verify_otp({"email": email, "token": code, "type": "email_change"})
    assert done.user is not None and done.user.id == res.user.id and done.user.email == email
    assert done.user.is_anonymous is False and done.user.app_metadata["provider"] == "email"
    assert [i.provider for i in done.user.identities or []] == ["email"]
    sb.auth.update_user({"password": "guestpass1"})
    again = py_client(auto_server).auth.sign_in_with_password({"email": email, "password": "guestpass1"})
    assert again.user is not None and again.user.id == res.user.id


def test_pkce_confirmation_link_and_code_exchange(server: ServerHandle) -> None:
    sb = py_client(server, flow="pkce")
    email = unique_email("pkce")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    link = link_of(last_mail(server, email, "confirmation"))
    assert "token=pkce_" in link
    r = httpx.get(link, follow_redirects=False)
    assert r.status_code == 303 and "?code=" in r.headers["location"]
    code = r.headers["location"].split("?code=")[1]
    res = sb.auth.exchange_code_for_session({"auth_code": code})
    assert res.session is not None and res.user is not None and res.user.email == email


def test_settings_and_health(server: ServerHandle) -> None:
    s = httpx.get(server.url + "/auth/v1/settings", headers={"apikey": server.anon_key}).json()
    assert s["mailer_autoconfirm"] is False and s["disable_signup"] is False
    assert {"github", "google", "email", "phone", "anonymous_users"} <= set(s["external"])
    assert {"saml_enabled", "phone_autoconfirm", "sms_provider", "passkeys_enabled"} <= set(s)
    assert httpx.get(server.url + "/auth/v1/health").status_code == 200


def test_mail_budget_holds_across_processes(server: ServerHandle, auto_server: ServerHandle) -> None:
    email = unique_email("budget")
    py_client(server, server.service_key).auth.admin.create_user(
        {"email": email, "password": "secret123", "email_confirm": True})
    a, b = py_client(server), py_client(auto_server)  # two ownbase processes, one database
    a.auth.sign_in_with_otp({"email": email})
    b.auth.sign_in_with_otp({"email": email})
    a.auth.reset_password_for_email(email)
    for sb in (b, a):
        with pytest.raises(AuthApiError) as exc:
            sb.auth.sign_in_with_otp({"email": email})
        assert exc.value.code == "over_email_send_rate_limit"
    assert len(mails(server, email)) == 3
