"""The pure parsing step (no server): many small examples, plus hypothesis throwing random input at
the parser (it may only answer with ApiError 4xx, never crash) and at a live server (never a 500,
never SQL from user input executed)."""

from __future__ import annotations

import dataclasses
import json as _json
import string

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownbase.rest import errors, sql
from ownbase.rest.request import (
    ColumnItem,
    EmbedItem,
    Field,
    Filter,
    Logic,
    Media,
    PlanMedia,
    negotiate,
    parse_order,
    parse_prefer,
    parse_query,
    parse_range,
    parse_select,
    plan_media,
    split_top,
)
from tests.conftest import sql as run_sql
from tests.rest.conftest import raw


def test_select_tree() -> None:
    items = parse_select("id,name:title,views::text,data->a->>b,author:users!fk!inner(id,...p(x)),c(count)")
    assert isinstance(items[0], ColumnItem) and items[0].field == Field("id")
    assert items[1].alias == "name" and items[1].field.name == "title"
    assert items[2].cast == "text"
    assert items[3].field == Field("data", (("->", "a"), ("->>", "b"))) and items[3].output_name == "b"
    emb = items[4]
    assert isinstance(emb, EmbedItem) and (emb.name, emb.alias, emb.hint, emb.join) == ("users", "author", "fk", "inner")
    assert isinstance(emb.children[1], EmbedItem) and emb.children[1].spread
    assert parse_select('"my col",*')[0].field.name == "my col"


@pytest.mark.parametrize("bad", ["id,", "(", "a(b", "a)", "x:", "*::text", "a::te;xt", "a!(b)", "...x"])
def test_select_errors(bad: str) -> None:
    with pytest.raises(errors.ApiError) as info:
        parse_select(bad)
    assert info.value.status == 400 and info.value.code == "PGRST100"


def test_filters_and_logic() -> None:
    req = parse_query([("id", "not.in.(1,\"a,b\")"), ("or", "(a.eq.1,and(b.gt.2,c.is.null))"),
                       ("rel.name", "ilike.*x*"), ("rel.limit", "3"), ("rel.order", "id.desc.nullslast"),
                       ("t", "fts(english).cat"), ("v", "like(any).{a*,b*}")], {}, method="GET")
    root = req.options[()]
    f = root.conditions[0]
    assert isinstance(f, Filter) and f.negate and f.op == "in" and f.value == ["1", "a,b"]
    logic = root.conditions[1]
    assert isinstance(logic, Logic) and logic.op == "or" and isinstance(logic.children[1], Logic)
    assert root.conditions[2].config == "english"
    assert root.conditions[3].quantifier == "any" and root.conditions[3].value == ["a*", "b*"]
    rel = req.options[("rel",)]
    assert rel.limit == 3 and rel.order[0].direction == "desc" and rel.order[0].nulls == "last"
    assert rel.conditions[0].op == "ilike"


@pytest.mark.parametrize("key,value", [("id", "5"), ("id", "xx.1"), ("id", "in.1,2"), ("id", "is.maybe"),
                                       ("or", "a.eq.1"), ("or", "(a.eq.1"), ("limit", "ten"), ("order", "a.up"),
                                       ("id", "eq"), ("id", "fts(x"), ("on_conflict", "a,,b")])
def test_filter_errors(key: str, value: str) -> None:
    with pytest.raises(errors.ApiError) as info:
        parse_query([(key, value)], {}, method="GET")
    assert info.value.status == 400 and info.value.code == "PGRST100"


def test_order_prefer_range_accept() -> None:
    terms = parse_order("a.desc,b.nullsfirst,rel(c).asc,d->>e")
    assert [(t.field.name, t.relation, t.direction, t.nulls) for t in terms] == [
        ("a", None, "desc", None), ("b", None, None, "first"), ("c", "rel", "asc", None), ("d", None, None, None)]
    prefs = parse_prefer(["return=representation, count=exact", "resolution=merge-duplicates,missing=default,x=y"])
    assert (prefs.return_, prefs.count, prefs.resolution, prefs.missing) == \
        ("representation", "exact", "merge-duplicates", "default")
    assert prefs.invalid == ["x=y"]
    with pytest.raises(errors.ApiError) as info:
        parse_prefer(["handling=strict, foo=bar"])
    assert info.value.code == "PGRST122"
    assert parse_range("0-9") == (0, 10) and parse_range("5-") == (5, None) and parse_range("junk") == (0, None)
    assert negotiate("application/vnd.pgrst.object+json") == "application/vnd.pgrst.object+json"
    assert negotiate("text/csv;q=0.5, application/json") == "application/json"
    with pytest.raises(errors.ApiError):
        negotiate("image/png")
    assert split_top('a,"b,c",(d,e),{f,g}') == ["a", '"b,c"', "(d,e)", "{f,g}"]


