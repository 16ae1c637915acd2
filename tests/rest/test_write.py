"""Writes: insert (single, bulk, columns, missing=default), upsert both ways, update and delete with
filters and limits, every Prefer return mode, status codes and headers."""

from __future__ import annotations

import pytest
from postgrest.exceptions import APIError

from tests.conftest import sql
from tests.rest.conftest import ALICE, raw, supa


@pytest.fixture()
def kv(reset):
    return reset


def test_insert_return_modes(kv) -> None:
    with raw(kv, kv.service_key) as h:
        r = h.post("/kv", json={"k": "a", "v": 1})
        assert r.status_code == 201 and r.content == b"" and r.headers["content-range"] == "*/*"
        assert "content-type" not in r.headers
        r = h.post("/kv", json={"k": "b"}, headers={"Prefer": "return=representation"})
        assert r.status_code == 201 and r.json() == [{"k": "b", "v": 0, "note": "none"}]
        assert r.headers["preference-applied"] == "return=representation"
        r = h.post("/kv", json={"k": "c/d"}, headers={"Prefer": "return=headers-only"})
        assert r.status_code == 201 and r.headers["location"] == "/kv?k=eq.c%2Fd" and r.content == b""
        r = h.post("/kv?select=k", json=[{"k": "x"}, {"k": "y"}],
                   headers={"Prefer": "return=representation,count=exact"})
        assert r.json() == [{"k": "x"}, {"k": "y"}] and r.headers["content-range"] == "*/2"
    assert sql(kv, "select count(*) from rest_fixture.kv")[0][0] == 5


