"""Planning and rendering writes and function calls without a database (as reads are in
test_plan.py): columns and conflict targets, PUT's checks, the representation, overload choice as
PostgREST makes it, and the SQL text (identifiers quoted, every value a parameter)."""

from __future__ import annotations

import json

import pytest

from ownbase.rest import errors, plan_call, plan_write, sql
from ownbase.rest.execute import tx_end
from ownbase.rest.plan import Planner
from ownbase.rest.request import Media, parse_query
from ownbase.rest.schema_cache import Arg, Function, SchemaCache
from tests.rest.test_plan import _table


@pytest.fixture()
def cache() -> SchemaCache:
    kv = _table("kv", "k", "v", "note", pk=("k",))
    return SchemaCache(("s",), {kv.qualified: kv}, [], {
        ("s", "f"): [
            Function("s", "f", [Arg("a", "integer", False, "i"), Arg("b", "integer", True, "i")], "integer", False,
                     "i", "scalar"),
            Function("s", "f", [Arg("", "jsonb", False, "i")], "jsonb", False, "i", "scalar"),
            Function("s", "f", [Arg("x", "text", False, "i")], "text", False, "i", "scalar"),
        ],
        ("s", "d"): [
            Function("s", "d", [Arg("", "text", True, "i")], "text", False, "i", "scalar"),
            Function("s", "d", [Arg("", "integer", True, "i")], "text", False, "i", "scalar"),
        ],
        ("s", "t"): [Function("s", "t", [Arg("", "text", False, "i")], "text", False, "i", "scalar")],
        ("s", "rows"): [Function("s", "rows", [Arg("n", "integer", False, "i")], "integer", True, "v", "scalar")],
    })


def _req(query: list[tuple[str, str]], method: str, prefer: str = ""):
    return parse_query(query, {"prefer": prefer} if prefer else {}, method=method)


def test_insert_plan_and_sql(cache: SchemaCache) -> None:
    p = Planner(cache, "s")
    kv = p.table("kv")
    body = [{"k": "a", "v": 1}, {"k": "b", "v": 2}]
    plan = plan_write.insert(p, kv, _req([("select", "k")], "POST", "resolution=merge-duplicates"), body,
                             json.dumps(body))
    assert plan.op is plan_write.Op.INSERT and [c.name for c in plan.columns] == ["k", "v"]
    assert plan.on_conflict == ["k"] and plan.resolution == "merge-duplicates" and plan.reports_resolution
    params = sql.Params()
    text = sql.write_statement(plan, params, returning=True, mode=Media.JSON)
    assert 'INSERT INTO "s"."kv"' in text and 'ON CONFLICT ("k") DO UPDATE SET "v" = EXCLUDED."v"' in text
    assert params.values == [json.dumps(body)] and "pgrst_inserted" in text
    bare = sql.write_statement(plan, sql.Params(), returning=False, mode=Media.JSON)
    assert "RETURNING" not in bare and "WITH pgrst_source" not in bare
    empty = plan_write.insert(p, kv, _req([], "POST"), [], "[]")
    assert empty.nothing


@pytest.mark.parametrize("body,code,message", [
    ([{"k": "a"}, {"v": 1}], "PGRST102", "All object keys must match"),
    ({"nope": 1}, "PGRST204", "Could not find the 'nope' column of 'kv' in the schema cache"),
    ([1, 2], "PGRST102", "Empty or invalid json"),
])
def test_insert_errors(cache: SchemaCache, body: object, code: str, message: str) -> None:
    p = Planner(cache, "s")
    with pytest.raises(errors.ApiError) as info:
        plan_write.insert(p, p.table("kv"), _req([], "POST"), body, json.dumps(body))
    assert (info.value.code, info.value.message) == (code, message)


def test_update_delete_with_filters_and_limit(cache: SchemaCache) -> None:
    p = Planner(cache, "s")
    req = _req([("v", "gt.1"), ("order", "k"), ("limit", "2")], "PATCH")
    plan = plan_write.update(p, p.table("kv"), req, {"note": "x"}, '{"note": "x"}')
    params = sql.Params()
    text = sql.write_statement(plan, params, returning=False, mode=Media.JSON)
    assert text.startswith('UPDATE "s"."kv" AS "t0" SET "note" = _r."note"')
    assert "ctid = ANY(ARRAY(SELECT" in text and "LIMIT 2" in text
    assert sorted(map(str, params.values)) == ['1', '{"note": "x"}']
    assert plan_write.update(p, p.table("kv"), req, {}, "{}").nothing
    plan = plan_write.delete(Planner(cache, "s"), p.table("kv"), _req([("k", "eq.a")], "DELETE"))
    text = sql.write_statement(plan, sql.Params(), returning=True, mode=Media.JSON)
    assert 'DELETE FROM "s"."kv" AS "t0" WHERE' in text and "RETURNING" in text