def test_media_and_plan_accept() -> None:
    assert Media.of(negotiate("application/vnd.pgrst.object+json")) is Media.OBJECT
    assert Media.of(negotiate("application/vnd.pgrst.array+json;nulls=stripped")) is Media.JSON_STRIPPED
    assert Media.of(negotiate("text/csv")).json_only() is Media.JSON
    assert Media.OBJECT.singular and not Media.JSON.singular and Media.JSON.single() is Media.OBJECT
    with pytest.raises(errors.ApiError):
        negotiate("application/geo+json")  # only offered where PostGIS is installed
    assert Media.of(negotiate("application/geo+json", geo=True)) is Media.GEOJSON
    assert plan_media("application/json") is None
    assert plan_media("application/vnd.pgrst.plan") == PlanMedia("text", "application/json", ())
    got = plan_media('application/vnd.pgrst.plan+json; for="text/csv"; options=analyze|bogus|verbose')
    assert got == PlanMedia("json", "text/csv", ("analyze", "verbose"))
    # the "for" media is echoed in the answer's Content-Type: anything but a plain media type is dropped
    assert plan_media('application/vnd.pgrst.plan; for="a\"b; x=y"').for_media == "application/json"


def test_rendering_never_inlines_values() -> None:
    params = sql.Params()
    assert sql.quote_ident('we"ird') == '"we""ird"'
    assert sql.cast_type("double precision") == "double precision" and sql.cast_type("int4[]") == "int4[]"
    with pytest.raises(errors.ApiError):
        sql.cast_type("text); drop table x; --")
    assert params.text("'; drop table x; --") == "$1::text" and params.values == ["'; drop table x; --"]


# --- property-based ---------------------------------------------------------------------------

NASTY = st.sampled_from(["'", '"', "(", ")", ",", ".", ":", "::", "->", "->>", "!", "*", "...", "{", "}",
                         "not.", "eq.", "in.(", "or=(", "\\", ";", "--", "drop table rest_fixture.kv",
                         "%", "\x00", "é", " "])
TOKEN = st.one_of(st.text(alphabet=string.ascii_letters + string.digits + "_", max_size=8), NASTY)
VALUE = st.lists(TOKEN, max_size=8).map("".join)
KEY = st.one_of(st.sampled_from(["select", "order", "limit", "offset", "or", "and", "not.or", "id", "title",
                                 "users.username", "comments.limit", "data->>lang", "on_conflict", "columns"]),
                VALUE)


@settings(max_examples=400, deadline=None)
@given(query=st.lists(st.tuples(KEY, VALUE), max_size=5), prefer=VALUE, range_=VALUE, accept=VALUE)
def test_parser_only_raises_api_errors(query, prefer, range_, accept) -> None:
    try:
        parse_query(query, {"prefer": prefer, "range": range_}, method="GET")
        negotiate(accept)
    except errors.ApiError as exc:
        assert 400 <= exc.status < 500


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=st.lists(st.tuples(KEY, VALUE), max_size=4), prefer=VALUE, accept=VALUE,
       method=st.sampled_from(["GET", "GET", "HEAD", "DELETE", "PATCH"]), table=st.sampled_from(["posts", "kv", "x"]))
def test_server_never_500(rest_server, query, prefer, accept, method, table) -> None:
    if method in ("DELETE", "PATCH"):
        table = "kv" if table == "posts" else table  # writes only where the fixture is re-seeded anyway
    with raw(rest_server, rest_server.service_key) as h:
        headers = {"Prefer": prefer, "Accept": accept or "*/*"}
        try:
            r = h.request(method, f"/{table}", params=query, headers=headers,
                          content=b'{"note": "x"}' if method == "PATCH" else None)
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
            return  # the client itself refuses (e.g. NUL bytes in a header); nothing reached us
        assert r.status_code < 500, (r.status_code, r.text, query)
        if r.status_code >= 400 and r.content:
            assert {"code", "message"} <= set(r.json())
    # every table is still there: nothing from the query string ran as SQL
    assert run_sql(rest_server, "select count(*) from rest_fixture.kv")[0][0] >= 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["k", "v", "note", "a", "b", "n", "zz", "xs", "key", "name", "author"]), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=JSON_VALUES, prefer=st.sampled_from(["", "return=representation", "return=minimal",
                                                  "resolution=merge-duplicates", "missing=default",
                                                  "params=single-object", "return=headers-only,count=exact"]),
       target=st.sampled_from(["/kv", "/kv?columns=k,v", "/kv?on_conflict=k", "/rpc/add", "/rpc/echo_json",
                               "/rpc/sum_array", "/rpc/hello", "/rpc/bump", "/rpc/nope", "/rpc/series"]),
       query=st.lists(st.tuples(KEY, VALUE), max_size=2))
def test_server_never_500_on_bodies(rest_server, body, prefer, target, query) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        try:
            r = h.post(target, params=query, content=_json.dumps(body).encode(),
                       headers={"Prefer": prefer, "Content-Type": "application/json"})
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
            return
        assert r.status_code < 500, (r.status_code, r.text, target, body)


def test_select_parses_are_cached_frozen_and_not_shared() -> None:
    text = "id,title,bench_comments!inner(id,body)"
    first, second = parse_select(text), parse_select(text)
    assert first == second and first is not second
    assert first[0] is second[0]  # the cached items themselves ...
    with pytest.raises(dataclasses.FrozenInstanceError):
        first[0].alias = "x"  # type: ignore[misc]  # ... which no request can change for the next
    first.append(first[0])  # a caller's own list
    assert len(parse_select(text)) == 3
    for _ in range(2):  # failures are not cached: each raises the same client error
        with pytest.raises(errors.ApiError):
            parse_select("id,(")
