"""Behind settings, as in PostgREST: ``Prefer: tx=rollback`` (OWNBASE_DB_TX_END, honoured only in its
-allow-override forms), EXPLAIN through ``Accept: application/vnd.pgrst.plan``
(OWNBASE_DB_PLAN_ENABLED), both off by default; ``application/geo+json`` where PostGIS is installed."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerHandle, sql
from tests.rest.conftest import SCHEMA, raw, wait_for_table


@pytest.fixture(scope="module")
def tuned(rest_server: ServerHandle, server_factory) -> ServerHandle:
    handle = server_factory({"OWNBASE_DB_SCHEMAS": f"{SCHEMA},public", "OWNBASE_DB_TX_END": "commit-allow-override",
                             "OWNBASE_DB_PLAN_ENABLED": "true"})
    wait_for_table(handle, "kv")
    return handle


def _kv(handle: ServerHandle) -> list[str]:
    return [r["k"] for r in sql(handle, "select k from rest_fixture.kv order by k")]


def test_tx_rollback_is_ignored_by_default(reset: ServerHandle) -> None:
    with raw(reset, reset.service_key) as c:
        r = c.post("/kv", json={"k": "kept"}, headers={"Prefer": "tx=rollback"})
    assert r.status_code == 201 and "preference-applied" not in r.headers
    assert _kv(reset) == ["kept"]


def test_tx_rollback_with_allow_override(reset: ServerHandle, tuned: ServerHandle) -> None:
    with raw(tuned, tuned.service_key) as c:
        r = c.post("/kv", json={"k": "gone"}, headers={"Prefer": "tx=rollback, return=representation"})
        assert r.status_code == 201 and r.json() == [{"k": "gone", "v": 0, "note": "none"}]
        assert r.headers["preference-applied"] == "return=representation, tx=rollback"
        r = c.post("/rpc/bump_many", json={"prefix": "r", "n": 2}, headers={"Prefer": "tx=rollback"})
        assert r.status_code == 200 and r.json() == [1, 2]
        assert r.headers["preference-applied"] == "tx=rollback"
        r = c.patch("/users?username=eq.bob", json={"age": 99}, headers={"Prefer": "tx=rollback"})
        assert r.status_code == 204
        assert _kv(tuned) == []
        assert sql(tuned, "select age from rest_fixture.users where username = 'bob'")[0][0] == 25
        r = c.post("/kv", json={"k": "stays"}, headers={"Prefer": "tx=commit"})
        assert r.status_code == 201 and r.headers["preference-applied"] == "tx=commit"
        r = c.get("/kv?select=k", headers={"Prefer": "tx=rollback"})
        assert r.json() == [{"k": "stays"}] and r.headers["preference-applied"] == "tx=rollback"
    assert _kv(tuned) == ["stays"]


def test_plan_is_off_by_default(rest_server: ServerHandle) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.get("/posts?select=id", headers={"Accept": "application/vnd.pgrst.plan+json"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


def test_plan_explains_reads_writes_and_calls(reset: ServerHandle, tuned: ServerHandle) -> None:
    with raw(tuned, tuned.service_key) as c:
        r = c.get("/posts?select=id,users!author_id(username)&id=eq.1",
                  headers={"Accept": "application/vnd.pgrst.plan+json"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == 'application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8'
        plan = json.loads(r.text)
        assert "Plan" in plan[0] and "Actual Rows" not in json.dumps(plan)
        r = c.get("/posts?select=id", headers={"Accept": 'application/vnd.pgrst.plan; for="text/csv"'})
        assert r.status_code == 200 and "Scan" in r.text
        assert r.headers["content-type"].startswith('application/vnd.pgrst.plan+text; for="text/csv"')
        r = c.get("/posts?select=id", headers={"Accept": "application/vnd.pgrst.plan+json; options=analyze|verbose"})
        assert "Actual Rows" in r.text and "Output" in r.text
        # an analysed write runs, and is rolled back
        r = c.post("/kv", json={"k": "explained"}, headers={"Accept": "application/vnd.pgrst.plan+json; options=analyze"})
        assert r.status_code == 200 and "Insert" in r.text
        r = c.post("/rpc/series", json={"n": 3}, headers={"Accept": "application/vnd.pgrst.plan+text"})
        assert r.status_code == 200 and "Function Scan" in r.text
    assert _kv(tuned) == []


def _postgis_available(handle: ServerHandle) -> bool:
    return bool(sql(handle, "select 1 from pg_available_extensions where name = 'postgis'"))


def test_geojson_needs_postgis(rest_server: ServerHandle) -> None:
    if sql(rest_server, "select 1 from pg_extension where extname = 'postgis'"):
        pytest.skip("PostGIS is installed in this database")
    with raw(rest_server, rest_server.service_key) as c:
        r = c.get("/posts?select=id", headers={"Accept": "application/geo+json"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


def test_geojson_output(rest_server: ServerHandle) -> None:
    """Runs where the database has PostGIS (CI's system PostgreSQL pass); skipped on the embedded one."""
    if not _postgis_available(rest_server):
        pytest.skip("PostGIS is not available in this PostgreSQL (the embedded server lacks it)")
    sql(rest_server, """
        create extension if not exists postgis;
        drop table if exists public.rest_places;
        create table public.rest_places (id int primary key, name text, geom geometry(Point, 4326));
        insert into public.rest_places values (1, 'a', 'SRID=4326;POINT(1 2)'), (2, 'b', 'SRID=4326;POINT(3 4)');
        grant select, insert on public.rest_places to anon, authenticated, service_role;
        notify pgrst, 'reload schema';
    """)
    try:
        wait_for_table(rest_server, "rest_places", schema="public")
        with raw(rest_server, rest_server.service_key, schema="public") as c:
            r = c.get("/rest_places?select=id,name,geom&order=id", headers={"Accept": "application/geo+json"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/geo+json; charset=utf-8"
        doc = r.json()
        assert doc["type"] == "FeatureCollection"
        assert [f["geometry"] for f in doc["features"]] == [{"type": "Point", "coordinates": [1, 2]},
                                                            {"type": "Point", "coordinates": [3, 4]}]
        assert doc["features"][0]["properties"] == {"id": 1, "name": "a"}
        with raw(rest_server, rest_server.service_key, schema="public") as c:
            r = c.post("/rest_places", json={"id": 3, "name": "c", "geom": "SRID=4326;POINT(5 6)"},
                       headers={"Accept": "application/geo+json", "Prefer": "return=representation"})
        assert r.status_code == 201, r.text
        assert r.json()["features"][0]["geometry"] == {"type": "Point", "coordinates": [5, 6]}
    finally:
        sql(rest_server, "drop table if exists public.rest_places; notify pgrst, 'reload schema';")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fn=st.sampled_from(["echo_text", "echo_bytea", "echo_json", "echo_json_arr", "dflt", "add", "series",
                           "hello", "nope", "posts_by"]),
       ctype=st.sampled_from(["text/plain", "text/xml", "application/octet-stream", "application/json",
                              "text/csv", "application/x-www-form-urlencoded", "", "text/plain; charset=utf-8"]),
       body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode),
       accept=st.sampled_from(["", "application/vnd.pgrst.plan", "application/vnd.pgrst.plan+json; options=analyze",
                               'application/vnd.pgrst.plan+text; for="text/csv"; options=verbose|nope',
                               "application/geo+json", "application/vnd.pgrst.object+json"]),
       prefer=st.sampled_from(["", "tx=rollback", "tx=commit, count=exact", "handling=strict, max-affected=1",
                               "params=single-object", "tx=bogus"]),
       method=st.sampled_from(["GET", "POST"]))
def test_fuzz_rpc_bodies_plans_and_prefs_never_5xx(tuned: ServerHandle, fn: str, ctype: str, body: bytes,
                                                    accept: str, prefer: str, method: str) -> None:
    headers = {k: v for k, v in {"Content-Type": ctype, "Accept": accept, "Prefer": prefer}.items() if v}
    with raw(tuned, tuned.service_key) as c:
        r = c.request(method, f"/rpc/{fn}", content=body if method == "POST" else None, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text)
