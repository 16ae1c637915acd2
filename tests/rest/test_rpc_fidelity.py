"""/rpc/ as PostgREST answers it: functions with a single unnamed parameter take the raw body
(json/jsonb, text, xml, bytea), overload resolution and its 300 PGRST203 (unnamed defaults),
PGRST202 wording, Prefer: count=exact and max-affected on functions."""

from __future__ import annotations

import pytest

from tests.conftest import sql
from tests.rest.conftest import raw, supa


def test_single_unnamed_parameter_takes_the_raw_body(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.post("/rpc/echo_text", content="hello there", headers={"Content-Type": "text/plain"})
        assert r.status_code == 200 and r.json() == "got hello there"
        r = c.post("/rpc/echo_bytea", content=bytes(range(256)), headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200 and r.json() == 256, r.text
        r = c.post("/rpc/echo_xml", content="<a><b>1</b></a>", headers={"Content-Type": "text/xml"})
        if r.status_code == 400:  # a PostgreSQL built without libxml: the call reached the xml function
            assert r.json()["code"] == "0A000" and r.json()["message"] == "unsupported XML feature", r.text
        else:
            assert r.status_code == 200 and r.json() == "<a><b>1</b></a>", r.text
        # a JSON array is passed whole to a single unnamed json/jsonb parameter
        r = c.post("/rpc/echo_json_arr", json=[1, {"a": [2, 3]}])
        assert r.status_code == 200 and r.json() == [1, {"a": [2, 3]}]
        r = c.post("/rpc/echo_json", json=[{"x": 1}])
        assert r.status_code == 200 and r.json() == [{"x": 1}]
        # … but not to a function with named parameters (bulk RPC is not offered)
        r = c.post("/rpc/add", json=[{"a": 1}])
        assert r.status_code == 400 and r.json()["code"] == "PGRST127"
        # a raw body for a function without such a parameter
        r = c.post("/rpc/hello", content="x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 404 and r.json() == {
            "code": "PGRST202", "hint": None,
            "message": "Could not find the function rest_fixture.hello in the schema cache",
            "details": "Searched for the function rest_fixture.hello with a single unnamed text parameter, "
                       "but no matches were found in the schema cache."}
        r = c.post("/rpc/hello", content="x", headers={"Content-Type": "text/xml"})
        assert r.json()["details"] == ("Searched for the function rest_fixture.hello with a single unnamed xml "
                                       "parameter, but no matches were found in the schema cache.")


def test_overloads_with_unnamed_defaults_are_ambiguous(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        for r in (c.get("/rpc/dflt"), c.post("/rpc/dflt", json={})):
            assert r.status_code == 300, r.text
            assert r.json() == {
                "code": "PGRST203", "details": None,
                "message": "Could not choose the best candidate function between: rest_fixture.dflt( => integer), "
                           "rest_fixture.dflt( => text)",
                "hint": "Try renaming the parameters or the function itself in the database so function "
                        "overloading can be resolved"}
        r = c.post("/rpc/over", json={"a": 1})
        assert r.json()["message"] == ("Could not choose the best candidate function between: "
                                       "rest_fixture.over(a => integer), rest_fixture.over(a => text)")


def test_pgrst202_wording(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.post("/rpc/noopp", json={})
        assert r.json() == {
            "code": "PGRST202", "hint": "Perhaps you meant to call the function rest_fixture.noop",
            "message": "Could not find the function rest_fixture.noopp without parameters in the schema cache",
            "details": "Searched for the function rest_fixture.noopp without parameters or with a single unnamed "
                       "json/jsonb parameter, but no matches were found in the schema cache."}
        r = c.get("/rpc/noopp")
        assert r.json()["details"] == ("Searched for the function rest_fixture.noopp without parameters, "
                                       "but no matches were found in the schema cache.")
        r = c.post("/rpc/hello", json={"nam": "x"})
        assert r.json()["message"] == "Could not find the function rest_fixture.hello(nam) in the schema cache"
        assert r.json()["details"] == ("Searched for the function rest_fixture.hello with parameter nam or with a "
                                       "single unnamed json/jsonb parameter, but no matches were found in the "
                                       "schema cache.")
        assert r.json()["hint"] == "Perhaps you meant to call the function rest_fixture.hello(name)"
        r = c.get("/rpc/add?a=1&c=2")
        assert r.json()["details"] == ("Searched for the function rest_fixture.add with parameters a, c, "
                                       "but no matches were found in the schema cache.")
        assert r.json()["hint"] == "Perhaps you meant to call the function rest_fixture.add(a,b)"
        r = c.get("/rpc/add?zz=1")  # nothing alike: no hint
        assert r.json()["hint"] is None


def test_count_exact_on_functions(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.post("/rpc/add", json={"a": 1}, headers={"Prefer": "count=exact"})
        assert r.json() == 11 and r.headers["content-range"] == "0-0/1"
        assert r.headers["preference-applied"] == "count=exact"
        r = c.post("/rpc/add", json={"a": 1})
        assert r.headers["content-range"] == "0-0/*"
        r = c.post("/rpc/series?limit=2", json={"n": 5}, headers={"Prefer": "count=exact"})
        assert r.status_code == 206 and r.json() == [1, 2] and r.headers["content-range"] == "0-1/5"
        r = c.get("/rpc/posts_by?author=00000000-0000-0000-0000-00000000000b&select=id",
                  headers={"Prefer": "count=exact", "Range": "0-0"})
        assert r.json() == [{"id": 3}] and r.headers["content-range"] == "0-0/2"
    res = supa(rest_server, rest_server.service_key).rpc("series", {"n": 4}, count="exact").execute()
    assert res.count == 4 and res.data == [1, 2, 3, 4]


def test_max_affected_on_functions(reset) -> None:
    strict = {"Prefer": "handling=strict, max-affected=3"}
    with raw(reset, reset.service_key) as c:
        r = c.post("/rpc/bump_many", json={"prefix": "m", "n": 5}, headers=strict)
        assert r.status_code == 400 and r.json()["code"] == "PGRST124"
        assert r.json()["details"] == "The query affects 5 rows"
        assert sql(reset, "select count(*) from rest_fixture.kv")[0][0] == 0  # rolled back
        r = c.post("/rpc/bump_many", json={"prefix": "m", "n": 3}, headers=strict)
        assert r.status_code == 200 and r.json() == [1, 2, 3]
        assert r.headers["preference-applied"] == "handling=strict, max-affected=3"
        r = c.post("/rpc/add", json={"a": 1}, headers=strict)
        assert r.status_code == 400 and r.json() == {
            "code": "PGRST128", "details": None, "hint": None,
            "message": "Function must return SETOF or TABLE when max-affected preference is used with "
                       "handling=strict"}
        r = c.post("/rpc/bump_many", json={"prefix": "z", "n": 5}, headers={"Prefer": "max-affected=3"})
        assert r.status_code == 200  # lenient: ignored
    assert sql(reset, "select count(*) from rest_fixture.kv")[0][0] == 8


@pytest.mark.parametrize("body", [b"\xff\xfe", "é".encode("latin-1")])
def test_raw_text_body_not_utf8(rest_server, body: bytes) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.post("/rpc/echo_text", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST102"
