"""GoTrue features that are off or not built in ownbase answer as GoTrue does with them disabled,
so the official clients report GoTrue's error codes; unknown paths keep chi's plain 404."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from supabase_auth.errors import AuthApiError

from tests.auth.conftest import py_client, unique_email
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
U = "00000000-0000-4000-8000-000000000001"


def _jwt(payload: dict[str, Any]) -> str:
    enc = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{enc}.c2ln"


# (name, method, path, body, who: anon|service|user, status, code, message)
SCENARIOS: list[tuple[str, str, str, Any, str, int, str, str]] = [
    ("sso", "POST", "/sso", {"domain": "acme.test"}, "anon", 404, "saml_provider_disabled", "SAML 2.0 is disabled"),
    ("saml metadata", "GET", "/sso/saml/metadata", None, "anon", 404, "saml_provider_disabled",
     "SAML 2.0 is disabled"),
    ("saml acs", "POST", "/sso/saml/acs", None, "anon", 404, "saml_provider_disabled", "SAML 2.0 is disabled"),
    ("passkeys list", "GET", "/passkeys", None, "anon", 404, "passkey_disabled", "Passkeys are disabled"),
    ("passkey options", "POST", "/passkeys/authentication/options", {}, "anon", 404, "passkey_disabled",
     "Passkeys are disabled"),
    ("oauth server", "GET", "/oauth/authorize?client_id=x", None, "anon", 404, "feature_disabled",
     "OAuth server is disabled"),
    ("oauth metadata", "GET", "/.well-known/oauth-authorization-server", None, "anon", 404, "feature_disabled",
     "OAuth server is disabled"),
    ("oauth grants", "GET", "/user/oauth/grants", None, "user", 404, "feature_disabled", "OAuth server is disabled"),
    ("admin oauth clients", "GET", "/admin/oauth/clients", None, "service", 404, "feature_disabled",
     "OAuth server is disabled"),
    ("admin oauth needs admin", "GET", "/admin/oauth/clients", None, "user", 403, "not_admin", "User not allowed"),
    ("custom providers", "POST", "/admin/custom-providers", {}, "service", 404, "feature_disabled",
     "Custom OAuth providers are disabled"),
    ("scim", "GET", "/scim/v2/Users", None, "anon", 404, "feature_disabled", "SCIM server is disabled"),
    ("sso provider", "GET", f"/admin/sso/providers/{U}", None, "service", 404, "sso_provider_not_found",
     "SSO Identity Provider not found"),
    ("web3", "POST", "/token?grant_type=web3", {"chain": "solana"}, "anon", 422, "web3_provider_disabled",
     "Web3 provider is disabled"),
    ("unknown grant", "POST", "/token?grant_type=magic", {}, "anon", 400, "invalid_credentials",
     "unsupported_grant_type"),
    ("id_token google", "POST", "/token?grant_type=id_token", {"provider": "google", "id_token": "x.y.z"}, "anon",
     400, "provider_disabled", 'Provider (issuer "https://accounts.google.com") is not enabled'),
    ("id_token apple", "POST", "/token?grant_type=id_token",
     {"provider": "apple", "id_token": _jwt({"iss": "https://appleid.apple.com"})}, "anon", 400,
     "provider_disabled", 'Provider (issuer "https://appleid.apple.com") is not enabled'),
    ("id_token apple wrong issuer", "POST", "/token?grant_type=id_token",
     {"provider": "apple", "id_token": _jwt({"iss": "https://evil.example"})}, "anon", 400, "validation_failed",
     "Detected ID token issuer is not an Apple ID token issuer"),
    ("id_token other", "POST", "/token?grant_type=id_token",
     {"provider": "myidp", "id_token": "x.y.z", "issuer": "https://idp.example", "client_id": "c"}, "anon", 400,
     "validation_failed", 'Custom OIDC provider "myidp" not allowed'),
    ("authorize known", "GET", "/authorize?provider=github", None, "anon", 400, "validation_failed",
     "Unsupported provider: provider is not enabled"),
    ("authorize unknown", "GET", "/authorize?provider=Nope", None, "anon", 400, "validation_failed",
     "Unsupported provider: Provider nope could not be found"),
    ("signup phone", "POST", "/signup", {"phone": "+15555550100", "password": "secret123"}, "anon", 400,
     "phone_provider_disabled", "Phone signups are disabled"),
    ("signup phone no password", "POST", "/signup", {"phone": "+15555550100"}, "anon", 400, "validation_failed",
     "Signup requires a valid password"),
    ("otp phone", "POST", "/otp", {"phone": "+1 555 555 0100"}, "anon", 400, "phone_provider_disabled",
     "Unsupported phone provider"),
    ("otp phone no create", "POST", "/otp", {"phone": "+15555550100", "create_user": False}, "anon", 422,
     "otp_disabled", "Signups not allowed for otp"),
    ("otp phone bad format", "POST", "/otp", {"phone": "555-0100", "create_user": False}, "anon", 400,
     "validation_failed", "Invalid phone number format (E.164 required)"),
    ("otp email and phone", "POST", "/otp", {"phone": "+15555550100", "email": "a@example.com"}, "anon", 400,
     "validation_failed", "Only an email address or phone number should be provided"),
    ("password phone", "POST", "/token?grant_type=password", {"phone": "+15555550100", "password": "x"}, "anon",
     422, "phone_provider_disabled", "Phone logins are disabled"),
    ("resend sms", "POST", "/resend", {"type": "sms", "phone": "+15555550100"}, "anon", 400,
     "phone_provider_disabled", "Phone logins are disabled"),
    ("verify sms", "POST", "/verify", {"type": "sms", "phone": "+15555550100", "token": "123456"}, "anon", 403,
     "otp_expired", "Token has expired or is invalid"),
    ("verify sms bad phone", "POST", "/verify", {"type": "sms", "phone": "(555)", "token": "123456"}, "anon", 400,
     "validation_failed", "Invalid phone number format (E.164 required)"),
    ("admin phone bad format", "POST", "/admin/users", {"phone": "abc"}, "service", 400, "validation_failed",
     "Invalid phone number format (E.164 required)"),
    ("enroll webauthn", "POST", "/factors", {"factor_type": "webauthn"}, "user", 422,
     "mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn"),
    ("enroll phone", "POST", "/factors", {"factor_type": "phone", "phone": "+15555550100"}, "user", 422,
     "mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone"),
    ("enroll other", "POST", "/factors", {"factor_type": "sms"}, "user", 400, "validation_failed",
     "factor_type needs to be totp, phone, or webauthn"),
    ("enroll needs a user", "POST", "/factors", {"factor_type": "totp"}, "anon", 401, "no_authorization",
     "This endpoint requires a valid Bearer token"),
    ("challenge bad id", "POST", "/factors/nope/challenge", {}, "user", 404, "validation_failed",
     "factor_id must be an UUID"),
    ("challenge unknown", "POST", f"/factors/{U}/challenge", {}, "user", 404, "mfa_factor_not_found",
     "Factor not found"),
    ("unenroll unknown", "DELETE", f"/factors/{U}", None, "user", 404, "mfa_factor_not_found", "Factor not found"),
    ("link identity", "GET", "/user/identities/authorize?provider=github&skip_http_redirect=true", None, "user",
     404, "manual_linking_disabled", "Manual linking is disabled"),
    ("link identity needs a user", "GET", "/user/identities/authorize?provider=github", None, "anon", 401,
     "no_authorization", "This endpoint requires a valid Bearer token"),
    ("unlink identity", "DELETE", f"/user/identities/{U}", None, "user", 404, "manual_linking_disabled",
     "Manual linking is disabled"),
]


@pytest.fixture(scope="module")
def user_token(server: ServerHandle) -> str:
    email = unique_email("off")
    py_client(server, server.service_key).auth.admin.create_user(
        {"email": email, "password": "secret123", "email_confirm": True})
    session = py_client(server).auth.sign_in_with_password({"email": email, "password": "secret123"}).session
    assert session is not None
    return session.access_token


def _send(server: ServerHandle, method: str, path: str, body: Any, who: str, token: str,
          **kw: Any) -> httpx.Response:
    key = server.service_key if who == "service" else server.anon_key
    headers = {"apikey": key, **NEW, **kw.pop("headers", {})}
    if who != "anon":
        headers["Authorization"] = f"Bearer {key if who == 'service' else token}"
    return httpx.request(method, server.url + "/auth/v1" + path, headers=headers, timeout=30,
                         json=body, **kw)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_gotrue_answers_for_features_that_are_off(server: ServerHandle, user_token: str,
                                                  scenario: tuple[str, str, str, Any, str, int, str, str]) -> None:
    _, method, path, body, who, status, code, message = scenario
    r = _send(server, method, path, body, who, user_token)
    assert (r.status_code, r.json()) == (status, {"code": code, "message": message})
    assert r.headers["x-sb-error-code"] == code and r.headers["x-supabase-api-version"] == "2024-01-01"


def test_id_token_oauth_style_errors(server: ServerHandle) -> None:
    for body, desc in (({"provider": "google"}, "id_token required"),
                       ({"id_token": "x.y.z"}, "provider or client_id and issuer required"),
                       ({"id_token": "x.y.z", "provider": "google", "link_identity": True},
                        "Linking requires a valid user access token in Authorization")):
        r = _send(server, "POST", "/token?grant_type=id_token", body, "anon", "")
        assert (r.status_code, r.json()) == (400, {"error": "invalid request", "error_description": desc})
        assert "x-sb-error-code" not in r.headers


def test_admin_sso_providers_list_is_empty(server: ServerHandle) -> None:
    r = _send(server, "GET", "/admin/sso/providers", None, "service", "")
    assert (r.status_code, r.json()) == (200, {"items": []})


def test_unknown_paths_and_wrong_methods_as_chi(server: ServerHandle, user_token: str) -> None:
    for method, path in (("GET", "/nope"), ("POST", "/admin/nothing/here"), ("GET", ""), ("DELETE", "/")):
        r = _send(server, method, path, None, "anon", "")
        assert r.status_code == 404, (method, path)
        assert r.text == "404 page not found\n" and r.headers["content-type"].startswith("text/plain")
        assert r.headers["x-content-type-options"] == "nosniff" and "x-sb-error-code" not in r.headers
    r = _send(server, "GET", "/token", None, "anon", "")
    assert r.status_code == 405 and r.content == b"" and r.headers.get_list("allow") == ["POST"]
    assert "content-type" not in r.headers
    r = _send(server, "POST", "/user", None, "anon", "")
    assert r.status_code == 405 and sorted(r.headers.get_list("allow")) == ["GET", "PUT"]


def test_oauth_callback_redirects_with_gotrue_state_errors(server: ServerHandle) -> None:
    cases = {"": ("bad_oauth_callback", "OAuth state parameter missing"),
             "?state=garbage": ("bad_oauth_state", "OAuth state parameter is invalid"),
             f"?state={uuid.uuid4()}&code=abc": ("bad_oauth_state", "OAuth state not found or expired")}
    for query, (code, message) in cases.items():
        r = httpx.get(server.url + "/auth/v1/callback" + query, follow_redirects=False)
        assert r.status_code == 303, query
        params = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
        assert params == {"error": "invalid_request", "error_code": code, "error_description": message}
    # Apple's form_post callback reads the form.
    r = httpx.post(server.url + "/auth/v1/callback", data={"state": "garbage"}, follow_redirects=False)
    assert r.status_code == 303 and "error_code=bad_oauth_state" in r.headers["location"]


def test_supabase_py_reports_gotrue_codes(server: ServerHandle) -> None:
    email = unique_email("pyoff")
    adm = py_client(server, server.service_key).auth.admin
    user = adm.create_user({"email": email, "password": "secret123", "email_confirm": True}).user
    sb = py_client(server)
    sb.auth.sign_in_with_password({"email": email, "password": "secret123"})

    def code_of(call: Any) -> tuple[str | None, int]:
        with pytest.raises(AuthApiError) as exc:
            call()
        return exc.value.code, exc.value.status

    assert code_of(lambda: sb.auth.sign_in_with_sso({"domain": "acme.test"})) == ("saml_provider_disabled", 404)
    assert code_of(lambda: sb.auth.link_identity({"provider": "github"})) == ("manual_linking_disabled", 404)
    identity = sb.auth.get_user_identities().identities[0]
    assert code_of(lambda: sb.auth.unlink_identity(identity)) == ("manual_linking_disabled", 404)
    assert code_of(lambda: sb.auth.mfa.enroll({"factor_type": "phone", "phone": "+15555550100"})) == \
        ("mfa_phone_enroll_not_enabled", 422)
    assert code_of(lambda: sb.auth.mfa.challenge({"factor_id": U})) == ("mfa_factor_not_found", 404)
    assert code_of(lambda: sb.auth.mfa.unenroll({"factor_id": U})) == ("mfa_factor_not_found", 404)
    assert code_of(lambda: sb.auth.sign_in_with_id_token({"provider": "google", "token": "x.y.z"})) == \
        ("provider_disabled", 400)
    assert code_of(lambda: py_client(server).auth.sign_in_with_otp({"phone": "+15555550100"})) == \
        ("phone_provider_disabled", 400)
    assert code_of(lambda: py_client(server).auth.sign_in_with_password(
        {"phone": "+15555550100", "password": "secret123"})) == ("phone_provider_disabled", 422)
    assert code_of(lambda: py_client(server).auth.sign_up({"phone": "+15555550100", "password": "secret123"})) == \
        ("phone_provider_disabled", 400)
    assert code_of(lambda: adm.oauth.list_clients()) == ("feature_disabled", 404)
    assert adm.mfa.list_factors({"user_id": user.id}) == []


@pytest.fixture(scope="module")
def mfa_off_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_MFA_TOTP_ENROLL_ENABLED": "false",
                           "OWNBASE_AUTH_MFA_TOTP_VERIFY_ENABLED": "false"})


def test_factors_copied_from_supabase(mfa_off_server: ServerHandle) -> None:
    """With TOTP turned off, factors imported with a Supabase dump are listed and removable, never
    verifiable, and enrolment answers GoTrue's switch-off code."""
    server = mfa_off_server
    email = unique_email("factor")
    adm = py_client(server, server.service_key).auth.admin
    user = adm.create_user({"email": email, "password": "secret123", "email_confirm": True}).user
    verified, pending = str(uuid.uuid4()), str(uuid.uuid4())
    sql(server, """insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at,
                   updated_at) values ($1::uuid, $3::uuid, 'phone app', 'totp', 'verified', now(), now()),
                                      ($2::uuid, $3::uuid, null, 'totp', 'unverified', now(), now())""",
        verified, pending, user.id)
    listed = adm.mfa.list_factors({"user_id": user.id})
    assert {(f.id, f.status) for f in listed} == {(verified, "verified"), (pending, "unverified")}
    sb = py_client(server)
    sb.auth.sign_in_with_password({"email": email, "password": "secret123"})
    sb.auth.get_user()  # list_factors reads the factors of the user object, as GoTrue sends them
    mine = sb.auth.mfa.list_factors()
    assert {f.id for f in mine.all} == {verified, pending} and [f.id for f in mine.totp] == [verified]
    with pytest.raises(AuthApiError) as exc:
        sb.auth.mfa.challenge({"factor_id": verified})
    assert (exc.value.code, exc.value.status) == ("mfa_totp_verify_not_enabled", 422)
    with pytest.raises(AuthApiError) as exc:
        sb.auth.mfa.unenroll({"factor_id": verified})
    assert (exc.value.code, exc.value.status) == ("insufficient_aal", 422)
    assert sb.auth.mfa.unenroll({"factor_id": pending}).id == pending
    assert adm.mfa.delete_factor({"user_id": user.id, "id": verified}).id == verified
    assert adm.mfa.list_factors({"user_id": user.id}) == []
    with pytest.raises(AuthApiError) as exc:
        sb.auth.mfa.enroll({"factor_type": "totp"})
    assert (exc.value.code, exc.value.status) == ("mfa_totp_enroll_not_enabled", 422)
