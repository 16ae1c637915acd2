"""Plain reads run on a prepared statement per query shape and connection
(``ownbase.scoped_read_prepared``): PostgreSQL plans each shape once per connection instead of per
request, and row-level security, DDL and errors behave exactly as with a fresh statement."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from ownbase.db.scope import PREPARED_READS_PER_CONNECTION, PreparedReads
from tests.conftest import ServerHandle, sql
from tests.rest.conftest import ALICE, BOB, wait_for_table

SCHEMA = "prep_reads"
SETUP = f"""
drop schema if exists {SCHEMA} cascade;
create schema {SCHEMA};
grant usage on schema {SCHEMA} to anon, authenticated, service_role;
create table {SCHEMA}.items (id int primary key, owner uuid, label text);
insert into {SCHEMA}.items values (1, '{ALICE}', 'a'), (2, '{BOB}', 'b'), (3, null, 'public');
alter table {SCHEMA}.items enable row level security;
create policy own on {SCHEMA}.items for select to authenticated using (owner = auth.uid());
create policy open on {SCHEMA}.items for select to anon using (owner is null);
grant select on {SCHEMA}.items to anon, authenticated, service_role;
-- what the serving connection has prepared (pg_prepared_statements is per session)
create view {SCHEMA}.prepared as
  select count(*)::int as n from pg_prepared_statements where name like 'ownbase_read_%';
grant select on {SCHEMA}.prepared to anon, authenticated, service_role;
-- a read that makes the serving session forget every prepared statement (as DISCARD ALL would)
create function {SCHEMA}.forget_all() returns int language plpgsql as $$
  begin execute 'deallocate all'; return 1; end $$;
create view {SCHEMA}.forget as select {SCHEMA}.forget_all() as x;
grant select on {SCHEMA}.forget to anon, authenticated, service_role;
grant execute on function {SCHEMA}.forget_all() to anon, authenticated, service_role;
notify pgrst, 'reload schema';
"""


@pytest.fixture(scope="module")
def one_conn(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    # one API connection, so every request below meets the statements the earlier ones prepared
    handle = server_factory({"OWNBASE_DB_SCHEMAS": SCHEMA, "OWNBASE_DB_POOL_MAX": "1", "OWNBASE_DB_POOL_MIN": "1"})
    sql(handle, SETUP)
    wait_for_table(handle, "items", schema=SCHEMA)
    wait_for_table(handle, "prepared", schema=SCHEMA)
    return handle


def _get(handle: ServerHandle, path: str, token: str | None = None) -> httpx.Response:
    headers = {"apikey": handle.anon_key, "Authorization": f"Bearer {token or handle.anon_key}"}
    return httpx.get(f"{handle.url}/rest/v1/{path}", headers=headers, timeout=10)


def _ids(handle: ServerHandle, token: str | None = None) -> list[int]:
    r = _get(handle, "items?select=id&order=id", token)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()]


def test_one_shape_serves_every_role_with_its_own_rows(one_conn: ServerHandle, mint) -> None:
    alice, bob = mint(ALICE), mint(BOB)
    for _ in range(7):  # past PostgreSQL's five custom plans, so a generic plan is in use too
        assert _ids(one_conn) == [3]
        assert _ids(one_conn, alice) == [1]
        assert _ids(one_conn, bob) == [2]
        assert _ids(one_conn, one_conn.service_key) == [1, 2, 3]
    # the statement is prepared on the serving connection, not planned afresh each time
    r = _get(one_conn, "prepared?select=n")
    assert r.status_code == 200 and r.json()[0]["n"] >= 1
    # a policy change invalidates the kept plan
    sql(one_conn, f"drop policy own on {SCHEMA}.items; create policy own on {SCHEMA}.items for select "
                  f"to authenticated using (owner = auth.uid() or owner is null)")
    assert _ids(one_conn, alice) == [1, 3]
    assert _ids(one_conn, bob) == [2, 3]
    sql(one_conn, f"drop policy own on {SCHEMA}.items; create policy own on {SCHEMA}.items for select "
                  f"to authenticated using (owner = auth.uid())")
    assert _ids(one_conn, alice) == [1]


def test_errors_are_the_same_every_time(one_conn: ServerHandle) -> None:
    # a failed read rolls back, but a prepared statement outlives its transaction: the next
    # request of the same shape must prepare it again rather than trip over the old one
    for _ in range(3):
        r = _get(one_conn, "items?id=eq.notanumber")
        assert r.status_code == 400 and r.json()["code"] == "22P02", r.text
        assert _get(one_conn, "items?select=id&id=eq.3").json() == [{"id": 3}]


def test_a_session_that_lost_its_statements_prepares_them_again(one_conn: ServerHandle) -> None:
    assert _ids(one_conn) == [3]  # this shape is now known to the connection
    assert _get(one_conn, "forget?select=x").json() == [{"x": 1}]
    r = _get(one_conn, "prepared?select=n")
    assert r.status_code == 200 and r.json()[0]["n"] == 1, r.text  # only the read that counted
    assert _ids(one_conn) == [3]  # its name is gone on the server: prepared again, answered alike
    assert _ids(one_conn) == [3]


def test_prepared_statements_per_connection_are_bounded(one_conn: ServerHandle) -> None:
    for i in range(PREPARED_READS_PER_CONNECTION + 30):  # each alias is a new statement shape
        r = _get(one_conn, f"items?select=a{i}:id&id=eq.3")
        assert r.status_code == 200 and r.json() == [{f"a{i}": 3}]
    n = _get(one_conn, "prepared?select=n").json()[0]["n"]
    assert n <= PREPARED_READS_PER_CONNECTION + 2  # the cache, one eviction pending, this read


def test_lru_names_and_evictions() -> None:
    reads = PreparedReads(limit=2)
    a, known = reads.lookup("A")
    assert not known and reads.lookup("A") == (a, False)  # not remembered until it ran
    reads.done("A", a, None)
    assert reads.lookup("A") == (a, True)
    b, _ = reads.lookup("B")
    reads.done("B", b, None)
    reads.lookup("A")  # A is now the most recently used
    c, _ = reads.lookup("C")
    reads.done("C", c, None)
    assert reads.evicted == [b] and len({a, b, c}) == 3
    assert reads.lookup("B") == (b, False)  # evicted: prepared again (same name, replaced)
    reads.done("B", b, b)  # this call deallocated b, then prepared it afresh
    assert reads.evicted == [a] and set(reads.names) == {"C", "B"}
    reads.forget()
    assert reads.lookup("C") == (c, False)
