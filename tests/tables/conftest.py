"""Fixtures of the dynamic-table, `db migrate` and `gen types` tests."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.conftest import ServerHandle, keyring_for


@pytest.fixture(scope="session")
def mint(jwt_private_key: str) -> Callable[..., str]:
    """Sign a user access token as the auth service would (same key as every test server)."""
    keys = keyring_for(jwt_private_key)

    def make(sub: str | None = None, role: str = "authenticated", **extra: Any) -> str:
        claims: dict[str, Any] = {"role": role, "aud": "authenticated", "exp": int(time.time()) + 3600,
                                  "iat": int(time.time()), **extra}
        if sub is not None:
            claims["sub"] = sub
        return keys.sign(claims)

    return make


class Api:
    """Raw HTTP against /db/v1 as one caller."""

    def __init__(self, server: ServerHandle, token: str) -> None:
        self.server = server
        self.token = token
        self.http = httpx.Client(base_url=server.url + "/db/v1",
                                 headers={"apikey": server.anon_key, "Authorization": f"Bearer {token}"},
                                 timeout=30)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)


@pytest.fixture(scope="session")
def user_factory(server: ServerHandle, mint: Callable[..., str]) -> Callable[[], tuple[str, Api]]:
    def make() -> tuple[str, Api]:
        sub = str(uuid.uuid4())
        return sub, Api(server, mint(sub))

    return make


@pytest.fixture()
def alice(user_factory: Callable[[], tuple[str, Api]]) -> tuple[str, Api]:
    return user_factory()


@pytest.fixture()
def bob(user_factory: Callable[[], tuple[str, Api]]) -> tuple[str, Api]:
    return user_factory()


@pytest.fixture(scope="session")
def service(server: ServerHandle) -> Api:
    return Api(server, server.service_key)


@pytest.fixture(scope="session")
def anon(server: ServerHandle) -> Api:
    return Api(server, server.anon_key)


@pytest.fixture()
def dbname() -> Iterator[str]:
    yield "db_" + uuid.uuid4().hex[:12]


# --- tables and rows the tests share ---------------------------------------------------------

ITEMS_SPEC: dict[str, Any] = {
    "name": "items",
    "columns": [
        {"name": "title", "type": "text", "nullable": False},
        {"name": "qty", "type": "int", "default": 3},
        {"name": "price", "type": "numeric", "default": "9.50"},
        {"name": "done", "type": "boolean", "default": False},
        {"name": "tags", "type": "text[]", "default": ["a", "it's"]},
        {"name": "meta", "type": "jsonb", "default": {"x": [1, 2]}},
        {"name": "due", "type": "date", "default": "current_date"},
        {"name": "code", "type": "text", "unique": True},
        {"name": "category", "references": "categories"},
    ],
}

# The table the row tests fill: one column of every type the API offers.
SHOP_SPEC: dict[str, Any] = {
    "name": "items",
    "columns": [
        {"name": "title", "type": "text", "nullable": False},
        {"name": "qty", "type": "integer", "default": 1},
        {"name": "small", "type": "smallint"},
        {"name": "price", "type": "numeric"},
        {"name": "ratio", "type": "double precision"},
        {"name": "active", "type": "boolean", "default": True},
        {"name": "ref", "type": "uuid"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "timestamptz"},
        {"name": "tags", "type": "text[]"},
        {"name": "nums", "type": "integer[]"},
        {"name": "meta", "type": "jsonb"},
        {"name": "category", "references": "categories"},
        {"name": "sku", "type": "text", "unique": True},
    ],
}


def create(api: Api, db: str, spec: dict[str, Any]) -> Any:
    return api.post(f"/{db}/tables", json=spec)


def make_items(api: Api, db: str) -> None:
    r = create(api, db, {"name": "categories", "columns": [{"name": "label", "type": "text", "nullable": False}]})
    assert r.status_code == 201, r.text
    r = create(api, db, ITEMS_SPEC)
    assert r.status_code == 201, r.text


@pytest.fixture()
def shop(alice: tuple[str, Api], dbname: str) -> tuple[str, Api, str]:
    """Alice's database with `categories` and the every-type `items` table."""
    sub, api = alice
    r = api.post(f"/{dbname}/tables", json={"name": "categories", "columns": [{"name": "label", "type": "text"}]})
    assert r.status_code == 201, r.text
    r = api.post(f"/{dbname}/tables", json=SHOP_SPEC)
    assert r.status_code == 201, r.text
    return sub, api, dbname