@pytest.mark.parametrize("query,body,code", [
    ([("k", "gt.a")], {"k": "a"}, "PGRST105"),
    ([("v", "eq.1")], {"k": "a"}, "PGRST105"),
    ([("k", "eq.a"), ("limit", "1")], {"k": "a"}, "PGRST114"),
    ([("k", "eq.a")], {"k": "b"}, "PGRST115"),
])
def test_put_checks(cache: SchemaCache, query: list[tuple[str, str]], body: dict, code: str) -> None:
    p = Planner(cache, "s")
    kv = p.table("kv")
    req = _req(query, "PUT")
    with pytest.raises(errors.ApiError) as info:
        plan_write.put(p, kv, req, body, plan_write.put_filters(kv, req), json.dumps)
    assert info.value.code == code


def test_put_plan(cache: SchemaCache) -> None:
    p = Planner(cache, "s")
    kv = p.table("kv")
    req = _req([("k", "eq.a")], "PUT")
    plan = plan_write.put(p, kv, req, {"k": "a", "v": 3}, plan_write.put_filters(kv, req), json.dumps)
    assert plan.op is plan_write.Op.PUT and plan.resolution == "merge-duplicates" and plan.on_conflict == ["k"]
    assert plan.returned.conditions == []  # the filters only name the row


def test_overload_choice(cache: SchemaCache) -> None:
    def choose(name: str, keys: list[str], kind: str = "application/json", **kw: bool) -> plan_call.CallPlan:
        return plan_call.choose(cache, "s", name, keys, kind=kind, post=True, single_object=kw.get("single", False),
                                array=kw.get("array", False))

    assert choose("f", ["a"]).function.in_args[0].name == "a"
    assert choose("f", ["b", "a"]).names == ["b", "a"]
    assert choose("f", ["x"]).function.return_type == "text"
    whole = choose("f", ["zz"])  # nothing matches: the single unnamed jsonb parameter takes the body
    assert whole.whole and whole.function.in_args[0].type == "jsonb"
    assert choose("f", [], array=True).whole
    assert choose("f", ["q"], single=True).whole
    assert choose("t", [], kind="text/plain").whole
    with pytest.raises(errors.ApiError) as info:
        choose("d", [])
    assert info.value.code == "PGRST203" and info.value.message.endswith("s.d( => integer), s.d( => text)")
    with pytest.raises(errors.ApiError) as info:
        choose("f", [], kind="text/plain")
    assert info.value.code == "PGRST202" and info.value.details.startswith(
        "Searched for the function s.f with a single unnamed text parameter")
    with pytest.raises(errors.ApiError) as info:
        choose("rows", [], array=True)
    assert info.value.code == "PGRST127"


def test_call_statements(cache: SchemaCache) -> None:
    params = sql.Params()
    plan = plan_call.choose(cache, "s", "rows", ["n"], kind="application/json", post=True, single_object=False)
    text = sql.call_statement(plan, params, '{"n": 3}', mode=Media.JSON, count=True, limit=2, offset=1)
    assert text.startswith('WITH pgrst_call AS (SELECT _f.v FROM json_to_record($1::text::json) AS _a("n" integer) '
                           'CROSS JOIN LATERAL "s"."rows"("n" := _a."n") AS _f(v))')
    assert "(SELECT count(*) FROM pgrst_call) AS total" in text and "LIMIT 2 OFFSET 1" in text
    params = sql.Params()
    plan = plan_call.choose(cache, "s", "t", [], kind="text/plain", post=True, single_object=False)
    text = sql.call_statement(plan, params, "raw'; drop", mode=Media.JSON, count=False)
    assert '"s"."t"($1::text::text)' in text and params.values == ["raw'; drop"]


@pytest.mark.parametrize("setting,preferred,expected", [
    ("commit", None, (False, None)),
    ("commit", "rollback", (False, None)),  # PostgREST's default: the preference is ignored
    ("commit-allow-override", None, (False, None)),
    ("commit-allow-override", "rollback", (True, "rollback")),
    ("commit-allow-override", "commit", (False, "commit")),
    ("rollback", "commit", (True, None)),
    ("rollback-allow-override", None, (True, None)),
    ("rollback-allow-override", "commit", (False, "commit")),
])
def test_tx_end(setting: str, preferred: str | None, expected: tuple[bool, str | None]) -> None:
    assert tx_end(setting, preferred) == expected
