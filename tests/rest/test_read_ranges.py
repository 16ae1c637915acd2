"""Limits, offsets, the Range header, counts (exact, planned, estimated), HEAD, and singular
responses (PostgREST's range and singular specs)."""

from __future__ import annotations

import pytest
from postgrest.exceptions import APIError

from tests.rest.conftest import raw, supa
from tests.scenarios import Scenario, check, params


def ids(rows: list[dict]) -> list:
    return [r["id"] for r in rows]


def test_limit_offset_range_and_counts(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = c.table("posts").select("id", count="exact").order("id").range(1, 2).execute()
    assert ids(res.data) == [2, 3] and res.count == 4
    res = c.table("posts").select("id", count="exact").order("id").limit(1).offset(3).execute()
    assert ids(res.data) == [4] and res.count == 4
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/posts?select=id&order=id", headers={"Range": "0-1", "Prefer": "count=exact"})
        assert r.status_code == 206 and r.headers["content-range"] == "0-1/4"
        assert r.headers["preference-applied"] == "count=exact"
        r = h.get("/posts?select=id&order=id", headers={"Range-Unit": "items", "Range": "2-"})
        assert r.status_code == 200 and ids(r.json()) == [3, 4] and r.headers["content-range"] == "2-3/*"
        r = h.get("/posts?select=id&limit=0", headers={"Prefer": "count=exact"})
        assert r.json() == [] and r.headers["content-range"] == "*/4"
        r = h.get("/posts?select=id&id=gt.100", headers={"Prefer": "count=exact"})
        assert r.status_code == 200 and r.headers["content-range"] == "*/0"
        for mode in ("planned", "estimated"):
            r = h.get("/posts?select=id", headers={"Prefer": f"count={mode}"})
            total = int(r.headers["content-range"].split("/")[1])
            assert total >= 1, r.headers
        r = h.get("/posts?select=id", headers={"Prefer": "count=estimated"})
        assert r.headers["content-range"] == "0-3/4"  # small tables are counted exactly


RANGE_ERRORS = [
    Scenario("offset past the end", "GET", "/posts?select=id&offset=10", 416, "PGRST103",
             headers={"Prefer": "count=exact"}, response_headers={"Content-Range": "*/4"}),
    Scenario("range ending before it starts", "GET", "/posts?select=id", 416, "PGRST103", headers={"Range": "3-1"}),
    Scenario("negative limit", "GET", "/posts?select=id&limit=-1", 416, "PGRST103",
             "Limit should be greater than or equal to zero."),
]


@pytest.mark.parametrize("scenario", params(RANGE_ERRORS))
def test_range_errors(rest_server, scenario: Scenario) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = check(h, scenario)
    if scenario.name == "negative limit":
        assert r.json()["details"] == "Limit should be greater than or equal to zero."


def test_head_with_count(rest_server) -> None:
    res = supa(rest_server, rest_server.service_key).table("posts").select("*", count="exact", head=True).execute()
    assert res.count == 4
    with raw(rest_server, rest_server.service_key) as h:
        r = h.head("/posts", headers={"Prefer": "count=exact"})
        assert r.status_code == 200 and r.content == b"" and r.headers["content-range"] == "0-3/4"
        r = h.get("/posts?select=id&id=eq.1")
        assert r.headers["content-location"] == "/posts?select=id&id=eq.1"


def test_single_and_maybe_single(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = c.table("posts").select("id,title").eq("id", 2).single().execute()
    assert res.data == {"id": 2, "title": "Second post"}
    with pytest.raises(APIError) as info:
        c.table("posts").select("id").single().execute()
    assert info.value.code == "PGRST116"
    res = c.table("posts").select("id").eq("id", 999).maybe_single().execute()
    assert res is None or res.data is None
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/posts?id=eq.999", headers={"Accept": "application/vnd.pgrst.object+json"})
        assert r.status_code == 406 and r.json()["details"] == "The result contains 0 rows"
        r = h.get("/posts?id=eq.1&select=id", headers={"Accept": "application/vnd.pgrst.object+json"})
        assert r.json() == {"id": 1}
        assert r.headers["content-type"].startswith("application/vnd.pgrst.object+json")
