"""First-factor passkeys, driven the way supabase-js's passkey API drives them (same routes and
bodies), with a software authenticator: registration, sign-in, list, rename, removal, admin
routes, and the ceremony failures GoTrue reports."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.auth.authenticator import SoftAuthenticator, b64
from tests.auth.conftest import py_client, unique_email
from tests.auth.mfa_helpers import NEW, PASSWORD, claims, code_at
from tests.conftest import ServerHandle, sql

ORIGIN = "http://app.example:3000"


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


def gotrue_error(r: httpx.Response) -> tuple[int, str, str]:
    return r.status_code, r.json()["code"], r.json()["message"]


@dataclass
class Holder:
    email: str
    user_id: str
    token: str
    device: SoftAuthenticator
    passkey: dict[str, Any]


def user_session(server: ServerHandle, tag: str = "pk", **attrs: Any) -> tuple[str, str, dict[str, Any]]:
    email = unique_email(tag)
    user = py_client(server, server.service_key).auth.admin.create_user(
        {"email": email, "password": PASSWORD, "email_confirm": True, **attrs}).user
    r = call(server, "POST", "/token?grant_type=password", None, {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return email, user.id, r.json()


def register(server: ServerHandle, token: str, device: SoftAuthenticator, **kw: Any) -> httpx.Response:
    start = call(server, "POST", "/passkeys/registration/options", token, {})
    assert start.status_code == 200, start.text
    data = start.json()
    return call(server, "POST", "/passkeys/registration/verify", token,
                {"challenge_id": data["challenge_id"], "credential": device.create(data["options"], **kw)})


def holder(server: ServerHandle, tag: str) -> Holder:
    email, user_id, session = user_session(server, tag)
    device = SoftAuthenticator(ORIGIN)
    r = register(server, session["access_token"], device)
    assert r.status_code == 200, r.text
    return Holder(email, user_id, session["access_token"], device, r.json())


def sign_in_options(server: ServerHandle) -> dict[str, Any]:
    r = call(server, "POST", "/passkeys/authentication/options", None,
             {"gotrue_meta_security": {"captcha_token": None}})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def sign_in(server: ServerHandle, device: SoftAuthenticator, **kw: Any) -> httpx.Response:
    opts = sign_in_options(server)
    return call(server, "POST", "/passkeys/authentication/verify", None,
                {"challenge_id": opts["challenge_id"], "credential": device.get(opts["options"], **kw)})


# --- registration --------------------------------------------------------------------------------

def test_registration_options(pk_server: ServerHandle) -> None:
    email, user_id, session = user_session(pk_server, data={"name": "Ada"})
    start = call(pk_server, "POST", "/passkeys/registration/options", session["access_token"], {}).json()
    options = start["options"]
    assert options["rp"] == {"name": "app.example", "id": "app.example"}
    assert options["user"] == {"id": b64(user_id.encode()), "name": email, "displayName": "Ada"}
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert {p["alg"] for p in options["pubKeyCredParams"]} >= {-7, -257}
    assert uuid.UUID(start["challenge_id"]) and isinstance(start["expires_at"], int)


def test_register_answers_the_new_passkey(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-reg")
    assert set(h.passkey) == {"id", "friendly_name", "created_at"} and h.passkey["friendly_name"] == "Passkey"
    row = sql(pk_server, "select user_id::text, sign_count from auth.webauthn_credentials where id = $1::uuid",
              h.passkey["id"])[0]
    assert (row["user_id"], row["sign_count"]) == (h.user_id, 0)


def test_friendly_name_from_a_known_authenticator(pk_server: ServerHandle) -> None:
    _, _, session = user_session(pk_server, "pk-aaguid")
    device = SoftAuthenticator(ORIGIN, aaguid=uuid.UUID("fbfc3007-154e-4ecc-8c0b-6e020557d7bd").bytes)
    r = register(pk_server, session["access_token"], device)
    assert r.status_code == 200 and r.json()["friendly_name"] == "iCloud Keychain"


def test_registration_challenge_is_single_use(pk_server: ServerHandle) -> None:
    _, _, session = user_session(pk_server, "pk-once")
    token, device = session["access_token"], SoftAuthenticator(ORIGIN)
    start = call(pk_server, "POST", "/passkeys/registration/options", token, {}).json()
    body = {"challenge_id": start["challenge_id"], "credential": device.create(start["options"])}
    assert call(pk_server, "POST", "/passkeys/registration/verify", token, body).status_code == 200
    assert gotrue_error(call(pk_server, "POST", "/passkeys/registration/verify", token, body)) == \
        (400, "webauthn_challenge_not_found", "Challenge not found or already used")


def test_registration_from_another_origin_fails(pk_server: ServerHandle) -> None:
    _, _, session = user_session(pk_server, "pk-origin")
    r = register(pk_server, session["access_token"], SoftAuthenticator(ORIGIN), origin="http://evil.example")
    assert gotrue_error(r) == (400, "webauthn_verification_failed", "Credential verification failed")
    assert call(pk_server, "GET", "/passkeys", session["access_token"]).json() == []


def test_the_same_credential_twice(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-dup")
    assert gotrue_error(register(pk_server, h.token, h.device)) == \
        (422, "webauthn_credential_exists", "This credential is already registered")


def test_too_many_passkeys(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-many")
    assert register(pk_server, h.token, SoftAuthenticator(ORIGIN)).status_code == 200
    r = call(pk_server, "POST", "/passkeys/registration/options", h.token, {})
    assert gotrue_error(r) == (422, "too_many_passkeys", "Maximum number of passkeys reached")


def test_managing_passkeys_needs_aal2_once_mfa_is_on(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-mfa")
    sb = py_client(pk_server)
    sb.auth.sign_in_with_password({"email": h.email, "password": PASSWORD})
    factor = sb.auth.mfa.enroll({"factor_type": "totp"})
    sb.auth.mfa.challenge_and_verify({"factor_id": factor.id, "code": code_at(factor.totp.secret)})
    weak = call(pk_server, "POST", "/token?grant_type=password", None,
                {"email": h.email, "password": PASSWORD}).json()["access_token"]
    for method, path in (("POST", "/passkeys/registration/options"), ("DELETE", f"/passkeys/{h.passkey['id']}")):
        r = call(pk_server, method, path, weak, {} if method == "POST" else None)
        assert gotrue_error(r) == (403, "insufficient_aal",
                                   "AAL2 session is required to manage passkeys when MFA is enabled")
    strong = sb.auth.get_session().access_token
    assert call(pk_server, "DELETE", f"/passkeys/{h.passkey['id']}", strong).status_code == 204


# --- sign-in -------------------------------------------------------------------------------------

def test_sign_in_gives_an_aal1_passkey_session(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-signin")
    opts = sign_in_options(pk_server)
    assert opts["options"]["allowCredentials"] == [] and opts["options"]["rpId"] == "app.example"
    r = call(pk_server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": opts["challenge_id"], "credential": h.device.get(opts["options"])})
    assert r.status_code == 200, r.text
    session = r.json()
    assert session["user"]["id"] == h.user_id and session["refresh_token"]
    token = claims(session["access_token"])
    assert token["aal"] == "aal1" and [m["method"] for m in token["amr"]] == ["passkey"]
    sb = py_client(pk_server)
    sb.auth.set_session(session["access_token"], session["refresh_token"])
    assert sb.auth.get_user().user.email == h.email
    listed = call(pk_server, "GET", "/passkeys", h.token).json()
    assert "last_used_at" in listed[0]


def test_a_non_increasing_counter_is_refused(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-clone")
    assert sign_in(pk_server, h.device).status_code == 200
    assert gotrue_error(sign_in(pk_server, h.device, bump=False)) == \
        (400, "webauthn_verification_failed", "Credential verification failed")


def test_a_tampered_signature_is_refused(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-sig")
    opts = sign_in_options(pk_server)
    cred = h.device.get(opts["options"])
    cred["response"]["signature"] = b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    r = call(pk_server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": opts["challenge_id"], "credential": cred})
    assert gotrue_error(r) == (400, "webauthn_verification_failed", "Credential verification failed")


def test_an_expired_challenge_is_refused(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-exp")
    opts = sign_in_options(pk_server)
    sql(pk_server, "update auth.webauthn_challenges set expires_at = now() - interval '1 second'"
                   " where id = $1::uuid", opts["challenge_id"])
    r = call(pk_server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": opts["challenge_id"], "credential": h.device.get(opts["options"])})
    assert gotrue_error(r) == (400, "webauthn_challenge_expired", "Challenge has expired")


def test_a_registration_challenge_cannot_sign_in(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-type")
    reg = call(pk_server, "POST", "/passkeys/registration/options", h.token, {}).json()
    opts = {**sign_in_options(pk_server)["options"], "challenge": reg["options"]["challenge"]}
    r = call(pk_server, "POST", "/passkeys/authentication/verify", None,
             {"challenge_id": reg["challenge_id"], "credential": h.device.get(opts)})
    assert gotrue_error(r)[:2] == (400, "webauthn_challenge_not_found")


def test_a_banned_user_cannot_sign_in(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-ban")
    py_client(pk_server, pk_server.service_key).auth.admin.update_user_by_id(h.user_id, {"ban_duration": "24h"})
    assert gotrue_error(sign_in(pk_server, h.device)) == (403, "user_banned", "User is banned")


VERIFY_INPUT_CASES: list[tuple[str, Any, str, str]] = [
    ("unreadable credential", {"challenge_id": "{c}", "credential": {"id": "x"}}, "webauthn_verification_failed",
     "Invalid credential response"),
    ("no challenge id", {"credential": {}}, "validation_failed", "challenge_id is required"),
    ("bad challenge id", {"challenge_id": "nope", "credential": {}}, "validation_failed",
     "challenge_id must be a valid UUID"),
    ("no credential", {"challenge_id": "{c}"}, "validation_failed", "credential is required"),
]


@pytest.mark.parametrize("case", VERIFY_INPUT_CASES, ids=[c[0] for c in VERIFY_INPUT_CASES])
def test_sign_in_input_errors(pk_server: ServerHandle, case: tuple[str, Any, str, str]) -> None:
    _, body, code, message = case
    challenge_id = sign_in_options(pk_server)["challenge_id"]
    body = {k: (challenge_id if v == "{c}" else v) for k, v in body.items()}
    r = call(pk_server, "POST", "/passkeys/authentication/verify", None, body)
    assert gotrue_error(r) == (400, code, message)


# --- management ----------------------------------------------------------------------------------

def test_list_rename_and_delete(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-manage")
    pid = h.passkey["id"]
    assert [p["id"] for p in call(pk_server, "GET", "/passkeys", h.token).json()] == [pid]
    renamed = call(pk_server, "PATCH", f"/passkeys/{pid}", h.token, {"friendly_name": "Laptop"})
    assert renamed.status_code == 200 and renamed.json()["friendly_name"] == "Laptop"
    r = call(pk_server, "DELETE", f"/passkeys/{pid}", h.token)
    assert r.status_code == 204 and r.content == b""
    assert call(pk_server, "GET", "/passkeys", h.token).json() == []
    assert gotrue_error(sign_in(pk_server, h.device))[:2] == (400, "webauthn_verification_failed")


@pytest.mark.parametrize("body, message", [({}, "friendly_name is required"),
                                           ({"friendly_name": "x" * 121},
                                            "friendly_name must be 120 characters or less")])
def test_rename_validation(pk_server: ServerHandle, body: dict[str, Any], message: str) -> None:
    h = holder(pk_server, "pk-rename")
    r = call(pk_server, "PATCH", f"/passkeys/{h.passkey['id']}", h.token, body)
    assert gotrue_error(r) == (400, "validation_failed", message)


def test_another_user_cannot_see_or_remove_it(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-own")
    _, _, stranger = user_session(pk_server, "pk-stranger")
    r = call(pk_server, "DELETE", f"/passkeys/{h.passkey['id']}", stranger["access_token"])
    assert gotrue_error(r) == (404, "validation_failed", "Passkey not found")
    assert call(pk_server, "GET", "/passkeys", stranger["access_token"]).json() == []


def test_admin_lists_and_deletes_passkeys(pk_server: ServerHandle) -> None:
    h = holder(pk_server, "pk-admin")
    admin = pk_server.service_key
    listed = call(pk_server, "GET", f"/admin/users/{h.user_id}/passkeys", admin).json()
    assert [(p["id"], p["friendly_name"]) for p in listed] == [(h.passkey["id"], "Passkey")]
    assert call(pk_server, "DELETE", f"/admin/users/{h.user_id}/passkeys/{h.passkey['id']}", admin).status_code == 204
    assert call(pk_server, "GET", f"/admin/users/{h.user_id}/passkeys", admin).json() == []
    r = call(pk_server, "GET", f"/admin/users/{h.user_id}/passkeys", h.token)
    assert gotrue_error(r)[:2] == (403, "not_admin")


def test_settings_methods_and_unknown_paths_when_enabled(pk_server: ServerHandle) -> None:
    assert httpx.get(pk_server.url + "/auth/v1/settings").json()["passkeys_enabled"] is True
    r = call(pk_server, "GET", "/passkeys/registration/options")
    assert r.status_code == 405 and r.headers.get_list("allow") == ["POST"]
    r = call(pk_server, "GET", "/passkeys/a/b/c")
    assert r.status_code == 404 and r.text == "404 page not found\n"


# --- fuzz ----------------------------------------------------------------------------------------

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
