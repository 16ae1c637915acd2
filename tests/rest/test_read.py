"""Reads through supabase-py (and raw HTTP for wire details): select trees, every filter operator,
order, ranges, counts, embedded resources of each kind, single objects, CSV, views."""

from __future__ import annotations

import pytest
from postgrest.exceptions import APIError

from tests.rest.conftest import BOB, raw, supa


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


# (query string, expected ids) over posts as the service role (sees all 4 posts)
OPERATOR_CASES = [
    ("id=eq.2", [2]),
    ("id=neq.2", [1, 3, 4]),
    ("views=gt.5", [1, 4]),
    ("views=gte.5", [1, 2, 4]),
    ("views=lt.5", [3]),
    ("views=lte.5", [2, 3]),
    ("title=like.*post*", [2]),
    ("title=ilike.BOB*", [3, 4]),
    ("title=match.^B", [3, 4]),
    ("title=imatch.^b", [3, 4]),
    ("editor_id=is.null", [2, 3]),
    ("editor_id=not.is.null", [1, 4]),
    ("published=is.true", [1, 2, 4]),
    ("published=is.false", [3]),
    ("editor_id=isdistinct." + BOB, [2, 3, 4]),
    ("id=in.(1,3)", [1, 3]),
    ("id=not.in.(1,3)", [2, 4]),
    ("tags=cs.{news}", [1, 2]),
    ("tags=cd.{intro,news,other}", [1, 2, 3, 4]),
    ("tags=ov.{intro,zzz}", [1, 4]),
    ("data=cs.{\"lang\":\"en\"}", [1]),
    ("during=sl.[2024-05-01,2024-06-01)", [1, 2]),
    ("during=sr.[2023-01-01,2023-06-01)", [1, 2]),
    ("during=nxl.[2024-02-15,2024-12-01)", [2]),
    ("during=nxr.[2024-01-15,2024-02-15)", [1]),
    ("during=adj.[2024-02-01,2024-03-01)", [1, 2]),
    ("during=ov.[2024-01-15,2024-01-20)", [1]),
    ("search=fts.fox", [1, 4]),
    ("search=fts(english).foxes", [1, 4]),
    ("search=plfts.quick brown", [1]),
    ("search=phfts(english).quick brown", [1]),
    ("search=wfts(english).cats or foxes", [1, 2, 4]),
    ("body=fts(english).dogs", [2]),
    ("title=like(any).{*draft,Hello*}", [1, 3]),
    ("title=ilike(all).{*o*,*b*}", [3, 4]),
    ("views=gt(any).{8,100}", [1]),
    ("id=eq(any).{1,2}", [1, 2]),
    ("or=(id.eq.1,views.lt.1)", [1, 3]),
    ("or=(id.eq.1,and(views.gt.4,views.lt.8))", [1, 2, 4]),
    ("not.or=(id.eq.1,id.eq.2)", [3, 4]),
    ("and=(published.is.true,not.or(id.eq.1,id.eq.2))", [4]),
    ("or=(title.eq.\"Hello world\",title.in.(\"Bob, public\",\"Bob public\"))", [1, 4]),
    ("views=not.eq.10&published=eq.true", [2, 4]),
    ("data->>lang=in.(en,de)", [1, 4]),
    ("data->stars=gt.4", [1]),
]


