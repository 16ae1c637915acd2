"""The response.headers / response.status GUCs: functions (RPC, POST and GET) and triggers on writes
set them with set_config(..., true); the client sees the headers and the status. Malformed values
answer 500 PGRST111 / PGRST112 and roll the request's transaction back."""

from __future__ import annotations

import pytest
from postgrest.exceptions import APIError

from tests.conftest import sql
from tests.rest.conftest import raw, supa, wait_for_table

SETUP = r"""
drop table if exists rest_fixture.guc_items cascade;
create table rest_fixture.guc_items (id int primary key, name text not null);

create or replace function rest_fixture.guc_created(name text) returns json language plpgsql as $$
begin
  perform set_config('response.headers',
                     json_build_array(json_build_object('X-Created', name),
                                      json_build_object('Cache-Control', 'max-age=60'))::text, true);
  perform set_config('response.status', '201', true);
  return json_build_object('name', name);
end $$;

create or replace function rest_fixture.guc_accepted() returns void language plpgsql as $$
begin
  perform set_config('response.status', '202', true);
  perform set_config('response.headers', '[{"X-Job": "queued"}]', true);
end $$;

create or replace function rest_fixture.guc_stable(x int) returns int language plpgsql stable as $$
begin
  perform set_config('response.headers', '[{"X-Seen": "' || x || '"}]', true);
  perform set_config('response.status', '202', true);
  return x * 2;
end $$;

create or replace function rest_fixture.guc_series(n int) returns setof int language plpgsql as $$
begin
  perform set_config('response.headers',
                     '[{"Set-Cookie": "a=1; Path=/"}, {"Set-Cookie": "b=2; Path=/"}]', true);
  return query select generate_series(1, n);
end $$;

create or replace function rest_fixture.guc_rows() returns setof rest_fixture.guc_items
  language plpgsql as $$
begin
  perform set_config('response.status', '203', true);
  return query select * from rest_fixture.guc_items order by id;
end $$;

create or replace function rest_fixture.guc_text() returns text language plpgsql as $$
begin
  perform set_config('response.headers', '[{"Content-Type": "text/plain; charset=utf-8"}]', true);
  return 'plain';
end $$;

create or replace function rest_fixture.guc_plain() returns int language sql as $$ select 7 $$;

-- writes a row, then sets a malformed GUC: the row must not survive
create or replace function rest_fixture.guc_bad_headers(kind text) returns int language plpgsql as $$
begin
  insert into rest_fixture.guc_items values (900, 'rolled back?');
  perform set_config('response.headers', case kind
    when 'notjson' then 'nope'
    when 'object' then '{"X-A": "b"}'
    when 'twokeys' then '[{"X-A": "b", "X-C": "d"}]'
    when 'number' then '[{"X-A": 1}]'
    when 'newline' then '[{"X-A": "b\r\nX-Evil: 1"}]'
    when 'badname' then '[{"X A": "b"}]'
  end, true);
  return 1;
end $$;

create or replace function rest_fixture.guc_bad_status(s text) returns int language plpgsql as $$
begin
  insert into rest_fixture.guc_items values (901, 'rolled back?');
  perform set_config('response.status', s, true);
  return 1;
end $$;

-- an AFTER trigger: it fires at the end of the write's statement
create or replace function rest_fixture.guc_items_trigger() returns trigger language plpgsql as $$
begin
  perform set_config('response.headers',
                     json_build_array(json_build_object('X-Op', tg_op),
                                      json_build_object('X-Item', coalesce(new.name, old.name)))::text, true);
  if tg_op = 'INSERT' and new.name = 'accepted' then
    perform set_config('response.status', '202', true);
  end if;
  return null;
end $$;
create trigger guc_items_after after insert or update or delete on rest_fixture.guc_items
  for each row execute function rest_fixture.guc_items_trigger();

-- a read that sets the GUCs: a view column computed by a function
create or replace function rest_fixture.guc_view_name(n text) returns text language plpgsql as $$
begin
  perform set_config('response.headers', '[{"X-View": "seen"}, {"Cache-Control": "max-age=30"}]', true);
  perform set_config('response.status', '203', true);
  return upper(n);
end $$;
create view rest_fixture.guc_view as
  select id, rest_fixture.guc_view_name(name) as name from rest_fixture.guc_items;

grant all on rest_fixture.guc_items, rest_fixture.guc_view to anon, authenticated, service_role;
grant execute on all functions in schema rest_fixture to anon, authenticated, service_role;
notify pgrst, 'reload schema';
"""


@pytest.fixture(scope="module")
def gucs(rest_server):
    sql(rest_server, SETUP)
    wait_for_table(rest_server, "guc_items")
    yield rest_server
    sql(rest_server, "drop table if exists rest_fixture.guc_items cascade; "
                     "notify pgrst, 'reload schema'")


