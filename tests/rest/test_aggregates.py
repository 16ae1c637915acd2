"""Aggregate functions in select (PostgREST 12: amount.sum(), count(), …), behind
OWNBASE_DB_AGGREGATES_ENABLED. A table of our own with known numbers, so every sum is exact."""

from __future__ import annotations

import string

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownbase.rest import errors
from ownbase.rest.request import parse_select
from tests.conftest import sql
from tests.rest.conftest import ALICE, BOB, raw, supa, wait_for_table

AGG = "rest_agg"

SETUP = f"""
drop schema if exists {AGG} cascade;
create schema {AGG};
grant usage on schema {AGG} to anon, authenticated, service_role;
create table {AGG}.customers (id int primary key, name text not null, city text not null);
create table {AGG}.orders (
  id int primary key,
  customer_id int not null references {AGG}.customers(id),
  order_date date not null,
  amount int not null,
  status text not null,
  owner_id uuid not null
);
insert into {AGG}.customers values (1, 'ann', 'Oslo'), (2, 'ben', 'Bergen'), (3, 'cat', 'Oslo'),
  (4, 'dan', 'Oslo');
insert into {AGG}.orders values
  (1, 1, '2024-01-01', 10, 'paid', '{ALICE}'),
  (2, 1, '2024-01-01', 20, 'open', '{ALICE}'),
  (3, 2, '2024-01-02', 30, 'paid', '{BOB}'),
  (4, 2, '2024-01-02', 40, 'paid', '{BOB}'),
  (5, 3, '2024-01-03', 50, 'open', '{ALICE}'),
  (6, 1, '2024-01-03', 60, 'paid', '{BOB}');
alter table {AGG}.orders enable row level security;
create policy orders_own on {AGG}.orders for select to authenticated using (owner_id = auth.uid());
grant all on all tables in schema {AGG} to anon, authenticated, service_role;
notify pgrst, 'reload schema';
"""


@pytest.fixture(scope="module")
def agg_server(server_factory):
    handle = server_factory({"OWNBASE_DB_SCHEMAS": f"{AGG},rest_fixture,public",
                             "OWNBASE_DB_AGGREGATES_ENABLED": "true"})
    sql(handle, SETUP)
    wait_for_table(handle, "orders", schema=AGG)
    wait_for_table(handle, "customers", schema=AGG)
    return handle


def _get(handle, path: str, token: str | None = None, **headers: str):
    with raw(handle, token or handle.service_key, schema=AGG, **headers) as h:
        return h.get(path)


def _ok(handle, path: str, token: str | None = None, **headers: str):
    r = _get(handle, path, token, **headers)
    assert r.status_code in (200, 206), (r.status_code, r.text)
    return r.json()


# --- parsing (no server) ---------------------------------------------------------------------------

def test_parser_forms() -> None:
    items = parse_select("order_date,total:amount.sum(),amount::int.max(),amount.avg()::int,n:count()::text",
                         aggregates=True)
    assert [(i.output_name, i.aggregate, i.cast, i.agg_cast) for i in items] == [
        ("order_date", None, None, None), ("total", "sum", None, None), ("max", "max", "int", None),
        ("avg", "avg", None, "int"), ("n", "count", None, "text")]
    assert items[4].bare
    emb = parse_select("title,comments(count(),id.max())", aggregates=True)[1]
    assert [(c.aggregate, c.output_name) for c in emb.children] == [("count", "count"), ("max", "max")]
    for bad in ("sum()", "a.b.sum()", "amount.sum()::te;xt"):
        with pytest.raises(errors.ApiError) as info:
            parse_select(bad, aggregates=True)
        assert info.value.code == "PGRST100"
    with pytest.raises(errors.ApiError) as info:
        parse_select("amount.sum()")
    assert info.value.code == "PGRST123"


# --- disabled (the default) ------------------------------------------------------------------------

