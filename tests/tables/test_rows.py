"""/db/v1 rows through the official Python client (postgrest, pointed at a table's /rows endpoint)
and raw HTTP for the wire details, on a real server: filters, row endpoints, validation, RLS."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Callable

import asyncpg
import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

from ownbase.tables.spec import SCHEMA_PREFIX
from tests.conftest import ServerHandle, sql
from tests.tables.conftest import Api

SPEC = {
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


@pytest.fixture()
def shop(alice: tuple[str, Api], dbname: str) -> tuple[str, Api, str]:
    sub, api = alice
    r = api.post(f"/{dbname}/tables", json={"name": "categories", "columns": [{"name": "label", "type": "text"}]})
    assert r.status_code == 201, r.text
    r = api.post(f"/{dbname}/tables", json=SPEC)
    assert r.status_code == 201, r.text
    return sub, api, dbname


def pg(server: ServerHandle, token: str, db: str, table: str) -> SyncPostgrestClient:
    """The official client with `.from_("rows")` → /db/v1/<db>/tables/<table>/rows."""
    return SyncPostgrestClient(f"{server.url}/db/v1/{db}/tables/{table}",
                               headers={"apikey": server.anon_key, "Authorization": f"Bearer {token}"})


def test_insert_and_query_with_the_postgrest_client(server: ServerHandle, shop: tuple[str, Api, str]) -> None:
    sub, api, db = shop
    cats = pg(server, api.token, db, "categories").from_("rows").insert(
        [{"label": "tools"}, {"label": "food"}]).execute()
    tools = next(c["id"] for c in cats.data if c["label"] == "tools")
    items = pg(server, api.token, db, "items")
    res = items.from_("rows").insert([
        {"title": "hammer", "qty": 2, "price": "12.50", "tags": ["metal", "heavy"], "category": tools,
         "meta": {"color": "red"}, "at": "2024-05-01T10:00:00Z"},
        {"title": "saw", "qty": 5, "category": tools, "sku": "S-1"},
        {"title": "bread", "active": False, "day": "2024-05-02"},
    ]).execute()
    assert len(res.data) == 3
    assert {r["owner_id"] for r in res.data} == {sub}
    bread = next(r for r in res.data if r["title"] == "bread")
    assert bread["qty"] == 1  # declared default for a key the row left out

    q = items.from_("rows").select("title, qty").gte("qty", 2).order("qty", desc=True).execute()
    assert q.data == [{"title": "saw", "qty": 5}, {"title": "hammer", "qty": 2}]
    q = items.from_("rows").select("title").in_("title", ["saw", "bread"]).order("title").execute()
    assert [r["title"] for r in q.data] == ["bread", "saw"]
    q = items.from_("rows").select("title").contains("tags", ["metal"]).execute()
    assert q.data == [{"title": "hammer"}]
    q = items.from_("rows").select("title").eq("meta->>color", "red").execute()
    assert q.data == [{"title": "hammer"}]
    q = items.from_("rows").select("title").is_("day", "null").or_("qty.eq.5,title.eq.hammer").order("title").execute()
    assert [r["title"] for r in q.data] == ["hammer", "saw"]
    q = items.from_("rows").select("title", count="exact").order("title").limit(1).offset(1).execute()
    assert q.data == [{"title": "hammer"}] and q.count == 3
    # Embedding follows the `references` foreign key, both ways.
    q = items.from_("rows").select("title, categories(label)").eq("title", "saw").execute()
    assert q.data == [{"title": "saw", "categories": {"label": "tools"}}]
    q = pg(server, api.token, db, "categories").from_("rows").select("label, items(title)").eq("label", "tools").execute()
    assert sorted(i["title"] for i in q.data[0]["items"]) == ["hammer", "saw"]
    one = items.from_("rows").select("title").eq("sku", "S-1").single().execute()
    assert one.data == {"title": "saw"}


def test_row_endpoints_get_patch_delete(server: ServerHandle, shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    r = api.post(f"/{db}/tables/items/rows", json={"title": "lamp"})
    assert r.status_code == 201
    row = r.json()[0]  # representation by default
    rid = row["id"]
    got = api.get(f"/{db}/tables/items/rows/{rid}")
    assert got.status_code == 200 and got.json()["title"] == "lamp"  # one object, not an array
    time.sleep(0.01)
    patched = api.patch(f"/{db}/tables/items/rows/{rid}", json={"qty": 7, "tags": ["a"]})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["qty"] == 7 and body["tags"] == ["a"]
    assert body["updated_at"] > body["created_at"]  # the trigger keeps updated_at current
    selected = api.patch(f"/{db}/tables/items/rows/{rid}?select=qty", json={"qty": 8})
    assert selected.json() == {"qty": 8}
    minimal = api.patch(f"/{db}/tables/items/rows/{rid}", json={"qty": 9}, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 204 and minimal.content == b""
    missing = str(uuid.uuid4())
    for resp in (api.get(f"/{db}/tables/items/rows/{missing}"),
                 api.patch(f"/{db}/tables/items/rows/{missing}", json={"qty": 1}),
                 api.patch(f"/{db}/tables/items/rows/{missing}", json={"qty": 1}, headers={"Prefer": "return=minimal"}),
                 api.delete(f"/{db}/tables/items/rows/{missing}"),
                 api.delete(f"/{db}/tables/items/rows/{missing}", headers={"Prefer": "return=minimal"})):
        assert resp.status_code == 404, resp.text
        assert resp.json()["code"] == "PGRST116"
    bad = api.get(f"/{db}/tables/items/rows/not-a-uuid")
    assert bad.status_code == 400 and bad.json()["code"] == "22P02"
    deleted = api.delete(f"/{db}/tables/items/rows/{rid}")
    assert deleted.status_code == 200 and deleted.json()["id"] == rid
    assert api.get(f"/{db}/tables/items/rows/{rid}").status_code == 404
    r = api.post(f"/{db}/tables/items/rows", json={"title": "x"}, headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b""
    other = api.get(f"/{db}/tables/items/rows?title=eq.x").json()[0]["id"]
    gone = api.delete(f"/{db}/tables/items/rows/{other}", headers={"Prefer": "return=minimal"})
    assert gone.status_code == 204 and gone.content == b""
    assert api.get(f"/{db}/tables/items/rows/{other}").status_code == 404


def test_ranges_counts_and_csv(shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    r = api.post(f"/{db}/tables/items/rows", json=[{"title": f"t{i:02d}", "qty": i} for i in range(12)])
    assert r.status_code == 201 and len(r.json()) == 12
    page = api.get(f"/{db}/tables/items/rows?select=title&order=qty",
                   headers={"Range": "2-4", "Prefer": "count=exact"})
    assert page.status_code == 206
    assert page.headers["content-range"] == "2-4/12"
    assert [x["title"] for x in page.json()] == ["t02", "t03", "t04"]
    csv = api.get(f"/{db}/tables/items/rows?select=title,qty&order=qty&limit=2", headers={"Accept": "text/csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0] == "title,qty"
    head = api.head(f"/{db}/tables/items/rows", headers={"Prefer": "count=exact"})
    assert head.status_code == 200 and head.headers["content-range"].endswith("/12")


@pytest.mark.parametrize("row,field,needle", [
    ({"title": 5}, "title", "expected a string"),
    ({"title": "x", "qty": "many"}, "qty", "expected an integer"),
    ({"title": "x", "qty": 1.5}, "qty", "expected an integer"),
    ({"title": "x", "qty": True}, "qty", "got a boolean"),
    ({"title": "x", "small": 40000}, "small", "out of range"),
    ({"title": "x", "price": "12,50"}, "price", "expected a number"),
    ({"title": "x", "ratio": [1]}, "ratio", "expected a number"),
    ({"title": "x", "active": "yes"}, "active", "true or false"),
    ({"title": "x", "ref": "123"}, "ref", "expected a uuid"),
    ({"title": "x", "day": "01/02/2024"}, "day", "ISO date"),
    ({"title": "x", "at": "yesterday"}, "at", "ISO timestamp"),
    ({"title": "x", "tags": "a,b"}, "tags", "expected an array"),
    ({"title": "x", "nums": [1, "two"]}, "nums", "element 1"),
    ({"title": None}, "title", "null is not allowed"),
    ({"qty": 3}, "title", "required"),
    ({"title": "x", "nope": 1}, "nope", "Could not find the 'nope' column"),
    ({"title": "x", "created_at": "2024-01-01T00:00:00Z"}, "created_at", "set by the server"),
    ({"title": "x", "owner_id": str(uuid.uuid4())}, "owner_id", "set by the server"),
    ({"title": "x", "id": "nope"}, "id", "expected a uuid"),
])
def test_invalid_values_are_400_naming_the_field(shop: tuple[str, Api, str], row: dict[str, Any], field: str,
                                                 needle: str) -> None:
    _, api, db = shop
    r = api.post(f"/{db}/tables/items/rows", json=row)
    assert r.status_code == 400, r.text
    body = r.json()
    assert needle in body["message"] and f"'{field}'" in body["message"], body
    assert body["details"] == f"field: {field}"
    assert set(body) == {"code", "message", "details", "hint"}


def test_invalid_bodies_and_updates(shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    rid = api.post(f"/{db}/tables/items/rows", json={"title": "x"}).json()[0]["id"]
    cases = [
        api.post(f"/{db}/tables/items/rows", content=b"{oops", headers={"content-type": "application/json"}),
        api.post(f"/{db}/tables/items/rows", content=b"title=x", headers={"content-type": "application/x-www-form-urlencoded"}),
        api.post(f"/{db}/tables/items/rows", json=[{"title": "ok"}, "not an object"]),
        api.patch(f"/{db}/tables/items/rows/{rid}", json={}),
        api.patch(f"/{db}/tables/items/rows/{rid}", json=[{"qty": 1}]),
        api.patch(f"/{db}/tables/items/rows/{rid}", json={"id": str(uuid.uuid4())}),
        api.patch(f"/{db}/tables/items/rows/{rid}", json={"qty": "x"}),
    ]
    for resp in cases:
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] in ("PGRST102", "PGRST204", "22P02"), resp.text
    # Bulk rows are checked one by one, and the message says which field.
    r = api.post(f"/{db}/tables/items/rows", json=[{"title": "ok"}, {"title": "ok2", "qty": "x"}])
    assert r.status_code == 400 and "'qty'" in r.json()["message"]
    assert api.get(f"/{db}/tables/items/rows?title=eq.ok").json() == []  # nothing of it was inserted
    # PostgreSQL still has the last word (unique constraint → 409 as PostgREST maps 23505).
    assert api.post(f"/{db}/tables/items/rows", json={"title": "a", "sku": "dup"}).status_code == 201
    r = api.post(f"/{db}/tables/items/rows", json={"title": "b", "sku": "dup"})
    assert r.status_code == 409 and r.json()["code"] == "23505"


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


def test_unknown_table_or_database(shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    r = api.get(f"/{db}/tables/nope/rows")
    assert r.status_code == 404 and r.json()["code"] == "PGRST205"
    r = api.get(f"/db_{uuid.uuid4().hex[:8]}/tables/items/rows")
    assert r.status_code == 404
    r = api.get(f"/{db}/tables/Bad-Name/rows")
    assert r.status_code == 400


def test_a_second_process_serves_a_table_created_by_the_first(server_factory: Callable[..., ServerHandle],
                                                              server: ServerHandle, mint: Callable[..., str]) -> None:
    other = server_factory()
    sub = str(uuid.uuid4())
    token = mint(sub)
    first, second = Api(server, token), Api(other, token)
    db = "db_" + uuid.uuid4().hex[:12]
    assert first.post(f"/{db}/tables", json={"name": "a", "columns": []}).status_code == 201
    assert second.get(f"/{db}/tables/a/rows").json() == []  # the second process caches the schema now
    r = first.post(f"/{db}/tables", json={"name": "b", "columns": [{"name": "v", "type": "int"}]})
    assert r.status_code == 201
    # No sleep: the second process may not have processed the NOTIFY yet; it must still answer.
    r = second.post(f"/{db}/tables/b/rows", json={"v": 1})
    assert r.status_code == 201, r.text
    assert second.get(f"/{db}/tables/b/rows?select=v").json() == [{"v": 1}]
    # Dropped and created again with other columns by the first process: the second one follows.
    assert first.delete(f"/{db}/tables/b").status_code == 204
    assert second.get(f"/{db}/tables/b/rows").status_code == 404
    r = first.post(f"/{db}/tables", json={"name": "b", "columns": [{"name": "w", "type": "text", "nullable": False}]})
    assert r.status_code == 201
    r = second.post(f"/{db}/tables/b/rows", json={"w": "new"})
    assert r.status_code == 201, r.text
    r = second.post(f"/{db}/tables/b/rows", json={"v": 2})
    assert r.status_code == 400 and "'v'" in r.json()["message"]


def test_python_client_errors_carry_postgrest_fields(server: ServerHandle, shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    with pytest.raises(APIError) as info:
        pg(server, api.token, db, "items").from_("rows").insert({"title": "x", "qty": "lots"}).execute()
    assert info.value.code == "22P02" and "'qty'" in (info.value.message or "")


def test_upsert_by_id_and_by_unique_column(shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    rid = str(uuid.uuid4())
    r = api.post(f"/{db}/tables/items/rows", json={"id": rid, "title": "v1", "sku": "K"})
    assert r.status_code == 201 and r.json()[0]["id"] == rid
    merge = {"Prefer": "resolution=merge-duplicates"}
    r = api.post(f"/{db}/tables/items/rows", json={"id": rid, "title": "v2"}, headers=merge)
    assert r.status_code == 200 and r.json()[0]["title"] == "v2"
    r = api.post(f"/{db}/tables/items/rows?on_conflict=sku", json={"title": "v3", "sku": "K"}, headers=merge)
    assert r.status_code == 200 and r.json()[0]["id"] == rid and r.json()[0]["title"] == "v3"
    r = api.post(f"/{db}/tables/items/rows?on_conflict=sku", json={"title": "ignored", "sku": "K"},
                 headers={"Prefer": "resolution=ignore-duplicates"})
    assert r.status_code in (200, 201) and r.json() == []
    assert [x["title"] for x in api.get(f"/{db}/tables/items/rows?select=title").json()] == ["v3"]
