"""Auth test fixtures: servers with auth settings, outbox readers, helpers to mint tokens."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Callable

import pytest
from supabase import Client, ClientOptions, create_client

from tests.conftest import ServerHandle, sql


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def py_client(server: ServerHandle, key: str | None = None, flow: str = "implicit") -> Client:
    return create_client(server.url, key or server.anon_key,
                         options=ClientOptions(auto_refresh_token=False, persist_session=False,
                                               flow_type=flow))  # type: ignore[arg-type]


def mails(server: ServerHandle, to: str) -> list[Any]:
    return sql(server, "select * from ownbase.mail_outbox where lower(to_address) = lower($1) order by id",
               to)


def last_mail(server: ServerHandle, to: str, kind: str | None = None, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        rows = [m for m in mails(server, to) if kind is None or m["kind"] == kind]
        if rows:
            return rows[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to}")
        time.sleep(0.1)


def code_of(mail: Any) -> str:
    match = re.search(r"code: (\d{6,10})", mail["text_body"])
    assert match, mail["text_body"]
    return match.group(1)


def link_of(mail: Any) -> str:
    match = re.search(r"(http\S+/auth/v1/verify\?\S+)", mail["text_body"])
    assert match, mail["text_body"]
    return match.group(1)


@pytest.fixture(scope="session")
def auto_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    """A server with autoconfirm and anonymous sign-ins on."""
    return server_factory({"OWNBASE_AUTH_AUTOCONFIRM": "true", "OWNBASE_AUTH_ANONYMOUS_SIGNINS": "true",
                           "OWNBASE_AUTH_REDIRECT_ALLOW_LIST": "http://app.example/**"})
