"""Planning and rendering without a server: a hand-built schema cache, relationships of each kind,
ambiguity, and the SQL text (identifiers quoted, every value a parameter)."""

from __future__ import annotations

import pytest

from ownbase.rest import errors, sql
from ownbase.rest.plan import Planner
from ownbase.rest.request import parse_query
from ownbase.rest.schema_cache import Column, ForeignKey, SchemaCache, Table


def _table(name: str, *cols: str, pk: tuple[str, ...] = ("id",)) -> Table:
    columns = {c: Column(c, "integer" if c.endswith("id") else "text", True, None, i + 1, base_type="integer"
                         if c.endswith("id") else "text") for i, c in enumerate(cols)}
    return Table("s", name, "r", columns, pk=pk, uniques=(pk,))


@pytest.fixture()
def cache() -> SchemaCache:
    users = _table("users", "id", "name")
    posts = _table("posts", "id", "author_id", "editor_id", "title")
    tags = _table("tags", "id", "label")
    post_tags = _table("post_tags", "post_id", "tag_id", pk=("post_id", "tag_id"))
    profiles = _table("profiles", "user_id", "bio", pk=("user_id",))
    fks = [
        ForeignKey("posts_author_fk", "s", "posts", ("author_id",), "s", "users", ("id",)),
        ForeignKey("posts_editor_fk", "s", "posts", ("editor_id",), "s", "users", ("id",)),
        ForeignKey("pt_post_fk", "s", "post_tags", ("post_id",), "s", "posts", ("id",)),
        ForeignKey("pt_tag_fk", "s", "post_tags", ("tag_id",), "s", "tags", ("id",)),
        ForeignKey("profiles_user_fk", "s", "profiles", ("user_id",), "s", "users", ("id",)),
    ]
    tables = {t.qualified: t for t in (users, posts, tags, post_tags, profiles)}
    return SchemaCache(("s",), tables, fks, {})


def plan(cache: SchemaCache, table: str, query: list[tuple[str, str]]):
    p = Planner(cache, "s")
    req = parse_query(query, {}, method="GET")
    return p.read(p.table(table), req.select, req.options)


def test_relationship_kinds(cache: SchemaCache) -> None:
    root = plan(cache, "posts", [("select", "id,tags(label),author:users!author_id(name)")])
    assert [e.rel.kind for e in root.embeds] == ["m2m", "m2o"]
    root = plan(cache, "users", [("select", "id,profiles(bio),posts!posts_author_fk(id)")])
    assert [e.rel.kind for e in root.embeds] == ["o2o", "o2m"]
    assert root.embeds[0].rel.to_one and not root.embeds[1].rel.to_one


def test_ambiguity_and_missing(cache: SchemaCache) -> None:
    with pytest.raises(errors.ApiError) as info:
        plan(cache, "posts", [("select", "id,users(name)")])
    assert info.value.code == "PGRST201" and info.value.status == 300
    assert {d["cardinality"] for d in info.value.details} == {"many-to-one"}
    with pytest.raises(errors.ApiError) as info:
        plan(cache, "tags", [("select", "id,users(name)")])
    assert info.value.code == "PGRST200"
    with pytest.raises(errors.ApiError) as info:
        plan(cache, "post", [])
    assert info.value.code == "PGRST205" and info.value.hint == "Perhaps you meant the table 's.posts'"
    with pytest.raises(errors.ApiError) as info:
        plan(cache, "posts", [("select", "nope")])
    assert info.value.code == "42703"


def test_rendered_sql_is_parameterised(cache: SchemaCache) -> None:
    root = plan(cache, "posts", [("select", "id,title,author:users!author_id(name)"),
                                 ("title", "eq.x'; drop table s.users; --"), ("author.name", "like.*a*"),
                                 ("order", "author(name).desc")])
    params = sql.Params()
    text = sql.read_statement(root, params, source=sql.qualified(root.table), limit=10, offset=0, count="exact",
                              mode="json", max_rows=1000)
    assert "drop table" not in text
    assert sorted(params.values) == ["%a%", "x'; drop table s.users; --"]
    assert '"s"."posts" AS "t0"' in text and "LEFT JOIN LATERAL" in text and "LIMIT 10" in text
    assert "json_agg" in text and "count(*)" in text