def test_rpc_sets_headers_and_status(gucs) -> None:
    with raw(gucs, gucs.service_key) as h:
        r = h.post("/rpc/guc_created", json={"name": "ann"})
        assert r.status_code == 201 and r.json() == {"name": "ann"}
        assert r.headers["x-created"] == "ann" and r.headers["cache-control"] == "max-age=60"
        r = h.post("/rpc/guc_accepted")  # a void function: no body, status and header from the GUCs
        assert r.status_code == 202 and r.content == b"" and r.headers["x-job"] == "queued"
        r = h.get("/rpc/guc_stable?x=21")  # GET runs read-only: set_config still works
        assert r.status_code == 202 and r.json() == 42 and r.headers["x-seen"] == "21"
        r = h.head("/rpc/guc_stable?x=1")
        assert r.status_code == 202 and r.headers["x-seen"] == "1"
        r = h.post("/rpc/guc_series", json={"n": 3})  # repeated names are all kept
        assert r.status_code == 200 and r.json() == [1, 2, 3]
        assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
        r = h.post("/rpc/guc_rows")
        assert r.status_code == 203 and r.json() == []
        r = h.post("/rpc/guc_text")  # a header from the GUC replaces the one ownbase sets
        assert r.headers.get_list("content-type") == ["text/plain; charset=utf-8"]
        # GUCs are transaction-local: later requests on the same pooled connections are untouched
        for _ in range(12):
            r = h.post("/rpc/guc_plain")
            assert r.status_code == 200 and r.json() == 7
            assert "x-created" not in r.headers and "x-job" not in r.headers
            assert r.headers["content-type"].startswith("application/json")


def test_rpc_through_supabase_py(gucs) -> None:
    c = supa(gucs, gucs.service_key)
    assert c.rpc("guc_created", {"name": "bo"}).execute().data == {"name": "bo"}  # a 201 is a success
    assert c.rpc("guc_stable", {"x": 2}, get=True).execute().data == 4
    with pytest.raises(APIError) as err:
        c.rpc("guc_bad_status", {"s": "abc"}).execute()
    assert err.value.code == "PGRST112"


def test_trigger_sets_headers_on_writes(gucs) -> None:
    sql(gucs, "delete from rest_fixture.guc_items")
    with raw(gucs, gucs.service_key) as h:
        r = h.post("/guc_items", json={"id": 1, "name": "one"})
        assert r.status_code == 201 and r.headers["x-op"] == "INSERT" and r.headers["x-item"] == "one"
        r = h.post("/guc_items", json={"id": 2, "name": "accepted"},
                   headers={"Prefer": "return=representation"})
        assert r.status_code == 202 and r.json() == [{"id": 2, "name": "accepted"}]
        assert r.headers["x-item"] == "accepted"
        r = h.patch("/guc_items?id=eq.1", json={"name": "uno"})
        assert r.status_code == 204 and r.headers["x-op"] == "UPDATE" and r.headers["x-item"] == "uno"
        r = h.put("/guc_items?id=eq.3", json={"id": 3, "name": "tres"},
                  headers={"Prefer": "return=representation"})
        assert r.status_code == 201 and r.headers["x-op"] == "INSERT" and r.headers["x-item"] == "tres"
        r = h.delete("/guc_items?id=eq.3")
        assert r.status_code == 204 and r.headers["x-op"] == "DELETE" and r.headers["x-item"] == "tres"
        r = h.get("/guc_items?select=id,name&order=id")  # a read sets nothing here
        assert r.json() == [{"id": 1, "name": "uno"}, {"id": 2, "name": "accepted"}]
        assert "x-op" not in r.headers and r.status_code == 200
    res = supa(gucs, gucs.service_key).table("guc_items").insert({"id": 4, "name": "four"}).execute()
    assert res.data == [{"id": 4, "name": "four"}]
    assert [r[0] for r in sql(gucs, "select id from rest_fixture.guc_items order by id")] == [1, 2, 4]


@pytest.mark.parametrize("kind", ["notjson", "object", "twokeys", "number", "newline", "badname"])
def test_malformed_headers_guc(gucs, kind) -> None:
    with raw(gucs, gucs.service_key) as h:
        r = h.post("/rpc/guc_bad_headers", json={"kind": kind})
    assert r.status_code == 500
    assert r.json() == {"code": "PGRST111", "message": "response.headers guc must be a JSON array composed of "
                        "objects with a single key and a string value", "details": None, "hint": None}
    assert "x-evil" not in r.headers and "x-a" not in r.headers
    assert sql(gucs, "select count(*) from rest_fixture.guc_items where id = 900")[0][0] == 0


@pytest.mark.parametrize("status", ["abc", "99", "600", "20 2", "-200", "2.5"])
def test_malformed_status_guc(gucs, status) -> None:
    with raw(gucs, gucs.service_key) as h:
        r = h.post("/rpc/guc_bad_status", json={"s": status})
    assert r.status_code == 500
    assert r.json() == {"code": "PGRST112", "message": "response.status guc must be a valid status code",
                        "details": None, "hint": None}
    assert sql(gucs, "select count(*) from rest_fixture.guc_items where id = 901")[0][0] == 0


def test_read_of_a_view_applies_gucs_set_while_reading(gucs) -> None:
    """Plain reads run as one statement through ownbase.scoped_read, which hands back the GUCs."""
    sql(gucs, "delete from rest_fixture.guc_items")
    wait_for_table(gucs, "guc_view")  # no rows yet: the function does not run, the status is 200
    sql(gucs, "insert into rest_fixture.guc_items values (5, 'five')")
    with raw(gucs, gucs.service_key) as h:
        r = h.get("/guc_view?select=id,name")
        assert r.json() == [{"id": 5, "name": "FIVE"}]
        assert r.status_code == 203 and r.headers["x-view"] == "seen" and r.headers["cache-control"] == "max-age=30"
        r = h.get("/guc_items?select=id")  # the next read on the pooled connections carries nothing over
        assert r.status_code == 200 and "x-view" not in r.headers
