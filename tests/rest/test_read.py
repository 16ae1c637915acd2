"""Reads through supabase-py (and raw HTTP for wire details): select lists, aliases, casts, JSON
paths, media types (CSV, stripped nulls), views, profiles, computed fields, and unknown names.
Filters are in test_read_filters.py, ranges and single objects in test_read_ranges.py,
embedding in test_read_embed.py."""

from __future__ import annotations

import pytest

from tests.conftest import sql
from tests.rest.conftest import raw, supa, wait_for_table
from tests.scenarios import Scenario, check, params


def ids(rows: list[dict]) -> list:
    return [r["id"] for r in rows]


def test_select_star_types(rest_server) -> None:
    res = supa(rest_server, rest_server.service_key).table("users").select("*").eq("username", "alice").execute()
    row = res.data[0]
    assert list(row.keys()) == ["id", "username", "age", "mood", "nicknames", "meta", "score", "created_at"]
    assert row["mood"] == "happy" and row["nicknames"] == ["al", "ally"]
    assert row["meta"]["langs"] == ["fr", "en"]
    assert row["score"] == 12.5
    assert row["created_at"] == "2024-01-02T03:04:05+00:00"


def test_aliases_casts_json_paths(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = c.table("posts").select("pid:id,views::text,lang:data->>lang,data->stars").eq("id", 1).execute()
    assert res.data == [{"pid": 1, "views": "10", "lang": "en", "stars": 5}]
    res = c.table("users").select("username").eq("meta->>city", "Berlin").execute()
    assert res.data == [{"username": "bob"}]
    res = c.table("users").select("username,first_lang:meta->langs->0").eq("username", "alice").execute()
    assert res.data == [{"username": "alice", "first_lang": "fr"}]


def test_strip_nulls(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/users?select=username,age&order=username",
                  headers={"Accept": "application/vnd.pgrst.array+json;nulls=stripped"})
        assert r.json()[2] == {"username": "carol"}
        r = h.get("/users?select=username,age&username=eq.carol",
                  headers={"Accept": "application/vnd.pgrst.object+json;nulls=stripped"})
        assert r.json() == {"username": "carol"}


def test_csv(rest_server) -> None:
    res = supa(rest_server, rest_server.service_key).table("posts").select("id,title,published").order("id") \
        .limit(2).csv().execute()
    assert res.data.splitlines() == ["id,title,published", '1,"Hello world",t', '2,"Second post",t']
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/posts?select=id&limit=1", headers={"Accept": "text/csv"})
        assert r.headers["content-type"].startswith("text/csv") and r.text == "id\n1"


def test_views_and_profiles(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = c.table("published_posts").select("*").order("id").execute()
    assert ids(res.data) == [1, 2, 4] and list(res.data[0].keys()) == ["id", "author_id", "title", "views"]
    res = c.table("published_posts").select("id,users(username)").eq("id", 4).execute()
    assert res.data == [{"id": 4, "users": {"username": "bob"}}]
    with raw(rest_server, rest_server.service_key, schema="public") as h:
        r = h.get("/posts")
        assert r.status_code == 404 and r.json()["code"] == "PGRST205"
    with raw(rest_server, rest_server.service_key) as h:
        assert h.get("/posts?select=id").headers["content-profile"] == "rest_fixture"
    with raw(rest_server, rest_server.service_key, schema="secret") as h:
        r = h.get("/posts")
        assert r.status_code == 406 and r.json()["code"] == "PGRST106"
        assert r.json()["message"] == "Invalid schema: secret"


def test_computed_fields_partitions_and_strict_prefs(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = c.table("users").select("username,display_name").like("display_name", "*30*").execute()
    assert res.data == [{"username": "alice", "display_name": "ALICE (30)"}]
    res = c.table("users").select("username").order("display_name", desc=True).limit(1).execute()
    assert res.data == [{"username": "carol"}]
    assert "display_name" not in c.table("users").select("*").limit(1).execute().data[0]
    res = c.table("events").select("id,kind").gte("at", "2025-01-01").order("id").execute()
    assert res.data == [{"id": 2, "kind": "b"}, {"id": 3, "kind": "a"}]
    with raw(rest_server, rest_server.service_key) as h:
        assert h.get("/events_2024").json()["code"] == "PGRST205"  # partitions only through the parent
        r = h.get("/posts?select=id", headers={"Prefer": "handling=strict, foo=bar"})
        assert r.status_code == 400 and r.json()["code"] == "PGRST122"
        assert r.json()["details"] == "Invalid preferences: foo=bar"
        r = h.get("/posts?select=id", headers={"Prefer": "handling=lenient, foo=bar"})
        assert r.status_code == 200


def test_fixed_length_types_are_not_truncated(rest_server) -> None:
    sql(rest_server, "create table if not exists rest_fixture.codes (c char(3) primary key, b bit(3)); "
                     "grant all on rest_fixture.codes to service_role; "
                     "insert into rest_fixture.codes values ('abc', '101'), ('xyz', '011') on conflict do nothing; "
                     "notify pgrst, 'reload schema'")
    wait_for_table(rest_server, "codes")
    with raw(rest_server, rest_server.service_key) as h:
        assert h.get("/codes?select=c&c=eq.abc").json() == [{"c": "abc"}]
        assert h.get("/codes?select=c&c=in.(abc,xyz)&b=eq.011").json() == [{"c": "xyz"}]
        assert h.get("/codes?select=c&c=like.a*").json() == [{"c": "abc"}]


# Error answers of a read, as the service role on the rest_fixture profile.
READ_ERRORS = [
    Scenario("unknown table", "GET", "/postz", 404, "PGRST205", "Perhaps you meant the table 'rest_fixture.posts'"),
    Scenario("unknown column in select", "GET", "/posts?select=nope", 400, "42703"),
    Scenario("unknown column in a filter", "GET", "/posts?nope=eq.1", 400, "42703"),
    Scenario("value of the wrong type", "GET", "/posts?id=eq.notanumber", 400, "22P02"),
    Scenario("path of two segments", "GET", "/a/b", 404, "PGRST125"),
    Scenario("unacceptable media type", "GET", "/posts", 406, "PGRST107", headers={"Accept": "application/xml"}),
]


@pytest.mark.parametrize("scenario", params(READ_ERRORS))
def test_read_errors(rest_server, scenario: Scenario) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = check(h, scenario)
    if scenario.name == "unknown table":
        assert r.json()["hint"] == "Perhaps you meant the table 'rest_fixture.posts'"
