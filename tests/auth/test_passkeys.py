"""First-factor passkeys, driven the way supabase-js's passkey API drives them (same routes and
bodies), with a software authenticator: registration, sign-in, list, rename, removal, admin
routes, and the ceremony failures GoTrue reports."""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.auth.authenticator import SoftAuthenticator, b64
from tests.auth.conftest import py_client, unique_email
from tests.auth.mfa_helpers import claims, code_at
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
ORIGIN = "http://app.example:3000"
PASSWORD = "secret123"


@pytest.fixture(scope="module")
def pk_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_PASSKEY_ENABLED": "true", "OWNBASE_SITE_URL": ORIGIN,
                           "OWNBASE_AUTH_PASSKEY_MAX_PER_USER": "2", "OWNBASE_AUTH_RATE_LIMIT_MFA": "0",
                           "OWNBASE_AUTH_RATE_LIMIT_PASSKEY": "0"})  # the fuzz test would drain the bucket


def call(server: ServerHandle, method: str, path: str, token: str | None = None, body: Any = None,
         **kw: Any) -> httpx.Response:
    headers = {"apikey": server.anon_key, **NEW}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, server.url + "/auth/v1" + path, headers=headers, json=body, timeout=30, **kw)


def user_session(server: ServerHandle, tag: str = "pk", **attrs: Any) -> tuple[str, str, dict[str, Any]]:
    email = unique_email(tag)
    user = py_client(server, server.service_key).auth.admin.create_user(
        {"email": email, "password": PASSWORD, "email_confirm": True, **attrs}).user
    r = call(server, "POST", "/token?grant_type=password", None, {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return email, user.id, r.json()


def register(server: ServerHandle, token: str, device: SoftAuthenticator) -> httpx.Response:
    start = call(server, "POST", "/passkeys/registration/options", token, {})
    assert start.status_code == 200, start.text
    data = start.json()
    return call(server, "POST", "/passkeys/registration/verify", token,
                {"challenge_id": data["challenge_id"], "credential": device.create(data["options"])})


def sign_in_options(server: ServerHandle) -> dict[str, Any]:
    r = call(server, "POST", "/passkeys/authentication/options", None,
             {"gotrue_meta_security": {"captcha_token": None}})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_register_sign_in_list_rename_remove(pk_server: ServerHandle) -> None:
    server = pk_server
    email, user_id, session = user_session(server, data={"name": "Ada"})
    token = session["access_token"]
    start = call(server, "POST", "/passkeys/registration/options", token, {}).json()
    options = start["options"]
    assert options["rp"] == {"name": "app.example", "id": "app.example"}
    assert options["user"] == {"id": b64(user_id.encode()), "name": email, "displayName": "Ada"}
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert {p["alg"] for p in options["pubKeyCredParams"]} >= {-7, -257}
    assert uuid.UUID(start["challenge_id"]) and isinstance(start["expires_at"], int)

    device = SoftAuthenticator(ORIGIN)
    done = call(server, "POST", "/passkeys/registration/verify", token,
                {"challenge_id": start["challenge_id"], "credential": device.create(options)})
    assert done.status_code == 200, done.text
    passkey = done.json()
    assert set(passkey) == {"id", "friendly_name", "created_at"} and passkey["friendly_name"] == "Passkey"
    # The challenge was used up.
    again = call(server, "POST", "/passkeys/registration/verify", token,
                 {"challenge_id": start["challenge_id"], "credential": device.create(options)})
    assert (again.status_code, again.json()) == (400, {"code": "webauthn_challenge_not_found",
                                                       "message": "Challenge not found or already used"})

    # Sign in: discoverable credential, no email typed.
    sign = sign_in_options(server)
    assert sign["options"]["allowCredentials"] == [] and sign["options"]["rpId"] == "app.example"
    r = call(server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": sign["challenge_id"], "credential": device.get(sign["options"])})
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["user"]["id"] == user_id and signed["refresh_token"]
    token_claims = claims(signed["access_token"])
    assert token_claims["aal"] == "aal1" and [m["method"] for m in token_claims["amr"]] == ["passkey"]
    # The session works with supabase-py (e.g. getUser with it).
    sb = py_client(server)
    sb.auth.set_session(signed["access_token"], signed["refresh_token"])
    assert sb.auth.get_user().user.email == email

    listed = call(server, "GET", "/passkeys", signed["access_token"]).json()
    assert [p["id"] for p in listed] == [passkey["id"]] and "last_used_at" in listed[0]
    renamed = call(server, "PATCH", f"/passkeys/{passkey['id']}", token, {"friendly_name": "Laptop"})
    assert renamed.status_code == 200 and renamed.json()["friendly_name"] == "Laptop"
    for body, message in (({}, "friendly_name is required"),
                          ({"friendly_name": "x" * 121}, "friendly_name must be 120 characters or less")):
        r = call(server, "PATCH", f"/passkeys/{passkey['id']}", token, body)
        assert (r.status_code, r.json()["message"]) == (400, message)

    # Another user cannot see or remove it.
    _, _, stranger = user_session(server, "pk-other")
    r = call(server, "DELETE", f"/passkeys/{passkey['id']}", stranger["access_token"])
    assert (r.status_code, r.json()) == (404, {"code": "validation_failed", "message": "Passkey not found"})
    assert call(server, "GET", "/passkeys", stranger["access_token"]).json() == []

    r = call(server, "DELETE", f"/passkeys/{passkey['id']}", token)
    assert r.status_code == 204 and r.content == b""
    assert call(server, "GET", "/passkeys", token).json() == []
    # A removed passkey signs nobody in.
    sign = sign_in_options(server)
    r = call(server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": sign["challenge_id"], "credential": device.get(sign["options"])})
    assert (r.status_code, r.json()["code"]) == (400, "webauthn_verification_failed")


def test_ceremony_failures(pk_server: ServerHandle) -> None:
    server = pk_server
    _, _, session = user_session(server, "pk-bad")
    token = session["access_token"]
    device = SoftAuthenticator(ORIGIN)

    # Wrong origin in clientDataJSON: verification fails, nothing stored.
    start = call(server, "POST", "/passkeys/registration/options", token, {}).json()
    r = call(server, "POST", "/passkeys/registration/verify", token,
             {"challenge_id": start["challenge_id"],
              "credential": device.create(start["options"], origin="http://evil.example")})
    assert (r.status_code, r.json()) == (400, {"code": "webauthn_verification_failed",
                                               "message": "Credential verification failed"})
    assert register(server, token, device).status_code == 200
    # The same authenticator credential twice.
    dup = register(server, token, device)
    assert (dup.status_code, dup.json()["code"]) == (422, "webauthn_credential_exists")
    assert register(server, token, SoftAuthenticator(ORIGIN)).status_code == 200
    full = call(server, "POST", "/passkeys/registration/options", token, {})
    assert (full.status_code, full.json()) == (422, {"code": "too_many_passkeys",
                                                     "message": "Maximum number of passkeys reached"})

    # Garbage credential, missing fields, a registration challenge used for sign-in.
    sign = sign_in_options(server)
    for body, code, message in (
            ({"challenge_id": sign["challenge_id"], "credential": {"id": "x"}}, "webauthn_verification_failed",
             "Invalid credential response"),
            ({"credential": {}}, "validation_failed", "challenge_id is required"),
            ({"challenge_id": "nope", "credential": {}}, "validation_failed", "challenge_id must be a valid UUID"),
            ({"challenge_id": sign["challenge_id"]}, "validation_failed", "credential is required")):
        r = call(server, "POST", "/passkeys/authentication/verify", None, body)
        assert (r.status_code, r.json()) == (400, {"code": code, "message": message}), body
    other_token = user_session(server, "pk-y")[2]["access_token"]
    reg = call(server, "POST", "/passkeys/registration/options", other_token, {}).json()
    r = call(server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": reg["challenge_id"], "credential": device.get({**sign["options"],
                                                                             "challenge": reg["options"]["challenge"]})})
    assert r.json()["code"] == "webauthn_challenge_not_found"

    # Expired challenge; a tampered signature; a replayed (non-increasing) counter.
    sign = sign_in_options(server)
    sql(server, "update auth.webauthn_challenges set expires_at = now() - interval '1 second' where id = $1::uuid",
        sign["challenge_id"])
    r = call(server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": sign["challenge_id"], "credential": device.get(sign["options"])})
    assert (r.status_code, r.json()) == (400, {"code": "webauthn_challenge_expired", "message": "Challenge has expired"})
    sign = sign_in_options(server)
    cred = device.get(sign["options"])
    cred["response"]["signature"] = b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    r = call(server, "POST", "/passkeys/authentication/verify", None, {"challenge_id": sign["challenge_id"],
                                                                        "credential": cred})
    assert (r.status_code, r.json()["message"]) == (400, "Credential verification failed")
    sign = sign_in_options(server)
    assert call(server, "POST", "/passkeys/authentication/verify", None,
                {"challenge_id": sign["challenge_id"], "credential": device.get(sign["options"])}).status_code == 200
    sign = sign_in_options(server)
    r = call(server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": sign["challenge_id"], "credential": device.get(sign["options"], bump=False)})
    assert (r.status_code, r.json()["code"]) == (400, "webauthn_verification_failed")


def test_banned_user_cannot_sign_in(pk_server: ServerHandle) -> None:
    server = pk_server
    _, user_id, session = user_session(server, "pk-ban")
    device = SoftAuthenticator(ORIGIN)
    assert register(server, session["access_token"], device).status_code == 200
    py_client(server, server.service_key).auth.admin.update_user_by_id(user_id, {"ban_duration": "24h"})
    sign = sign_in_options(server)
    r = call(server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": sign["challenge_id"], "credential": device.get(sign["options"])})
    assert (r.status_code, r.json()) == (403, {"code": "user_banned", "message": "User is banned"})


def test_managing_passkeys_needs_aal2_once_mfa_is_on(pk_server: ServerHandle) -> None:
    server = pk_server
    email, _, _ = user_session(server, "pk-mfa")
    sb = py_client(server)
    sb.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    device = SoftAuthenticator(ORIGIN)
    assert register(server, sb.auth.get_session().access_token, device).status_code == 200
    passkey_id = call(server, "GET", "/passkeys", sb.auth.get_session().access_token).json()[0]["id"]
    factor = sb.auth.mfa.enroll({"factor_type": "totp"})
    sb.auth.mfa.challenge_and_verify({"factor_id": factor.id, "code": code_at(factor.totp.secret)})
    weak = call(server, "POST", "/token?grant_type=password", None, {"email": email, "password": PASSWORD}).json()
    for method, path in (("POST", "/passkeys/registration/options"), ("DELETE", f"/passkeys/{passkey_id}")):
        r = call(server, method, path, weak["access_token"], {} if method == "POST" else None)
        assert (r.status_code, r.json()) == (403, {
            "code": "insufficient_aal", "message": "AAL2 session is required to manage passkeys when MFA is enabled"})
    assert call(server, "DELETE", f"/passkeys/{passkey_id}", sb.auth.get_session().access_token).status_code == 204


def test_admin_lists_and_deletes_passkeys(pk_server: ServerHandle) -> None:
    server = pk_server
    _, user_id, session = user_session(server, "pk-admin")
    assert register(server, session["access_token"], SoftAuthenticator(ORIGIN)).status_code == 200
    admin = server.service_key
    listed = call(server, "GET", f"/admin/users/{user_id}/passkeys", admin).json()
    assert len(listed) == 1 and listed[0]["friendly_name"] == "Passkey"
    r = call(server, "DELETE", f"/admin/users/{user_id}/passkeys/{listed[0]['id']}", admin)
    assert r.status_code == 204
    assert call(server, "GET", f"/admin/users/{user_id}/passkeys", admin).json() == []
    r = call(server, "GET", f"/admin/users/{user_id}/passkeys", session["access_token"])
    assert (r.status_code, r.json()["code"]) == (403, "not_admin")


def test_wrong_methods_and_unknown_paths_when_enabled(pk_server: ServerHandle) -> None:
    assert httpx.get(pk_server.url + "/auth/v1/settings").json()["passkeys_enabled"] is True
    r = call(pk_server, "GET", "/passkeys/registration/options")
    assert r.status_code == 405 and r.headers.get_list("allow") == ["POST"]
    r = call(pk_server, "GET", "/passkeys/a/b/c")
    assert r.status_code == 404 and r.text == "404 page not found\n"


@pytest.fixture(scope="module")
def pk_token(pk_server: ServerHandle) -> str:
    return user_session(pk_server, "pk-fuzz")[2]["access_token"]  # type: ignore[no-any-return]


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                                     max_size=4), max_leaves=12)
CREDENTIAL = st.fixed_dictionaries({
    "id": st.text(max_size=20), "rawId": st.text(alphabet="AZaz09-_=", max_size=20), "type": JSONISH,
    "response": st.dictionaries(st.sampled_from(["clientDataJSON", "attestationObject", "authenticatorData",
                                                 "signature", "userHandle", "transports"]),
                                st.text(alphabet="AZaz09-_=+/", max_size=40) | JSONISH, max_size=6)})
BODIES = st.fixed_dictionaries({}, optional={"challenge_id": st.uuids().map(str) | JSONISH,
                                             "credential": CREDENTIAL | JSONISH,
                                             "friendly_name": JSONISH}) | JSONISH


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, path=st.sampled_from([
    ("POST", "/passkeys/registration/options"), ("POST", "/passkeys/registration/verify"),
    ("POST", "/passkeys/authentication/options"), ("POST", "/passkeys/authentication/verify"),
    ("GET", "/passkeys"), ("PATCH", f"/passkeys/{uuid.uuid4()}"), ("DELETE", "/passkeys/%00"),
    ("PATCH", "/passkeys/x")]), authed=st.booleans())
def test_fuzz_passkey_routes_never_5xx(pk_server: ServerHandle, pk_token: str, body: Any,
                                       path: tuple[str, str], authed: bool) -> None:
    method, route = path
    r = call(pk_server, method, route, pk_token if authed else None, None, content=json.dumps(body))
    assert r.status_code < 500, (route, body, r.text)
