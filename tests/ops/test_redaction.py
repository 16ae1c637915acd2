"""Log redaction: secrets never appear in log lines, from our code, libraries or exceptions."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ownbase import logs
from ownbase.keys import generate_private_key_pem

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SB_SECRET = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
PASSWORD = "hunter2-Very-Secret"


@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], io.StringIO]:
    saved = logging.getLogger().handlers[:], logging.getLogger().level

    def setup(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        logs.configure("debug", fmt)
        return stream

    yield setup
    logging.getLogger().handlers[:], level = saved
    logging.getLogger().setLevel(level)


SECRETS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("request %s", (f"GET /rest/v1/t?apikey={JWT}&select=*",), {}),
    ("headers %s", ({"Authorization": f"Bearer {JWT}", "apikey": SB_SECRET},), {}),
    ("auth header: Authorization: Bearer %s", ("opaque-token-value-123",), {}),
    ("body %s", (json.dumps({"email": "a@b.c", "password": PASSWORD}),), {}),
    ("form grant_type=password&password=%s&x=1", (PASSWORD,), {}),
    ("connecting to %s", (f"postgresql://owner:{PASSWORD}@db.example.com:5432/app",), {}),
    ("key %s", (generate_private_key_pem("ES256"),), {}),
    ("escaped key %s", (generate_private_key_pem("ES256").replace("\n", "\\n"),), {}),
    ("refresh %s", ('{"refresh_token": "r3fr3sh-t0k3n-value", "access_token": "%s"}' % JWT,), {}),
    ("extras", (), {"extra": {"authorization": "Bearer abc.def", "token": "plain-token-1234",
                              "url": f"https://x.test/cb?apikey={SB_SECRET}"}}),
]
LEAKS = (JWT, SB_SECRET, PASSWORD, "opaque-token-value-123", "r3fr3sh-t0k3n-value", "PRIVATE KEY",
         "plain-token-1234", "abc.def", "MIGHAgEAMBMG")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_never_reach_the_log(captured: Callable[[str], io.StringIO], fmt: str) -> None:
    stream = captured(fmt)
    log = logging.getLogger("ownbase.test")
    for message, args, kwargs in SECRETS:
        log.warning(message, *args, **kwargs)
    try:
        raise ValueError(f"login failed for password={PASSWORD} with Bearer {JWT}")
    except ValueError:
        log.exception("boom")
    out = stream.getvalue()
    for leak in LEAKS:
        assert leak not in out, (leak, out)
    assert out.count(logs.REDACTED) >= len(SECRETS)
    # What is not secret stays readable.
    assert "select=*" in out and "a@b.c" in out and "db.example.com:5432/app" in out
    assert "grant_type=password" in out and "ValueError" in out


def test_ordinary_lines_are_untouched() -> None:
    line = ("applied ownbase migrations 0001, 0002; storage sweep: 3 blobs removed (token bucket ok); "
            "basic settings are fine")
    assert logs.redact(line) == line


def test_server_log_has_no_secrets(server_factory: Callable[..., Any]) -> None:
    # Console mail logs the mail (its link carries a one-time token); requests carry keys.
    srv = server_factory({"OWNBASE_LOG_LEVEL": "debug", "OWNBASE_LOG_FORMAT": "json"})
    with srv.client() as c:
        r = c.post("/auth/v1/signup", json={"email": "redact@example.com", "password": PASSWORD})
        assert r.status_code == 200, r.text
        c.get("/rest/v1/nope", params={"apikey": srv.service_key})
    httpx.get(srv.url + "/auth/v1/user", headers={"apikey": srv.anon_key,
                                                  "Authorization": f"Bearer {srv.service_key}x"})
    text = srv.log_path.read_text()
    assert "mail to redact@example.com" in text  # the mail was logged ...
    assert "token=" + logs.REDACTED in text  # ... with its link's token hidden
    assert "ownbase keys" in text  # the banner off a terminal names the command instead of the key
    for leak in (srv.service_key, PASSWORD):
        assert leak not in text
