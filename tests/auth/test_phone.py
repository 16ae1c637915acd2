"""Phone provider end to end through supabase-py: phone + password, SMS codes, phone change, resend,
limits; SMS through the console outbox, Amazon SNS (moto's server) and a Twilio stand-in."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.sns.models import sns_backends
from supabase_auth.errors import AuthApiError

from ownbase.embedded import free_port
from tests.auth.conftest import py_client, unique_email
from tests.auth.standin import Seen, StandIn, json_answer
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
PHONE_ON = {"OWNBASE_AUTH_PHONE_ENABLED": "true",
            # The session database is shared by every test: lift the project-wide SMS budget.
            "OWNBASE_AUTH_SMS_MAX_PER_HOUR": "0"}


def new_number() -> str:
    return "1555" + "".join(random.choice("0123456789") for _ in range(7))


def texts(srv: ServerHandle, number: str) -> list[Any]:
    return sql(srv, "select * from ownbase.sms_outbox where to_number = $1 order by id", "+" + number)


def sms_code(srv: ServerHandle, number: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        rows = texts(srv, number)
        if rows:
            match = re.fullmatch(r"Your code is (\d{6})", rows[-1]["body"])
            assert match, rows[-1]["body"]
            return match.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no SMS to {number}")
        time.sleep(0.1)


def error_of(call: Callable[[], Any]) -> tuple[str | None, int, str]:
    with pytest.raises(AuthApiError) as exc:
        call()
    return exc.value.code, exc.value.status, exc.value.message


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture(scope="module")
def phone_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory(PHONE_ON)


def test_settings_report_the_phone_provider(phone_server: ServerHandle) -> None:
    r = httpx.get(phone_server.url + "/auth/v1/settings", headers={"apikey": phone_server.anon_key})
    body = r.json()
    assert body["external"]["phone"] is True and body["sms_provider"] == "console"
    assert body["phone_autoconfirm"] is False


def test_phone_password_signup_confirm_and_sign_in(phone_server: ServerHandle) -> None:
    sb = py_client(phone_server)
    number = new_number()
    res = sb.auth.sign_up({"phone": "+" + number, "password": "secret123", "options": {"data": {"nick": "p"}}})
    assert res.session is None and res.user is not None and res.user.phone == number
    assert res.user.app_metadata == {"provider": "phone", "providers": ["phone"]}
    assert res.user.identities and res.user.identities[0].provider == "phone"
    code = sms_code(phone_server, number)
    # Not confirmed yet: GoTrue's phone_not_confirmed.
    assert error_of(lambda: sb.auth.sign_in_with_password({"phone": "+" + number, "password": "secret123"}))[:2] == \
        ("phone_not_confirmed", 400)
    # The code is stored only as a keyed hash, never in clear or as GoTrue's bare SHA-224.
    stored = sql(phone_server, "select t.* from auth.one_time_tokens t join auth.users u on u.id = t.user_id"
                               " where u.phone = $1", number)

    assert len(stored) == 1 and stored[0]["token_type"] == "confirmation_token"
    assert code not in stored[0]["token_hash"]
    assert stored[0]["token_hash"] != hashlib.sha224((number + code).encode()).hexdigest()
    wrong = "000000" if code != "000000" else "111111"
    assert error_of(lambda: sb.auth.verify_otp({"phone": number, "token": wrong, "type": "sms"}))[:2] == \
        ("otp_expired", 403)
    session = sb.auth.verify_otp({"phone": "+" + number, "token": code, "type": "sms"}).session
    assert session is not None and session.user.phone_confirmed_at is not None
    assert claims(session.access_token)["phone"] == number
    # Single use.
    assert error_of(lambda: sb.auth.verify_otp({"phone": number, "token": code, "type": "sms"}))[:2] == \
        ("otp_expired", 403)
    signed = sb.auth.sign_in_with_password({"phone": "+" + number, "password": "secret123"})
    assert signed.session is not None and signed.user.id == session.user.id
    assert claims(signed.session.access_token)["amr"][0]["method"] == "password"
    assert error_of(lambda: sb.auth.sign_in_with_password({"phone": number, "password": "wrong-one"}))[:2] == \
        ("invalid_credentials", 400)
    # A confirmed number signs up again: an obfuscated user (no enumeration), no new SMS.
    before = len(texts(phone_server, number))
    again = sb.auth.sign_up({"phone": number, "password": "other-secret"})
    assert again.user is not None and again.user.id != session.user.id
    assert len(texts(phone_server, number)) == before


def test_sms_otp_sign_in_frequency_and_expiry(phone_server: ServerHandle) -> None:
    sb = py_client(phone_server)
    number = new_number()
    sb.auth.sign_in_with_otp({"phone": "+" + number})  # creates the user, texts a code
    code = sms_code(phone_server, number)
    # GoTrue's per-user interval (OWNBASE_AUTH_SMS_MAX_FREQUENCY, 60 s by default).
    code_, status, message = error_of(lambda: sb.auth.sign_in_with_otp({"phone": "+" + number}))
    assert (code_, status) == ("over_sms_send_rate_limit", 429)
    assert re.fullmatch(r"For security purposes, you can only request this after \d+ seconds\.", message)
    session = sb.auth.verify_otp({"phone": number, "token": code, "type": "sms"}).session
    assert session is not None and claims(session.access_token)["amr"][0]["method"] == "otp"
    # An expired code is refused: move the send time back past OWNBASE_AUTH_SMS_OTP_TTL (60 s).
    sql(phone_server, "update auth.users set confirmation_sent_at = now() - interval '2 minutes' where phone = $1",
        number)
    r = httpx.post(phone_server.url + "/auth/v1/otp", json={"phone": number},
                   headers={"apikey": phone_server.anon_key, **NEW})
    assert r.status_code == 200 and set(r.json()) == {"message_id"}  # a known number: the provider's id
    fresh = sms_code(phone_server, number)
    sql(phone_server, "update auth.one_time_tokens set created_at = created_at - interval '61 seconds'"
                      " where relates_to = $1", number)
    assert error_of(lambda: sb.auth.verify_otp({"phone": number, "token": fresh, "type": "sms"}))[:2] == \
        ("otp_expired", 403)
    # create_user false with an unknown number: GoTrue's otp_disabled.
    assert error_of(lambda: sb.auth.sign_in_with_otp(
        {"phone": new_number(), "options": {"should_create_user": False}}))[:2] == ("otp_disabled", 422)


def test_phone_change_and_duplicate(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({**PHONE_ON, "OWNBASE_AUTH_AUTOCONFIRM": "true"})
    sb = py_client(srv)
    email = unique_email("phonechange")
    sb.auth.sign_up({"email": email, "password": "secret123"})
    number = new_number()
    user = sb.auth.update_user({"phone": "+" + number}).user
    assert user is not None and user.phone == "" and user.new_phone == number
    session = sb.auth.verify_otp({"phone": number, "token": sms_code(srv, number), "type": "phone_change"}).session
    assert session is not None and session.user.phone == number and session.user.phone_confirmed_at
    assert {i.provider for i in session.user.identities or []} == {"email", "phone"}
    phone_identity = [i for i in session.user.identities or [] if i.provider == "phone"][0]
    assert phone_identity.identity_data["phone"] == number and phone_identity.identity_data["phone_verified"]
    # The number is now taken: another user cannot claim it.
    other = py_client(srv)
    other.auth.sign_up({"email": unique_email("other"), "password": "secret123"})
    assert error_of(lambda: other.auth.update_user({"phone": number}))[:2] == ("phone_exists", 422)
    # And the user signs in with it.
    assert sb.auth.sign_in_with_password({"phone": number, "password": "secret123"}).session is not None


def test_resend_and_per_number_budget(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_MAX_FREQUENCY": "0",
                          "OWNBASE_AUTH_SMS_MAX_PER_NUMBER_PER_HOUR": "3"})
    sb = py_client(srv)
    number = new_number()
    sb.auth.sign_up({"phone": number, "password": "secret123"})
    first = sms_code(srv, number)
    sb.auth.resend({"type": "sms", "phone": number})
    rows = texts(srv, number)
    assert len(rows) == 2 and rows[-1]["kind"] == "confirmation"
    second = sms_code(srv, number)
    if second != first:  # the new code replaced the old one
        assert error_of(lambda: sb.auth.verify_otp({"phone": number, "token": first, "type": "sms"}))[0] == \
            "otp_expired"
    sb.auth.resend({"type": "sms", "phone": number})
    code_, status, message = error_of(lambda: sb.auth.resend({"type": "sms", "phone": number}))
    assert (code_, status, message) == ("over_sms_send_rate_limit", 429, "SMS rate limit exceeded")
    assert len(texts(srv, number)) == 3
    # An unknown number gets {} but its attempts count all the same: the 429 tells nothing.
    unknown = new_number()
    for _ in range(3):
        r = httpx.post(srv.url + "/auth/v1/resend", json={"type": "sms", "phone": unknown},
                       headers={"apikey": srv.anon_key, **NEW})
        assert r.status_code == 200 and r.json() == {}
    r = httpx.post(srv.url + "/auth/v1/resend", json={"type": "sms", "phone": unknown},
                   headers={"apikey": srv.anon_key, **NEW})
    assert r.status_code == 429 and texts(srv, unknown) == []


def test_sms_autoconfirm(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_AUTOCONFIRM": "true"})
    sb = py_client(srv)
    number = new_number()
    res = sb.auth.sign_up({"phone": number, "password": "secret123"})
    assert res.session is not None and res.user is not None and res.user.phone_confirmed_at
    assert texts(srv, number) == []
    assert error_of(lambda: sb.auth.sign_up({"phone": number, "password": "secret123"}))[:2] == \
        ("user_already_exists", 422)


def test_sns_backend_through_moto(server_factory: Callable[..., ServerHandle]) -> None:
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    try:
        srv = server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_PROVIDER": "sns",
                              "OWNBASE_AUTH_SMS_SNS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                              "OWNBASE_AUTH_SMS_SNS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                              "AWS_SECRET_ACCESS_KEY": "testing"})
        sb = py_client(srv)
        number = new_number()
        sb.auth.sign_in_with_otp({"phone": number})
        sent = sns_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sms_messages
        mine = [(mid, text) for mid, (to, text) in sent.items() if to == "+" + number]
        assert len(mine) == 1
        code = re.fullmatch(r"Your code is (\d{6})", mine[0][1]).group(1)  # type: ignore[union-attr]
        assert sb.auth.verify_otp({"phone": number, "token": code, "type": "sms"}).session is not None
        row = texts(srv, number)[-1]
        # A real provider: an audit line with SNS's message id, never the code.
        assert row["backend"] == "sns" and row["message_id"] == mine[0][0] and row["body"] == ""
    finally:
        moto.stop()


def _twilio(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    form = parse_qs(seen.body.decode())
    if form["To"][0].endswith("0000000"):  # a number Twilio refuses
        return json_answer(400, {"code": 21211, "message": "The 'To' number is not a valid phone number.",
                                 "status": 400})
    return json_answer(201, {"sid": "SM" + "a" * 32, "status": "queued", "error_code": None})


@pytest.fixture(scope="module")
def twilio() -> Iterator[StandIn]:
    standin = StandIn(_twilio).start()
    yield standin
    standin.stop()


def test_twilio_backend_against_a_stand_in(twilio: StandIn, server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_PROVIDER": "twilio",
                          "OWNBASE_AUTH_SMS_TWILIO_API_URL": twilio.url,
                          "OWNBASE_AUTH_SMS_TWILIO_ACCOUNT_SID": "AC123", "OWNBASE_AUTH_SMS_TWILIO_AUTH_TOKEN": "tok",
                          "OWNBASE_AUTH_SMS_TWILIO_MESSAGE_SERVICE_SID": "MG456"})
    sb = py_client(srv)
    number = new_number()
    sb.auth.sign_up({"phone": number, "password": "secret123"})
    call = twilio.seen[-1]
    assert call.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:tok").decode()
    form = parse_qs(call.body.decode())
    assert form["To"] == ["+" + number] and form["MessagingServiceSid"] == ["MG456"]
    code = re.fullmatch(r"Your code is (\d{6})", form["Body"][0]).group(1)  # type: ignore[union-attr]
    assert sb.auth.verify_otp({"phone": number, "token": code, "type": "sms"}).session is not None
    assert texts(srv, number)[-1]["message_id"] == "SM" + "a" * 32
    # Twilio refuses: GoTrue's 422 sms_send_failed with Twilio's reason; nothing is kept.
    refused = "1555" + "0000000"
    r = httpx.post(srv.url + "/auth/v1/signup", json={"phone": refused, "password": "secret123"},
                   headers={"apikey": srv.anon_key, **NEW})
    assert r.status_code == 422 and r.json() == {
        "code": "sms_send_failed",
        "message": "Error sending confirmation OTP to provider: The 'To' number is not a valid phone number."}
    assert sql(srv, "select count(*) as n from auth.users where phone = $1", refused)[0]["n"] == 0
    assert texts(srv, refused)[-1]["status"] == "failed"
    # WhatsApp is a Twilio channel; other channels are refused with GoTrue's message.
    r = httpx.post(srv.url + "/auth/v1/otp", json={"phone": new_number(), "channel": "pigeon"},
                   headers={"apikey": srv.anon_key, **NEW})
    assert r.status_code == 400 and r.json()["message"].startswith("Invalid channel")


def test_sms_list_cli(phone_server: ServerHandle) -> None:
    number = new_number()
    py_client(phone_server).auth.sign_in_with_otp({"phone": number})
    env = {**os.environ, "OWNBASE_DATABASE_URL": phone_server.db_url}
    out = subprocess.run([sys.executable, "-m", "ownbase", "sms", "list", "--to", number, "--json"],
                         env=env, capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert len(rows) == 1 and rows[0]["to_number"] == "+" + number and rows[0]["kind"] == "confirmation"
    plain = subprocess.run([sys.executable, "-m", "ownbase", "sms", "list", "--to", "+" + number],
                           env=env, capture_output=True, text=True, check=True)
    assert "Your code is " + sms_code(phone_server, number) in plain.stdout


PHONE_ROUTES = [("/signup", "anon"), ("/otp", "anon"), ("/token?grant_type=password", "anon"),
                ("/verify", "anon"), ("/resend", "anon"), ("/admin/users", "service")]
values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                   st.sampled_from(["+15550001111", "sms", "phone_change", "whatsapp", "123456", ""]))
bodies = st.fixed_dictionaries({}, optional={"phone": values, "password": values, "token": values,
                                             "type": values, "channel": values, "create_user": values,
                                             "email": values, "phone_confirm": values,
                                             "data": st.dictionaries(st.text(max_size=5), values, max_size=2)})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(PHONE_ROUTES), body=bodies)
def test_phone_routes_never_5xx(phone_server: ServerHandle, route: tuple[str, str], body: dict[str, Any]) -> None:
    key = phone_server.service_key if route[1] == "service" else phone_server.anon_key
    r = httpx.post(phone_server.url + "/auth/v1" + route[0], json=body,
                   headers={"apikey": key, "Authorization": f"Bearer {key}", **NEW}, timeout=30)
    assert r.status_code < 500, (route, body, r.text)
    if r.status_code >= 400:
        assert set(r.json()) >= {"code", "message"}


def test_reauthentication_nonce_by_sms(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_AUTOCONFIRM": "true",
                          "OWNBASE_AUTH_SECURE_PASSWORD_CHANGE": "true"})
    sb = py_client(srv)
    number = new_number()
    assert sb.auth.sign_up({"phone": number, "password": "secret123"}).session is not None
    assert error_of(lambda: sb.auth.update_user({"password": "new-secret"}))[:2] == ("reauthentication_needed", 400)
    sb.auth.reauthenticate()
    assert texts(srv, number)[-1]["kind"] == "reauthentication"
    nonce = sms_code(srv, number)
    assert sb.auth.update_user({"password": "new-secret", "nonce": nonce}).user is not None
    assert sb.auth.sign_in_with_password({"phone": number, "password": "new-secret"}).session is not None


def test_admin_creates_a_phone_user(phone_server: ServerHandle) -> None:
    admin = py_client(phone_server, phone_server.service_key)
    number = new_number()
    email = unique_email("adminphone")
    created = admin.auth.admin.create_user({"phone": "+" + number, "email": email, "password": "secret123",
                                            "phone_confirm": True, "email_confirm": True})
    user = created.user
    assert user.phone == number and user.phone_confirmed_at and user.email == email
    assert sorted(user.app_metadata["providers"]) == ["email", "phone"]
    assert {i.provider for i in user.identities or []} == {"email", "phone"}
    session = py_client(phone_server).auth.sign_in_with_password({"phone": number, "password": "secret123"}).session
    assert session is not None and session.user.id == user.id
    key = phone_server.service_key
    r = httpx.post(phone_server.url + "/auth/v1/admin/users", json={"phone": number},
                   headers={"apikey": key, "Authorization": f"Bearer {key}", **NEW})
    assert r.status_code == 422 and r.json()["code"] == "phone_exists"


def test_project_wide_sms_budget(server_factory: Callable[..., ServerHandle], phone_server: ServerHandle) -> None:
    # Every test server shares the session database: the budget is whatever was sent this hour, plus one.
    sent = sql(phone_server, "select count(*) as n from ownbase.auth_sms_sends"
                             " where sent_at > now() - interval '1 hour'")[0]["n"]
    srv = server_factory({"OWNBASE_AUTH_PHONE_ENABLED": "true", "OWNBASE_AUTH_SMS_MAX_PER_HOUR": str(sent + 1)})
    sb = py_client(srv)
    sb.auth.sign_in_with_otp({"phone": new_number()})
    other = new_number()
    assert error_of(lambda: sb.auth.sign_in_with_otp({"phone": other})) == \
        ("over_sms_send_rate_limit", 429, "SMS rate limit exceeded")
    assert texts(srv, other) == []


def test_test_numbers_get_their_fixed_code(server_factory: Callable[..., ServerHandle]) -> None:
    number, expired_number = new_number(), new_number()
    srv = server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_MAX_FREQUENCY": "0",
                          "OWNBASE_AUTH_SMS_TEST_OTP": f"+{number}:424242, {expired_number}:434343"})
    sb = py_client(srv)
    sb.auth.sign_in_with_otp({"phone": number})
    assert texts(srv, number) == []  # no SMS for a test number
    session = sb.auth.verify_otp({"phone": number, "token": "424242", "type": "sms"}).session
    assert session is not None
    r = httpx.post(srv.url + "/auth/v1/otp", json={"phone": number}, headers={"apikey": srv.anon_key, **NEW})
    assert r.status_code == 200 and r.json() == {"message_id": "test-otp"}
    # Past OWNBASE_AUTH_SMS_TEST_OTP_VALID_UNTIL the numbers are ordinary numbers again.
    old = server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_TEST_OTP": f"{expired_number}:434343",
                          "OWNBASE_AUTH_SMS_TEST_OTP_VALID_UNTIL": "2020-01-01T00:00:00Z"})
    py_client(old).auth.sign_in_with_otp({"phone": expired_number})
    assert len(texts(old, expired_number)) == 1
    with pytest.raises(RuntimeError) as exc:
        server_factory({**PHONE_ON, "OWNBASE_AUTH_SMS_TEST_OTP": "not-a-pair"})
    assert "OWNBASE_AUTH_SMS_TEST_OTP" in str(exc.value)
