"""Auth hooks: custom access token (PostgreSQL function) read by an RLS policy, hook errors in
GoTrue's shape, a signed send-email HTTP hook, send-SMS as a function, password- and
MFA-verification-attempt hooks."""

from __future__ import annotations

import asyncio
import base64
import json
import time as _time
import uuid
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import httpx
import jwt
import pytest
from standardwebhooks import Webhook

from ownbase.auth import hooks
from ownbase.auth.errors import AuthError
from ownbase.embedded import free_port
from ownbase.settings import load_settings
from tests.auth.conftest import py_client, unique_email
from tests.auth.mfa_helpers import api_error, claims, code_at, new_user, send, signed_in, token_of, wrong_code
from tests.auth.standin import Seen, StandIn, json_answer
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
SECRET = "whsec_" + base64.b64encode(b"a-32-byte-secret-for-the-hook!!!").decode()

HOOK_SQL = """
create table if not exists public.hook_roles (user_id uuid primary key, role text not null);
create table if not exists public.hook_reports (id serial primary key, body text not null);
alter table public.hook_reports enable row level security;
grant select on public.hook_reports to authenticated;
drop policy if exists admins_only on public.hook_reports;
create policy admins_only on public.hook_reports for select to authenticated
  using (auth.jwt() ->> 'user_role' = 'admin');
insert into public.hook_reports (body) select 'secret report' where not exists (select 1 from public.hook_reports);

create or replace function public.hook_add_role(event jsonb) returns jsonb language plpgsql as $$
declare
  claims jsonb := event->'claims';
begin
  if claims->>'email' like 'blocked-%' then
    return jsonb_build_object('error', jsonb_build_object('http_code', 403, 'message', 'Blocked by policy'));
  end if;
  if claims->>'email' like 'broken-%' then
    return jsonb_build_object('claims', claims - 'session_id');
  end if;
  claims := jsonb_set(claims, '{user_role}', to_jsonb(coalesce(
    (select role from public.hook_roles where user_id = (event->>'user_id')::uuid), 'member')));
  claims := jsonb_set(claims, '{auth_method}', to_jsonb(event->>'authentication_method'));
  return jsonb_build_object('claims', claims);
end $$;

create table if not exists public.hook_failed_logins (user_id uuid primary key, failures int not null);
create or replace function public.hook_password_attempt(event jsonb) returns jsonb language plpgsql as $$
declare
  n int;
begin
  if (event->>'valid')::boolean then
    select failures into n from public.hook_failed_logins where user_id = (event->>'user_id')::uuid;
    if coalesce(n, 0) >= 3 then
      return jsonb_build_object('decision', 'reject', 'message', 'Too many failed attempts: account locked',
                                'should_logout_user', true);
    end if;
    return jsonb_build_object('decision', 'continue');
  end if;
  insert into public.hook_failed_logins values ((event->>'user_id')::uuid, 1)
    on conflict (user_id) do update set failures = hook_failed_logins.failures + 1;
  return jsonb_build_object('decision', 'continue');
end $$;

create table if not exists public.hook_sms (id serial primary key, payload jsonb not null);
create or replace function public.hook_send_sms(event jsonb) returns jsonb language sql as $$
  insert into public.hook_sms (payload) values (event) returning '{}'::jsonb
$$;

create or replace function public.hook_mfa_attempt(event jsonb) returns jsonb language sql as $$
  select case when (event->>'valid')::boolean then '{"decision": "continue"}'::jsonb
         else '{"decision": "reject"}'::jsonb end
$$;
"""


