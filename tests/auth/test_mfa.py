"""TOTP enrolment and verification through supabase-py: codes are computed here from the enrolled
secret; verifying steps the session up to aal2 (tokens, the sessions table, RLS); wrong and
replayed codes are refused."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import pyotp

from tests.auth.mfa_helpers import api_error, claims, code_at, new_user, signed_in, step_up, token_of, wrong_code
from tests.conftest import ServerHandle, sql


def test_enroll_returns_secret_uri_and_qr_code(server: ServerHandle) -> None:
    email, _ = new_user(server, "mfa-enroll")
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone", "issuer": "Acme"})
    assert enrolled.type == "totp" and enrolled.friendly_name == "phone"
    secret = enrolled.totp.secret
    assert len(secret) == 32 and len(base64.b32decode(secret)) == 20
    parsed = pyotp.parse_uri(enrolled.totp.uri)
    assert (parsed.secret, parsed.issuer, parsed.name, parsed.digits, parsed.interval) == \
        (secret, "Acme", email, 6, 30)
    assert enrolled.totp.qr_code.startswith("data:image/svg+xml;utf-8,<?xml") and "<svg" in enrolled.totp.qr_code
    factors = sb.auth.mfa.list_factors()
    assert [(f.id, f.status) for f in factors.all] == [(enrolled.id, "unverified")] and factors.totp == []
    level = sb.auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal1", "aal1")  # nothing verified yet


def test_issuer_defaults_to_the_site_host(server: ServerHandle) -> None:
    email, _ = new_user(server, "mfa-issuer")
    enrolled = signed_in(server, email).auth.mfa.enroll({"factor_type": "totp"})
    assert pyotp.parse_uri(enrolled.totp.uri).issuer == "localhost"


def test_wrong_code_is_refused(server: ServerHandle) -> None:
    email, _ = new_user(server, "mfa-wrong")
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    assert challenge.expires_at >= int(time.time()) + 290
    assert api_error(lambda: sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id,
                                                 "code": wrong_code(enrolled.totp.secret)})) == \
        ("mfa_verification_failed", 422)
    assert claims(token_of(sb))["aal"] == "aal1"
    assert sb.auth.mfa.list_factors().all[0].status == "unverified"


def test_verify_steps_the_session_up_to_aal2(server: ServerHandle) -> None:
    up = step_up(server, "mfa-up")
    token = claims(up.reply.access_token)
    assert token["aal"] == "aal2"
    assert [m["method"] for m in token["amr"]] == ["totp", "password"]  # newest first
    assert all(isinstance(m["timestamp"], int) for m in token["amr"])
    level = up.sb.auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal2", "aal2")
    assert [m.method for m in level.current_authentication_methods] == ["totp", "password"]
    assert [f.id for f in up.sb.auth.mfa.list_factors().totp] == [up.factor_id]
    row = sql(server, "select aal, factor_id::text from auth.sessions where id = $1::uuid", token["session_id"])[0]
    assert (row["aal"], row["factor_id"]) == ("aal2", up.factor_id)


def test_refresh_keeps_aal2(server: ServerHandle) -> None:
    up = step_up(server, "mfa-refresh")
    refreshed = up.sb.auth.refresh_session().session
    assert refreshed is not None and claims(refreshed.access_token)["aal"] == "aal2"


def test_step_up_ends_other_aal1_sessions(server: ServerHandle) -> None:
    email, _ = new_user(server, "mfa-others")
    other = signed_in(server, email)
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    sb.auth.mfa.challenge_and_verify({"factor_id": enrolled.id, "code": code_at(enrolled.totp.secret)})
    assert api_error(lambda: other.auth.get_user()) == ("session_not_found", 403)


def test_pre_mfa_refresh_token_is_dead_after_step_up(server: ServerHandle) -> None:
    up = step_up(server, "mfa-oldrt")
    r = httpx.post(server.url + "/auth/v1/token?grant_type=refresh_token", headers={"apikey": server.anon_key},
                   json={"refresh_token": up.pre_mfa_refresh_token}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "refresh_token_not_found"
    assert claims(up.sb.auth.refresh_session().session.access_token)["aal"] == "aal2"  # the new one works


def test_a_used_code_is_refused_through_a_fresh_challenge(server: ServerHandle) -> None:
    up = step_up(server, "mfa-replay")
    again = up.sb.auth.mfa.challenge({"factor_id": up.factor_id})
    assert api_error(lambda: up.sb.auth.mfa.verify(
        {"factor_id": up.factor_id, "challenge_id": again.id, "code": up.code})) == ("mfa_verification_failed", 422)
    # The next step's code (within the skew) is still accepted.
    ok = up.sb.auth.mfa.verify({"factor_id": up.factor_id, "challenge_id": again.id, "code": code_at(up.secret, 1)})
    assert claims(ok.access_token)["aal"] == "aal2"


def test_a_verified_challenge_cannot_be_used_again(server: ServerHandle) -> None:
    up = step_up(server, "mfa-chal")
    challenge = up.sb.auth.mfa.challenge({"factor_id": up.factor_id})
    up.sb.auth.mfa.verify({"factor_id": up.factor_id, "challenge_id": challenge.id, "code": code_at(up.secret, 1)})
    assert api_error(lambda: up.sb.auth.mfa.verify(
        {"factor_id": up.factor_id, "challenge_id": challenge.id, "code": code_at(up.secret, 1)})) == \
        ("mfa_ip_address_mismatch", 422)


def test_a_new_sign_in_is_aal1_with_aal2_reachable(server: ServerHandle) -> None:
    up = step_up(server, "mfa-next")
    fresh = signed_in(server, up.email)
    level = fresh.auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal1", "aal2")


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
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    sb.auth.mfa.challenge_and_verify({"factor_id": enrolled.id, "code": code_at(enrolled.totp.secret)})
    assert sb.table(table).select("*").execute().data == [{"id": 1, "body": "launch codes"}]
    assert signed_in(server, email).table(table).select("*").execute().data == []  # a new aal1 session


def test_a_factor_copied_from_supabase_keeps_working(server: ServerHandle) -> None:
    """A verified TOTP factor dumped from a Supabase project (its secret in auth.mfa_factors) steps
    the migrated user up with the same authenticator app."""
    email, user_id = new_user(server, "mfa-copied")
    factor_id, secret = str(uuid.uuid4()), pyotp.random_base32(32)
    sql(server, """insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at,
                   updated_at, secret)
                   values ($1::uuid, $2::uuid, 'phone app', 'totp', 'verified', now(), now(), $3)""",
        factor_id, user_id, secret)
    sb = signed_in(server, email)
    assert sb.auth.mfa.get_authenticator_assurance_level().next_level == "aal2"
    reply = sb.auth.mfa.challenge_and_verify({"factor_id": factor_id, "code": code_at(secret)})
    assert claims(reply.access_token)["aal"] == "aal2"
