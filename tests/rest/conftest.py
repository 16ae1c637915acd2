"""Fixtures for the /rest/v1 tests: a server exposing the `rest_fixture` schema (first, so it is the
default profile) and `public`, user JWTs minted with the shared signing key, client helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from supabase import Client, ClientOptions, create_client

from tests.conftest import ServerHandle, keyring_for, sql

FIXTURE = Path(__file__).with_name("fixture.sql")
ALICE = "00000000-0000-0000-0000-00000000000a"
BOB = "00000000-0000-0000-0000-00000000000b"
CAROL = "00000000-0000-0000-0000-00000000000c"
SCHEMA = "rest_fixture"


def wait_for_table(handle: ServerHandle, table: str, schema: str = SCHEMA, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    headers = {"apikey": handle.service_key, "Authorization": f"Bearer {handle.service_key}",
               "Accept-Profile": schema}
    while time.monotonic() < deadline:
        r = httpx.get(f"{handle.url}/rest/v1/{table}?limit=1", headers=headers, timeout=5)
        if r.status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{schema}.{table} never appeared in the schema cache: {r.status_code} {r.text}")


@pytest.fixture(scope="session")
def rest_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    handle = server_factory({"OWNBASE_DB_SCHEMAS": f"{SCHEMA},public"})
    sql(handle, FIXTURE.read_text())
    wait_for_table(handle, "post_tags")
    return handle


@pytest.fixture()
def reset(rest_server: ServerHandle) -> Iterator[ServerHandle]:
    """Re-seed the fixture schema before and after a test that writes, so reads see the seed."""
    sql(rest_server, FIXTURE.read_text())
    wait_for_table(rest_server, "post_tags")
    yield rest_server
    sql(rest_server, FIXTURE.read_text())
    wait_for_table(rest_server, "post_tags")


@pytest.fixture(scope="session")
def mint(jwt_private_key: str) -> Callable[..., str]:
    keys = keyring_for(jwt_private_key)

    def make(sub: str | None = None, role: str = "authenticated", ttl: int = 3600, **extra: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"role": role, "iat": now, "exp": now + ttl, "aud": "authenticated", **extra}
        if sub:
            claims["sub"] = sub
        return keys.sign(claims)

    return make


def supa(handle: ServerHandle, key: str | None = None, token: str | None = None,
         schema: str = SCHEMA) -> Client:
    client = create_client(handle.url, key or handle.anon_key, options=ClientOptions(schema=schema))
    if token:
        client.postgrest.auth(token)
    return client


def raw(handle: ServerHandle, token: str | None = None, schema: str = SCHEMA, **headers: str) -> httpx.Client:
    key = handle.anon_key
    base = {"apikey": key, "Authorization": f"Bearer {token or key}", "Accept-Profile": schema,
            "Content-Profile": schema}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx.Client(base_url=handle.url + "/rest/v1", headers=base, timeout=30)
