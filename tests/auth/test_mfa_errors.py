"""MFA error catalog (GoTrue's statuses, codes and messages), challenge expiry and IP binding,
factor-count and rate limits, anonymous users, the verification-attempt hook point, and a bounded
fuzz of every MFA route (never a 5xx)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownbase.auth import mfa
from tests.auth.conftest import py_client
from tests.auth.mfa_helpers import api_error, claims, code_at, new_user, send, signed_in, token_of, wrong_code
from tests.conftest import ServerHandle, sql

U = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def pending(server: ServerHandle) -> tuple[str, str, str, str]:
    """(token, factor id, secret, challenge id) of a user with an unverified factor and a challenge."""
    email, _ = new_user(server, "mfa-err")
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    return token_of(sb), enrolled.id, enrolled.totp.secret, challenge.id


# (name, method, path ({f} = the factor, {c} = its challenge), body, status, code, message)
CASES: list[tuple[str, str, str, Any, int, str, str]] = [
    ("enroll other type", "POST", "/factors", {"factor_type": "sms"}, 400, "validation_failed",
     "factor_type needs to be totp, phone, or webauthn"),
    ("enroll phone is off", "POST", "/factors", {"factor_type": "phone", "phone": "+15555550100"}, 422,
     "mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone"),
    ("enroll issuer too long", "POST", "/factors", {"factor_type": "totp", "friendly_name": "l1",
                                                    "issuer": "x" * 256}, 400,
     "validation_failed", "issuer must be 255 characters or less"),
    ("enroll issuer past QR capacity", "POST", "/factors", {"factor_type": "totp", "friendly_name": "l2",
                                                            "issuer": "\u00e9" * 255}, 400,
     "validation_failed", "issuer is too long for a QR code"),
    ("challenge bad id", "POST", "/factors/nope/challenge", {}, 404, "validation_failed", "factor_id must be an UUID"),
    ("challenge unknown", "POST", f"/factors/{U}/challenge", {}, 404, "mfa_factor_not_found", "Factor not found"),
    ("verify unknown challenge", "POST", "/factors/{f}/verify", {"challenge_id": U, "code": "123456"}, 422,
     "mfa_factor_not_found", "MFA factor with the provided challenge ID not found"),
    ("verify empty code", "POST", "/factors/{f}/verify", {"challenge_id": "{c}", "code": ""}, 400,
     "validation_failed", "Code needs to be non-empty"),
    ("verify bad challenge id", "POST", "/factors/{f}/verify", {"challenge_id": "nope", "code": "1"}, 400,
     "bad_json", "Could not parse request body as JSON: challenge_id must be a UUID"),
    ("unenroll unknown", "DELETE", f"/factors/{U}", None, 404, "mfa_factor_not_found", "Factor not found"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_error_catalog(server: ServerHandle, pending: tuple[str, str, str, str],
                       case: tuple[str, str, str, Any, int, str, str]) -> None:
    token, factor_id, _, challenge_id = pending
    _, method, path, body, status, code, message = case
    if body:
        body = {k: (v.replace("{c}", challenge_id) if isinstance(v, str) else v) for k, v in body.items()}
    r = send(server, method, path.replace("{f}", factor_id), token, body)
    assert (r.status_code, r.json()) == (status, {"code": code, "message": message})


def test_expired_challenge_is_refused_and_deleted(server: ServerHandle) -> None:
    email, _ = new_user(server, "mfa-exp")
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    sql(server, "update auth.mfa_challenges set created_at = now() - interval '301 seconds' where id = $1::uuid",
        challenge.id)
    r = send(server, "POST", f"/factors/{enrolled.id}/verify", token_of(sb),
             {"challenge_id": challenge.id, "code": code_at(enrolled.totp.secret)})
    assert (r.status_code, r.json()) == (422, {
        "code": "mfa_challenge_expired",
        "message": f"MFA challenge {challenge.id} has expired, verify against another challenge or create a new "
                   "challenge."})
    assert sql(server, "select 1 from auth.mfa_challenges where id = $1::uuid", challenge.id) == []


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
    token, code = token_of(sb), code_at(enrolled.totp.secret)

    def challenge(ip: str) -> str:
        r = send(server, "POST", f"/factors/{enrolled.id}/challenge", token, {}, headers={"X-Forwarded-For": ip})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    r = send(server, "POST", f"/factors/{enrolled.id}/verify", token,
             {"challenge_id": challenge("203.0.113.7"), "code": code}, headers={"X-Forwarded-For": "198.51.100.9"})
    assert (r.status_code, r.json()) == (422, {"code": "mfa_ip_address_mismatch",
                                               "message": "Challenge and verify IP addresses mismatch."})
    r = send(server, "POST", f"/factors/{enrolled.id}/verify", token,
             {"challenge_id": challenge("198.51.100.9"), "code": code}, headers={"X-Forwarded-For": "198.51.100.9"})
    assert r.status_code == 200 and claims(r.json()["access_token"])["aal"] == "aal2"


def test_factor_count_limit(tight_server: ServerHandle) -> None:
    email, _ = new_user(tight_server, "mfa-count")
    sb = signed_in(tight_server, email)
    sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "a"})
    sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "b"})
    assert api_error(lambda: sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "c"})) == \
        ("too_many_enrolled_mfa_factors", 422)


def test_challenge_rate_limit(tight_server: ServerHandle) -> None:
    email, _ = new_user(tight_server, "mfa-rate")
    sb = signed_in(tight_server, email)
    factor = sb.auth.mfa.enroll({"factor_type": "totp"})
    # 2 per minute with a burst of 4, for this client IP: the fifth challenge in a row is refused.
    for _ in range(4):
        sb.auth.mfa.challenge({"factor_id": factor.id})
    assert api_error(lambda: sb.auth.mfa.challenge({"factor_id": factor.id})) == ("over_request_rate_limit", 429)


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


HOOK = """
from ownbase.auth import mfa


