"""MFA with TOTP through supabase-py and GoTrue's HTTP shapes: codes are computed here from the
enrolled secret, sessions step up to aal2 (and RLS sees it), replays and wrong codes are refused,
unenrolling needs aal2 and steps sessions down, admins list and delete factors."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any, Callable

import httpx
import pyotp
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from supabase import Client
from supabase_auth.errors import AuthApiError

from ownbase.auth import mfa
from tests.auth.conftest import py_client, unique_email
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
PASSWORD = "secret123"


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def code_at(secret: str, offset: int = 0) -> str:
    """The code of the current 30-second step (+ offset steps), as an authenticator app shows it."""
    return pyotp.TOTP(secret).generate_otp(int(time.time()) // 30 + offset)


def new_user(server: ServerHandle, tag: str) -> tuple[str, str]:
    email = unique_email(tag)
    user = py_client(server, server.service_key).auth.admin.create_user(
        {"email": email, "password": PASSWORD, "email_confirm": True}).user
    return email, user.id


def signed_in(server: ServerHandle, email: str, password: str = PASSWORD) -> Client:
    sb = py_client(server)
    sb.auth.sign_in_with_password({"email": email, "password": password})
    return sb


def api_error(call: Callable[[], Any]) -> tuple[str | None, int]:
    with pytest.raises(AuthApiError) as exc:
        call()
    return exc.value.code, exc.value.status


def enroll_verified(sb: Client, name: str = "phone") -> tuple[str, str]:
    """Enroll a TOTP factor and verify it (the session steps up); returns (factor id, secret)."""
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": name})
    sb.auth.mfa.challenge_and_verify({"factor_id": enrolled.id, "code": code_at(enrolled.totp.secret)})
    return enrolled.id, enrolled.totp.secret


def send(server: ServerHandle, method: str, path: str, token: str | None, body: Any = None,
         **kw: Any) -> httpx.Response:
    headers = {"apikey": server.anon_key, **NEW, **kw.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, server.url + "/auth/v1" + path, headers=headers, json=body, timeout=30, **kw)


def test_enroll_challenge_verify_steps_up_to_aal2(server: ServerHandle) -> None:
    email, user_id = new_user(server, "mfa")
    sb = signed_in(server, email)
    other = signed_in(server, email)  # a second aal1 session of the same user
    level = sb.auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal1", "aal1")

    enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone", "issuer": "Acme"})
    assert enrolled.type == "totp" and enrolled.friendly_name == "phone"
    secret = enrolled.totp.secret
    assert len(secret) == 32 and len(base64.b32decode(secret)) == 20
    parsed = pyotp.parse_uri(enrolled.totp.uri)
    assert (parsed.secret, parsed.issuer, parsed.name, parsed.digits, parsed.interval) == \
        (secret, "Acme", email, 6, 30)
    assert enrolled.totp.qr_code.startswith("data:image/svg+xml;utf-8,<?xml")
    assert "<svg" in enrolled.totp.qr_code
    factors = sb.auth.mfa.list_factors()
    assert [(f.id, f.status) for f in factors.all] == [(enrolled.id, "unverified")] and factors.totp == []

    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    assert challenge.expires_at >= int(time.time()) + 290
    wrong = str((int(code_at(secret)) + 1) % 1_000_000).zfill(6)
    assert api_error(lambda: sb.auth.mfa.verify(
        {"factor_id": enrolled.id, "challenge_id": challenge.id, "code": wrong})) == ("mfa_verification_failed", 422)
    pre_mfa_refresh = sb.auth.get_session().refresh_token

    code = code_at(secret)
    verified = sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id, "code": code})
    token = claims(verified.access_token)
    assert token["aal"] == "aal2"
    assert [m["method"] for m in token["amr"]] == ["totp", "password"]
    assert all(isinstance(m["timestamp"], int) for m in token["amr"])
    level = sb.auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal2", "aal2")
    assert [m.method for m in level.current_authentication_methods] == ["totp", "password"]
    assert [f.id for f in sb.auth.mfa.list_factors().totp] == [enrolled.id]
    row = sql(server, "select aal, factor_id::text from auth.sessions where id = $1::uuid", token["session_id"])[0]
    assert (row["aal"], row["factor_id"]) == ("aal2", enrolled.id)

    # GoTrue ends the user's other sessions below aal2, and the pre-MFA refresh token mints nothing.
    assert api_error(lambda: other.auth.get_user()) == ("session_not_found", 403)
    r = httpx.post(server.url + "/auth/v1/token?grant_type=refresh_token", headers={"apikey": server.anon_key},
                   json={"refresh_token": pre_mfa_refresh}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "refresh_token_not_found"

    # A refresh keeps aal2.
    refreshed = sb.auth.refresh_session()
    assert claims(refreshed.session.access_token)["aal"] == "aal2"

    # Replay: the same code through a fresh challenge is refused; the next step's code works.
    again = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    assert api_error(lambda: sb.auth.mfa.verify(
        {"factor_id": enrolled.id, "challenge_id": again.id, "code": code})) == ("mfa_verification_failed", 422)
    assert claims(sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": again.id,
                                      "code": code_at(secret, 1)}).access_token)["aal"] == "aal2"
    # A verified challenge cannot be used again.
    assert api_error(lambda: sb.auth.mfa.verify(
        {"factor_id": enrolled.id, "challenge_id": again.id, "code": code_at(secret, 1)})) == \
        ("mfa_ip_address_mismatch", 422)
    # A fresh sign-in is aal1 and knows it can reach aal2.
    fresh = signed_in(server, email)
    level = fresh.auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal1", "aal2")
    assert user_id


def test_rls_policy_requiring_aal2(server: ServerHandle) -> None:
    table = f"mfa_notes_{uuid.uuid4().hex[:8]}"
    sql(server, f"""create table public.{table} (id int primary key, body text);
                    alter table public.{table} enable row level security;
                    create policy aal2_only on public.{table} for select to authenticated
                      using ((auth.jwt() ->> 'aal') = 'aal2');
                    grant select on public.{table} to authenticated;
                    insert into public.{table} values (1, 'launch codes');""")
    email, _ = new_user(server, "mfa-rls")
    sb = signed_in(server, email)
    deadline = time.monotonic() + 15
    while True:  # the REST schema cache learns about the new table within about a second
        try:
            before = sb.table(table).select("*").execute().data
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    assert before == []
    enroll_verified(sb)
    assert sb.table(table).select("*").execute().data == [{"id": 1, "body": "launch codes"}]
    # A new aal1 session of the same user still reads nothing.
    assert signed_in(server, email).table(table).select("*").execute().data == []


def test_unenroll_needs_aal2_and_steps_down(server: ServerHandle) -> None:
    email, _ = new_user(server, "mfa-down")
    strong = signed_in(server, email)
    factor_id, secret = enroll_verified(strong, "first")
    weak = signed_in(server, email)  # signed in after the step-up: aal1
    assert api_error(lambda: weak.auth.mfa.unenroll({"factor_id": factor_id})) == ("insufficient_aal", 422)
    assert api_error(lambda: weak.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "second"})) == \
        ("insufficient_aal", 403)
    weak_token = weak.auth.get_session().access_token
    assert send(server, "PUT", "/user", weak_token, {"data": {"x": 1}}).status_code == 200  # metadata: fine
    for change in ({"password": "another-secret"}, {"email": unique_email("moved")}):
        r = send(server, "PUT", "/user", weak_token, change)
        assert (r.status_code, r.json()) == (401, {
            "code": "insufficient_aal",
            "message": "AAL2 session is required to update email or password when MFA is enabled."})
    assert send(server, "PUT", "/user", strong.auth.get_session().access_token,
                {"password": "another-secret"}).status_code == 200

    # From aal2 a second factor may be enrolled; an unverified one goes without aal2.
    second = strong.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "second"})
    assert api_error(lambda: strong.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "second"})) == \
        ("mfa_factor_name_conflict", 422)
    assert weak.auth.mfa.unenroll({"factor_id": second.id}).id == second.id

    assert strong.auth.mfa.unenroll({"factor_id": factor_id}).id == factor_id
    refreshed = strong.auth.refresh_session().session
    token = claims(refreshed.access_token)
    assert token["aal"] == "aal1" and [m["method"] for m in token["amr"]] == ["password"]
    row = sql(server, "select aal, factor_id from auth.sessions where id = $1::uuid", token["session_id"])[0]
    assert (row["aal"], row["factor_id"]) == ("aal1", None)
    assert strong.auth.mfa.list_factors().all == []
    assert secret


def test_admin_lists_and_deletes_factors(server: ServerHandle) -> None:
    email, user_id = new_user(server, "mfa-admin")
    sb = signed_in(server, email)
    factor_id, _ = enroll_verified(sb, "work phone")
    adm = py_client(server, server.service_key).auth.admin
    listed = adm.mfa.list_factors({"user_id": user_id})
    assert [(f.id, f.status, f.friendly_name, f.factor_type) for f in listed] == \
        [(factor_id, "verified", "work phone", "totp")]
    assert adm.mfa.delete_factor({"user_id": user_id, "id": factor_id}).id == factor_id
    assert adm.mfa.list_factors({"user_id": user_id}) == []
    # The user's aal2 session no longer rests on a factor: its next token is aal1.
    assert claims(sb.auth.refresh_session().session.access_token)["aal"] == "aal1"
    r = httpx.get(f"{server.url}/auth/v1/admin/users/{user_id}/factors",
                  headers={"apikey": server.anon_key, "Authorization": f"Bearer {server.anon_key}", **NEW})
    assert r.status_code == 403 and r.json()["code"] == "not_admin"


def test_challenge_expiry_and_wrong_challenge(server: ServerHandle) -> None:
    email, _ = new_user(server, "mfa-exp")
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    sql(server, "update auth.mfa_challenges set created_at = now() - interval '301 seconds' where id = $1::uuid",
        challenge.id)
    code = code_at(enrolled.totp.secret)
    r = send(server, "POST", f"/factors/{enrolled.id}/verify", sb.auth.get_session().access_token,
             {"challenge_id": challenge.id, "code": code})
    assert (r.status_code, r.json()) == (422, {
        "code": "mfa_challenge_expired",
        "message": f"MFA challenge {challenge.id} has expired, verify against another challenge or create a new "
                   "challenge."})
    assert sql(server, "select 1 from auth.mfa_challenges where id = $1::uuid", challenge.id) == []
    token = sb.auth.get_session().access_token
    for body, status, error_code in (
            ({"challenge_id": str(uuid.uuid4()), "code": code}, 422, "mfa_factor_not_found"),
            ({"challenge_id": "nope", "code": code}, 400, "bad_json"),
            ({"challenge_id": challenge.id, "code": ""}, 400, "validation_failed")):
        r = send(server, "POST", f"/factors/{enrolled.id}/verify", token, body)
        assert (r.status_code, r.json()["code"]) == (status, error_code), body
    # An unverified factor can go without aal2, and GoTrue's enroll answer for an anonymous user.
    assert sb.auth.mfa.unenroll({"factor_id": enrolled.id}).id == enrolled.id


def test_anonymous_users_cannot_enroll(auto_server: ServerHandle) -> None:
    anon = py_client(auto_server)
    anon.auth.sign_in_anonymously()
    assert api_error(lambda: anon.auth.mfa.enroll({"factor_type": "totp"})) == ("no_authorization", 403)


@pytest.fixture(scope="module")
def tight_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_MFA_MAX_ENROLLED_FACTORS": "2", "OWNBASE_AUTH_RATE_LIMIT_MFA": "2",
                           "OWNBASE_TRUSTED_PROXIES": "127.0.0.1/32"})


def test_verify_from_another_ip_is_refused(tight_server: ServerHandle) -> None:
    """GoTrue binds a challenge to the address that asked for it."""
    server = tight_server
    email, _ = new_user(server, "mfa-ip")
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    token = sb.auth.get_session().access_token
    r = send(server, "POST", f"/factors/{enrolled.id}/challenge", token, {},
             headers={"X-Forwarded-For": "203.0.113.7"})
    assert r.status_code == 200, r.text
    code = code_at(enrolled.totp.secret)
    r = send(server, "POST", f"/factors/{enrolled.id}/verify", token, {"challenge_id": r.json()["id"], "code": code},
             headers={"X-Forwarded-For": "198.51.100.9"})
    assert (r.status_code, r.json()) == (422, {"code": "mfa_ip_address_mismatch",
                                               "message": "Challenge and verify IP addresses mismatch."})
    r = send(server, "POST", f"/factors/{enrolled.id}/challenge", token, {},
             headers={"X-Forwarded-For": "198.51.100.9"})
    r = send(server, "POST", f"/factors/{enrolled.id}/verify", token, {"challenge_id": r.json()["id"], "code": code},
             headers={"X-Forwarded-For": "198.51.100.9"})
    assert r.status_code == 200 and claims(r.json()["access_token"])["aal"] == "aal2"


def test_factor_count_and_rate_limits(tight_server: ServerHandle) -> None:
    email, _ = new_user(tight_server, "mfa-tight")
    sb = signed_in(tight_server, email)
    first = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "a"})
    sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "b"})
    assert api_error(lambda: sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "c"})) == \
        ("too_many_enrolled_mfa_factors", 422)
    # 2 per minute with a burst of 4: the fifth challenge in a row is refused.
    for _ in range(4):
        sb.auth.mfa.challenge({"factor_id": first.id})
    assert api_error(lambda: sb.auth.mfa.challenge({"factor_id": first.id})) == ("over_request_rate_limit", 429)


@pytest.fixture(scope="module")
def fuzz_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_RATE_LIMIT_MFA": "0"})  # the limiter would hide the handlers


@pytest.fixture(scope="module")
def fuzz_token(fuzz_server: ServerHandle) -> tuple[str, str]:
    email, _ = new_user(fuzz_server, "mfa-fuzz")
    sb = signed_in(fuzz_server, email)
    factor = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "fuzz"})
    return sb.auth.get_session().access_token, factor.id


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                     max_size=4), max_leaves=10)
BODIES = st.dictionaries(st.sampled_from(["factor_type", "friendly_name", "issuer", "phone", "challenge_id", "code",
                                          "channel", "webauthn"]), JSONISH, max_size=5) | JSONISH


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, route=st.sampled_from(["enroll", "challenge", "verify", "unenroll", "admin"]),
       factor=st.sampled_from(["mine", "random", "junk"]))
def test_fuzz_mfa_routes_never_5xx(fuzz_server: ServerHandle, fuzz_token: tuple[str, str], body: Any, route: str,
                                   factor: str) -> None:
    server = fuzz_server
    token, mine = fuzz_token
    fid = {"mine": mine, "random": str(uuid.uuid4()), "junk": "x%00y"}[factor]
    method, path = {"enroll": ("POST", "/factors"), "challenge": ("POST", f"/factors/{fid}/challenge"),
                    "verify": ("POST", f"/factors/{fid}/verify"), "unenroll": ("DELETE", f"/factors/{fid}"),
                    "admin": ("PUT", f"/admin/users/{uuid.uuid4()}/factors/{fid}")}[route]
    who = server.service_key if route == "admin" else token
    r = send(server, method, path, who, None, content=json.dumps(body))
    assert r.status_code < 500, (route, body, r.text)


async def test_mfa_verification_attempt_hook_point() -> None:
    """The call site the auth hooks module fills: a no-op by default; a rejecting hook's message (or
    GoTrue's default one) is what verify answers with 403 mfa_verification_rejected."""
    payload = {"user_id": str(uuid.uuid4()), "factor_id": str(uuid.uuid4()), "factor_type": "totp", "valid": True}
    assert await mfa.verification_attempt(None, payload) is None  # type: ignore[arg-type]
    seen: list[dict[str, Any]] = []

    async def reject(ctx: Any, got: dict[str, Any]) -> dict[str, Any]:
        seen.append(got)
        return {"decision": "reject"} if len(seen) == 1 else {"decision": "reject", "message": "locked"}

    mfa.set_verification_attempt_hook(reject)
    try:
        assert await mfa.verification_attempt(None, payload) == \
            "Further MFA verification attempts will be rejected."  # type: ignore[arg-type]
        assert await mfa.verification_attempt(None, payload) == "locked"  # type: ignore[arg-type]
    finally:
        mfa.set_verification_attempt_hook(None)
    assert seen == [payload, payload]
    assert await mfa.verification_attempt(None, payload) is None  # type: ignore[arg-type]
