"""/db/v1 table management against a real server and database: create, list, drop, ownership,
invalid specs, and that no request text ever becomes SQL."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest

from ownbase.tables.spec import SCHEMA_PREFIX
from tests.conftest import ServerHandle, sql
from tests.tables.conftest import Api

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


def create(api: Api, db: str, spec: dict[str, Any]) -> Any:
    return api.post(f"/{db}/tables", json=spec)


def make_items(api: Api, db: str) -> None:
    r = create(api, db, {"name": "categories", "columns": [{"name": "label", "type": "text", "nullable": False}]})
    assert r.status_code == 201, r.text
    r = create(api, db, ITEMS_SPEC)
    assert r.status_code == 201, r.text


def test_create_table_builds_columns_keys_defaults_and_rls(server: ServerHandle, alice: tuple[str, Api], dbname: str) -> None:
    sub, api = alice
    make_items(api, dbname)
    body = api.get(f"/{dbname}/tables/items").json()
    assert body["name"] == "items" and body["database_id"] == dbname
    names = [c["name"] for c in body["columns"]]
    assert names[:4] == ["id", "owner_id", "created_at", "updated_at"]
    assert names[4:] == [c["name"] for c in ITEMS_SPEC["columns"]]
    by_name = {c["name"]: c for c in body["columns"]}
    assert by_name["qty"]["type"] == "integer" and by_name["qty"]["default"] == 3
    assert by_name["category"] == {"name": "category", "type": "uuid", "nullable": True, "default": None,
                                   "unique": False, "references": "categories", "primary_key": False,
                                   "system": False}
    assert by_name["id"]["primary_key"] is True

    cols = {r["column_name"]: r for r in sql(server, """
        select column_name, data_type, is_nullable, column_default from information_schema.columns
         where table_schema = $1 and table_name = 'items'""", SCHEMA_PREFIX + dbname)}
    assert cols["id"]["data_type"] == "uuid" and cols["id"]["is_nullable"] == "NO"
    assert cols["owner_id"]["column_default"] == "auth.uid()"
    assert cols["title"]["is_nullable"] == "NO"
    assert cols["tags"]["data_type"] == "ARRAY"
    # Defaults are values of the column type: evaluate them in PostgreSQL.
    row = sql(server, f'insert into "{SCHEMA_PREFIX}{dbname}".items(title) values ($1) returning *', "t")[0]
    assert row["qty"] == 3 and str(row["price"]) == "9.50" and row["done"] is False
    assert row["tags"] == ["a", "it's"] and json.loads(row["meta"]) == {"x": [1, 2]}
    assert row["due"] is not None and row["id"] is not None and row["owner_id"] is None

    rls = sql(server, "select relrowsecurity from pg_class where oid = $1::regclass", f'"{SCHEMA_PREFIX}{dbname}".items')
    assert rls[0]["relrowsecurity"] is True
    policies = {r["policyname"]: r for r in sql(server, "select * from pg_policies where schemaname = $1 and tablename = 'items'", SCHEMA_PREFIX + dbname)}
    assert set(policies) == {"owner_all", "service_role_all"}
    assert "auth.uid()" in policies["owner_all"]["qual"] and policies["owner_all"]["roles"] == ["authenticated"]
    fks = sql(server, """select confrelid::regclass::text as target from pg_constraint
                          where conrelid = $1::regclass and contype = 'f'""", f'"{SCHEMA_PREFIX}{dbname}".items')
    assert fks[0]["target"] == f"{SCHEMA_PREFIX}{dbname}.categories"
    uniques = sql(server, "select count(*) as n from pg_constraint where conrelid = $1::regclass and contype = 'u'",
                  f'"{SCHEMA_PREFIX}{dbname}".items')
    assert uniques[0]["n"] == 1
    owner = sql(server, "select owner_id::text as o from ownbase.dynamic_databases where id = $1", dbname)
    assert owner[0]["o"] == sub


def test_list_tables_and_databases(alice: tuple[str, Api], service: Api, dbname: str) -> None:
    _, api = alice
    make_items(api, dbname)
    listed = api.get(f"/{dbname}/tables")
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()] == ["categories", "items"]
    assert dbname in [d["id"] for d in api.get("/").json()]
    assert dbname in [d["id"] for d in service.get("/").json()]
    assert service.get(f"/{dbname}/tables").status_code == 200


def test_ownership_first_creator_owns_others_forbidden(alice: tuple[str, Api], bob: tuple[str, Api],
                                                       service: Api, anon: Api, dbname: str) -> None:
    _, a = alice
    _, b = bob
    make_items(a, dbname)
    for resp in (b.get(f"/{dbname}/tables"), b.get(f"/{dbname}/tables/items"),
                 create(b, dbname, {"name": "mine", "columns": []}), b.delete(f"/{dbname}/tables/items")):
        assert resp.status_code == 403, resp.text
        assert resp.json()["code"] == "42501" and set(resp.json()) == {"code", "message", "details", "hint"}
    assert dbname not in [d["id"] for d in b.get("/").json()]
    r = anon.get(f"/{dbname}/tables")
    assert r.status_code == 401 and r.json()["code"] == "42501"
    # The service role may act for any owner.
    assert create(service, dbname, {"name": "by_service", "columns": []}).status_code == 201
    assert "by_service" in [t["name"] for t in a.get(f"/{dbname}/tables").json()]


def test_first_creator_wins_a_race(user_factory: Any, dbname: str) -> None:
    users = [user_factory() for _ in range(4)]
    results: list[int] = []

    def go(api: Api, i: int) -> None:
        results.append(create(api, dbname, {"name": f"t{i}", "columns": []}).status_code)

    threads = [threading.Thread(target=go, args=(api, i)) for i, (_, api) in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201, 403, 403, 403]


def test_bad_credentials_are_rejected(server: ServerHandle, mint: Any, dbname: str) -> None:
    bad = Api(server, "not-a-jwt")
    r = bad.get(f"/{dbname}/tables")
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"
    no_sub = Api(server, mint(None))
    r = no_sub.post(f"/{dbname}/tables", json={"name": "x", "columns": []})
    assert r.status_code == 403 and "sub" in r.json()["message"]


def test_existing_schema_not_created_by_the_api_is_forbidden(server: ServerHandle, alice: tuple[str, Api], dbname: str) -> None:
    # Only a schema someone made by hand inside the API's own namespace can block a database id.
    sql(server, f'create schema "{SCHEMA_PREFIX}{dbname}"; create table "{SCHEMA_PREFIX}{dbname}".secrets(x int);')
    r = create(alice[1], dbname, {"name": "x", "columns": []})
    assert r.status_code == 403 and "does not manage" in r.json()["details"]
    assert alice[1].get(f"/{dbname}/tables").status_code == 404


@pytest.mark.parametrize("name", ["billing", "pgsodium", "app_schema"])
def test_database_ids_never_create_or_touch_app_schemas(server: ServerHandle, alice: tuple[str, Api],
                                                        service: Api, name: str) -> None:
    existed = sql(server, "select count(*) as n from pg_namespace where nspname = $1", name)[0]["n"]
    if name == "app_schema" and not existed:  # an app schema that already exists stays the app's
        sql(server, "create schema app_schema; create table app_schema.orders(x int);")
    for api in (alice[1], service):
        r = create(api, name, {"name": f"t_{uuid.uuid4().hex[:6]}", "columns": []})
        assert r.status_code in (201, 403), r.text  # the second caller is not the owner (or is service)
    if name != "app_schema":
        # The name stays free for a later migration of the app (or `create extension pgsodium`).
        assert sql(server, "select count(*) as n from pg_namespace where nspname = $1", name)[0]["n"] == 0
    else:
        tables = {r["t"] for r in sql(server, "select tablename as t from pg_tables where schemaname = 'app_schema'")}
        assert tables == {"orders"}
    assert sql(server, "select count(*) as n from pg_namespace where nspname = $1", SCHEMA_PREFIX + name)[0]["n"] == 1
    listed = {d["id"]: d["schema"] for d in service.get("/").json()}
    assert listed[name] == SCHEMA_PREFIX + name
    # Rows work through the namespaced schema.
    table = [t["name"] for t in service.get(f"/{name}/tables").json()][0]
    assert service.post(f"/{name}/tables/{table}/rows", json={}).status_code == 201
    assert len(service.get(f"/{name}/tables/{table}/rows").json()) == 1


def test_database_id_length_leaves_room_for_the_prefix(alice: tuple[str, Api]) -> None:
    r = create(alice[1], "d" * (64 - len(SCHEMA_PREFIX)), {"name": "t", "columns": []})
    assert r.status_code == 400 and "at most" in r.json()["message"]
    longest = "d" + uuid.uuid4().hex + "d" * (62 - len(SCHEMA_PREFIX) - 32)
    assert create(alice[1], longest, {"name": "t", "columns": []}).status_code == 201


@pytest.mark.parametrize("spec,field,needle", [
    ({"name": "t", "columns": [{"name": "c", "type": "money"}]}, "columns.c.type", "not allowed"),
    ({"name": "t", "columns": [{"name": "c", "type": "jsonb[]"}]}, "columns.c.type", "not allowed"),
    ({"name": "t", "columns": [{"name": "c"}]}, "columns.c.type", "'type' must be one of"),
    ({"name": "t", "columns": [{"name": "c", "type": "int", "default": "abc"}]}, "columns.c.default", "expected an integer"),
    ({"name": "t", "columns": [{"name": "c", "type": "smallint", "default": 70000}]}, "columns.c.default", "out of range"),
    ({"name": "t", "columns": [{"name": "c", "type": "date", "default": "2024-02-30"}]}, "columns.c.default", "ISO date"),
    ({"name": "t", "columns": [{"name": "c", "type": "uuid", "default": "now()"}]}, "columns.c.default", "expected a uuid"),
    ({"name": "t", "columns": [{"name": "c", "type": "text", "nullable": "no"}]}, "columns.c.nullable", "true or false"),
    ({"name": "t", "columns": [{"name": "c", "type": "text", "check": "1=1"}]}, "columns[0]", "unknown key"),
    ({"name": "t", "columns": [{"name": "id", "type": "text"}]}, "columns.id.name", "created automatically"),
    ({"name": "t", "columns": [{"name": "Bad Name", "type": "text"}]}, "columns[0].name", "invalid column name"),
    ({"name": "t", "columns": [{"name": "a", "type": "text"}, {"name": "a", "type": "int"}]}, "columns.a.name", "declared twice"),
    ({"name": "t", "columns": [{"name": "r", "type": "int", "references": "t"}]}, "columns.r.type", "must be uuid"),
    ({"name": "t", "columns": [{"name": "r", "references": "nowhere"}]}, "columns.r.references", "not a table"),
    ({"name": "t; drop table x", "columns": []}, "name", "invalid table name"),
    ({"name": "t", "columns": "title text"}, "columns", "must be an array"),
    ({"name": "t", "columns": [], "owner": "x"}, "owner", "unknown key"),
])
def test_invalid_specs_are_400_naming_the_field(alice: tuple[str, Api], dbname: str, spec: dict[str, Any],
                                                field: str, needle: str) -> None:
    r = create(alice[1], dbname, spec)
    assert r.status_code == 400, r.text
    body = r.json()
    assert needle in body["message"], body
    if body["details"] is not None:
        assert body["details"] == f"field: {field}"
    else:
        assert field in body["message"]


def test_invalid_json_body_and_reserved_database(alice: tuple[str, Api], dbname: str) -> None:
    r = alice[1].post(f"/{dbname}/tables", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST102"
    for reserved in ("public", "auth", "pg_catalog", "ownbase", "Bad-Name"):
        r = create(alice[1], reserved, {"name": "t", "columns": []})
        assert r.status_code == 400 and "database_id" in r.json()["message"], (reserved, r.text)


def test_user_text_never_becomes_sql(server: ServerHandle, alice: tuple[str, Api], dbname: str) -> None:
    evil = "x'); drop table ownbase.dynamic_tables; --"
    r = create(alice[1], dbname, {"name": "notes", "columns": [
        {"name": "body", "type": "text", "default": evil},
        {"name": "tags", "type": "text[]", "default": [evil, "$$", "\\"]},
        {"name": "meta", "type": "jsonb", "default": {"k": evil}},
    ]})
    assert r.status_code == 201, r.text
    row = sql(server, f'insert into "{SCHEMA_PREFIX}{dbname}".notes default values returning body, tags, meta')[0]
    assert row["body"] == evil and row["tags"] == [evil, "$$", "\\"] and json.loads(row["meta"]) == {"k": evil}
    assert sql(server, "select count(*) as n from ownbase.dynamic_tables")[0]["n"] >= 1


def test_duplicate_and_drop(server: ServerHandle, alice: tuple[str, Api], dbname: str) -> None:
    _, api = alice
    make_items(api, dbname)
    r = create(api, dbname, {"name": "items", "columns": []})
    assert r.status_code == 409 and r.json()["code"] == "42P07"
    r = api.delete(f"/{dbname}/tables/categories")
    assert r.status_code == 409 and r.json()["code"] == "2BP01"
    assert api.delete(f"/{dbname}/tables/items").status_code == 204
    assert api.get(f"/{dbname}/tables/items").status_code == 404
    assert api.delete(f"/{dbname}/tables/items").status_code == 404
    assert sql(server, "select to_regclass($1) as r", f'"{SCHEMA_PREFIX}{dbname}".items')[0]["r"] is None
    assert api.delete(f"/{dbname}/tables/categories").status_code == 204
    assert api.get(f"/{dbname}/tables").json() == []


def test_unknown_paths_and_methods_answer_in_postgrest_shape(alice: tuple[str, Api], dbname: str) -> None:
    _, api = alice
    r = api.get(f"/{dbname}/nothing/here")
    assert r.status_code == 404 and r.json()["code"] == "PGRST125"
    r = api.put(f"/{dbname}/tables", json={})
    assert r.status_code == 405 and r.json()["code"] == "PGRST117"
    assert r.headers["allow"] == "GET, POST"
    r = api.patch(f"/{dbname}/tables/items/rows", json={"a": 1})  # no mass updates: address a row
    assert r.status_code == 405 and "PATCH" in r.json()["message"]
    assert api.get("").status_code == 200  # /db/v1 itself lists your databases


def test_quotas_per_user_and_database(server_factory: Any, mint: Any) -> None:
    limited = server_factory({"OWNBASE_TABLES_MAX_DATABASES_PER_USER": "2",
                              "OWNBASE_TABLES_MAX_TABLES_PER_DATABASE": "2"})
    import uuid as _uuid

    user = Api(limited, mint(str(_uuid.uuid4())))
    service_api = Api(limited, limited.service_key)
    dbs = ["q_" + _uuid.uuid4().hex[:10] for _ in range(3)]
    assert create(user, dbs[0], {"name": "a", "columns": []}).status_code == 201
    assert create(user, dbs[0], {"name": "b", "columns": []}).status_code == 201
    r = create(user, dbs[0], {"name": "c", "columns": []})
    assert r.status_code == 403 and r.json()["code"] == "53400" and "OWNBASE_TABLES_MAX_TABLES_PER_DATABASE" in r.json()["message"]
    assert create(user, dbs[1], {"name": "a", "columns": []}).status_code == 201
    r = create(user, dbs[2], {"name": "a", "columns": []})
    assert r.status_code == 403 and "OWNBASE_TABLES_MAX_DATABASES_PER_USER" in r.json()["message"]
    assert user.get(f"/{dbs[2]}/tables").status_code == 404  # nothing was left behind
    # The service role is exempt, and dropping frees room.
    assert create(service_api, dbs[0], {"name": "c", "columns": []}).status_code == 201
    assert user.delete(f"/{dbs[1]}/tables/a").status_code == 204
    assert create(user, dbs[1], {"name": "z", "columns": []}).status_code == 201


def test_upgrade_keeps_existing_databases_where_they_are(server: ServerHandle, service: Api) -> None:
    """Migration 0251 is additive (issue 17): databases made before it keep their schema and keep
    working, and a row an older ownbase inserts without schema_name (rolling deploy) gets the id."""
    from pathlib import Path

    import ownbase.db

    migration = (Path(ownbase.db.__file__).parent / "migrations" / "0251_dynamic_namespace.sql").read_text()
    old, older = "legacy_" + uuid.uuid4().hex[:8], "older_" + uuid.uuid4().hex[:8]
    spec = [{"name": "title", "type": "text"}]
    sql(server, f"""
        create schema "{old}"; create table "{old}".notes(id uuid primary key default gen_random_uuid(),
            owner_id uuid, created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(), title text);
        grant usage on schema "{old}" to authenticated, service_role;
        grant all on "{old}".notes to service_role;
        insert into ownbase.dynamic_databases(id, schema_name) values ('{old}', null);
        insert into ownbase.dynamic_tables(database_id, name, columns) values ('{old}', 'notes', '{json.dumps(spec)}');
        insert into "{old}".notes(title) values ('kept');""")
    sql(server, migration)  # idempotent: applying it again changes nothing for new databases
    sql(server, f"insert into ownbase.dynamic_databases(id) values ('{older}')")  # an older ownbase's insert
    got = {r["id"]: r["s"] for r in sql(server, "select id, schema_name as s from ownbase.dynamic_databases"
                                                " where id = any($1::text[])", [old, older])}
    assert got == {old: old, older: older}
    assert [r["title"] for r in service.get(f"/{old}/tables/notes/rows").json()] == ["kept"]
    assert service.get(f"/{older}/tables").status_code == 200
    new_db = "fresh_" + uuid.uuid4().hex[:8]
    assert create(service, new_db, {"name": "t", "columns": []}).status_code == 201
    assert sql(server, "select schema_name as s from ownbase.dynamic_databases where id = $1", new_db)[0]["s"] \
        == SCHEMA_PREFIX + new_db
