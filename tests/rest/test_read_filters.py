"""Horizontal filtering (PostgREST's filter specs): every operator with its modifiers, logic trees,
JSON paths, the client's filter methods, and ordering."""

from __future__ import annotations

import pytest

from tests.rest.conftest import BOB, raw, supa


def ids(rows: list[dict]) -> list:
    return [r["id"] for r in rows]


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
