"""CAPTCHA (hCaptcha / Turnstile) against a stand-in siteverify server, through supabase-py and raw HTTP."""

from __future__ import annotations

from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supabase_auth.errors import AuthApiError

from ownbase.embedded import free_port
from tests.auth.conftest import py_client, unique_email
from tests.auth.standin import Seen, StandIn, json_answer
from tests.conftest import ServerHandle

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
GOOD = "10000000-aaaa-bbbb-cccc-000000000001"


def _verifier(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    form = parse_qs(seen.body.decode())
    ok = form.get("secret") == ["test-secret"] and form.get("response") == [GOOD]
    if form.get("response") == ["garbled"]:
        return 200, {"content-type": "application/json"}, b"not json"
    if ok:
        return json_answer(200, {"success": True})
    return json_answer(200, {"success": False, "error-codes": ["invalid-input-response", "timeout-or-duplicate"]})


@pytest.fixture(scope="module")
def verifier() -> Iterator[StandIn]:
    standin = StandIn(_verifier).start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def captcha_server(verifier: StandIn, server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_CAPTCHA_ENABLED": "true", "OWNBASE_AUTH_CAPTCHA_PROVIDER": "turnstile",
                           "OWNBASE_AUTH_CAPTCHA_SECRET": " test-secret ",
                           "OWNBASE_AUTH_CAPTCHA_VERIFY_URL": verifier.url + "/siteverify"})


def post(srv: ServerHandle, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    key = key or srv.anon_key
    return httpx.post(srv.url + "/auth/v1" + path, json=body,
                      headers={"apikey": key, "Authorization": f"Bearer {key}", **NEW}, timeout=30)


def token(value: str) -> dict[str, Any]:
    return {"gotrue_meta_security": {"captcha_token": value}}


def test_protected_routes_need_a_good_token(captcha_server: ServerHandle, verifier: StandIn) -> None:
    email = unique_email("captcha")
    cases = [("/signup", {"email": email, "password": "secret123"}),
             ("/token?grant_type=password", {"email": email, "password": "secret123"}),
             ("/otp", {"email": email}), ("/magiclink", {"email": email}), ("/recover", {"email": email}),
             ("/resend", {"type": "signup", "email": email}),
             ("/token?grant_type=nonsense", {})]  # GoTrue checks before it knows the grant
    for path, body in cases:
        r = post(captcha_server, path, body)
        assert r.status_code == 400 and r.json() == {
            "code": "captcha_failed",
            "message": "captcha protection: request disallowed (no captcha_token found)"}, path
        r = post(captcha_server, path, {**body, **token("wrong")})
        assert r.status_code == 400 and r.json()["message"] == (
            "captcha protection: request disallowed (invalid-input-response, timeout-or-duplicate)"), path
    # The verifier got the trimmed secret, the token and the client's address.
    form = parse_qs(verifier.seen[-1].body.decode())
    assert form["secret"] == ["test-secret"] and form["response"] == ["wrong"] and form["remoteip"] == ["127.0.0.1"]
    assert post(captcha_server, "/signup", {"email": email, "password": "secret123", **token(GOOD)}).status_code == 200
    assert post(captcha_server, "/recover", {"email": email, **token(GOOD)}).status_code == 200
    r = post(captcha_server, "/token?grant_type=nonsense", token(GOOD))
    assert r.status_code == 400 and r.json()["message"] == "unsupported_grant_type"


def test_supabase_py_sends_the_token(captcha_server: ServerHandle) -> None:
    sb = py_client(captcha_server)
    email = unique_email("captchapy")
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_up({"email": email, "password": "secret123"})
    assert exc.value.code == "captcha_failed"
    res = sb.auth.sign_up({"email": email, "password": "secret123", "options": {"captcha_token": GOOD}})
    assert res.user is not None and res.user.email == email
    sb.auth.sign_in_with_otp({"email": email, "options": {"captcha_token": GOOD}})
    with pytest.raises(AuthApiError) as exc:
        sb.auth.sign_in_with_password({"email": email, "password": "secret123", "options": {"captcha_token": "x"}})
    assert exc.value.code == "captcha_failed"


def test_refresh_and_admin_calls_skip_the_check(captcha_server: ServerHandle) -> None:
    email = unique_email("captchaadmin")
    # The service role skips CAPTCHA, as GoTrue's admin tokens do.
    r = post(captcha_server, "/signup", {"email": email, "password": "secret123"}, key=captcha_server.service_key)
    assert r.status_code == 200
    r = post(captcha_server, "/token?grant_type=refresh_token", {"refresh_token": "nope"})
    assert r.status_code == 400 and r.json()["code"] == "refresh_token_not_found"


def test_verifier_unreachable_is_gotrue_500(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_AUTH_CAPTCHA_ENABLED": "true", "OWNBASE_AUTH_CAPTCHA_SECRET": "s",
                          "OWNBASE_AUTH_CAPTCHA_VERIFY_URL": f"http://127.0.0.1:{free_port()}/siteverify"})
    r = post(srv, "/signup", {"email": unique_email(), "password": "secret123", **token(GOOD)})
    assert r.status_code == 500 and r.json() == {"code": "unexpected_failure",
                                                 "message": "captcha verification process failed"}


def test_garbled_verifier_reply_is_gotrue_500(captcha_server: ServerHandle) -> None:
    r = post(captcha_server, "/otp", {"email": unique_email(), **token("garbled")})
    assert r.status_code == 500 and r.json()["message"] == "captcha verification process failed"


meta = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=2),
                 st.fixed_dictionaries({}, optional={"captcha_token": st.one_of(
                     st.none(), st.integers(), st.text(max_size=40), st.just(GOOD), st.just("x" * 20000))}))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/signup", "/token?grant_type=password", "/otp", "/recover", "/resend",
                             "/token?grant_type=zzz"]),
       security=meta, email=st.one_of(st.just(None), st.text(max_size=20)))
def test_captcha_fields_never_5xx(captcha_server: ServerHandle, path: str, security: Any, email: Any) -> None:
    body: dict[str, Any] = {"gotrue_meta_security": security, "password": "secret123", "type": "signup"}
    if email is not None:
        body["email"] = email
    r = post(captcha_server, path, body)
    assert r.status_code < 500, (path, body, r.text)
