"""Fan-out (issue 16): each message is framed once and the same bytes are written to every socket,
several messages for one socket in one loop pass go out in one write, and the plain ASGI path
(another server without ownbase's frame extension) behaves the same."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side

from ownbase.embedded import free_port
from ownbase.realtime.serializer import Outgoing
from ownbase.realtime.wsserver import _Flag, _Inbox
from tests.conftest import TEST_ENV, ServerHandle, fill_keys, wait_ready
from tests.realtime.test_protocol import parse_broadcast, url


# --- units -------------------------------------------------------------------------------------
def _parse_as_client(wire: bytes) -> list[WsFrame]:
    """Feed server bytes to websockets' own client-side parser (an open connection)."""
    client = Protocol(Side.CLIENT, max_size=None)
    client.receive_data(wire)
    return [e for e in client.events_received() if isinstance(e, WsFrame)]


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.integers(0, 70_000).map(lambda n: "x" * n), st.integers(0, 70_000).map(lambda n: b"\0" * n)))
def test_a_message_is_framed_as_websockets_reads_it(data):
    out = Outgoing(data)
    frames = _parse_as_client(out.wire + out.wire)  # two in one write: boundaries hold
    assert len(frames) == 2
    for frame in frames:
        assert frame.fin
        if isinstance(data, str):
            assert frame.opcode == Opcode.TEXT and bytes(frame.data).decode() == data
        else:
            assert frame.opcode == Opcode.BINARY and bytes(frame.data) == data
    assert out.wire is out.wire  # framed once, then reused for every socket


async def test_inbox_keeps_order_and_wakes_its_reader():
    inbox = _Inbox()
    assert inbox.empty()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await reader == 1
    assert not inbox.empty()
    assert await inbox.get() == 2
    assert inbox.empty()


async def test_flag_blocks_while_cleared():
    flag = _Flag()
    await asyncio.wait_for(flag.wait(), 1)  # set at start, as the writable event is
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    flag.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)


# --- end to end ----------------------------------------------------------------------------------
def _join(topic: str, vsn: str, config: dict) -> str:
    if vsn == "2.0.0":
        return json.dumps(["1", "1", topic, "phx_join", {"config": config}])
    return json.dumps({"join_ref": "1", "ref": "1", "topic": topic, "event": "phx_join", "payload": {"config": config}})


def _seq(raw) -> int | None:
    """The `i` of a broadcast in either serializer, None for anything else."""
    if isinstance(raw, bytes):
        return json.loads(parse_broadcast(raw)[4])["i"]
    msg = json.loads(raw)
    if isinstance(msg, list):
        return msg[4]["payload"]["i"] if msg[3] == "broadcast" else None
    return msg["payload"]["payload"]["i"] if msg["event"] == "broadcast" else None


async def _fan_out(srv: ServerHandle, sockets: int = 30, messages: int = 40) -> None:
    """Sockets of both serializers each get every message of a back-to-back burst, once and in
    order, with a heartbeat reply in between; the sender (self: false) gets none."""
    topic = "realtime:fan-" + os.urandom(4).hex()
    vsns = ["2.0.0" if i % 2 else "1.0.0" for i in range(sockets)]  # the sender (first) speaks v1
    conns = [await websockets.connect(url(srv, v), max_queue=None) for v in vsns]
    try:
        for ws, v in zip(conns, vsns):
            await ws.send(_join(topic, v, {"broadcast": {"self": False}}))
            await ws.recv()
        sender = conns[0]
        for i in range(messages):
            await sender.send(json.dumps({"join_ref": "1", "ref": None, "topic": topic, "event": "broadcast",
                                          "payload": {"type": "broadcast", "event": "e", "payload": {"i": i}}}))
            if i == messages // 2:
                await sender.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "hb"}))
        for ws, v in zip(conns[1:], vsns[1:]):
            got = []
            while len(got) < messages:
                raw = await asyncio.wait_for(ws.recv(), 20)
                assert isinstance(raw, bytes) == (v == "2.0.0")  # v2 gets kind-4 binary broadcasts
                got.append(_seq(raw))
            assert got == list(range(messages))
        seen = []
        while True:
            raw = await asyncio.wait_for(sender.recv(), 20)
            seen.append(raw)
            if "hb" in str(raw):
                break
        assert all(_seq(r) is None for r in seen)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(conns[1].recv(), 0.3)  # nothing more: no duplicates
    finally:
        for ws in conns:
            await ws.close()


async def test_burst_reaches_every_socket_once_and_in_order(rt_server):
    await _fan_out(rt_server)


@pytest.fixture(scope="module")
def plain_asgi_server(tmp_root: Path, database_url: str, jwt_private_key: str):
    """ownbase served by uvicorn's stock sans-I/O websockets protocol: no frame extension."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="plain-", dir=tmp_root))
    env = {**os.environ, **TEST_ENV, "OWNBASE_DATABASE_URL": database_url, "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key,
           "OWNBASE_DATA_DIR": str(data_dir), "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "storage-local"),
           "OWNBASE_REALTIME_MAX_PENDING_MESSAGES": "50"}
    env.pop("OWNBASE_TEST_DATABASE_URL", None)
    launcher = ("import uvicorn; uvicorn.run('ownbase.app:create_app', factory=True, host='127.0.0.1', "
                f"port={port}, ws='websockets-sansio', ws_per_message_deflate=False, log_config=None)")
    log_path = data_dir.parent / f"{data_dir.name}.log"
    proc = subprocess.Popen([sys.executable, "-c", launcher], env=env, stdout=open(log_path, "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT, cwd=str(tmp_root))
    handle = ServerHandle(f"http://127.0.0.1:{port}", port, data_dir, env, proc, log_path)
    wait_ready(handle)
    fill_keys(handle)
    yield handle
    handle.stop()


async def test_plain_asgi_server_fans_out_the_same(plain_asgi_server):
    # max pending 50 here: a burst of 40 is fine as long as the client reads
    await _fan_out(plain_asgi_server, sockets=6, messages=40)


async def test_plain_asgi_server_drops_a_slow_consumer(plain_asgi_server):
    srv = plain_asgi_server
    topic = "realtime:flood-" + os.urandom(4).hex()
    slow = await websockets.connect(url(srv, "1.0.0"), max_queue=1)
    await slow.send(_join(topic, "1.0.0", {}))
    await slow.recv()
    big = "y" * 200_000
    async with websockets.connect(url(srv, "1.0.0")) as fast:
        await fast.send(_join(topic, "1.0.0", {}))
        await fast.recv()
        for _ in range(200):
            await fast.send(json.dumps({"join_ref": "1", "ref": None, "topic": topic, "event": "broadcast",
                                        "payload": {"type": "broadcast", "event": "e", "payload": {"b": big}}}))
    code = None
    try:
        for _ in range(400):
            await asyncio.wait_for(slow.recv(), 10)
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
    assert code == 1013
