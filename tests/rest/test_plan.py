"""Planning and rendering without a server: a hand-built schema cache, relationships of each kind,
ambiguity, and the SQL text (identifiers quoted, every value a parameter)."""

from __future__ import annotations

import pytest

from ownbase.rest import errors, sql
from ownbase.rest.plan import Planner
from ownbase.rest.request import Media, parse_query
from ownbase.rest.schema_cache import Column, ComputedRel, ForeignKey, SchemaCache, Table


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
                              mode=Media.JSON, max_rows=1000)
    assert "drop table" not in text
    assert sorted(params.values) == ["%a%", "x'; drop table s.users; --"]
    assert '"s"."posts" AS "t0"' in text and "LEFT JOIN LATERAL" in text and "LIMIT 10" in text
    assert "json_agg" in text and "count(*)" in text


# --- relationship resolution as PostgREST words and orders it -------------------------------------

def _ambiguous(cache: SchemaCache, table: str, select: str) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as info:
        plan(cache, table, [("select", select)])
    assert info.value.code == "PGRST201" and info.value.status == 300
    return info.value


def test_pgrst201_wording_and_order(cache: SchemaCache) -> None:
    err = _ambiguous(cache, "posts", "id,users(name)")
    assert err.details == [
        {"cardinality": "many-to-one", "embedding": "posts with users",
         "relationship": "posts_author_fk using posts(author_id) and users(id)"},
        {"cardinality": "many-to-one", "embedding": "posts with users",
         "relationship": "posts_editor_fk using posts(editor_id) and users(id)"}]
    assert err.hint == ("Try changing 'users' to one of the following: 'users!posts_author_fk', "
                        "'users!posts_editor_fk'. Find the desired relationship in the 'details' key.")
    # from the referenced side the columns are listed from the embedding table first
    err = _ambiguous(cache, "users", "id,posts(id)")
    assert [d["relationship"] for d in err.details] == [
        "posts_author_fk using users(id) and posts(author_id)",
        "posts_editor_fk using users(id) and posts(editor_id)"]
    assert {d["cardinality"] for d in err.details} == {"one-to-many"}


def _graph() -> SchemaCache:
    """agents ⇄ departments (one FK each way), a self-referencing tree, and two junctions
    between projects and sites."""
    agents = _table("agents", "id", "department_id")
    departments = _table("departments", "id", "head_id")
    tree = _table("tree", "id", "parent_id")
    projects = _table("projects", "id")
    sites = _table("sites", "id")
    jobs = _table("jobs", "site_id", "project_id", pk=("site_id", "project_id"))
    main_jobs = _table("main_jobs", "site_id", "project_id", pk=("site_id", "project_id"))
    fks = [
        ForeignKey("agents_department_id_fkey", "s", "agents", ("department_id",), "s", "departments", ("id",)),
        ForeignKey("departments_head_id_fkey", "s", "departments", ("head_id",), "s", "agents", ("id",)),
        ForeignKey("tree_parent_id_fkey", "s", "tree", ("parent_id",), "s", "tree", ("id",)),
        ForeignKey("jobs_site_id_fkey", "s", "jobs", ("site_id",), "s", "sites", ("id",)),
        ForeignKey("jobs_project_id_fkey", "s", "jobs", ("project_id",), "s", "projects", ("id",)),
        ForeignKey("main_jobs_site_id_fkey", "s", "main_jobs", ("site_id",), "s", "sites", ("id",)),
        ForeignKey("main_jobs_project_id_fkey", "s", "main_jobs", ("project_id",), "s", "projects", ("id",)),
    ]
    tables = {t.qualified: t for t in (agents, departments, tree, projects, sites, jobs, main_jobs)}
    return SchemaCache(("s",), tables, fks, {})


def test_pgrst201_order_one_to_many_first_and_many_to_many() -> None:
    g = _graph()
    err = _ambiguous(g, "agents", "*,departments(*)")
    assert err.details == [
        {"cardinality": "one-to-many", "embedding": "agents with departments",
         "relationship": "departments_head_id_fkey using agents(id) and departments(head_id)"},
        {"cardinality": "many-to-one", "embedding": "agents with departments",
         "relationship": "agents_department_id_fkey using agents(department_id) and departments(id)"}]
    assert "'departments!departments_head_id_fkey', 'departments!agents_department_id_fkey'" in err.hint
    err = _ambiguous(g, "projects", "*,sites(*)")
    assert [d["relationship"] for d in err.details] == [
        "jobs using jobs_project_id_fkey(project_id) and jobs_site_id_fkey(site_id)",
        "main_jobs using main_jobs_project_id_fkey(project_id) and main_jobs_site_id_fkey(site_id)"]
    assert {d["cardinality"] for d in err.details} == {"many-to-many"}
    assert "'sites!jobs', 'sites!main_jobs'" in err.hint
    root = plan(g, "projects", [("select", "id,sites!main_jobs(id)")])
    assert root.embeds[0].rel.junction is not None and root.embeds[0].rel.junction.name == "main_jobs"


def test_self_reference_resolution() -> None:
    g = _graph()
    err = _ambiguous(g, "tree", "*,tree(*)")
    assert [d["cardinality"] for d in err.details] == ["one-to-many", "many-to-one"]
    assert err.details[0]["relationship"] == "tree_parent_id_fkey using tree(id) and tree(parent_id)"
    # hinted by the foreign-key column: the children (as PostgREST's family_tree!parent)
    root = plan(g, "tree", [("select", "id,children:tree!parent_id(id)")])
    assert root.embeds[0].rel.kind == "o2m"
    # the foreign-key column as the name: the parent
    root = plan(g, "tree", [("select", "id,parent_id(id)")])
    assert root.embeds[0].rel.kind == "m2o"


def test_computed_relationship_wins_and_renders_a_function_call() -> None:
    g = _graph()
    g.tables[("s", "tree")].computed_rels["kids"] = ComputedRel("kids", '"s"."kids"', ("s", "tree"), False)
    g.tables[("s", "tree")].computed_rels["tree"] = ComputedRel("tree", '"s"."tree"', ("s", "tree"), True)
    root = plan(g, "tree", [("select", "id,kids(id),tree(id)")])
    assert [e.rel.kind for e in root.embeds] == ["computed", "computed"]
    assert [e.rel.to_one for e in root.embeds] == [False, True]  # the function overrides the ambiguous FK
    params = sql.Params()
    text = sql.read_statement(root, params, source=sql.qualified(root.table), limit=None, offset=0, count=None,
                              mode=Media.JSON, max_rows=1000)
    assert '"s"."kids"(ROW("t0"."id", "t0"."parent_id")::"s"."tree")' in text and '"s"."tree"(ROW(' in text
