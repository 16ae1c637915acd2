"""RPC through supabase-py and raw HTTP: POST and GET, scalar / set-returning / table results,
filters on results, volatile functions, json arguments, void, errors."""

from __future__ import annotations

import pytest
from postgrest.exceptions import APIError

from tests.conftest import sql
from tests.rest.conftest import ALICE, raw, supa


def test_scalar_both_ways(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    assert c.rpc("add", {"a": 1, "b": 2}).execute().data == 3
    assert c.rpc("add", {"a": 1}).execute().data == 11  # default argument
    assert c.rpc("hello", {"name": "x"}, get=True).execute().data == "hello x"
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/rpc/add?a=5&b=6")
        assert r.status_code == 200 and r.json() == 11
        r = h.get("/rpc/sum_array?xs={1,2,3}")
        assert r.json() == 6
        r = h.get("/rpc/sum_array?xs=1&xs=2&xs=5")  # repeated parameter → array argument
        assert r.json() == 8
    assert c.rpc("sum_array", {"xs": [4, 5]}).execute().data == 9


def test_set_returning_with_filters(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    assert c.rpc("series", {"n": 4}).execute().data == [1, 2, 3, 4]
    res = c.rpc("posts_by", {"author": ALICE}).select("id,title").gt("id", 1).execute()
    assert res.data == [{"id": 2, "title": "Second post"}]
    res = c.rpc("posts_by", {"author": ALICE}).select("id,author:users!author_id(username)").order(
        "id", desc=True).limit(1).execute()
    assert res.data == [{"id": 2, "author": {"username": "alice"}}]
    res = c.rpc("user_stats", {}).order("username").execute()
    assert res.data == [{"username": "alice", "post_count": 2}, {"username": "bob", "post_count": 2},
                        {"username": "carol", "post_count": 0}]
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/rpc/series?n=5&limit=2&offset=1")
        assert r.json() == [2, 3] and r.headers["content-range"] == "1-2/*"
        r = h.get("/rpc/user_stats?post_count=gt.0&select=username&order=username.desc")
        assert r.json() == [{"username": "bob"}, {"username": "alice"}]
        r = h.post("/rpc/posts_by?select=id", json={"author": ALICE},
                   headers={"Accept": "application/vnd.pgrst.object+json"})
        assert r.status_code == 406 and r.json()["code"] == "PGRST116"


def test_volatile_json_void_and_params_single_object(reset) -> None:
    c = supa(reset, reset.service_key)
    assert c.rpc("bump", {"key": "n"}).execute().data == 1
    assert c.rpc("bump", {"key": "n"}).execute().data == 2
    with raw(reset, reset.service_key) as h:
        r = h.get("/rpc/bump?key=n")  # GET runs read-only: a volatile write fails
        assert r.status_code == 405 and r.json()["code"] == "25006"
        r = h.post("/rpc/echo_json", json={"any": [1, {"x": None}]})
        assert r.json() == {"any": [1, {"x": None}]}
        r = h.post("/rpc/echo_json", json={"a": 1}, headers={"Prefer": "params=single-object"})
        assert r.json() == {"a": 1}
        r = h.post("/rpc/noop")
        assert r.status_code == 204 and r.content == b""
        r = h.patch("/rpc/add", json={})
        assert r.status_code == 405 and r.json()["code"] == "PGRST101"
    assert sql(reset, "select v from rest_fixture.kv where k = 'n'")[0][0] == 2


def test_rpc_errors(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    with pytest.raises(APIError) as info:
        c.rpc("fail", {}).execute()
    assert info.value.code == "P0001" and info.value.message == "custom failure" and info.value.hint == "do not call"
    with pytest.raises(APIError) as info:
        c.rpc("nope", {"a": 1}).execute()
    assert info.value.code == "PGRST202"
    with raw(rest_server, rest_server.service_key) as h:
        r = h.post("/rpc/add", json={"zz": 1})
        body = r.json()
        assert r.status_code == 404 and body["message"] == \
            "Could not find the function rest_fixture.add(zz) in the schema cache"
        r = h.post("/rpc/noopp", json={})
        assert r.json()["message"] == "Could not find the function rest_fixture.noopp without parameters in the schema cache"
        assert r.json()["hint"] == "Perhaps you meant to call the function rest_fixture.noop"
        r = h.post("/rpc/add", json={"a": "x"})
        assert r.status_code == 400 and r.json()["code"] == "22P02"


def test_rpc_sees_the_caller(rest_server, mint) -> None:
    token = mint(ALICE)
    res = supa(rest_server, token=token).rpc("whoami", {}).execute()
    assert res.data == f"{ALICE}:authenticated"
    assert supa(rest_server).rpc("whoami", {}).execute().data == "anon:anon"


def test_overloads_and_custom_errors(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.post("/rpc/over", json={"a": 1})
        assert r.status_code == 300 and r.json()["code"] == "PGRST203"
        assert "rest_fixture.over(a => integer)" in r.json()["message"]
        r = h.post("/rpc/teapot", json={})
        assert r.status_code == 418 and r.headers["x-tea"] == "earl grey"
        assert r.json() == {"code": "TEA01", "message": "I am a teapot", "details": None, "hint": "brew"}
