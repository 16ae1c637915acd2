"""/db/v1 row-level security: owners see their own rows, other users and anon are refused, the
service role sees everything, the policies hold for SQL run as the user, and query strings stay
values."""

from __future__ import annotations

import asyncio
import json

import asyncpg

from ownbase.tables.spec import SCHEMA_PREFIX
from tests.conftest import ServerHandle, sql
from tests.tables.conftest import Api


def test_rls_matrix(server: ServerHandle, shop: tuple[str, Api, str], bob: tuple[str, Api], service: Api,
                    anon: Api) -> None:
    alice_id, alice, db = shop
    bob_id, bob_api = bob
    mine = alice.post(f"/{db}/tables/items/rows", json={"title": "alice's"}).json()[0]
    # The service role may act for any owner, including writing rows owned by someone else.
    gift = service.post(f"/{db}/tables/items/rows", json={"title": "bob's", "owner_id": bob_id})
    assert gift.status_code == 201, gift.text
    gift_id = gift.json()[0]["id"]
    orphan = service.post(f"/{db}/tables/items/rows", json={"title": "service's"}).json()[0]
    assert orphan["owner_id"] is None

    # Alice owns the database, yet RLS shows her only her own rows.
    assert [r["title"] for r in alice.get(f"/{db}/tables/items/rows").json()] == ["alice's"]
    assert alice.get(f"/{db}/tables/items/rows/{gift_id}").status_code == 404
    assert alice.patch(f"/{db}/tables/items/rows/{gift_id}", json={"qty": 99}).status_code == 404
    assert alice.delete(f"/{db}/tables/items/rows/{gift_id}").status_code == 404
    # Bob may not even reach the database; anon is not signed in.
    for resp in (bob_api.get(f"/{db}/tables/items/rows"), bob_api.post(f"/{db}/tables/items/rows", json={"title": "x"}),
                 bob_api.patch(f"/{db}/tables/items/rows/{mine['id']}", json={"qty": 1}),
                 bob_api.delete(f"/{db}/tables/items/rows/{mine['id']}")):
        assert resp.status_code == 403
    for resp in (anon.get(f"/{db}/tables/items/rows"), anon.post(f"/{db}/tables/items/rows", json={"title": "x"})):
        assert resp.status_code == 401
    # The service role sees and changes everything.
    assert sorted(r["title"] for r in service.get(f"/{db}/tables/items/rows").json()) == ["alice's", "bob's", "service's"]
    assert service.patch(f"/{db}/tables/items/rows/{gift_id}", json={"qty": 3}).json()["qty"] == 3
    stored = sql(server, f'select qty, owner_id::text as o from "{SCHEMA_PREFIX}{db}".items where id = $1::uuid', gift_id)
    assert stored[0]["qty"] == 3 and stored[0]["o"] == bob_id
    # The policies themselves (not just the API) keep users apart: run SQL as bob directly.
    assert titles_as(server, db, bob_id) == ["bob's"]
    assert titles_as(server, db, alice_id) == ["alice's"]


def titles_as(server: ServerHandle, db: str, sub: str) -> list[str]:
    async def go() -> list[str]:
        conn = await asyncpg.connect(server.db_url)
        try:
            async with conn.transaction():
                await conn.execute("set local role authenticated")
                await conn.execute("select set_config('request.jwt.claims', $1, true)",
                                   json.dumps({"sub": sub, "role": "authenticated"}))
                return [r["title"] for r in await conn.fetch(f'select title from "{SCHEMA_PREFIX}{db}".items order by title')]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_query_strings_are_values_never_sql(server: ServerHandle, shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    api.post(f"/{db}/tables/items/rows", json={"title": "safe"})
    evil = ["title=eq.x'); drop table ownbase.dynamic_tables; --", "select=title;drop", "order=title;drop",
            "title=eq.%00", "qty=gt.1 or 1=1", "select=*,pg_sleep(1)", "title=in.(a,\"b\"\"c\")"]
    for query in evil:
        r = api.get(f"/{db}/tables/items/rows?{query}")
        assert r.status_code < 500, (query, r.text)
    assert sql(server, "select to_regclass('ownbase.dynamic_tables') is not null as ok")[0]["ok"] is True
    assert [x["title"] for x in api.get(f"/{db}/tables/items/rows").json()] == ["safe"]
