"""/db/v1 access: the first creator owns a database, other users are refused, the service role may
act for anyone, database ids never reach app schemas, and the per-user/per-database quotas."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from ownbase.tables.spec import SCHEMA_PREFIX
from tests.conftest import ServerHandle, sql
from tests.tables.conftest import Api, create, make_items


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


def test_quotas_per_user_and_database(server_factory: Any, mint: Any) -> None:
    limited = server_factory({"OWNBASE_TABLES_MAX_DATABASES_PER_USER": "2",
                              "OWNBASE_TABLES_MAX_TABLES_PER_DATABASE": "2"})
    user = Api(limited, mint(str(uuid.uuid4())))
    service_api = Api(limited, limited.service_key)
    dbs = ["q_" + uuid.uuid4().hex[:10] for _ in range(3)]
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
