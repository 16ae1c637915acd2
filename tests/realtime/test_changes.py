"""postgres_changes through the official Python client: event types, filters, select lists,
old_record rules, column privileges, RLS per subscriber, no change missed after SUBSCRIBED,
and commit order."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg

from tests.conftest import create_database
from tests.realtime.conftest import Inbox, rt_client, run_sql, subscribed


def data(items):
    return [i["data"] for i in items]


async def test_each_event_type_and_payload_shape(rt_server):
    c = await rt_client(rt_server)
    ch = c.channel("pg-events")
    ins, upd, dele, every = Inbox(), Inbox(), Inbox(), Inbox()
    ch.on_postgres_changes("INSERT", ins, table="rt_items")
    ch.on_postgres_changes("UPDATE", upd, table="rt_items")
    ch.on_postgres_changes("DELETE", dele, table="rt_items")
    ch.on_postgres_changes("*", every, table="rt_items")
    system = Inbox()
    ch.on_system(system)
    await subscribed(ch)
    assert (await system.wait(1))[0].message == "Subscribed to PostgreSQL"

    name = "ev-" + uuid.uuid4().hex[:6]
    await run_sql(rt_server, f"insert into rt_items(name, qty, price, done, tags, meta) values ('{name}', 2, 9.5, true, '{{a,b}}', '{{\"k\": [1]}}')")
    rec = data(await ins.wait(1))[0]
    assert rec["type"] == "INSERT" and rec["schema"] == "public" and rec["table"] == "rt_items"
    assert rec["errors"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["commit_timestamp"])
    assert rec["record"]["name"] == name and rec["record"]["qty"] == 2 and rec["record"]["price"] == 9.5
    assert rec["record"]["tags"] == ["a", "b"] and rec["record"]["meta"] == {"k": [1]}
    assert {"name": "tags", "type": "_text"} in rec["columns"]
    assert [c["name"] for c in rec["columns"]][:3] == ["id", "name", "qty"]
    rid = rec["record"]["id"]

    await run_sql(rt_server, f"update rt_items set qty = 3 where id = {rid}")
    u = data(await upd.wait(1))[0]
    # rt_items has REPLICA IDENTITY FULL: the whole old row
    assert u["record"]["qty"] == 3 and u["old_record"]["qty"] == 2 and u["old_record"]["name"] == name

    await run_sql(rt_server, f"delete from rt_items where id = {rid}")
    d = data(await dele.wait(1))[0]
    assert d["old_record"]["id"] == rid and d["old_record"]["name"] == name and "record" not in d or not d.get("record")

    types = [x["type"] for x in data(await every.wait(3))]
    assert types == ["INSERT", "UPDATE", "DELETE"]
    # each callback saw only its own event type
    assert len(ins.items) == len(upd.items) == len(dele.items) == 1
    await c.close()


async def test_old_record_keys_only_without_replica_identity_full(rt_server):
    c = await rt_client(rt_server)
    ch = c.channel("pg-keys")
    got = Inbox()
    ch.on_postgres_changes("*", got, table="rt_seq")
    await subscribed(ch)
    await run_sql(rt_server, "insert into rt_seq(id, n) values (900001, 1)")
    await run_sql(rt_server, "update rt_seq set n = 2 where id = 900001")
    await run_sql(rt_server, "delete from rt_seq where id = 900001")
    items = data(await got.wait(3))
    assert items[1]["old_record"] == {"id": 900001}
    assert items[2]["old_record"] == {"id": 900001}
    await c.close()


FILTER_CASES = [
    ("qty=eq.5", [5]),
    ("qty=neq.5", [1, 7]),
    ("qty=lt.5", [1]),
    ("qty=lte.5", [1, 5]),
    ("qty=gt.5", [7]),
    ("qty=gte.5", [5, 7]),
    ("qty=in.(1,7)", [1, 7]),
    ("name=like.*-b", [5]),
    ("name=ilike.%-C", [7]),
    ("name=match.^f[0-9]-a$", [1]),
    ("name=imatch.-B$", [5]),
    ("done=is.null", [7]),
    ("done=is.true", [1]),
    ("done=isdistinct.true", [5, 7]),
    ("qty=not.in.(1,7)", [5]),
    ("qty=not.eq.5", [1, 7]),
    ("qty=gt.1,done=is.false", [5]),
]


async def test_filters(rt_server):
    c = await rt_client(rt_server)
    inboxes = []
    for i, (flt, _) in enumerate(FILTER_CASES):
        ch = c.channel(f"pg-filter-{i}")
        box = Inbox()
        ch.on_postgres_changes("INSERT", box, table="rt_items", filter=flt)
        inboxes.append(box)
        await subscribed(ch)
    tag = uuid.uuid4().hex[:4]
    await run_sql(rt_server, f"""insert into rt_items(name, qty, done) values
        ('f{tag[:0]}1-a', 1, true), ('f{tag[:0]}5-b', 5, false), ('f{tag[:0]}7-c', 7, null)""")
    # the unfiltered expectation of every case arrives, and nothing else
    for (flt, expected), box in zip(FILTER_CASES, inboxes):
        if expected:
            await box.wait(len(expected))
    await asyncio.sleep(0.3)
    for (flt, expected), box in zip(FILTER_CASES, inboxes):
        assert sorted(x["record"]["qty"] for x in data(box.items)) == expected, flt
    await c.close()


async def test_select_columns_and_column_privileges(rt_server):
    await run_sql(rt_server, "delete from rt_keys")
    c = await rt_client(rt_server)
    ch = c.channel("pg-cols")
    full, picked = Inbox(), Inbox()
    ch.on_postgres_changes("INSERT", full, table="rt_keys")
    ch.on_postgres_changes("INSERT", picked, table="rt_items", select=["id", "name"])
    await subscribed(ch)
    await run_sql(rt_server, "insert into rt_keys(id, label, secret) values (1, 'l', 's3cret')")
    await run_sql(rt_server, "insert into rt_items(name, qty) values ('sel', 4)")
    k = data(await full.wait(1))[0]
    # anon may not SELECT rt_keys.secret: neither the value nor the column is sent
    assert k["record"] == {"id": 1, "label": "l"}
    assert [col["name"] for col in k["columns"]] == ["id", "label"]
    p = data(await picked.wait(1))[0]
    assert set(p["record"]) == {"id", "name"} and p["record"]["name"] == "sel"
    await c.close()


async def test_table_not_in_publication_is_reported(rt_server):
    c = await rt_client(rt_server)
    ch = c.channel("pg-off")
    ch.on_postgres_changes("*", Inbox(), table="rt_off")
    states = Inbox()
    await ch.subscribe(lambda status, err: states((status.value, err)))
    # the join succeeds, then a system error says the table is not enabled for realtime
    items = await states.wait(2)
    assert items[0][0] == "SUBSCRIBED"
    assert items[1][0] == "CHANNEL_ERROR"
    assert "Unable to subscribe to changes with given parameters" in str(items[1][1])
    await c.close()


async def test_rls_per_subscriber(rt_server, mint):
    alice_id, bob_id = str(uuid.uuid4()), str(uuid.uuid4())
    alice = await rt_client(rt_server, token=mint(alice_id))
    bob = await rt_client(rt_server, token=mint(bob_id))
    anon = await rt_client(rt_server)
    service = await rt_client(rt_server, key=rt_server.service_key)
    boxes = {}
    for name, client in (("alice", alice), ("bob", bob), ("anon", anon), ("service", service)):
        ch = client.channel("pg-rls-" + name)
        box = Inbox()
        ch.on_postgres_changes("*", box, table="rt_notes")
        await subscribed(ch)
        boxes[name] = box
    await run_sql(rt_server, f"""
        insert into rt_notes(owner, body, is_public) values ('{alice_id}', 'alice private', false);
        insert into rt_notes(owner, body, is_public) values ('{bob_id}', 'bob private', false);
        insert into rt_notes(owner, body, is_public) values ('{alice_id}', 'alice public', true);""")
    await boxes["service"].wait(3)
    await boxes["alice"].wait(2)
    await boxes["bob"].wait(2)
    await boxes["anon"].wait(1)
    await asyncio.sleep(0.4)
    bodies = {k: sorted(d["record"]["body"] for d in data(v.items)) for k, v in boxes.items()}
    assert bodies["alice"] == ["alice private", "alice public"]
    assert bodies["bob"] == ["bob private", "alice public"][::-1] or bodies["bob"] == ["alice public", "bob private"]
    assert bodies["anon"] == ["alice public"]
    assert len(bodies["service"]) == 3
    # an update that makes a row private stops its delivery to others
    await run_sql(rt_server, "update rt_notes set body = 'now hidden', is_public = false where body = 'alice public'")
    await boxes["alice"].wait(3)
    await asyncio.sleep(0.4)
    assert [d["record"]["body"] for d in data(boxes["anon"].items)] == ["alice public"]
    assert all(d["record"]["body"] != "now hidden" for d in data(boxes["bob"].items))
    for cl in (alice, bob, anon, service):
        await cl.close()


async def test_insert_right_after_subscribed_is_delivered(rt_server):
    # Repeated on fresh channels: the write is committed the moment SUBSCRIBED is reported.
    c = await rt_client(rt_server)
    for i in range(5):
        marker = f"race-{uuid.uuid4().hex[:8]}"
        ch = c.channel(f"pg-race-{i}")
        box = Inbox()
        ch.on_postgres_changes("INSERT", box, table="rt_items", filter=f"name=eq.{marker}")
        await subscribed(ch)
        await run_sql(rt_server, f"insert into rt_items(name) values ('{marker}')")
        assert data(await box.wait(1))[0]["record"]["name"] == marker
    await c.close()


async def test_commit_order_of_1000_quick_inserts(rt_server):
    c = await rt_client(rt_server)
    ch = c.channel("pg-order")
    box = Inbox()
    run = uuid.uuid4().int % 1_000_000
    ch.on_postgres_changes("INSERT", box, table="rt_seq", filter=f"n=gte.{run * 1000}")
    await subscribed(ch)

    async def writer() -> None:
        conn = await asyncpg.connect(rt_server.db_url)
        try:
            for i in range(1000):  # 1,000 separate autocommit transactions
                await conn.execute("insert into rt_seq(n) values ($1)", run * 1000 + i)
        finally:
            await conn.close()

    await writer()
    items = data(await box.wait(1000, timeout=60))
    got = [d["record"]["n"] - run * 1000 for d in items]
    assert got == list(range(1000)), [(i, g) for i, g in enumerate(got) if i != g][:10]
    await c.close()


async def test_late_commit_is_not_missed_and_other_databases_do_not_block(rt_server, pg_admin_url):

    c = await rt_client(rt_server)
    ch = c.channel("pg-late")
    box = Inbox()
    base = uuid.uuid4().int % 1_000_000 * 1000 + 500_000_000
    ch.on_postgres_changes("INSERT", box, table="rt_seq", filter=f"n=gte.{base}")
    await subscribed(ch)

    # A transaction in ANOTHER database of the cluster stays open with a transaction id: it cannot
    # write here, so it must not hold our changes back.
    other_url = await asyncio.to_thread(create_database, pg_admin_url, "ownbase_rt_other")
    other = await asyncpg.connect(other_url)
    long_tx = other.transaction()
    await long_tx.start()
    await other.execute("create table t(a int); insert into t values (1)")
    await run_sql(rt_server, f"insert into rt_seq(n) values ({base + 1})")
    assert [d["record"]["n"] for d in data(await box.wait(1))] == [base + 1]

    # A transaction in THIS database that took its id first but commits last is delivered too.
    late = await asyncpg.connect(rt_server.db_url)
    tx = late.transaction()
    await tx.start()
    await late.execute("insert into rt_seq(n) values ($1)", base + 2)
    await run_sql(rt_server, f"insert into rt_seq(n) values ({base + 3})")
    await asyncio.sleep(0.5)
    await tx.commit()
    items = data(await box.wait(3))
    assert sorted(d["record"]["n"] for d in items) == [base + 1, base + 2, base + 3]
    await late.close()
    await long_tx.rollback()
    await other.close()
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'drop database if exists "{other_url.rsplit("/", 1)[1]}"')
    finally:
        await admin.close()
    await c.close()


async def test_rls_judges_the_row_as_captured(rt_server, mint):
    """Policies are evaluated on the captured row: an insert deleted in the same breath is still
    delivered to those who could read it, and a DELETE reaches only those who could read the
    deleted row (with its primary key only)."""
    alice_id, bob_id = str(uuid.uuid4()), str(uuid.uuid4())
    clients, boxes = [], {}
    for name, token in (("alice", mint(alice_id)), ("bob", mint(bob_id)), ("anon", None)):
        client = await rt_client(rt_server, token=token)
        ch = client.channel("pg-captured-" + name)
        box = Inbox()
        ch.on_postgres_changes("*", box, table="rt_notes", filter=f"body=like.cap-{alice_id[:8]}*")
        await subscribed(ch)
        clients.append(client)
        boxes[name] = box
    tag = f"cap-{alice_id[:8]}"
    # one transaction: the rows no longer exist when the change is delivered
    await run_sql(rt_server, f"""
        insert into rt_notes(owner, body, is_public) values ('{alice_id}', '{tag}-public', true);
        insert into rt_notes(owner, body, is_public) values ('{alice_id}', '{tag}-private', false);
        delete from rt_notes where body like '{tag}-%';""")
    await boxes["alice"].wait(4)
    await boxes["anon"].wait(2)
    await boxes["bob"].wait(2)
    await asyncio.sleep(0.5)
    seen = {k: [(d["type"], (d.get("record") or {}).get("body"), sorted(d.get("old_record") or {}))
                for d in data(v.items)] for k, v in boxes.items()}
    assert seen["alice"] == [("INSERT", f"{tag}-public", []), ("INSERT", f"{tag}-private", []),
                             ("DELETE", None, ["id"]), ("DELETE", None, ["id"])]
    assert seen["anon"] == [("INSERT", f"{tag}-public", []), ("DELETE", None, ["id"])]
    assert seen["bob"] == seen["anon"]
    for client in clients:
        await client.close()
