"""Property-based: random table specs, row bodies and query strings thrown at a real server.
Never a 500, always PostgREST's error shape, and nothing outside the caller's database changes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownbase.tables.spec import SCHEMA_PREFIX
from tests.conftest import ServerHandle, sql
from tests.tables.conftest import Api

TYPES = ["text", "int", "integer", "bigint", "smallint", "numeric", "real", "double precision", "float", "boolean",
         "uuid", "date", "time", "timestamp", "timestamptz", "json", "jsonb", "text[]", "int[]", "money", "serial",
         "Text", "", "text;", "integer[][]", "jsonb[]"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
names = st.one_of(st.sampled_from(["title", "id", "owner_id", "a b", "x" * 70, "1abc", "ok_name", "Δ", ""]),
                  st.text(max_size=12))
column = st.fixed_dictionaries(
    {"name": names, "type": st.sampled_from(TYPES)},
    optional={"nullable": st.one_of(st.booleans(), st.text(max_size=3)), "default": json_values,
              "unique": st.booleans(), "references": st.sampled_from(["base", "nope", "x;y", 3])},
)
spec = st.fixed_dictionaries({"name": names, "columns": st.lists(column, max_size=4)})

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_db(user_factory: Any) -> tuple[Api, str]:
    _, api = user_factory()
    db = "fz_" + uuid.uuid4().hex[:10]
    r = api.post(f"/{db}/tables", json={"name": "base", "columns": [
        {"name": "t", "type": "text"}, {"name": "n", "type": "integer"}, {"name": "d", "type": "date"},
        {"name": "j", "type": "jsonb"}, {"name": "a", "type": "text[]"}, {"name": "b", "type": "boolean"}]})
    assert r.status_code == 201, r.text
    return api, db


def _shape_ok(resp: Any) -> None:
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        body = resp.json()
        assert {"code", "message"} <= set(body), body


@FUZZ
@given(body=spec)
def test_random_table_specs_never_500(server: ServerHandle, fuzz_db: tuple[Api, str], body: dict[str, Any]) -> None:
    api, db = fuzz_db
    resp = api.post(f"/{db}/tables", json=body)
    _shape_ok(resp)
    if resp.status_code == 201:
        # Whatever was accepted really exists with exactly the declared columns.
        created = resp.json()
        cols = sql(server, "select column_name from information_schema.columns where table_schema = $1 and table_name = $2",
                   SCHEMA_PREFIX + db, created["name"])
        assert {c["column_name"] for c in cols} == {c["name"] for c in created["columns"]}
        assert api.delete(f"/{db}/tables/{created['name']}").status_code == 204


@FUZZ
@given(row=st.dictionaries(st.sampled_from(["t", "n", "d", "j", "a", "b", "id", "zz", "owner_id"]), json_values, max_size=5)
       | json_values)
def test_random_row_bodies_never_500(fuzz_db: tuple[Api, str], row: Any) -> None:
    api, db = fuzz_db
    resp = api.post(f"/{db}/tables/base/rows", content=json.dumps(row), headers={"content-type": "application/json"})
    _shape_ok(resp)


@FUZZ
@given(params=st.lists(st.tuples(st.sampled_from(["select", "order", "limit", "offset", "t", "n", "or", "and", "a", "j->x",
                                                   "not", "columns", "on_conflict"]),
                                 st.text(max_size=30)), max_size=4),
       headers=st.dictionaries(st.sampled_from(["prefer", "range", "accept", "accept-profile"]),
                               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip),
                               max_size=3))
def test_random_queries_never_500(server: ServerHandle, fuzz_db: tuple[Api, str], params: list[tuple[str, str]],
                                  headers: dict[str, str]) -> None:
    api, db = fuzz_db
    resp = api.get(f"/{db}/tables/base/rows", params=params, headers=headers)
    _shape_ok(resp)
    assert sql(server, "select to_regclass('ownbase.dynamic_tables') is not null as ok")[0]["ok"]
