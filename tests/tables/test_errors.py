"""/db/v1's error answers, as scenario tables (tests/scenarios.py): each case is a row naming the
request and the status, code, text and headers that must come back. Every error is /rest/v1's
error type, so both APIs answer in PostgREST's shape with the same headers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ownbase.rest.errors import ApiError
from ownbase.tables import errors
from tests.conftest import ServerHandle
from tests.scenarios import Scenario, check, params
from tests.tables.conftest import Api, create

NEW_TABLE = {"name": "t", "columns": []}
BEARER = {"WWW-Authenticate": "Bearer"}
LIMIT = 10 * 1024 * 1024  # OWNBASE_MAX_BODY_BYTES' default

# Database and table endpoints; {db} is a fresh database id of the caller.
TABLE_ERRORS = [
    Scenario("token that is not a JWT", "GET", "/{db}/tables", 401, "PGRST301",
             headers={"Authorization": "Bearer not-a-jwt"}, response_headers=BEARER),
    Scenario("anon key only", "GET", "/{db}/tables", 401, "42501", "needs a signed-in user",
             headers={"Authorization": "Bearer {anon}"}, response_headers=BEARER),
    Scenario("token without sub", "POST", "/{db}/tables", 403, "42501", "sub", body={"name": "x", "columns": []},
             headers={"Authorization": "Bearer {no_sub}"}),
    Scenario("invalid json", "POST", "/{db}/tables", 400, "PGRST102", "Empty or invalid json",
             body=b"{not json", headers={"content-type": "application/json"}),
    Scenario("body over the limit", "POST", "/{db}/tables", 413, "PGRST102", f"Request body exceeds {LIMIT} bytes",
             body=b" " * (LIMIT + 1), headers={"content-type": "application/json"}),
    *[Scenario(f"reserved database id {name}", "POST", f"/{name}/tables", 400, "22023", "database_id", body=NEW_TABLE)
      for name in ("public", "auth", "pg_catalog", "ownbase", "Bad-Name")],
    Scenario("unknown path", "GET", "/{db}/nothing/here", 404, "PGRST125", "Paths: /db/v1/{{database_id}}/tables",
             response_headers={"Proxy-Status": "PostgREST; error=PGRST125"}),
    Scenario("PUT on tables", "PUT", "/{db}/tables", 405, "PGRST117", "Allowed here: GET, POST", body={},
             response_headers={"Allow": "GET, POST", "Proxy-Status": "PostgREST; error=PGRST117"}),
    Scenario("PATCH on the rows collection (no mass updates)", "PATCH", "/{db}/tables/items/rows", 405, "PGRST117",
             "PATCH", body={"a": 1}, response_headers={"Allow": "GET, HEAD, POST"}),
]


@pytest.mark.parametrize("scenario", params(TABLE_ERRORS))
def test_table_endpoint_errors(server: ServerHandle, alice: tuple[str, Api], mint: Any, dbname: str,
                               scenario: Scenario) -> None:
    check(alice[1].http, scenario, db=dbname, anon=server.anon_key, no_sub=mint(None))


# Row endpoints of Alice's `items` table (tests/tables/conftest.py SHOP_SPEC); {rid} is a row of
# it, {missing} a uuid no row has.
ROW_ERRORS = [
    *[Scenario(f"{method} a missing row{' (return=minimal)' if minimal else ''}", method,
               "/{db}/tables/items/rows/{missing}", 404, "PGRST116", "Could not find a row",
               body={"qty": 1} if method == "PATCH" else None,
               headers={"Prefer": "return=minimal"} if minimal else {})
      for method, minimal in (("GET", False), ("PATCH", False), ("PATCH", True), ("DELETE", False), ("DELETE", True))],
    Scenario("row id that is not a uuid", "GET", "/{db}/tables/items/rows/not-a-uuid", 400, "22P02",
             'invalid input syntax for type uuid: "not-a-uuid"'),
    Scenario("invalid json", "POST", "/{db}/tables/items/rows", 400, "PGRST102", "Empty or invalid json",
             body=b"{oops", headers={"content-type": "application/json"}),
    Scenario("form body", "POST", "/{db}/tables/items/rows", 400, "PGRST102", "Content-Type not acceptable",
             body=b"title=x", headers={"content-type": "application/x-www-form-urlencoded"}),
    Scenario("a bulk row that is not an object", "POST", "/{db}/tables/items/rows", 400, "PGRST102",
             "must be a JSON object", body=[{"title": "ok"}, "not an object"]),
    Scenario("update naming no column", "PATCH", "/{db}/tables/items/rows/{rid}", 400, "PGRST102",
             "names no column", body={}),
    Scenario("update with an array", "PATCH", "/{db}/tables/items/rows/{rid}", 400, "PGRST102",
             "must be a JSON object", body=[{"qty": 1}]),
    Scenario("update of the id", "PATCH", "/{db}/tables/items/rows/{rid}", 400, "PGRST204", "set by the server",
             body={"id": str(uuid.uuid4())}),
    Scenario("update with a bad value", "PATCH", "/{db}/tables/items/rows/{rid}", 400, "22P02", "'qty'",
             body={"qty": "x"}),
    Scenario("unknown table", "GET", "/{db}/tables/nope/rows", 404, "PGRST205", "nope"),
    Scenario("unknown database", "GET", "/{other_db}/tables/items/rows", 404, "PGRST205", "{other_db}"),
    Scenario("invalid table name", "GET", "/{db}/tables/Bad-Name/rows", 400, "22023", "Bad-Name"),
]


@pytest.mark.parametrize("scenario", params(ROW_ERRORS))
def test_row_endpoint_errors(shop: tuple[str, Api, str], scenario: Scenario) -> None:
    _, api, db = shop
    rid = api.post(f"/{db}/tables/items/rows", json={"title": "x"}).json()[0]["id"]
    check(api.http, scenario, db=db, rid=rid, missing=str(uuid.uuid4()), other_db=f"db_{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("spec,field,needle", [
    ({"name": "t", "columns": [{"name": "c", "type": "money"}]}, "columns.c.type", "not allowed"),
    ({"name": "t", "columns": [{"name": "c", "type": "jsonb[]"}]}, "columns.c.type", "not allowed"),
    ({"name": "t", "columns": [{"name": "c"}]}, "columns.c.type", "'type' must be one of"),
    ({"name": "t", "columns": [{"name": "c", "type": "int", "default": "abc"}]}, "columns.c.default", "expected an integer"),
    ({"name": "t", "columns": [{"name": "c", "type": "smallint", "default": 70000}]}, "columns.c.default", "out of range"),
    ({"name": "t", "columns": [{"name": "c", "type": "date", "default": "2024-02-30"}]}, "columns.c.default", "ISO date"),
    ({"name": "t", "columns": [{"name": "c", "type": "uuid", "default": "now()"}]}, "columns.c.default", "expected a uuid"),
    ({"name": "t", "columns": [{"name": "c", "type": "text", "nullable": "no"}]}, "columns.c.nullable", "true or false"),
    ({"name": "t", "columns": [{"name": "c", "type": "text", "check": "1=1"}]}, "columns[0]", "unknown key"),
    ({"name": "t", "columns": [{"name": "id", "type": "text"}]}, "columns.id.name", "created automatically"),
    ({"name": "t", "columns": [{"name": "Bad Name", "type": "text"}]}, "columns[0].name", "invalid column name"),
    ({"name": "t", "columns": [{"name": "a", "type": "text"}, {"name": "a", "type": "int"}]}, "columns.a.name", "declared twice"),
    ({"name": "t", "columns": [{"name": "r", "type": "int", "references": "t"}]}, "columns.r.type", "must be uuid"),
    ({"name": "t", "columns": [{"name": "r", "references": "nowhere"}]}, "columns.r.references", "not a table"),
    ({"name": "t; drop table x", "columns": []}, "name", "invalid table name"),
    ({"name": "t", "columns": "title text"}, "columns", "must be an array"),
    ({"name": "t", "columns": [], "owner": "x"}, "owner", "unknown key"),
])
def test_invalid_specs_are_400_naming_the_field(alice: tuple[str, Api], dbname: str, spec: dict[str, Any],
                                                field: str, needle: str) -> None:
    r = create(alice[1], dbname, spec)
    assert r.status_code == 400, r.text
    body = r.json()
    assert needle in body["message"], body
    if body["details"] is not None:
        assert body["details"] == f"field: {field}"
    else:
        assert field in body["message"]


@pytest.mark.parametrize("row,field,needle", [
    ({"title": 5}, "title", "expected a string"),
    ({"title": "x", "qty": "many"}, "qty", "expected an integer"),
    ({"title": "x", "qty": 1.5}, "qty", "expected an integer"),
    ({"title": "x", "qty": True}, "qty", "got a boolean"),
    ({"title": "x", "small": 40000}, "small", "out of range"),
    ({"title": "x", "price": "12,50"}, "price", "expected a number"),
    ({"title": "x", "ratio": [1]}, "ratio", "expected a number"),
    ({"title": "x", "active": "yes"}, "active", "true or false"),
    ({"title": "x", "ref": "123"}, "ref", "expected a uuid"),
    ({"title": "x", "day": "01/02/2024"}, "day", "ISO date"),
    ({"title": "x", "at": "yesterday"}, "at", "ISO timestamp"),
    ({"title": "x", "tags": "a,b"}, "tags", "expected an array"),
    ({"title": "x", "nums": [1, "two"]}, "nums", "element 1"),
    ({"title": None}, "title", "null is not allowed"),
    ({"qty": 3}, "title", "required"),
    ({"title": "x", "nope": 1}, "nope", "Could not find the 'nope' column"),
    ({"title": "x", "created_at": "2024-01-01T00:00:00Z"}, "created_at", "set by the server"),
    ({"title": "x", "owner_id": str(uuid.uuid4())}, "owner_id", "set by the server"),
    ({"title": "x", "id": "nope"}, "id", "expected a uuid"),
])
def test_invalid_values_are_400_naming_the_field(shop: tuple[str, Api, str], row: dict[str, Any], field: str,
                                                 needle: str) -> None:
    _, api, db = shop
    r = api.post(f"/{db}/tables/items/rows", json=row)
    assert r.status_code == 400, r.text
    body = r.json()
    assert needle in body["message"] and f"'{field}'" in body["message"], body
    assert body["details"] == f"field: {field}"
    assert set(body) == {"code", "message", "details", "hint"}


def test_bulk_rows_are_checked_one_by_one_and_postgres_has_the_last_word(shop: tuple[str, Api, str]) -> None:
    _, api, db = shop
    # Bulk rows are checked one by one, and the message says which field.
    r = api.post(f"/{db}/tables/items/rows", json=[{"title": "ok"}, {"title": "ok2", "qty": "x"}])
    assert r.status_code == 400 and "'qty'" in r.json()["message"]
    assert api.get(f"/{db}/tables/items/rows?title=eq.ok").json() == []  # nothing of it was inserted
    # PostgreSQL still has the last word (unique constraint → 409 as PostgREST maps 23505).
    assert api.post(f"/{db}/tables/items/rows", json={"title": "a", "sku": "dup"}).status_code == 201
    r = api.post(f"/{db}/tables/items/rows", json={"title": "b", "sku": "dup"})
    assert r.status_code == 409 and r.json()["code"] == "23505"


def test_every_error_is_the_rest_error_type() -> None:
    """/db/v1 has no error type of its own: its catalog builds /rest/v1's ApiError."""
    samples = [errors.credentials("m", "expired"), errors.signed_in_required(), errors.invalid_body(),
               errors.body_too_large(1), errors.method_not_allowed("PUT", "GET"), errors.invalid_path(),
               errors.invalid_spec("m", "f"), errors.row_not_found("t", "r"), errors.quota("q"),
               errors.from_postgres("22P02", "m", None), errors.unavailable("m")]
    assert all(type(e) is ApiError for e in samples)
    assert not [name for name, value in vars(errors).items()
                if isinstance(value, type) and issubclass(value, Exception) and value is not ApiError]
    assert errors.credentials("m", "expired").code == "PGRST303"
    assert errors.invalid_body().body() == {"code": "PGRST102", "details": None, "hint": None,
                                            "message": "Empty or invalid json"}