def test_insert_through_client_bulk_and_missing_default(kv) -> None:
    c = supa(kv, kv.service_key)
    res = c.table("kv").insert([{"k": "m1", "v": 3}, {"k": "m2"}], default_to_null=False).execute()
    rows = {r["k"]: r for r in res.data}
    assert rows["m2"]["v"] == 0 and rows["m2"]["note"] == "none" and rows["m1"]["v"] == 3
    # an identity primary key missing from some objects takes its sequence default
    res = c.table("posts").insert([{"author_id": ALICE, "title": "auto id"},
                                   {"id": 555, "author_id": ALICE, "title": "fixed id"}],
                                  default_to_null=False).execute()
    assert res.data[0]["id"] > 100 and res.data[1]["id"] == 555 and res.data[0]["published"] is False
    # default_to_null (the default): missing keys become NULL → not-null violation 23502 → 400
    with pytest.raises(APIError) as info:
        c.table("kv").insert([{"k": "n1", "v": 3}, {"k": "n2"}]).execute()
    assert info.value.code == "23502"
    with raw(kv, kv.service_key) as h:
        r = h.post("/kv", json=[{"k": "q"}, {"v": 1}])
        assert r.status_code == 400 and r.json()["message"] == "All object keys must match"
        r = h.post("/kv", json={"k": "q", "zz": 1})
        assert r.status_code == 400 and r.json()["code"] == "PGRST204"
        assert r.json()["message"] == "Could not find the 'zz' column of 'kv' in the schema cache"
        r = h.post("/kv", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json() == {"code": "PGRST102", "details": None, "hint": None,
                                                     "message": "Empty or invalid json"}
        r = h.post("/kv", json=[], headers={"Prefer": "return=representation"})
        assert r.status_code == 201 and r.json() == []
        r = h.post("/kv", json={"k": "m1"})
        assert r.status_code == 409 and r.json()["code"] == "23505"


def test_upsert_merge_and_ignore(kv) -> None:
    c = supa(kv, kv.service_key)
    c.table("kv").insert({"k": "u", "v": 1, "note": "first"}).execute()
    res = c.table("kv").upsert({"k": "u", "v": 2}).execute()
    assert res.data == [{"k": "u", "v": 2, "note": "first"}]
    res = c.table("kv").upsert({"k": "u", "v": 99}, ignore_duplicates=True).execute()
    assert res.data == []
    assert sql(kv, "select v from rest_fixture.kv where k = 'u'")[0][0] == 2
    with raw(kv, kv.service_key) as h:
        prefer = {"Prefer": "return=representation,resolution=merge-duplicates"}
        r = h.post("/kv", json=[{"k": "u", "v": 5}], headers=prefer)
        assert r.status_code == 200 and r.headers["preference-applied"] == \
            "resolution=merge-duplicates, return=representation"
        r = h.post("/kv", json=[{"k": "u", "v": 6}, {"k": "new", "v": 7}], headers=prefer)
        assert r.status_code == 201 and [x["v"] for x in r.json()] == [6, 7]
    # on_conflict on a unique column other than the primary key
    res = c.table("tags").upsert({"name": "python"}, on_conflict="name").execute()
    assert res.data[0]["name"] == "python"
    assert sql(kv, "select count(*) from rest_fixture.tags where name = 'python'")[0][0] == 1


def test_update_and_delete(kv) -> None:
    c = supa(kv, kv.service_key)
    res = c.table("posts").update({"views": 42}).in_("id", [1, 2]).execute()
    assert sorted(r["id"] for r in res.data) == [1, 2] and all(r["views"] == 42 for r in res.data)
    with raw(kv, kv.service_key) as h:
        r = h.patch("/posts?id=eq.3", json={"title": "t3"})
        assert r.status_code == 204 and r.headers["content-range"] == "0-0/*"
        r = h.patch("/posts?id=gt.0", json={"views": 1}, headers={"Prefer": "count=exact"})
        assert r.status_code == 204 and r.headers["content-range"] == "0-3/4"
        r = h.patch("/posts?order=id.desc&limit=1", json={"views": 7}, headers={"Prefer": "return=representation"})
        assert [x["id"] for x in r.json()] == [4]
        r = h.patch("/posts?id=eq.1&select=id,author:users!author_id(username)", json={"title": "x"},
                    headers={"Prefer": "return=representation"})
        assert r.json() == [{"id": 1, "author": {"username": "alice"}}]
        r = h.patch("/posts?id=eq.1", json={"nope": 1})
        assert r.status_code == 400 and r.json()["code"] == "PGRST204"
        r = h.patch("/posts?id=eq.1", json={"author_id": "00000000-0000-0000-0000-0000000000ff"})
        assert r.status_code == 409 and r.json()["code"] == "23503"
        r = h.patch("/posts?id=eq.1", json={"title": None})
        assert r.status_code == 400 and r.json()["code"] == "23502"
        r = h.delete("/comments?order=id&limit=2", headers={"Prefer": "return=representation"})
        assert [x["id"] for x in r.json()] == [1, 2]
        r = h.delete("/comments?post_id=eq.4")
        assert r.status_code == 204
        r = h.delete("/comments", headers={"Prefer": "count=exact"})
        assert r.status_code == 204 and r.headers["content-range"] == "*/1"
    assert sql(kv, "select count(*) from rest_fixture.comments")[0][0] == 0
    res = c.table("posts").delete().eq("id", 3).execute()
    assert res.data[0]["title"] == "t3"


def test_single_on_mutation_rolls_back(kv) -> None:
    with raw(kv, kv.service_key) as h:
        r = h.patch("/posts?id=gt.0", json={"views": 1000},
                    headers={"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"})
        assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    assert sql(kv, "select count(*) from rest_fixture.posts where views = 1000")[0][0] == 0
    with raw(kv, kv.service_key) as h:
        r = h.patch("/posts?id=gt.0", json={"views": 1000}, headers={"Prefer": "handling=strict, max-affected=2"})
        assert r.status_code == 400 and r.json()["code"] == "PGRST124"
        assert r.json()["details"] == "The query affects 4 rows"
        r = h.delete("/posts?id=eq.3", headers={"Prefer": "handling=strict, max-affected=1"})
        assert r.status_code == 204
    assert sql(kv, "select count(*) from rest_fixture.posts where views = 1000")[0][0] == 0
    assert sql(kv, "select count(*) from rest_fixture.posts")[0][0] == 3
    with raw(kv, kv.service_key) as h:
        r = h.post("/kv?select=k", json={"k": "one"},
                   headers={"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"})
        assert r.status_code == 201 and r.json() == {"k": "one"}


def test_put_upsert_by_primary_key(kv) -> None:
    with raw(kv, kv.service_key) as h:
        rep = {"Prefer": "return=representation"}
        r = h.put("/kv?k=eq.p", json={"k": "p", "v": 1}, headers=rep)
        assert r.status_code == 201 and r.json() == [{"k": "p", "v": 1, "note": "none"}]
        r = h.put("/kv?k=eq.p", json={"k": "p", "v": 2}, headers=rep)
        assert r.status_code == 200 and r.json()[0]["v"] == 2
        r = h.put("/kv?k=eq.p", json={"k": "other", "v": 2})
        assert r.status_code == 400 and r.json()["code"] == "PGRST115"
        r = h.put("/kv?v=eq.1", json={"k": "p"})
        assert r.status_code == 405 and r.json()["code"] == "PGRST105"


def test_timestamps_roundtrip_and_timezone(kv) -> None:
    with raw(kv, kv.service_key) as h:
        r = h.get("/users?select=created_at&username=eq.alice", headers={"Prefer": "timezone=America/New_York"})
        assert r.json() == [{"created_at": "2024-01-01T22:04:05-05:00"}]
        assert r.headers["preference-applied"] == "timezone=America/New_York"
        r = h.post("/users?select=username,created_at,mood,nicknames,meta",
                   json={"id": "00000000-0000-0000-0000-0000000000d1", "username": "dave",
                         "created_at": "2025-06-01T12:00:00.5+02:00", "mood": "sad",
                         "nicknames": ["d", "dd"], "meta": {"a": [1, {"b": None}]}},
                   headers={"Prefer": "return=representation"})
        assert r.json() == [{"username": "dave", "created_at": "2025-06-01T10:00:00.5+00:00", "mood": "sad",
                             "nicknames": ["d", "dd"], "meta": {"a": [1, {"b": None}]}}]
        r = h.post("/users", json={"id": "00000000-0000-0000-0000-0000000000d2", "username": "e", "mood": "angry"})
        assert r.status_code == 400 and r.json()["code"] == "22P02"
    assert sql(kv, "select username from rest_fixture.users where id = $1::uuid", ALICE)[0][0] == "alice"