def test_disabled_by_default_answers_pgrst123(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        for select in ("views.sum()", "total:views.avg()", "posts_count:id.count()"):
            r = h.get("/posts", params={"select": select})
            assert r.status_code == 400, r.text
            assert r.json() == {"code": "PGRST123", "details": None, "hint": None,
                                "message": "Use of aggregate functions is not allowed"}


# --- each aggregate ------------------------------------------------------------------------------

def test_each_aggregate_exact(agg_server) -> None:
    assert _ok(agg_server, "/orders?select=amount.sum()") == [{"sum": 210}]
    assert _ok(agg_server, "/orders?select=amount.avg()") == [{"avg": 35}]
    assert _ok(agg_server, "/orders?select=amount.max()") == [{"max": 60}]
    assert _ok(agg_server, "/orders?select=amount.min()") == [{"min": 10}]
    assert _ok(agg_server, "/orders?select=amount.count()") == [{"count": 6}]
    assert _ok(agg_server, "/orders?select=count()") == [{"count": 6}]
    assert _ok(agg_server, "/orders?select=amount.sum(),amount.avg(),amount.max(),amount.min(),count()") == [
        {"sum": 210, "avg": 35, "max": 60, "min": 10, "count": 6}]
    # over no rows: count 0, the others null (one row, as an aggregate without GROUP BY gives)
    assert _ok(agg_server, "/orders?select=amount.sum(),count()&amount=gt.1000") == [{"sum": None, "count": 0}]


def test_alias_and_casts(agg_server) -> None:
    assert _ok(agg_server, "/orders?select=total:amount.sum()") == [{"total": 210}]
    assert _ok(agg_server, "/orders?select=n:count()") == [{"n": 6}]
    # a cast on the result
    assert _ok(agg_server, "/orders?select=amount.sum()::text") == [{"sum": "210"}]
    r = _get(agg_server, "/orders?select=amount.avg()::int")
    assert r.status_code == 200 and r.text.replace(" ", "") == '[{"avg":35}]'  # not 35.0000000000000000
    # a cast on the column before the aggregate: text compares as text ("60" > "100" would hold too)
    assert _ok(agg_server, "/orders?select=amount::text.max(),amount::text.min()") == [{"max": "60", "min": "10"}]
    assert _ok(agg_server, "/orders?select=top:amount::text.max()::int") == [{"top": 60}]


# --- grouping --------------------------------------------------------------------------------------

def test_group_by_one_and_two_columns(agg_server) -> None:
    assert _ok(agg_server, "/orders?select=order_date,amount.sum()&order=order_date") == [
        {"order_date": "2024-01-01", "sum": 30}, {"order_date": "2024-01-02", "sum": 70},
        {"order_date": "2024-01-03", "sum": 110}]
    assert _ok(agg_server, "/orders?select=order_date,status,amount.sum(),count()&order=order_date,status") == [
        {"order_date": "2024-01-01", "status": "open", "sum": 20, "count": 1},
        {"order_date": "2024-01-01", "status": "paid", "sum": 10, "count": 1},
        {"order_date": "2024-01-02", "status": "paid", "sum": 70, "count": 2},
        {"order_date": "2024-01-03", "status": "open", "sum": 50, "count": 1},
        {"order_date": "2024-01-03", "status": "paid", "sum": 60, "count": 1}]
    # the aggregate may come first; keys follow the select list
    assert _ok(agg_server, "/orders?select=count(),status&order=status.desc") == [
        {"count": 4, "status": "paid"}, {"count": 2, "status": "open"}]


def test_filter_order_limit_offset_and_count(agg_server) -> None:
    path = "/orders?select=order_date,amount.sum()&status=eq.paid&order=order_date.desc"
    r = _get(agg_server, path + "&limit=2", Prefer="count=exact")
    assert r.status_code == 206, r.text
    assert r.json() == [{"order_date": "2024-01-03", "sum": 60}, {"order_date": "2024-01-02", "sum": 70}]
    assert r.headers["content-range"] == "0-1/3"  # three groups, not four paid rows
    assert _ok(agg_server, path + "&limit=2&offset=1") == [
        {"order_date": "2024-01-02", "sum": 70}, {"order_date": "2024-01-01", "sum": 10}]
    r = _get(agg_server, "/orders?select=amount.sum()", Prefer="count=exact")
    assert r.json() == [{"sum": 210}] and r.headers["content-range"] == "0-0/1"


# --- embedded resources ----------------------------------------------------------------------------

def test_aggregates_inside_an_embed(agg_server) -> None:
    assert _ok(agg_server, "/customers?select=name,orders(count(),amount.max())&order=id") == [
        {"name": "ann", "orders": [{"count": 3, "max": 60}]},
        {"name": "ben", "orders": [{"count": 2, "max": 40}]},
        {"name": "cat", "orders": [{"count": 1, "max": 50}]},
        {"name": "dan", "orders": [{"count": 0, "max": None}]}]
    # grouped inside the embed, with the embed's own filter and order
    assert _ok(agg_server, "/customers?select=name,orders(status,amount.sum())&id=eq.1"
                           "&orders.order=status.desc&orders.amount=gt.10") == [
        {"name": "ann", "orders": [{"status": "paid", "sum": 60}, {"status": "open", "sum": 20}]}]


def test_grouping_by_a_to_one_embed(agg_server) -> None:
    rows = _ok(agg_server, "/orders?select=amount.sum(),customers(city)")
    assert sorted(rows, key=lambda x: x["sum"]) == [
        {"sum": 70, "customers": {"city": "Bergen"}}, {"sum": 140, "customers": {"city": "Oslo"}}]
    # spread: the embed's columns become the parent's keys
    assert _ok(agg_server, "/orders?select=amount.sum(),...customers(city)&order=customers(city)") == [
        {"sum": 70, "city": "Bergen"}, {"sum": 140, "city": "Oslo"}]
    # an aggregate on a spread to-one embed's column is computed over the parent's groups
    assert _ok(agg_server, "/orders?select=status,...customers(top:id.max(),count())&order=status") == [
        {"status": "open", "top": 3, "count": 2}, {"status": "paid", "top": 2, "count": 4}]


def test_too_complex_answers_pgrst127(agg_server) -> None:
    for path in ("/customers?select=city,id.count(),orders(id)",):  # to-many next to aggregates
        r = _get(agg_server, path)
        assert r.status_code == 400 and r.json()["code"] == "PGRST127", (path, r.text)
    with raw(agg_server, agg_server.service_key, schema=AGG) as h:
        r = h.patch("/customers?id=eq.4&select=count()", json={"city": "Oslo"},
                    headers={"Prefer": "return=representation"})
        assert r.status_code == 400 and r.json()["code"] == "PGRST127", r.text
    r = _get(agg_server, "/orders?select=sum()")
    assert r.status_code == 400 and r.json()["code"] == "PGRST100"
    r = _get(agg_server, "/orders?select=nope.sum()")
    assert r.status_code == 400 and r.json()["code"] == "42703"


def test_aggregates_inside_a_to_one_embed(agg_server) -> None:
    """PostgREST 12 groups a to-one embed's own related row: per parent, an object of aggregates."""
    assert _ok(agg_server, "/orders?select=id,customers(n:id.count(),city)&order=id&limit=2") == [
        {"id": 1, "customers": {"n": 1, "city": "Oslo"}}, {"id": 2, "customers": {"n": 1, "city": "Oslo"}}]
    assert _ok(agg_server, "/orders?select=id,customers(top:id.max(),name.min())&id=eq.3") == [
        {"id": 3, "customers": {"top": 2, "min": "ben"}}]


# --- row-level security and clients ----------------------------------------------------------------

def test_rls_applies_to_aggregates(agg_server, mint) -> None:
    assert _ok(agg_server, "/orders?select=amount.sum(),count()", mint(ALICE)) == [{"sum": 80, "count": 3}]
    assert _ok(agg_server, "/orders?select=amount.sum(),count()", mint(BOB)) == [{"sum": 130, "count": 3}]
    assert _ok(agg_server, "/orders?select=status,amount.sum()&order=status", mint(BOB)) == [
        {"status": "paid", "sum": 130}]
    # inside an embed too: ann's orders as BOB sees them
    assert _ok(agg_server, "/customers?select=name,orders(count())&id=eq.1", mint(BOB)) == [
        {"name": "ann", "orders": [{"count": 1}]}]
    # anon has no policy: no rows, so count 0
    assert _ok(agg_server, "/orders?select=count()", agg_server.anon_key) == [{"count": 0}]


def test_through_supabase_py(agg_server, mint) -> None:
    client = supa(agg_server, agg_server.service_key, schema=AGG)
    assert client.table("orders").select("amount.sum()").execute().data == [{"sum": 210}]
    res = client.table("orders").select("status, total:amount.sum()").eq("order_date", "2024-01-03") \
        .order("status").execute()
    assert res.data == [{"status": "open", "total": 50}, {"status": "paid", "total": 60}]
    user = supa(agg_server, token=mint(ALICE), schema=AGG)
    assert user.table("orders").select("count()").execute().data == [{"count": 3}]


# --- random input never crashes -----------------------------------------------------------------

AGG_TOKEN = st.one_of(st.sampled_from(["amount", "status", "count()", ".sum()", ".avg()", ".max()", "sum()",
                                       "::int", "::text", "::", ":", ",", "(", ")", "...", "customers",
                                       "orders", "t:", "\"", "'", ";", "->>x", "*", "!inner", " "]),
                      st.text(alphabet=string.ascii_letters + "_", max_size=4))
AGG_SELECT = st.lists(AGG_TOKEN, max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(select=AGG_SELECT)
def test_parser_with_aggregates_only_raises_api_errors(select) -> None:
    try:
        parse_select(select, aggregates=True)
    except errors.ApiError as exc:
        assert 400 <= exc.status < 500


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(select=AGG_SELECT, order=st.sampled_from(["", "status", "amount.desc", "customers(city)", "sum"]))
def test_server_never_500_with_aggregates(agg_server, select, order) -> None:
    params = {"select": select, **({"order": order} if order else {})}
    with raw(agg_server, agg_server.service_key, schema=AGG) as h:
        try:
            r = h.get("/orders", params=params)
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
            return
    assert r.status_code < 500, (r.status_code, r.text, params)
    if r.status_code >= 400:
        assert {"code", "message", "details", "hint"} <= set(r.json())
