"""Filters a client supplies cannot stall the process (issue 10, item 1): patterns run in linear
time (RE2), filter and pattern lengths are bounded, patterns RE2 refuses are refused at join, and
a filter on a column the subscriber may not read never matches."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from ownbase.realtime import filters
from tests.realtime.conftest import Inbox, rt_client, run_sql, subscribed, until

CATASTROPHIC = "^(a+)+$"  # exponential for a backtracking engine on "aaaa…a!"
LIKE_BOMB = "%a%a%a%a%a%a%a%a%a%a%a%a%b"  # polynomial of degree 12 for a backtracking engine


def test_catastrophic_patterns_are_evaluated_linearly():
    almost = "a" * 10_000 + "!"
    conds = filters.parse(f"name=match.{CATASTROPHIC}")
    assert filters.matches(conds, {"name": almost}) is False
    assert filters.matches(conds, {"name": "a" * 10_000}) is True
    like = filters.parse(f"name=like.{LIKE_BOMB}")
    assert filters.matches(like, {"name": almost}) is False
    assert filters.matches(like, {"name": "a" * 20 + "b"}) is True
    assert filters.matches(filters.parse("name=ilike.A%B"), {"name": "a\nxb"}) is True  # % spans lines
    assert filters.matches(filters.parse("name=imatch.^A+$"), {"name": "aaa"}) is True


@pytest.mark.parametrize("text", [
    "name=match." + "a" * (filters.MAX_PATTERN_LENGTH + 1),
    "name=like." + "%" * (filters.MAX_PATTERN_LENGTH + 1),
    "id=in.(" + ",".join(["1"] * filters.MAX_FILTER_LENGTH) + ")",
    r"name=match.(a)\1",  # back-references cannot run in linear time: refused
    "name=match.(?=a)",
])
def test_unbounded_or_nonlinear_filters_are_refused(text):
    with pytest.raises(filters.FilterError):
        filters.parse(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300), value=st.one_of(st.none(), st.text(max_size=200), st.integers(),
                                                   st.booleans(), st.floats(allow_nan=False)))
def test_any_filter_text_parses_or_is_refused_cleanly(text, value):
    try:
        conds = filters.parse("c=" + text)
    except filters.FilterError:
        return
    assert filters.matches(conds, {"c": value}) in (True, False)


def _health_latencies(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            start = time.monotonic()
            assert http.get(url + "/health").status_code == 200
            out.append(time.monotonic() - start)
            time.sleep(0.05)


async def test_catastrophic_pattern_does_not_stall_the_server(rt_server):
    c = await rt_client(rt_server)
    ch = c.channel("pg-redos-" + uuid.uuid4().hex[:6])
    regex_box, like_box, marker_box = Inbox(), Inbox(), Inbox()
    ch.on_postgres_changes("INSERT", regex_box, table="rt_items", filter=f"name=match.{CATASTROPHIC}")
    ch.on_postgres_changes("INSERT", like_box, table="rt_items", filter=f"name=like.{LIKE_BOMB}")
    marker = "redos-" + uuid.uuid4().hex[:8]
    ch.on_postgres_changes("INSERT", marker_box, table="rt_items", filter=f"name=eq.{marker}")
    await subscribed(ch)  # the pattern is accepted: with RE2 it is harmless

    stop, latencies = threading.Event(), []
    poller = threading.Thread(target=_health_latencies, args=(rt_server.url, stop, latencies))
    poller.start()
    try:
        await until(lambda: len(latencies) >= 2)  # /health is being polled before the insert
        almost = "a" * 10_000 + "!"
        await run_sql(rt_server, "insert into rt_items(name) values ($1), ($2), ($3)",
                      almost, "a" * 10_000, marker)
        await marker_box.wait(1, timeout=30)  # the batch holding the 10,000-char rows was processed
        await regex_box.wait(1)
    finally:
        stop.set()
        await asyncio.to_thread(poller.join, 30)
    await like_box.quiet(0.3)
    # only the fully matching row reached the regex binding; the like pattern (needs a `b`) none
    assert [len(d["data"]["record"]["name"]) for d in regex_box.items] == [10_000]
    assert like_box.items == []
    assert latencies and max(latencies) < 1.0, latencies  # the generous bound of issue 10
    await c.close()


async def test_filter_errors_refuse_the_join(rt_server):
    url = rt_server.url.replace("http", "ws") + f"/realtime/v1/websocket?vsn=1.0.0&apikey={rt_server.anon_key}"
    async with websockets.connect(url) as ws:
        for i, flt in enumerate([r"name=match.(a)\1", "name=like." + "x" * 300, "name=zz.1"]):
            await ws.send(json.dumps({"join_ref": str(i), "ref": str(i), "topic": f"realtime:bad-{i}",
                                      "event": "phx_join", "payload": {"config": {"postgres_changes": [
                                          {"event": "*", "schema": "public", "table": "rt_items",
                                           "filter": flt}]}}}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["event"] == "phx_reply" and reply["payload"]["status"] == "error", reply
            assert reply["payload"]["response"]["reason"].startswith("Error parsing `filter` params:")


async def test_filter_on_an_unreadable_column_never_matches(rt_server):
    # anon may not SELECT rt_keys.secret: a filter on it would tell the secret apart bit by bit
    c = await rt_client(rt_server)
    ch = c.channel("pg-secret-" + uuid.uuid4().hex[:6])
    by_secret, by_label = Inbox(), Inbox()
    ch.on_postgres_changes("INSERT", by_secret, table="rt_keys", filter="secret=like.s%")
    ch.on_postgres_changes("INSERT", by_label, table="rt_keys", filter="label=eq.probe")
    await subscribed(ch)
    key = uuid.uuid4().int % 1_000_000_000
    await run_sql(rt_server, "insert into rt_keys(id, label, secret) values ($1, 'probe', 'sesame')", key)
    got = await by_label.wait(1)
    assert got[0]["data"]["record"] == {"id": key, "label": "probe"}
    await by_secret.quiet(0.3)
    assert by_secret.items == []
    await c.close()


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                     max_leaves=8)
_binding = st.one_of(_json, st.fixed_dictionaries({}, optional={
    "event": st.one_of(st.sampled_from(["*", "INSERT", "update", "TRUNCATE"]), _json),
    "schema": st.one_of(st.sampled_from(["public", "*"]), _json),
    "table": st.one_of(st.sampled_from(["rt_items", "*", "nope"]), _json),
    "filter": st.one_of(st.text(max_size=60), st.sampled_from(["qty=eq.1", "name=match.^(a+)+$"]), _json),
    "select": _json,
}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(bindings=st.lists(_binding, max_size=3))
def test_any_join_payload_gets_a_reply(rt_server, bindings):
    """Whatever postgres_changes config a client sends, the join is answered (ok or a clear
    error) and the socket stays usable: never a crash, a phx_error or a closed socket."""
    url = rt_server.url.replace("http", "ws") + f"/realtime/v1/websocket?vsn=1.0.0&apikey={rt_server.anon_key}"
    with connect(url) as ws:
        ws.send(json.dumps({"join_ref": "1", "ref": "1", "topic": "realtime:fuzz", "event": "phx_join",
                            "payload": {"config": {"postgres_changes": bindings}}}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["event"] == "phx_reply" and reply["payload"]["status"] in ("ok", "error"), reply
        ws.send(json.dumps({"ref": "2", "topic": "phoenix", "event": "heartbeat", "payload": {}}))
        while True:  # a system message may come first
            msg = json.loads(ws.recv(timeout=10))
            if msg["topic"] == "phoenix":
                assert msg["payload"]["status"] == "ok"
                break
            assert msg["event"] != "phx_error", msg
