"""Mail backends (real SMTP server via aiosmtpd, SES v2 via moto's server), template overrides,
`ownbase mail list`, and per-IP limits shared by two processes through a real Redis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.ses.models import ses_backends
from supabase_auth.errors import AuthApiError

from ownbase.embedded import free_port
from tests.auth.conftest import last_mail, py_client, unique_email
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}


class Collector:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


LOGINS: list[tuple[str, str]] = []


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    user, password = data.login.decode(), data.password.decode()
    LOGINS.append((user, password))
    return AuthResult(success=(user, password) == ("mailer", "s3cret"))


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[int, Collector]]:
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield port, collector
    controller.stop()


def _text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()  # type: ignore[union-attr]
    raise AssertionError("no text part")


def test_smtp_backend_with_template_override(smtp: tuple[int, Collector], tmp_path: Path,
                                             server_factory: Callable[..., ServerHandle]) -> None:
    port, collector = smtp
    (tmp_path / "confirmation.txt").write_text("Welcome to Acme! Your code: {{ Token }}\n{{ ConfirmationURL }}\n")
    srv = server_factory({"OWNBASE_MAIL_BACKEND": "smtp", "OWNBASE_MAIL_SMTP_HOST": "127.0.0.1",
                          "OWNBASE_MAIL_SMTP_PORT": str(port), "OWNBASE_MAIL_TEMPLATES_DIR": str(tmp_path),
                          "OWNBASE_MAIL_SMTP_USER": "mailer", "OWNBASE_MAIL_SMTP_PASSWORD": "s3cret",
                          "OWNBASE_MAIL_SUBJECT_CONFIRMATION": "Acme: confirm {{ Email }}",
                          "OWNBASE_MAIL_FROM": "Acme <hello@acme.test>",
                          "OWNBASE_SITE_URL": "https://acme.test"})
    sb = py_client(srv)
    email = unique_email("smtp")
    sb.auth.sign_up({"email": email, "password": "secret123"},)
    msgs = [m for m in collector.messages if m["To"] == email]
    assert len(msgs) == 1 and ("mailer", "s3cret") in LOGINS  # delivered after an SMTP login
    msg = msgs[0]
    assert msg["Subject"] == f"Acme: confirm {email}" and "hello@acme.test" in msg["From"]
    body = _text(msg)
    assert body.startswith("Welcome to Acme!")  # the override, not the bundled template
    code = re.search(r"code: (\d{6})", body).group(1)  # type: ignore[union-attr]
    # The link is built from the configured public URL, never from request headers.
    link = re.search(r"(http\S+)", body).group(1)  # type: ignore[union-attr]
    assert link.startswith(srv.url + "/auth/v1/verify?") and "redirect_to=https%3A%2F%2Facme.test" in link
    html = [p for p in msg.walk() if p.get_content_type() == "text/html"]
    assert html and "Confirm your mail" in html[0].get_payload(decode=True).decode()  # bundled HTML
    assert sb.auth.verify_otp({"email": email, "token": code, "type": "signup"}).session is not None
    row = last_mail(srv, email)
    assert row["backend"] == "smtp" and row["status"] == "sent"
    assert code not in row["text_body"] + row["html_body"]  # no clear codes outside the console backend
    # Host header spoofing does not change links (GHSA-3529-5m8x-rpv3).
    other = unique_email("spoof")
    httpx.post(srv.url + "/auth/v1/signup", json={"email": other, "password": "secret123"},
               headers={"apikey": srv.anon_key, "Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    spoofed = [m for m in collector.messages if m["To"] == other]
    assert spoofed and "evil.example" not in _text(spoofed[0])


def test_failed_delivery_rolls_back(server_factory: Callable[..., ServerHandle]) -> None:
    # Nothing listens on this port: delivery fails at once.
    bad = server_factory({"OWNBASE_MAIL_BACKEND": "smtp", "OWNBASE_MAIL_SMTP_HOST": "127.0.0.1",
                          "OWNBASE_MAIL_SMTP_PORT": str(free_port())})
    lost = unique_email("smtpfail")
    r = httpx.post(bad.url + "/auth/v1/signup", json={"email": lost, "password": "secret123"},
                   headers={"apikey": bad.anon_key, **NEW}, timeout=60)
    # The failure is GoTrue's 500 shape, the sign-up is rolled back, the outbox says why.
    assert r.status_code == 500 and r.json() == {"code": "unexpected_failure",
                                                 "message": "Error sending confirmation email"}
    row = last_mail(bad, lost)
    assert row["status"] == "failed" and row["error"]

    assert sql(bad, "select count(*) as n from auth.users where email = $1", lost)[0]["n"] == 0


def test_ses_backend_through_moto(server_factory: Callable[..., ServerHandle]) -> None:
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}
        boto3.client("sesv2", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_email_identity(EmailIdentity="mail.acme.test")
        srv = server_factory({"OWNBASE_MAIL_BACKEND": "ses", "OWNBASE_MAIL_SES_ENDPOINT_URL": endpoint,
                              "OWNBASE_MAIL_SES_REGION": "eu-west-1",
                              "OWNBASE_MAIL_FROM": "no-reply@mail.acme.test", **creds})
        sb = py_client(srv)
        email = unique_email("ses")
        sb.auth.reset_password_for_email(email)  # unknown address: no mail at all
        sb.auth.sign_in_with_otp({"email": email})
        sent = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
        mine = [m for m in sent if email in m.destinations["ToAddresses"]]
        assert len(mine) == 1
        code = re.search(r"code: <strong>(\d{6})</strong>", mine[0].body).group(1)  # type: ignore[union-attr]
        assert sb.auth.verify_otp({"email": email, "token": code, "type": "email"}).session is not None
        assert last_mail(srv, email)["backend"] == "ses"
    finally:
        moto.stop()


def test_mail_list_cli(server: ServerHandle) -> None:
    email = unique_email("cli")
    py_client(server).auth.sign_up({"email": email, "password": "secret123"})
    env = {**os.environ, "OWNBASE_DATABASE_URL": server.db_url}
    out = subprocess.run([sys.executable, "-m", "ownbase", "mail", "list", "--to", email, "--json"],
                         env=env, capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert len(rows) == 1 and rows[0]["kind"] == "confirmation" and rows[0]["to_address"] == email
    plain = subprocess.run([sys.executable, "-m", "ownbase", "mail", "list", "--to", email],
                           env=env, capture_output=True, text=True, check=True)
    assert email in plain.stdout and "Confirm your signup" in plain.stdout


def _bad_login(srv: ServerHandle, email: str) -> httpx.Response:
    return httpx.post(srv.url + "/auth/v1/token?grant_type=password", json={"email": email, "password": "x" * 8},
                      headers={"apikey": srv.anon_key, **NEW})


def test_rate_limit_shared_by_two_processes_through_redis(redis_url: str,
                                                          server_factory: Callable[..., ServerHandle]) -> None:
    env = {"OWNBASE_REDIS_URL": redis_url, "OWNBASE_AUTH_RATE_LIMIT_TOKEN": "4"}
    a, b = server_factory(env), server_factory(env)
    email = unique_email("limit")
    codes = [_bad_login(srv, email).status_code for srv in (a, b, a, b)]
    assert codes == [400, 400, 400, 400]
    for srv in (a, b):
        r = _bad_login(srv, email)
        assert r.status_code == 429 and r.json()["code"] == "over_request_rate_limit"
        assert int(r.headers["retry-after"]) >= 1


def test_per_ip_limit_in_memory(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_AUTH_RATE_LIMIT_OTP": "2", "OWNBASE_AUTH_RATE_LIMIT_VERIFY": "2"})
    sb = py_client(srv)
    for _ in range(2):
        sb.auth.reset_password_for_email(unique_email("nobody"))
    r = httpx.post(srv.url + "/auth/v1/recover", json={"email": unique_email()},
                   headers={"apikey": srv.anon_key, **NEW})
    assert r.status_code == 429 and r.json()["code"] == "over_request_rate_limit"
    for _ in range(2):
        httpx.post(srv.url + "/auth/v1/verify", json={"type": "email", "email": "a@b.co", "token": "123456"},
                   headers={"apikey": srv.anon_key})
    r = httpx.post(srv.url + "/auth/v1/verify", json={"type": "email", "email": "a@b.co", "token": "123456"},
                   headers={"apikey": srv.anon_key, **NEW})
    assert r.status_code == 429


def _ask(srv: ServerHandle, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    r = httpx.post(srv.url + "/auth/v1/" + path, json=body, headers={"apikey": srv.anon_key, **NEW})
    return r.status_code, r.json()


def test_mail_budget_does_not_tell_registered_from_unknown(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory()  # the shipped budget: 3 mails per address per hour
    known, unknown = unique_email("known"), unique_email("unknown")
    py_client(srv, srv.service_key).auth.admin.create_user(
        {"email": known, "password": "secret123", "email_confirm": True})
    limited = (429, {"code": "over_email_send_rate_limit", "message": "email rate limit exceeded"})
    expected = [(200, {})] * 3 + [limited]
    for address in (known, unknown):
        assert [_ask(srv, "recover", {"email": address}) for _ in range(4)] == expected, address
    # supabase-py surfaces the same error for the unknown address.
    with pytest.raises(AuthApiError) as exc:
        py_client(srv).auth.reset_password_for_email(unknown)
    assert exc.value.code == "over_email_send_rate_limit" and exc.value.status == 429
    # /resend when there is nothing to resend (confirmed or unknown address) counts the same way.
    known2, unknown2 = unique_email("known2"), unique_email("unknown2")
    py_client(srv, srv.service_key).auth.admin.create_user(
        {"email": known2, "password": "secret123", "email_confirm": True})
    for address in (known2, unknown2):
        got = [_ask(srv, "resend", {"type": "signup", "email": address}) for _ in range(4)]
        assert got == expected, address
    # Signing up again: a confirmed account answers like a new (unconfirmed) address, 429 included.
    known3, fresh = unique_email("known3"), unique_email("fresh")
    py_client(srv, srv.service_key).auth.admin.create_user(
        {"email": known3, "password": "secret123", "email_confirm": True})
    for address in (known3, fresh):
        got = [_ask(srv, "signup", {"email": address, "password": "secret123"})[0] for _ in range(4)]
        assert got == [200, 200, 200, 429], address
    # A bad PKCE challenge is refused for both, too.
    bad = {"code_challenge": "short", "code_challenge_method": "s256"}
    assert _ask(srv, "recover", {"email": unique_email(), **bad}) == _ask(
        srv, "recover", {"email": known2, **bad})
    # The budget table never names an address.

    assert sql(srv, "select count(*) as n from ownbase.auth_email_sends where address like '%@%'")[0]["n"] == 0
