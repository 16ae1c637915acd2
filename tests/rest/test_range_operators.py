"""Every range operator of /rest/v1 (sl sr nxl nxr adj ov cs cd) against PostgreSQL's own answer
for the same expression, over int4range and tstzrange columns and several probe ranges, plus the
supabase-py range methods that send them (rangeGte is nxl, rangeLte is nxr)."""

from __future__ import annotations

import pytest

from tests.conftest import ServerHandle, sql
from tests.rest.conftest import raw, supa, wait_for_table

SQL_OPERATOR = {"sl": "<<", "sr": ">>", "nxl": "&>", "nxr": "&<", "adj": "-|-", "ov": "&&",
                "cs": "@>", "cd": "<@"}

ROWS = [
    (1, "[1,5)", "[2024-01-01,2024-02-01)"),
    (2, "[5,10)", "[2024-02-01,2024-03-01)"),
    (3, "[3,8)", "[2024-01-15,2024-02-15)"),
    (4, "[10,20)", "[2024-03-01,2024-06-01)"),
    (5, "[-5,0)", "[2023-06-01,2023-07-01)"),
    (6, "empty", "empty"),
    (7, "(,3)", "(,2024-01-10)"),
    (8, "[12,)", "[2024-05-01,)"),
    (9, None, None),
]

INT_PROBES = ["[3,6)", "[5,10)", "[0,1)", "[10,12)", "(,4)", "[8,)", "empty"]
TS_PROBES = ["[2024-01-10,2024-02-10)", "[2024-02-01,2024-03-01)", "[2024-07-01,2024-08-01)",
             "(,2024-01-01)", "[2024-03-01,)"]
# cs/cd also take a single element on the right in PostgreSQL; PostgREST casts the value to the
# column's type, so only ranges are offered there (as here).


@pytest.fixture(scope="module")
def spans(rest_server: ServerHandle) -> ServerHandle:
    sql(rest_server, """
        drop table if exists public.rest_spans;
        create table public.rest_spans (id int primary key, r int4range, t tstzrange);
        grant select on public.rest_spans to anon, authenticated, service_role;
        notify pgrst, 'reload schema';
    """)
    for row in ROWS:
        sql(rest_server, "insert into public.rest_spans values ($1, $2::text::int4range, $3::text::tstzrange)", *row)
    wait_for_table(rest_server, "rest_spans", schema="public")
    yield rest_server
    sql(rest_server, "drop table if exists public.rest_spans; notify pgrst, 'reload schema';")


CASES = [(op, "r", p) for op in SQL_OPERATOR for p in INT_PROBES] + \
        [(op, "t", p) for op in SQL_OPERATOR for p in TS_PROBES]


@pytest.mark.parametrize("op,column,probe", CASES, ids=[f"{c}.{o}.{p}" for o, c, p in CASES])
def test_range_operator_matches_postgres(spans: ServerHandle, op: str, column: str, probe: str) -> None:
    typ = "int4range" if column == "r" else "tstzrange"
    where = f"{column} {SQL_OPERATOR[op]} $1::text::{typ}"
    expected = [r["id"] for r in sql(spans, f"select id from public.rest_spans where {where} order by id", probe)]
    with raw(spans, spans.service_key, schema="public") as c:
        r = c.get(f"/rest_spans?select=id&order=id&{column}={op}.{probe}")
        n = c.get(f"/rest_spans?select=id&order=id&{column}=not.{op}.{probe}")
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == expected
    # not.<op> is NOT (expr): rows whose range is NULL match neither
    negated = [r["id"] for r in sql(spans, f"select id from public.rest_spans where not ({where}) order by id", probe)]
    assert [x["id"] for x in n.json()] == negated


def test_probes_tell_nxl_from_nxr(spans: ServerHandle) -> None:
    """The probes distinguish the two operators (so a swap cannot pass unnoticed)."""
    rows = sql(spans, "select count(*) filter (where r &< '[3,6)') a, count(*) filter (where r &> '[3,6)') b "
                      "from public.rest_spans")
    assert rows[0]["a"] != rows[0]["b"]


def test_client_range_methods(spans: ServerHandle) -> None:
    """supabase-py sends a tuple as ``(a,b)`` (exclusive bounds): rangeGte → nxl, rangeLte → nxr."""
    client = supa(spans, spans.service_key, schema="public")

    def t():  # a fresh query builder each time
        return client.table("rest_spans").select("id").order("id")

    def got(q) -> list[int]:
        return [x["id"] for x in q.execute().data]

    def pg(o: str) -> list[int]:
        return [r["id"] for r in sql(spans, f"select id from public.rest_spans where r {o} '(2,7)'::int4range order by id")]
    assert got(t().range_gte("r", (2, 7))) == pg("&>") == [2, 3, 4, 8]
    assert got(t().range_lte("r", (2, 7))) == pg("&<") == [1, 5, 7]
    assert got(t().range_gt("r", (2, 7))) == pg(">>")
    assert got(t().range_lt("r", (2, 7))) == pg("<<")
    assert got(t().range_adjacent("r", (2, 7))) == pg("-|-")
