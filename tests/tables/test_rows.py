"""/db/v1 rows through the official Python client (postgrest, pointed at a table's /rows endpoint)
and raw HTTP for the wire details, on a real server: filters, embedding, row endpoints, ranges,
upserts, and a second process. RLS is in test_rows_rls.py, error answers in test_errors.py."""

from __future__ import annotations

import time
import uuid
from typing import Callable

import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

from tests.conftest import ServerHandle
from tests.tables.conftest import Api


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


def test_python_client_errors_carry_postgrest_fields(server: ServerHandle, shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    with pytest.raises(APIError) as info:
        pg(server, api.token, db, "items").from_("rows").insert({"title": "x", "qty": "lots"}).execute()
    assert info.value.code == "22P02" and "'qty'" in (info.value.message or "")


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
