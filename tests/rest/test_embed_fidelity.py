"""Embedding as PostgREST 12+ resolves it, on a real database: computed relationships (functions
taking a row; to-one with ROWS 1 or without SETOF, to-many otherwise), self-referencing tables,
hints, and the PGRST201 wording."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rest.conftest import raw, supa


def _get(handle, path: str):
    with raw(handle, handle.service_key) as c:
        return c.get(path)


def test_computed_relationships_to_one_and_to_many(rest_server) -> None:
    c = supa(rest_server, rest_server.service_key)
    res = c.table("users").select("username,profile:get_user_profile(bio)").order("username").execute()
    assert res.data == [{"username": "alice", "profile": {"bio": "Alice bio"}},
                        {"username": "bob", "profile": None}, {"username": "carol", "profile": None}]
    res = c.table("users").select("username,authored(id)").eq("username", "bob").execute()
    assert res.data == [{"username": "bob", "authored": [{"id": 3}, {"id": 4}]}]
    r = _get(rest_server, "/posts?select=id,author_row(username)&id=in.(1,3)&order=id")
    assert r.json() == [{"id": 1, "author_row": {"username": "alice"}}, {"id": 3, "author_row": {"username": "bob"}}]


def test_computed_relationships_filter_order_and_inner(rest_server) -> None:
    r = _get(rest_server, "/users?select=username,authored!inner(id)&authored.views=gt.6&order=username")
    assert r.json() == [{"username": "alice", "authored": [{"id": 1}]}, {"username": "bob", "authored": [{"id": 4}]}]
    r = _get(rest_server, "/users?select=username,profile:get_user_profile(bio)&profile=not.is.null")
    assert r.json() == [{"username": "alice", "profile": {"bio": "Alice bio"}}]
    r = _get(rest_server, "/posts?select=id,author_row(username)&order=author_row(username).desc,id")
    assert [x["id"] for x in r.json()] == [3, 4, 1, 2]


def test_self_referencing_table(rest_server) -> None:
    r = _get(rest_server, "/collections?select=*,collections(*)")
    assert r.status_code == 300 and r.json()["code"] == "PGRST201"
    assert r.json()["details"] == [
        {"cardinality": "one-to-many", "embedding": "collections with collections",
         "relationship": "collections_parent_id_fkey using collections(id) and collections(parent_id)"},
        {"cardinality": "many-to-one", "embedding": "collections with collections",
         "relationship": "collections_parent_id_fkey using collections(parent_id) and collections(id)"}]
    # children through the FK column hint, the parent through the FK column itself
    r = _get(rest_server, "/collections?select=id,kids:collections!parent_id(id),parent:parent_id(name)"
                          "&order=id&kids.order=id")
    assert r.json() == [
        {"id": 1, "kids": [{"id": 2}, {"id": 3}], "parent": None},
        {"id": 2, "kids": [{"id": 4}], "parent": {"name": "root"}},
        {"id": 3, "kids": [], "parent": {"name": "root"}},
        {"id": 4, "kids": [], "parent": {"name": "child a"}}]
    # a computed relationship, recursively
    r = _get(rest_server, "/collections?select=name,children(name,children(name))&id=eq.1")
    assert r.json() == [{"name": "root", "children": [{"name": "child a", "children": [{"name": "grandchild"}]},
                                                      {"name": "child b", "children": []}]}]


def test_pgrst201_wording_on_the_wire(rest_server) -> None:
    body = _get(rest_server, "/posts?select=*,users(*)").json()
    assert body["details"][0]["relationship"] == "posts_author_id_fkey using posts(author_id) and users(id)"
    assert body["hint"] == ("Try changing 'users' to one of the following: 'users!posts_author_id_fkey', "
                            "'users!posts_editor_id_fkey'. Find the desired relationship in the 'details' key.")
    body = _get(rest_server, "/users?select=*,posts(*)").json()
    assert [d["relationship"] for d in body["details"]] == [
        "posts_author_id_fkey using users(id) and posts(author_id)",
        "posts_editor_id_fkey using users(id) and posts(editor_id)"]


def test_computed_relationships_under_writes_and_function_results(reset) -> None:
    with raw(reset, reset.service_key) as c:
        r = c.patch("/users?username=eq.alice&select=username,profile:get_user_profile(bio)", json={"age": 31},
                    headers={"Prefer": "return=representation"})
        assert r.status_code == 200 and r.json() == [{"username": "alice", "profile": {"bio": "Alice bio"}}]
        r = c.get("/rpc/posts_by?author=00000000-0000-0000-0000-00000000000b&select=id,author_row(username)")
        assert r.status_code == 200 and r.json() == [{"id": 3, "author_row": {"username": "bob"}},
                                                     {"id": 4, "author_row": {"username": "bob"}}]


_NAMES = ["collections", "children", "parent_id", "get_user_profile", "authored", "author_row", "users", "posts",
          "profiles", "comments", "tags", "collections_parent_id_fkey", "posts_author_id_fkey", "post_tags", "id",
          "nope"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(["collections", "users", "posts"]),
       embeds=st.lists(st.tuples(st.sampled_from(_NAMES), st.none() | st.sampled_from(_NAMES),
                                 st.sampled_from(["*", "id", "count", "name", "username,id"]),
                                 st.sampled_from(["", "...", "x:"])), min_size=1, max_size=3),
       extra=st.sampled_from(["", "&order=id", "&children=not.is.null", "&authored.id=gt.1", "&limit=2"]))
def test_fuzz_embeds_never_5xx(rest_server, table: str, embeds: list, extra: str) -> None:
    parts = [f"{prefix}{name}{'!' + hint if hint else ''}({cols})" for name, hint, cols, prefix in embeds]
    r = _get(rest_server, f"/{table}?select=id,{','.join(parts)}{extra}")
    assert r.status_code < 500, (r.status_code, r.text)
