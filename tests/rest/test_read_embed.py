"""Resource embedding (PostgREST's embed specs): to-one, to-many, many-to-many, one-to-one, hints,
ambiguity, inner joins, embedded filters/order/limit, spreads, and the embedding errors."""

from __future__ import annotations

import pytest

from tests.rest.conftest import raw, supa
from tests.scenarios import Scenario, check, params


def ids(rows: list[dict]) -> list:
    return [r["id"] for r in rows]


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
        r = h.get("/posts?select=id,users!author_id!inner()&users.username=eq.bob&order=id")
        assert r.json() == [{"id": 3}, {"id": 4}]  # an empty embed filters without being output
        r = h.get("/posts?select=&limit=2")
        assert r.json() == [{}, {}]


EMBED_ERRORS = [
    Scenario("no relationship to that name", "GET", "/posts?select=id,nothing(*)", 400, "PGRST200"),
    Scenario("tables with no relationship", "GET", "/tags?select=id,users(*)", 400, "PGRST200"),
    Scenario("filter on an embed not in select", "GET", "/posts?select=id&comments.content=eq.x", 400, "PGRST108",
             "'comments' is not an embedded resource"),
    Scenario("operator other than is null on an embed", "GET", "/posts?select=id,comments(id)&comments=eq.1", 400,
             "PGRST120"),
    Scenario("related order on a to-many embed", "GET", "/posts?select=id,comments(id)&order=comments(id)", 400,
             "PGRST118"),
]


@pytest.mark.parametrize("scenario", params(EMBED_ERRORS))
def test_embed_errors(rest_server, scenario: Scenario) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        check(h, scenario)
