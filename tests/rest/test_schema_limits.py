"""Schema cache reloads (NOTIFY pgrst / NOTIFY ownbase / DDL without NOTIFY), read-replica routing,
limits (max rows, body size, statement timeout) and the OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import create_database, sql
from tests.rest.conftest import FIXTURE, SCHEMA, raw, supa

MIGRATIONS = Path(__file__).parents[2] / "ownbase" / "db" / "migrations"
SCOPED_READ = [MIGRATIONS / "0210_scoped_read.sql", MIGRATIONS / "0211_scoped_read_prepared.sql"]


def _wait_status(handle, path: str, status: int, timeout: float = 10.0) -> float:
    start = time.monotonic()
    with raw(handle, handle.service_key) as h:
        while time.monotonic() - start < timeout:
            if h.get(path).status_code == status:
                return time.monotonic() - start
            time.sleep(0.05)
    raise AssertionError(f"{path} did not answer {status} within {timeout}s")


def test_reload_on_notify_and_on_plain_ddl(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        assert h.get("/fresh_a").status_code == 404
    sql(rest_server, "create table rest_fixture.fresh_a (id int primary key); "
                     "grant all on rest_fixture.fresh_a to anon, authenticated, service_role; "
                     "notify pgrst, 'reload schema'")
    _wait_status(rest_server, "/fresh_a", 200, timeout=5)
    sql(rest_server, "create table rest_fixture.fresh_b (id int primary key); "
                     "grant all on rest_fixture.fresh_b to anon, authenticated, service_role; "
                     "notify ownbase, 'reload schema'")
    _wait_status(rest_server, "/fresh_b", 200, timeout=5)
    # No NOTIFY at all: the catalog fingerprint poll picks it up (issue: within 2 seconds).
    sql(rest_server, "create table rest_fixture.fresh_c (id int primary key, label text); "
                     "grant all on rest_fixture.fresh_c to anon, authenticated, service_role")
    _wait_status(rest_server, "/fresh_c", 200, timeout=5)
    # a new column and a new FK are seen too
    sql(rest_server, "alter table rest_fixture.fresh_c add column a_id int references rest_fixture.fresh_a(id)")
    _wait_status(rest_server, "/fresh_c?select=id,a_id,fresh_a(id)", 200, timeout=5)
    supa(rest_server, rest_server.service_key).table("fresh_a").insert({"id": 1}).execute()
    res = supa(rest_server, rest_server.service_key).table("fresh_c").insert(
        {"id": 1, "label": "x", "a_id": 1}).execute()
    assert res.data == [{"id": 1, "label": "x", "a_id": 1}]
    sql(rest_server, "drop table rest_fixture.fresh_c")
    _wait_status(rest_server, "/fresh_c", 404, timeout=5)


def test_read_replica_routing(server_factory, rest_server, database_url, pg_admin_url) -> None:
    # A second database plays the replica: same schema, different rows, so where a read went shows.
    replica_url = create_database(pg_admin_url, "ownbase_replica")

    async def prepare() -> None:
        conn = await asyncpg.connect(replica_url)
        try:
            for stmt in ("do $$ begin create role anon nologin; exception when duplicate_object then null; end $$",
                         "create schema if not exists auth",
                         ("create or replace function auth.uid() returns uuid language sql stable as "
                          "$f$ select (nullif(current_setting('request.jwt.claims', true), '')::jsonb->>'sub')::uuid $f$")):
                await conn.execute(stmt)
            await conn.execute(FIXTURE.read_text())
            await conn.execute("update rest_fixture.posts set title = 'from replica' where id = 1")
            # a physical replica carries ownbase's own functions too (the one-round-trip read path)
            await conn.execute("create schema if not exists ownbase")
            for migration in SCOPED_READ:
                await conn.execute(migration.read_text())
            await conn.execute("grant usage on schema ownbase to ownbase_authenticator")
            await conn.execute("grant execute on function ownbase.scoped_read_prepared(text[], text, text, text[], "
                               "text) to ownbase_authenticator")
        finally:
            await conn.close()

    asyncio.run(prepare())
    handle = server_factory({"OWNBASE_DB_SCHEMAS": f"{SCHEMA},public", "OWNBASE_DATABASE_READ_URL": replica_url})
    with raw(handle, handle.service_key) as h:
        assert h.get("/posts?id=eq.1&select=title").json() == [{"title": "from replica"}]
        assert h.head("/posts?id=eq.1").status_code == 200
        assert h.get("/rpc/hello?name=x").json() == "hello x"
        # writes go to the primary (and are not visible on the "replica")
        r = h.patch("/posts?id=eq.1", json={"views": 777}, headers={"Prefer": "return=representation"})
        assert r.json()[0]["title"] != "from replica" and r.json()[0]["views"] == 777
        assert h.post("/rpc/add", json={"a": 1}).json() == 11
    assert sql(handle, "select views from rest_fixture.posts where id = 1")[0][0] == 777
    sql(handle, "update rest_fixture.posts set views = 10 where id = 1")


def test_max_rows_body_size_and_timeout(server_factory) -> None:
    handle = server_factory({"OWNBASE_DB_SCHEMAS": f"{SCHEMA},public", "OWNBASE_DB_MAX_ROWS": "2",
                             "OWNBASE_MAX_BODY_BYTES": "2048", "OWNBASE_DB_STATEMENT_TIMEOUT_MS": "300"})
    with raw(handle, handle.service_key) as h:
        r = h.get("/posts?select=id&order=id", headers={"Prefer": "count=exact"})
        assert [x["id"] for x in r.json()] == [1, 2] and r.headers["content-range"] == "0-1/4"
        assert r.status_code == 206
        r = h.get("/posts?select=id&order=id&limit=10&offset=2")
        assert [x["id"] for x in r.json()] == [3, 4]
        r = h.post("/kv", content=b'{"k": "' + b"x" * 4000 + b'"}', headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "PGRST102"
    sql(handle, "create or replace function rest_fixture.slow() returns int language sql as "
                "'select 1 from pg_sleep(2)'; grant execute on function rest_fixture.slow() to service_role; "
                "notify pgrst, 'reload schema'")
    deadline = time.monotonic() + 10
    with raw(handle, handle.service_key) as h:
        while True:
            r = h.post("/rpc/slow", json={})
            if r.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert r.status_code == 500 and r.json()["code"] == "57014"  # canceling statement due to statement timeout
    # reads run as one statement (ownbase.scoped_read): the timeout applies to them as well
    sql(handle, "create or replace view rest_fixture.slow_view as select 1 as x from pg_sleep(2); "
                "grant select on rest_fixture.slow_view to service_role; notify pgrst, 'reload schema'")
    deadline = time.monotonic() + 10
    with raw(handle, handle.service_key) as h:
        while True:
            t0 = time.monotonic()
            r = h.get("/slow_view")
            if r.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 500 and r.json()["code"] == "57014" and time.monotonic() - t0 < 1.5
        assert [x["id"] for x in h.get("/posts?select=id&order=id").json()] == [1, 2]


def test_openapi_document(rest_server) -> None:
    r = httpx.get(f"{rest_server.url}/rest/v1/", headers={"apikey": rest_server.anon_key,
                                                          "Accept-Profile": SCHEMA})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/openapi+json")
    doc = r.json()
    assert doc["swagger"] == "2.0"
    assert {"/", "/posts", "/users", "/published_posts", "/rpc/add", "/rpc/bump"} <= set(doc["paths"])
    assert "get" in doc["paths"]["/rpc/add"] and "get" not in doc["paths"]["/rpc/bump"]
    users = doc["definitions"]["users"]
    assert users["description"] == "People who write posts"
    assert set(users["required"]) >= {"id", "username", "created_at"}
    assert users["properties"]["mood"]["enum"] == ["happy", "sad", "neutral"]
    assert users["properties"]["nicknames"]["type"] == "array"
    assert "This is a Primary Key.<pk/>" in users["properties"]["id"]["description"]
    posts = doc["definitions"]["posts"]["properties"]
    assert "<fk table='users' column='id'/>" in posts["author_id"]["description"]
    assert posts["views"]["type"] == "integer" and posts["published"]["default"] is False
    assert "/staff_only" not in doc["paths"] and "staff_only" not in doc["definitions"]  # not granted to anon
    r = httpx.get(f"{rest_server.url}/rest/v1/", headers={"apikey": rest_server.service_key,
                                                          "Authorization": f"Bearer {rest_server.service_key}",
                                                          "Accept-Profile": SCHEMA})
    assert "/staff_only" in r.json()["paths"]
    r = httpx.get(f"{rest_server.url}/rest/v1/", headers={"apikey": rest_server.anon_key, "Accept": "text/csv"})
    assert r.status_code == 406


def test_role_statement_timeout(rest_server) -> None:
    """`alter role anon set statement_timeout` (how Supabase limits roles) applies to /rest/v1."""
    sql(rest_server, "create or replace function rest_fixture.nap() returns int language sql as "
                     "'select 1 from pg_sleep(1)'; grant execute on function rest_fixture.nap() to anon")
    sql(rest_server, "do $$ begin execute format('alter role anon in database %I set statement_timeout = %L', "
                     "current_database(), '200ms'); end $$")
    try:
        deadline = time.monotonic() + 10
        with raw(rest_server) as h:
            while True:
                r = h.post("/rpc/nap", json={})
                if r.status_code == 500 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        assert r.status_code == 500 and r.json()["code"] == "57014"
        with raw(rest_server, rest_server.service_key) as h:  # other roles keep the global limit
            assert h.post("/rpc/nap", json={}).json() == 1
    finally:
        sql(rest_server, "do $$ begin execute format('alter role anon in database %I reset statement_timeout', "
                         "current_database()); end $$")
        sql(rest_server, "drop function rest_fixture.nap()")
