"""Behind settings, as in PostgREST: ``Prefer: tx=rollback`` (OWNBASE_DB_TX_END, honoured only in its
-allow-override forms), EXPLAIN through ``Accept: application/vnd.pgrst.plan``
(OWNBASE_DB_PLAN_ENABLED), both off by default; ``application/geo+json`` where PostGIS is installed.

The embedded PostgreSQL has no PostGIS, so the GeoJSON tests run on a private cluster of the Debian
PostgreSQL binaries with the postgresql-<major>-postgis-3 package (scripts/test installs it). Without
it they skip with the reason, and fail under CI=true: a skipped test proves nothing."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supabase import ClientOptions, create_client

from ownbase.embedded import EmbeddedPostgres
from tests.conftest import ServerHandle, create_database, sql, start_server
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


def test_geojson_needs_postgis(rest_server: ServerHandle) -> None:
    if sql(rest_server, "select 1 from pg_extension where extname = 'postgis'"):
        pytest.skip("PostGIS is installed in this database")
    with raw(rest_server, rest_server.service_key) as c:
        r = c.get("/posts?select=id", headers={"Accept": "application/geo+json"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


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


# --- GeoJSON on a PostgreSQL with PostGIS ---------------------------------------------------------

GEO = "application/geo+json"
PLACES = """
    create extension if not exists postgis;
    create table public.places (id int primary key, name text not null, geom geometry(Point, 4326));
    insert into public.places values (1, 'a', 'SRID=4326;POINT(1 2)'), (2, 'b', 'SRID=4326;POINT(3 4)'),
                                     (3, 'no geometry', null);
    grant select, insert, update, delete on public.places to anon, authenticated, service_role;
    create function public.places_named(prefix text) returns setof public.places
        language sql stable as $$ select * from public.places where name like prefix || '%' order by id $$;
    grant execute on function public.places_named(text) to anon, authenticated, service_role;
    notify pgrst, 'reload schema';
"""


def _postgis_bin() -> Path:
    """The newest Debian PostgreSQL whose share folder has PostGIS."""
    found = [(int(b.parent.name), b) for b in Path("/usr/lib/postgresql").glob("*/bin")
             if b.parent.name.isdigit() and (b / "postgres").exists()
             and Path(f"/usr/share/postgresql/{b.parent.name}/extension/postgis.control").exists()]
    if not found:
        message = ("no Debian PostgreSQL with PostGIS under /usr/lib/postgresql (scripts/test installs "
                   "postgresql-<major>-postgis-3)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return max(found)[1]


@pytest.fixture(scope="module")
def geo_server(tmp_root: Path) -> Iterator[ServerHandle]:
    """An ownbase server on its own PostGIS cluster (never the session database, which may lack it)."""
    emb = EmbeddedPostgres(tmp_root / f"postgis-{uuid.uuid4().hex[:6]}", bin_dir=_postgis_bin())
    emb.start()
    try:
        handle = start_server(tmp_root, {"OWNBASE_DATABASE_URL": create_database(emb.url(), "ownbase_geo")})
        try:
            sql(handle, PLACES)
            wait_for_table(handle, "places", schema="public")
            yield handle
        finally:
            handle.stop()
    finally:
        emb.stop()


def _point(x: float, y: float) -> dict[str, object]:
    return {"type": "Point", "coordinates": [x, y]}


def _plain(geom: dict[str, object]) -> dict[str, object]:
    """A geometry column in a JSON answer, without the ``crs`` member PostGIS's json cast adds."""
    assert geom.get("crs", {"properties": {"name": "EPSG:4326"}})["properties"]["name"] == "EPSG:4326"
    return {k: v for k, v in geom.items() if k != "crs"}


def test_geojson_read_is_a_feature_collection(geo_server: ServerHandle) -> None:
    with raw(geo_server, geo_server.service_key, schema="public") as c:
        r = c.get("/places?select=id,name,geom&order=id", headers={"Accept": GEO})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geo+json; charset=utf-8"
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert [f["type"] for f in doc["features"]] == ["Feature"] * 3
    assert [f["geometry"] for f in doc["features"][:2]] == [_point(1, 2), _point(3, 4)]
    # a row without geometry is still a feature; PostGIS 3.3 writes its geometry as {"type": null}
    assert doc["features"][2]["geometry"] in (None, {"type": None})
    assert [f["properties"] for f in doc["features"]] == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"},
                                                          {"id": 3, "name": "no geometry"}]
    with raw(geo_server, geo_server.service_key, schema="public") as c:
        r = c.get("/places?select=id,geom&id=gt.100", headers={"Accept": GEO})
    assert r.status_code == 200 and r.json() == {"type": "FeatureCollection", "features": []}


