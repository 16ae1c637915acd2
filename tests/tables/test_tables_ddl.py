"""/db/v1 table management against a real server and database: create, list, drop, and that no
request text ever becomes SQL. Access rules are in test_tables_access.py, error answers in
test_errors.py."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import ownbase.db
from ownbase.tables.spec import SCHEMA_PREFIX
from tests.conftest import ServerHandle, sql
from tests.tables.conftest import ITEMS_SPEC, Api, create, make_items


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
    assert api.get("").status_code == 200  # /db/v1 itself lists your databases


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


def test_upgrade_keeps_existing_databases_where_they_are(server: ServerHandle, service: Api) -> None:
    """Migration 0251 is additive (issue 17): databases made before it keep their schema and keep
    working, and a row an older ownbase inserts without schema_name (rolling deploy) gets the id."""
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
