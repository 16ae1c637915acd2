"""Bad input is a clear 4xx in GoTrue's shape, never a 500: a table of scenarios plus random bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.auth.conftest import py_client, unique_email
from tests.conftest import ServerHandle

NEW = {"X-Supabase-Api-Version": "2024-01-01"}

# (name, method, path, body or raw bytes, use service key, status, code, message or None)
SCENARIOS: list[tuple[str, str, str, Any, bool, int, str, str | None]] = [
    ("signup bad email", "POST", "/signup", {"email": "nope", "password": "secret123"}, False, 400,
     "validation_failed", "Unable to validate email address: invalid format"),
    ("signup no password", "POST", "/signup", {"email": "a@example.com"}, False, 400,
     "validation_failed", "Signup requires a valid password"),
    ("signup short password", "POST", "/signup", {"email": "a@example.com", "password": "12"}, False, 422,
     "weak_password", "Password should be at least 6 characters."),
    ("signup phone", "POST", "/signup", {"phone": "+15555550100", "password": "secret123"}, False, 400,
     "phone_provider_disabled", None),
    ("signup email and phone", "POST", "/signup", {"email": "a@example.com", "phone": "+1555", "password": "x" * 8},
     False, 400, "validation_failed", "Only an email address or phone number should be provided on signup."),
    ("signup email not a string", "POST", "/signup", {"email": 5, "password": "secret123"}, False, 400,
     "bad_json", None),
    ("signup data not an object", "POST", "/signup", {"email": "a@example.com", "password": "secret123",
                                                       "data": "x"}, False, 400, "bad_json", None),
    ("signup array body", "POST", "/signup", b"[1,2]", False, 400, "bad_json", None),
    ("signup NUL", "POST", "/signup", {"email": "a@example.com", "password": "a\u0000bcdefg"}, False, 400,
     "bad_json", None),
    ("signup lone surrogate", "POST", "/signup", b'{"email": "a@example.com", "password": "\\ud800abcdef"}',
     False, 400, "bad_json", None),
    ("signup deep nesting", "POST", "/signup", b"[" * 100000 + b"]" * 100000, False, 400, "bad_json", None),
    ("signup NaN", "POST", "/signup", b'{"email": "a@example.com", "password": "secret123", "data": {"x": NaN}}',
     False, 400, "bad_json", None),
    ("signup too large", "POST", "/signup", b'{"a": "' + b"x" * (1024 * 1024 + 10) + b'"}', False, 413,
     "request_entity_too_large", None),
    ("token unknown grant", "POST", "/token?grant_type=magic", {}, False, 400, "invalid_credentials",
     "unsupported_grant_type"),
    ("token no email", "POST", "/token?grant_type=password", {"password": "x"}, False, 400,
     "validation_failed", "missing email or phone"),
    ("refresh missing", "POST", "/token?grant_type=refresh_token", {}, False, 400, "validation_failed",
     "Refresh token is not valid"),
    ("refresh unknown", "POST", "/token?grant_type=refresh_token", {"refresh_token": "abc"}, False, 400,
     "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"),
    ("pkce unknown code", "POST", "/token?grant_type=pkce", {"auth_code": "x", "code_verifier": "y"}, False, 404,
     "flow_state_not_found", None),
    ("verify no type", "POST", "/verify", {"token": "123456", "email": "a@example.com"}, False, 400,
     "validation_failed", "Verify requires a verification type"),
    ("verify bad type", "POST", "/verify", {"type": "nope", "token": "1"}, False, 400, "validation_failed",
     "Unsupported verification type"),
    ("verify no token", "POST", "/verify", {"type": "signup"}, False, 400, "validation_failed",
     "Verify requires either a token or a token hash"),
    ("verify hash and email", "POST", "/verify", {"type": "signup", "token_hash": "a", "email": "a@b.co"}, False,
     400, "validation_failed", "Only the token_hash and type should be provided"),
    ("verify bad email", "POST", "/verify", {"type": "signup", "token": "123456", "email": "nope"}, False, 422,
     "validation_failed", "Invalid email format"),
    ("verify wrong code", "POST", "/verify", {"type": "email", "token": "000000", "email": "a@example.com"}, False,
     403, "otp_expired", "Token has expired or is invalid"),
    ("verify GET no type", "GET", "/verify?token=abc", None, False, 400, "validation_failed", None),
    ("recover no email", "POST", "/recover", {}, False, 400, "validation_failed",
     "Password recovery requires an email"),
    ("resend bad type", "POST", "/resend", {"type": "nope", "email": "a@example.com"}, False, 400,
     "validation_failed", None),
    ("otp no email", "POST", "/otp", {}, False, 400, "validation_failed", None),
    ("user no bearer", "GET", "/user", None, False, 401, "no_authorization",
     "This endpoint requires a valid Bearer token"),
    ("user garbage bearer", "GET", "/user|Bearer abc.def", None, False, 403, "bad_jwt", None),
    ("admin bad page", "GET", "/admin/users?per_page=-3", None, True, 400, "validation_failed", None),
    ("oauth provider", "GET", "/authorize?provider=github", None, False, 400, "validation_failed",
     "Unsupported provider: provider is not enabled"),
    ("admin page overflow", "GET", "/admin/users?page=99999999999999999999", None, True, 400, "validation_failed",
     'Bad Pagination Parameters: strconv.ParseUint: parsing "99999999999999999999": value out of range'),
    ("admin per_page overflow", "GET", "/admin/users?per_page=" + "9" * 5000, None, True, 400, "validation_failed",
     None),
    ("admin page signed", "GET", "/admin/users?page=%2B2", None, True, 400, "validation_failed",
     'Bad Pagination Parameters: strconv.ParseUint: parsing "+2": invalid syntax'),
    ("admin page unicode digits", "GET", "/admin/users?page=%D9%A5", None, True, 400, "validation_failed", None),
    ("admin filter NUL", "GET", "/admin/users?filter=a%00b", None, True, 400, "validation_failed", None),
    ("admin bad uuid", "PUT", "/admin/users/123", {}, True, 404, "validation_failed", "user_id must be an UUID"),
    ("admin unknown user", "DELETE", "/admin/users/00000000-0000-0000-0000-000000000001", None, True, 404,
     "user_not_found", "User not found"),
    ("admin create nothing", "POST", "/admin/users", {}, True, 400, "validation_failed",
     "Cannot create a user without either an email or phone"),
    ("admin bad ban", "POST", "/admin/users", {"email": "ban@example.com", "ban_duration": "forever"}, True, 400,
     "validation_failed", None),
    ("generate_link bad type", "POST", "/admin/generate_link", {"type": "x", "email": "a@example.com"}, True, 400,
     "validation_failed", None),
    ("generate_link recovery unknown", "POST", "/admin/generate_link",
     {"type": "recovery", "email": "nobody-here@example.com"}, True, 404, "user_not_found", None),
    ("invite bad email", "POST", "/invite", {"email": "x"}, True, 400, "validation_failed", None),
]


def _send(server: ServerHandle, method: str, path: str, body: Any, service: bool) -> httpx.Response:
    key = server.service_key if service else server.anon_key
    headers = {"apikey": key, **NEW}
    if "|" in path:
        path, auth = path.split("|", 1)
        headers["Authorization"] = auth
    elif service:
        headers["Authorization"] = f"Bearer {key}"
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs["content"] = body
        headers["content-type"] = "application/json"
    elif body is not None:
        kwargs["json"] = body
    return httpx.request(method, server.url + "/auth/v1" + path, headers=headers, timeout=30, **kwargs)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenarios(server: ServerHandle, scenario: tuple[str, str, str, Any, bool, int, str, str | None]) -> None:
    _, method, path, body, service, status, code, message = scenario
    r = _send(server, method, path, body, service)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    # GoTrue leaves the header off the new-shape weak_password reply only.
    assert r.headers.get("x-sb-error-code") == (None if code == "weak_password" else code)
    if message is not None:
        assert r.json()["message"] == message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
bodies = st.fixed_dictionaries({}, optional={
    "email": st.one_of(st.emails(), st.text(max_size=30), json_values),
    "password": st.one_of(st.text(max_size=80), json_values),
    "data": json_values, "type": st.sampled_from(["signup", "email", "recovery", "x", ""]) | json_values,
    "token": st.text(max_size=10) | json_values, "token_hash": st.text(max_size=60) | json_values,
    "refresh_token": st.text(max_size=40) | json_values, "create_user": json_values,
})
PATHS = ["/signup", "/token?grant_type=password", "/token?grant_type=refresh_token", "/otp", "/verify",
         "/recover", "/resend"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(PATHS), body=bodies)
def test_random_bodies_never_500(server: ServerHandle, path: str, body: dict[str, Any]) -> None:
    r = _send(server, "POST", path, body, False)
    assert r.status_code < 500, (path, body, r.text)
    if r.status_code >= 400:
        assert r.json()["code"] == r.headers.get("x-sb-error-code", "weak_password")


# Every route the auth service serves (and a few it does not), with who calls it.
ALL_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/settings", "anon"), ("GET", "/health", "anon"), ("GET", "/.well-known/jwks.json", "anon"),
    ("GET", "/authorize", "anon"), ("POST", "/signup", "anon"), ("POST", "/token", "anon"),
    ("POST", "/otp", "anon"), ("POST", "/magiclink", "anon"), ("GET", "/verify", "anon"),
    ("POST", "/verify", "anon"), ("POST", "/recover", "anon"), ("POST", "/resend", "anon"),
    ("GET", "/user", "user"), ("PUT", "/user", "user"), ("GET", "/reauthenticate", "user"),
    ("POST", "/logout", "user"), ("POST", "/invite", "service"), ("GET", "/admin/users", "service"),
    ("POST", "/admin/users", "service"), ("GET", "/admin/users/{id}", "service"),
    ("PUT", "/admin/users/{id}", "service"), ("DELETE", "/admin/users/{id}", "service"),
    ("POST", "/admin/generate_link", "service"), ("GET", "/callback", "anon"), ("POST", "/callback", "anon"),
    ("POST", "/sso", "anon"), ("GET", "/user/identities/authorize", "user"),
    ("DELETE", "/user/identities/{id}", "user"), ("POST", "/factors", "user"),
    ("POST", "/factors/{id}/challenge", "user"), ("POST", "/factors/{id}/verify", "user"),
    ("DELETE", "/factors/{id}", "user"), ("GET", "/admin/users/{id}/factors", "service"),
    ("PUT", "/admin/users/{id}/factors/{id}", "service"), ("DELETE", "/admin/users/{id}/factors/{id}", "service"),
    ("GET", "/admin/users/{id}/passkeys", "service"), ("GET", "/admin/sso/providers", "service"),
    ("POST", "/passkeys/registration/options", "user"), ("GET", "/admin/custom-providers", "service"),
    ("PATCH", "/user", "user"), ("GET", "/{id}", "anon"),
]
QUERY_KEYS = ["page", "per_page", "filter", "redirect_to", "grant_type", "provider", "type", "token", "scope",
              "scopes", "code_challenge", "code_challenge_method", "state", "code", "skip_http_redirect"]
# Path ids: UUIDs in the spellings uuid.UUID accepts (PostgreSQL does not take all), and junk.
segments = (st.uuids().map(str) | st.uuids().map(lambda u: f"urn:uuid:{u}")
            | st.uuids().map(lambda u: f"{{{u.hex}}}")
            | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=1, max_size=40))
queries = st.dictionaries(st.sampled_from(QUERY_KEYS),
                          st.sampled_from(["password", "refresh_token", "pkce", "id_token", "web3", "-1", "0",
                                           "99999999999999999999", "github", "custom:x"]) | st.text(max_size=30),
                          max_size=4)
wide_bodies = st.fixed_dictionaries({}, optional={
    **{k: json_values | st.text(max_size=30) for k in (
        "email", "phone", "password", "new_email", "type", "token", "token_hash", "refresh_token", "auth_code",
        "code_verifier", "code_challenge", "code_challenge_method", "provider", "id_token", "issuer", "client_id",
        "nonce", "factor_type", "friendly_name", "channel", "challenge_id", "code", "domain", "ban_duration",
        "role", "nonce", "current_password", "chain")},
    "data": json_values, "user_metadata": json_values, "app_metadata": json_values, "email_confirm": json_values,
    "create_user": json_values, "link_identity": json_values,
})


@pytest.fixture(scope="module")
def fuzz_token(server: ServerHandle) -> str:
    email = unique_email("fuzz")
    py_client(server, server.service_key).auth.admin.create_user(
        {"email": email, "password": "secret123", "email_confirm": True})
    session = py_client(server).auth.sign_in_with_password({"email": email, "password": "secret123"}).session
    assert session is not None
    return session.access_token


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(ALL_ROUTES), seg=segments, query=queries, body=wide_bodies | st.none())
def test_every_auth_route_never_500(server: ServerHandle, fuzz_token: str, route: tuple[str, str, str], seg: str,
                                    query: dict[str, str], body: dict[str, Any] | None) -> None:
    method, template, who = route
    key = server.service_key if who == "service" else server.anon_key
    headers = {"apikey": key, **NEW}
    if who != "anon":
        headers["Authorization"] = f"Bearer {key if who == 'service' else fuzz_token}"
    r = httpx.request(method, server.url + "/auth/v1" + template.replace("{id}", seg), params=query,
                      headers=headers, json=body if method not in ("GET", "DELETE") else None, timeout=30)
    assert r.status_code < 500, (method, template, seg, query, body, r.text)
    if r.headers.get("x-sb-error-code"):
        assert r.json()["code"] == r.headers["x-sb-error-code"]