@pytest.fixture(scope="module")
def hook_server(server: ServerHandle, server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    sql(server, HOOK_SQL)
    return server_factory({
        "OWNBASE_AUTH_AUTOCONFIRM": "true", "OWNBASE_AUTH_PHONE_ENABLED": "true",
        "OWNBASE_AUTH_SMS_MAX_PER_HOUR": "0",
        "OWNBASE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI": "pg-functions://postgres/public/hook_add_role",
        "OWNBASE_AUTH_HOOK_PASSWORD_VERIFICATION_ATTEMPT_URI": "pg-functions://postgres/public/hook_password_attempt",
        "OWNBASE_AUTH_HOOK_SEND_SMS_URI": "pg-functions://postgres/public/hook_send_sms",
        "OWNBASE_AUTH_HOOK_MFA_VERIFICATION_ATTEMPT_URI": "pg-functions://postgres/public/hook_mfa_attempt",
    })


def test_custom_access_token_claim_read_by_rls(hook_server: ServerHandle) -> None:
    admin, member = py_client(hook_server), py_client(hook_server)
    admin_email = unique_email("admin")
    admin_user = admin.auth.sign_up({"email": admin_email, "password": "secret123"}).user
    assert admin_user is not None
    sql(hook_server, "insert into public.hook_roles values ($1, 'admin')", uuid.UUID(admin_user.id))
    session = admin.auth.sign_in_with_password({"email": admin_email, "password": "secret123"}).session
    assert session is not None
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    assert claims["user_role"] == "admin" and claims["auth_method"] == "password"
    assert claims["sub"] == admin_user.id and claims["aal"] == "aal1"
    member.auth.sign_up({"email": unique_email("member"), "password": "secret123"})
    # The RLS policy reads the hook's claim: only the admin sees the report.
    assert [r["body"] for r in admin.table("hook_reports").select("body").execute().data] == ["secret report"]
    assert member.table("hook_reports").select("body").execute().data == []
    # Refreshing runs the hook again (authentication_method token_refresh).
    refreshed = admin.auth.refresh_session().session
    assert refreshed is not None
    again = jwt.decode(refreshed.access_token, options={"verify_signature": False})
    assert again["user_role"] == "admin" and again["auth_method"] == "token_refresh"


def test_hook_errors_reach_the_client_as_gotrue_sends_them(hook_server: ServerHandle) -> None:
    headers = {"apikey": hook_server.anon_key}
    blocked = unique_email("blocked")
    r = httpx.post(hook_server.url + "/auth/v1/signup", json={"email": blocked, "password": "secret123"},
                   headers={**headers, **NEW})
    assert r.status_code == 403 and r.json() == {"code": "unknown", "message": "Blocked by policy"}
    assert "x-sb-error-code" not in r.headers
    # The sign-up was rolled back with the refused session.
    assert sql(hook_server, "select count(*) as n from auth.users where email = $1", blocked)[0]["n"] == 0
    old = httpx.post(hook_server.url + "/auth/v1/signup", json={"email": blocked, "password": "secret123"},
                     headers=headers)
    assert old.status_code == 403 and old.json()["msg"] == "Blocked by policy"
    # Claims that break the schema: GoTrue's 500 naming the problem.
    r = httpx.post(hook_server.url + "/auth/v1/signup", json={"email": unique_email("broken"), "password": "secret123"},
                   headers={**headers, **NEW})
    assert r.status_code == 500 and r.json()["code"] == "unexpected_failure"
    assert r.json()["message"].startswith("output claims do not conform to the expected schema: \n- session_id")


def test_password_verification_attempt_rejects_after_three_failures(hook_server: ServerHandle) -> None:
    sb = py_client(hook_server)
    email = unique_email("locked")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    other_session = py_client(hook_server).auth.sign_in_with_password({"email": email, "password": "secret123"})
    assert other_session.session is not None
    url = hook_server.url + "/auth/v1/token?grant_type=password"
    for _ in range(3):
        r = httpx.post(url, json={"email": email, "password": "wrong-password"},
                       headers={"apikey": hook_server.anon_key, **NEW})
        assert r.status_code == 400 and r.json()["message"] == "Invalid login credentials"
    # The right password now: the hook says reject, with its message, and logs the user out.
    r = httpx.post(url, json={"email": email, "password": "secret123"}, headers={"apikey": hook_server.anon_key, **NEW})
    assert r.status_code == 400 and r.json() == {"code": "invalid_credentials",
                                                 "message": "Too many failed attempts: account locked"}
    user_id = sql(hook_server, "select id from auth.users where email = $1", email)[0]["id"]
    assert sql(hook_server, "select count(*) as n from auth.sessions where user_id = $1", user_id)[0]["n"] == 0


def test_send_sms_hook_function_replaces_the_provider(hook_server: ServerHandle) -> None:
    sb = py_client(hook_server)
    number = "1555" + str(uuid.uuid4().int)[:7]
    sb.auth.sign_in_with_otp({"phone": number})
    rows = sql(hook_server, "select payload from public.hook_sms where payload->'sms'->>'phone' = $1", number)
    assert len(rows) == 1
    payload = rows[0]["payload"]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert payload["metadata"]["name"] == "send-sms" and payload["user"]["phone"] == number
    assert sql(hook_server, "select count(*) as n from ownbase.sms_outbox where to_number = $1",
               "+" + number)[0]["n"] == 0  # the hook, not the provider
    session = sb.auth.verify_otp({"phone": number, "token": payload["sms"]["otp"], "type": "sms"}).session
    assert session is not None


@pytest.fixture(scope="module")
def email_hook() -> Iterator[StandIn]:
    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        data = json.loads(seen.body)
        if data["user"]["email"].startswith("plain-"):
            return 200, {"content-type": "text/plain"}, b"ok"
        return json_answer(200, {})

    standin = StandIn(answer).start()
    yield standin
    standin.stop()


def test_send_email_http_hook_gets_a_signed_payload(email_hook: StandIn,
                                                    server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_AUTH_HOOK_SEND_EMAIL_URI": email_hook.url + "/send-email",
                          "OWNBASE_AUTH_HOOK_SEND_EMAIL_SECRETS": f"v1,{SECRET}"})
    sb = py_client(srv)
    email = unique_email("hooked")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    call = [s for s in email_hook.seen if email.encode() in s.body][-1]
    assert call.path == "/send-email"
    # An independent Standard Webhooks verifier accepts the signature...
    payload = Webhook(SECRET).verify(call.body, {k: call.headers[k] for k in
                                                  ("webhook-id", "webhook-timestamp", "webhook-signature")})
    assert payload["metadata"]["name"] == "send-email"
    data = payload["email_data"]
    assert data["email_action_type"] == "signup" and data["site_url"] and len(data["token"]) == 6
    assert set(data) == {"token", "token_hash", "redirect_to", "email_action_type", "site_url", "token_new",
                         "token_hash_new", "old_email", "old_phone", "provider", "factor_type"}
    # ... and rejects a tampered body.
    with pytest.raises(Exception):
        Webhook(SECRET).verify(call.body.replace(b"signup", b"recovery"), {
            k: call.headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")})
    # No mail went out; the token in the payload is the real code.
    assert sql(srv, "select count(*) as n from ownbase.mail_outbox where to_address = $1", email)[0]["n"] == 0
    assert sb.auth.verify_otp({"email": email, "token": data["token"], "type": "signup"}).session is not None
    # A hook answering with the wrong content type: GoTrue's error, the sign-up rolled back.
    plain = unique_email("plain")
    r = httpx.post(srv.url + "/auth/v1/signup", json={"email": plain, "password": "secret123"},
                   headers={"apikey": srv.anon_key, **NEW})
    assert r.status_code == 400 and r.json() == {"code": "hook_payload_invalid_content_type",
                                                 "message": "Invalid JSON response. Received content-type: text/plain"}
    assert sql(srv, "select count(*) as n from auth.users where email = $1", plain)[0]["n"] == 0


def test_mfa_verification_attempt_hook_rejects_a_verify(hook_server: ServerHandle) -> None:
    """The configured function runs at MFA verify (through mfa.py's hook point): a good code goes
    through, and the custom access token hook sees the step-up (aal2, amr totp, method totp); a wrong
    code is rejected with 403 mfa_verification_rejected and every session of the user ends."""
    email, user_id = new_user(hook_server, "mfa")
    sb = signed_in(hook_server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    reply = sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id,
                                "code": code_at(enrolled.totp.secret)})
    stepped = claims(reply.access_token)
    assert stepped["aal"] == "aal2" and stepped["auth_method"] == "totp" and stepped["user_role"] == "member"
    assert [m["method"] for m in stepped["amr"]] == ["totp", "password"]
    other = signed_in(hook_server, email)
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    r = send(hook_server, "POST", f"/factors/{enrolled.id}/verify", token_of(sb),
             {"challenge_id": challenge.id, "code": wrong_code(enrolled.totp.secret)})
    assert (r.status_code, r.json()) == (403, {"code": "mfa_verification_rejected",
                                               "message": "Further MFA verification attempts will be rejected."})
    assert sql(hook_server, "select count(*) as n from auth.sessions where user_id = $1",
               uuid.UUID(user_id))[0]["n"] == 0
    assert api_error(lambda: other.auth.get_user()) == ("session_not_found", 403)


def test_mfa_verification_attempt_hook_off_when_not_configured() -> None:
    """Without the setting the hook point's function answers None (mfa.py then lets the attempt through)."""
    ctx: Any = SimpleNamespace(settings=load_settings(), state={})
    payload = {"user_id": str(uuid.uuid4()), "factor_id": str(uuid.uuid4()), "factor_type": "totp", "valid": False}
    assert asyncio.run(hooks.mfa_verification_attempt(ctx, payload)) is None


def test_hook_settings_are_checked() -> None:
    assert hooks.parse("send_email", "pg-functions://postgres/public/fn", "").function == ("public", "fn")
    for bad in ("pg-functions://postgres/public/fn;drop", "http://example.com/hook", "ftp://x/y",
                'pg-functions://postgres/pub"lic/fn'):
        with pytest.raises(ValueError):
            hooks.parse("send_email", bad, "")
    with pytest.raises(ValueError):
        hooks.parse("send_email", "https://hooks.example.com/x", "v1,not-a-secret")
    assert hooks.parse("send_email", "http://localhost:9/x", f"v1,{SECRET}|v1a,whpk_x:whsk_y").secrets == (SECRET,)


def _run_http(answer: Callable[[Seen], tuple[int, dict[str, str], bytes]]) -> tuple[Any, StandIn]:
    standin = StandIn(answer).start()
    try:
        hook = hooks.parse("send_email", standin.url + "/hook", f"v1,{SECRET}")
        try:
            return asyncio.run(hooks._http(hook, b'{"a": 1}')), standin
        except AuthError as exc:
            return (exc.status, exc.code, exc.message), standin
    finally:
        standin.stop()


@pytest.mark.parametrize("answer,expected", [
    ((204, {}, b""), {}),
    ((200, {"content-type": "application/json; charset=utf-8"}, b'{"ok": true}'), {"ok": True}),
    ((202, {}, b"{}"), (400, "hook_payload_invalid_content_type", "Invalid Content-Type: Missing Content-Type header")),
    ((200, {"content-type": "application/json"}, b"[1]"),
     (500, "unexpected_failure", "Error unmarshaling JSON output.")),
    ((200, {"content-type": "application/json"}, b'{"x": "' + b"y" * 210_000 + b'"}'),
     (422, "hook_payload_over_size_limit", "Payload size exceeded size limit of 204800 bytes")),
    ((400, {}, b""), (500, "unexpected_failure", "Invalid payload sent to hook")),
    ((401, {}, b""), (500, "unexpected_failure", "Hook requires authorization token")),
    ((418, {}, b""), (500, "unexpected_failure", "Unexpected status code returned from hook: 418")),
    ((503, {}, b""), (500, "unexpected_failure", "Service currently unavailable due to hook")),
])
def test_http_hook_replies(answer: tuple[int, dict[str, str], bytes], expected: Any) -> None:
    out, standin = _run_http(lambda seen: answer)
    assert out == expected
    assert len(standin.seen) == 1 and standin.seen[0].headers["content-type"] == "application/json"


def test_http_hook_retries_after_retry_after() -> None:
    replies = iter([(429, {"retry-after": "1"}, b""), (200, {"content-type": "application/json"}, b'{"n": 2}')])
    out, standin = _run_http(lambda seen: next(replies))
    assert out == {"n": 2} and len(standin.seen) == 2
    # Each attempt is signed anew (new id), and verifies.
    assert standin.seen[0].headers["webhook-id"] != standin.seen[1].headers["webhook-id"]
    for seen in standin.seen:
        Webhook(SECRET).verify(seen.body, {k: seen.headers[k] for k in
                                           ("webhook-id", "webhook-timestamp", "webhook-signature")})


def test_http_hook_unreachable_and_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = hooks.parse("send_email", f"http://127.0.0.1:{free_port()}/hook", "")
    with pytest.raises(AuthError) as exc:
        asyncio.run(hooks._http(hook, b"{}"))
    assert (exc.value.status, exc.value.code) == (422, "hook_timeout_after_retry")

    monkeypatch.setattr(hooks, "HTTP_DEADLINE", 1.0)
    out, _ = _run_http(lambda seen: (_time.sleep(2), (204, {}, b""))[1])
    assert out == (422, "hook_timeout", "Failed to reach hook within maximum time of 1.000000 seconds")


def test_a_malformed_hook_setting_stops_start_up(server_factory: Callable[..., ServerHandle]) -> None:
    with pytest.raises(RuntimeError) as exc:
        server_factory({"OWNBASE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI": "pg-functions://postgres/public/fn;drop"})
    assert "OWNBASE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI" in str(exc.value)