def test_geometry_is_geojson_in_plain_and_single_object_answers(geo_server: ServerHandle) -> None:
    with raw(geo_server, geo_server.service_key, schema="public") as c:
        r = c.get("/places?select=id,geom&order=id&limit=2")
        assert r.status_code == 200, r.text
        assert [(row["id"], _plain(row["geom"])) for row in r.json()] == [(1, _point(1, 2)), (2, _point(3, 4))]
        r = c.get("/places?select=name,geom&id=eq.2", headers={"Accept": "application/vnd.pgrst.object+json"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/vnd.pgrst.object+json")
        one = r.json()
        assert one["name"] == "b" and _plain(one["geom"]) == _point(3, 4)


def test_geojson_write_and_call(geo_server: ServerHandle) -> None:
    try:
        with raw(geo_server, geo_server.service_key, schema="public") as c:
            r = c.post("/places", json={"id": 10, "name": "c", "geom": "SRID=4326;POINT(5 6)"},
                       headers={"Accept": GEO, "Prefer": "return=representation"})
            assert r.status_code == 201, r.text
            assert r.headers["content-type"] == "application/geo+json; charset=utf-8"
            doc = r.json()
            assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 1
            assert doc["features"][0]["geometry"] == _point(5, 6)
            assert doc["features"][0]["properties"] == {"id": 10, "name": "c"}
            # a GeoJSON geometry is accepted as input too (PostGIS parses it)
            r = c.patch("/places?id=eq.10", json={"geom": _point(7, 8)},
                        headers={"Accept": GEO, "Prefer": "return=representation"})
            assert r.status_code == 200 and r.json()["features"][0]["geometry"] == _point(7, 8)
            r = c.post("/rpc/places_named", json={"prefix": "c"}, headers={"Accept": GEO})
            assert r.status_code == 200, r.text
            assert [f["geometry"] for f in r.json()["features"]] == [_point(7, 8)]
        assert sql(geo_server, "select ST_AsText(geom) from public.places where id = 10")[0][0] == "POINT(7 8)"
    finally:
        sql(geo_server, "delete from public.places where id >= 10")


def test_geojson_through_supabase_py(geo_server: ServerHandle) -> None:
    """supabase-py has no .geojson() (supabase-js does): the Accept header goes in the client options."""
    client = create_client(geo_server.url, geo_server.service_key,
                           options=ClientOptions(schema="public", headers={"Accept": GEO}))
    try:
        doc = client.table("places").select("id,name,geom").lt("id", 3).order("id").execute().data
        assert doc["type"] == "FeatureCollection"
        assert [(f["properties"]["name"], f["geometry"]) for f in doc["features"]] == [("a", _point(1, 2)),
                                                                                      ("b", _point(3, 4))]
        doc = client.table("places").insert({"id": 11, "name": "d", "geom": "SRID=4326;POINT(9 10)"}).execute().data
        assert doc["features"][0]["geometry"] == _point(9, 10)
        one = client.table("places").select("name,geom").eq("id", 11).single().execute().data
        assert one["name"] == "d" and _plain(one["geom"]) == _point(9, 10)
    finally:
        sql(geo_server, "delete from public.places where id >= 10")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/places", "/rpc/places_named", "/places?select=id,geom", "/places?select=geom,name",
                             "/places?select=name&geom=is.null", "/places?id=eq.1", "/places?select=nope"]),
       method=st.sampled_from(["GET", "POST", "PATCH"]),
       accept=st.sampled_from([GEO, f"{GEO}, application/json;q=0.5", "application/vnd.pgrst.object+json",
                               "application/json", "text/csv", f"{GEO}; charset=latin1"]),
       # well-formed geometries, also of the wrong SRID or type (22023, a 400); malformed text is below
       geom=st.sampled_from(["SRID=4326;POINT(1 2)", "POINT(1 2)", "SRID=3857;POINT(1 2)", "LINESTRING(0 0,1 1)",
                             "0101000000000000000000F03F0000000000000040", '{"type":"Point","coordinates":[1,2]}',
                             "SRID=4326;POLYGON((0 0,1 0,1 1,0 0))"]) | st.none(),
       prefer=st.sampled_from(["", "return=representation", "return=minimal", "tx=rollback"]))
def test_fuzz_geojson_never_5xx(geo_server: ServerHandle, path: str, method: str, accept: str,
                                geom: str | None, prefer: str) -> None:
    body = {"prefix": geom or ""} if path.startswith("/rpc") else {"id": 99, "name": "fuzz", "geom": geom}
    headers = {k: v for k, v in {"Accept": accept, "Prefer": prefer}.items() if v}
    target = path if method != "PATCH" else path + ("&" if "?" in path else "?") + "id=eq.99"
    try:
        with raw(geo_server, geo_server.service_key, schema="public") as c:
            r = c.request(method, target, json=None if method == "GET" else body, headers=headers)
        assert r.status_code < 500, (r.status_code, r.text)
    finally:
        sql(geo_server, "delete from public.places where id = 99")


@pytest.mark.parametrize("geom", ["not a geometry", "POINT(1", {"type": "Point"}, {"type": "Nope", "coordinates": [1]},
                                  "0101000020E6"])
def test_malformed_geometry_is_a_4xx(geo_server: ServerHandle, geom: object) -> None:
    """PostGIS raises malformed geometry as XX000 (internal_error); it is the client's input: 400."""
    with raw(geo_server, geo_server.service_key, schema="public") as c:
        r = c.post("/places", json={"id": 98, "name": "bad", "geom": geom})
    sql(geo_server, "delete from public.places where id = 98")
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["code"] == "XX000"