@pytest.mark.parametrize("query,expected", OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operators(rest_server, query: str, expected: list[int]) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.get(f"/posts?select=id&order=id&{query}")
    assert r.status_code == 200, r.text
    assert ids(r.json()) == expected


def test_client_filter_methods(rest_server) -> None:
    t = lambda: supa(rest_server, rest_server.service_key).table("posts").select("id").order("id")
    assert ids(t().in_("id", [2, 4]).execute().data) == [2, 4]
    assert ids(t().contains("tags", ["intro"]).execute().data) == [1, 4]
    assert ids(t().contained_by("tags", ["news", "intro"]).execute().data) == [1, 2, 3, 4]
    assert ids(t().overlaps("tags", ["news"]).execute().data) == [1, 2]
    assert ids(t().is_("editor_id", "null").execute().data) == [2, 3]
    assert ids(t().not_.is_("editor_id", "null").execute().data) == [1, 4]
    assert ids(t().text_search("search", "quick & fox", options={"config": "english"}).execute().data) == [1, 4]
    assert ids(t().or_("id.eq.2,id.eq.3").execute().data) == [2, 3]
    assert ids(t().like_any_of("title", "Bob*,*world").execute().data) == [1, 3, 4]
    assert ids(t().match({"published": True, "views": 5}).execute().data) == [2]
    assert ids(t().range_gt("during", ("2023-01-01", "2023-02-01")).execute().data) == [1, 2]


def test_order_nulls_and_json(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = c.table("users").select("username").order("age", desc=True, nullsfirst=True).execute()
    assert [r["username"] for r in res.data] == ["carol", "alice", "bob"]
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/users?select=username&order=age.asc.nullslast")
        assert [x["username"] for x in r.json()] == ["bob", "alice", "carol"]
        r = h.get("/posts?select=id&order=data->>lang.desc.nullslast,id")
        assert ids(r.json()) == [2, 1, 4, 3]


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
        r = h.get("/posts?select=id&offset=10", headers={"Prefer": "count=exact"})
        assert r.status_code == 416 and r.json()["code"] == "PGRST103"
        assert r.headers["content-range"] == "*/4"
        r = h.get("/posts?select=id", headers={"Range": "3-1"})
        assert r.status_code == 416
        r = h.get("/posts?select=id&limit=-1")
        assert r.status_code == 416 and r.json()["details"] == "Limit should be greater than or equal to zero."
        for mode in ("planned", "estimated"):
            r = h.get("/posts?select=id", headers={"Prefer": f"count={mode}"})
            total = int(r.headers["content-range"].split("/")[1])
            assert total >= 1, r.headers
        r = h.get("/posts?select=id", headers={"Prefer": "count=estimated"})
        assert r.headers["content-range"] == "0-3/4"  # small tables are counted exactly


def test_head_with_count(rest_server) -> None:
    res = supa(rest_server, rest_server.service_key).table("posts").select("*", count="exact", head=True).execute()
    assert res.count == 4
    with raw(rest_server, rest_server.service_key) as h:
        r = h.head("/posts", headers={"Prefer": "count=exact"})
        assert r.status_code == 200 and r.content == b"" and r.headers["content-range"] == "0-3/4"
        r = h.get("/posts?select=id&id=eq.1")
        assert r.headers["content-location"] == "/posts?select=id&id=eq.1"


def test_embed_to_one_to_many_many_to_many(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = (c.table("posts")
           .select("id,author:users!author_id(username),comments(content,user:users(username)),tags(name)")
           .eq("id", 1).execute())
    row = res.data[0]
    assert row["author"] == {"username": "alice"}
    assert [x["content"] for x in row["comments"]] == ["Nice post", "Agreed"]
    assert row["comments"][1]["user"] == {"username": "carol"}
    assert sorted(t["name"] for t in row["tags"]) == ["postgres", "python"]
    # reverse many-to-many and one-to-one (profiles.user_id is the primary key)
    res = c.table("tags").select("name,posts(id)").eq("name", "postgres").execute()
    assert sorted(p["id"] for p in res.data[0]["posts"]) == [1, 2]
    res = c.table("users").select("username,profiles(bio)").order("username").execute()
    assert res.data[0]["profiles"] == {"bio": "Alice bio"} and res.data[1]["profiles"] is None


def test_embed_hints_fk_name_column_and_ambiguity(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/posts?select=id,editor:users!posts_editor_id_fkey(username)&id=eq.1")
        assert r.json() == [{"id": 1, "editor": {"username": "bob"}}]
        r = h.get("/posts?select=id,editor_id(username)&id=eq.4")
        assert r.json() == [{"id": 4, "editor_id": {"username": "alice"}}]
        r = h.get("/posts?select=id,users(username)")
        assert r.status_code == 300
        body = r.json()
        assert body["code"] == "PGRST201" and len(body["details"]) == 2
        assert "'users!posts_author_id_fkey'" in body["hint"]
        r = h.get("/posts?select=id,nothing(*)")
        assert r.status_code == 400 and r.json()["code"] == "PGRST200"
        r = h.get("/tags?select=id,users(*)")
        assert r.status_code == 400 and r.json()["code"] == "PGRST200"


def test_embed_inner_filters_order_limit_spread(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/posts?select=id,comments!inner(content)&comments.content=eq.Meow")
        assert r.json() == [{"id": 2, "comments": [{"content": "Meow"}]}]
        r = h.get("/posts?select=id,comments(content)&comments.content=eq.Meow&order=id")
        assert [len(x["comments"]) for x in r.json()] == [0, 1, 0, 0]
        r = h.get("/posts?select=id,comments(id,content)&comments.order=id.desc&comments.limit=1&id=eq.1")
        assert r.json()[0]["comments"] == [{"id": 2, "content": "Agreed"}]
        r = h.get("/posts?select=id,comments(content)&comments.or=(content.eq.Agreed,content.eq.Meow)&order=id")
        assert [len(x["comments"]) for x in r.json()] == [1, 1, 0, 0]
        r = h.get("/posts?select=id,title,...users!author_id(author_name:username)&id=eq.3")
        assert r.json() == [{"id": 3, "title": "Bob draft", "author_name": "bob"}]
        r = h.get("/posts?select=id,author:users!author_id(username)&order=author(username).desc,id")
        assert ids(r.json()) == [3, 4, 1, 2]
        r = h.get("/posts?select=id,editor:users!editor_id(id)&editor=not.is.null&order=id")
        assert ids(r.json()) == [1, 4]
        r = h.get("/posts?select=id,editor:users!editor_id(id)&editor=is.null&order=id")
        assert ids(r.json()) == [2, 3]
        r = h.get("/users?select=username,posts!author_id(count)&order=username")
        assert r.json()[0] == {"username": "alice", "posts": [{"count": 2}]}
        # filtering on an embed not in select
        r = h.get("/posts?select=id&comments.content=eq.x")
        assert r.status_code == 400 and r.json()["code"] == "PGRST108"
        r = h.get("/posts?select=id,users!author_id!inner()&users.username=eq.bob&order=id")
        assert r.json() == [{"id": 3}, {"id": 4}]  # an empty embed filters without being output
        r = h.get("/posts?select=&limit=2")
        assert r.json() == [{}, {}]
        r = h.get("/posts?select=id,comments(id)&comments=eq.1")
        assert r.status_code == 400 and r.json()["code"] == "PGRST120"
        r = h.get("/posts?select=id,comments(id)&order=comments(id)")
        assert r.status_code == 400 and r.json()["code"] == "PGRST118"


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
        r = h.get("/posts", headers={"Accept": "application/xml"})
        assert r.status_code == 406 and r.json()["code"] == "PGRST107"


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


def test_unknown_table_and_column(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/postz")
        assert r.status_code == 404 and r.json()["code"] == "PGRST205"
        assert r.json()["hint"] == "Perhaps you meant the table 'rest_fixture.posts'"
        r = h.get("/posts?select=nope")
        assert r.status_code == 400 and r.json()["code"] == "42703"
        r = h.get("/posts?nope=eq.1")
        assert r.status_code == 400 and r.json()["code"] == "42703"
        r = h.get("/posts?id=eq.notanumber")
        assert r.status_code == 400 and r.json()["code"] == "22P02"
        r = h.get("/a/b")
        assert r.status_code == 404 and r.json()["code"] == "PGRST125"


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
    from tests.conftest import sql

    sql(rest_server, "create table if not exists rest_fixture.codes (c char(3) primary key, b bit(3)); "
                     "grant all on rest_fixture.codes to service_role; "
                     "insert into rest_fixture.codes values ('abc', '101'), ('xyz', '011') on conflict do nothing; "
                     "notify pgrst, 'reload schema'")
    from tests.rest.conftest import wait_for_table

    wait_for_table(rest_server, "codes")
    with raw(rest_server, rest_server.service_key) as h:
        assert h.get("/codes?select=c&c=eq.abc").json() == [{"c": "abc"}]
        assert h.get("/codes?select=c&c=in.(abc,xyz)&b=eq.011").json() == [{"c": "xyz"}]
        assert h.get("/codes?select=c&c=like.a*").json() == [{"c": "abc"}]