async def _reject_wrong_codes(ctx, payload):
    if not payload["valid"]:
        return {"decision": "reject", "message": "Too many wrong codes"}
    return {"decision": "continue"}


mfa.set_verification_attempt_hook(_reject_wrong_codes)
"""


@pytest.fixture(scope="module")
def hook_server(server_factory: Callable[..., ServerHandle], tmp_path_factory: pytest.TempPathFactory) -> ServerHandle:
    """A server whose process installs a verification-attempt hook at start (sitecustomize), as the
    auth hooks module will."""
    folder = tmp_path_factory.mktemp("mfa-hook")
    (folder / "sitecustomize.py").write_text(HOOK)
    return server_factory({"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])})


def test_a_rejecting_hook_ends_every_session(hook_server: ServerHandle) -> None:
    server = hook_server
    email, _ = new_user(server, "mfa-hook")
    other = signed_in(server, email)
    sb = signed_in(server, email)
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp"})
    challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    r = send(server, "POST", f"/factors/{enrolled.id}/verify", token_of(sb),
             {"challenge_id": challenge.id, "code": wrong_code(enrolled.totp.secret)})
    assert (r.status_code, r.json()) == (403, {"code": "mfa_verification_rejected", "message": "Too many wrong codes"})
    assert api_error(lambda: other.auth.get_user()) == ("session_not_found", 403)
    assert api_error(lambda: sb.auth.get_user()) == ("session_not_found", 403)


@pytest.fixture(scope="module")
def fuzz_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_RATE_LIMIT_MFA": "0"})  # the limiter would hide the handlers


@pytest.fixture(scope="module")
def fuzz_token(fuzz_server: ServerHandle) -> tuple[str, str]:
    email, _ = new_user(fuzz_server, "mfa-fuzz")
    sb = signed_in(fuzz_server, email)
    factor = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "fuzz"})
    return token_of(sb), factor.id


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
    token, mine = fuzz_token
    fid = {"mine": mine, "random": str(uuid.uuid4()), "junk": "x%00y"}[factor]
    method, path = {"enroll": ("POST", "/factors"), "challenge": ("POST", f"/factors/{fid}/challenge"),
                    "verify": ("POST", f"/factors/{fid}/verify"), "unenroll": ("DELETE", f"/factors/{fid}"),
                    "admin": ("PUT", f"/admin/users/{uuid.uuid4()}/factors/{fid}")}[route]
    who = fuzz_server.service_key if route == "admin" else token
    r = send(fuzz_server, method, path, who, None, content=json.dumps(body))
    assert r.status_code < 500, (route, body, r.text)
