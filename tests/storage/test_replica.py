"""A read replica that lags or is down (issue 19 item 2).

The replica is a frozen copy of the primary (``CREATE DATABASE … TEMPLATE``) on the same
PostgreSQL, reached through a TCP relay of the test's own so it can be taken down and brought back
like a real replica host; "down at start" is a port nothing listens on."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from ownbase.db.pool import with_database
from ownbase.embedded import free_port
from tests.conftest import ServerHandle, create_database, sql
from tests.storage.conftest import StorageTarget, http, sb


class TcpRelay:
    """Forwards a local port to PostgreSQL; ``stop`` drops the listener and every connection."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, f"{netloc[0]}@{host}" if len(netloc) == 2 else host, parts.path,
                       parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def _clone(admin_url: str, source: str, copy: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        for _ in range(50):  # the stopped server's connections may take a moment to go
            try:
                await conn.execute(f'create database "{copy}" template "{source}"')
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.2)
        raise RuntimeError("the primary database stayed in use")
    finally:
        await conn.close()


async def _on(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for stmt in statements:
            await conn.execute(stmt)
    finally:
        await conn.close()


@dataclass
class Setup:
    primary_url: str
    replica_url: str  # through the relay
    relay: TcpRelay
    env: dict[str, str]
    handle: ServerHandle


@pytest.fixture(scope="module")
def replica(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_root: Path) -> Iterator[Setup]:
    primary = create_database(pg_admin_url, "ownbase_primary")
    env = {"OWNBASE_DATABASE_URL": primary,
           "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / f"replica-storage-{uuid.uuid4().hex[:6]}")}
    first = server_factory(env)  # migrations, then the state the frozen copy will hold
    admin = sb(StorageTarget("local", first), first.service_key)
    admin.storage.create_bucket("lagging")
    admin.storage.from_("lagging").upload("old.txt", b"version one")
    sql(first, "create table public.replica_probe (id int primary key, v text); "
               "grant select on public.replica_probe to anon, authenticated, service_role; "
               "insert into public.replica_probe values (1, 'primary')")
    first.stop()
    copy = f"ownbase_replica_{uuid.uuid4().hex[:8]}"
    asyncio.run(_clone(pg_admin_url, database_name(primary), copy))
    # Replica-only values show where a read went.
    asyncio.run(_on(with_database(pg_admin_url, copy),
                    "update public.replica_probe set v = 'replica'",
                    "update storage.buckets set file_size_limit = 4242 where id = 'lagging'"))
    relay = TcpRelay("127.0.0.1", urlsplit(pg_admin_url).port or 5432)
    relay.start()
    replica_url = with_database(with_port(pg_admin_url, relay.port), copy)
    handle = server_factory({**env, "OWNBASE_DATABASE_READ_URL": replica_url})
    yield Setup(primary, replica_url, relay, env, handle)
    relay.stop()


def rest_probe(handle: ServerHandle) -> httpx.Response:
    return httpx.get(f"{handle.url}/rest/v1/replica_probe?select=v",
                     headers={"apikey": handle.service_key, "Authorization": f"Bearer {handle.service_key}"})


def test_lagging_replica_upload_then_copy_sign_download(replica: Setup) -> None:
    h = replica.handle
    target = StorageTarget("local", h)
    admin = sb(target, h.service_key)
    files = admin.storage.from_("lagging")
    # GET reads go to the replica (its own value shows) ...
    assert admin.storage.get_bucket("lagging").file_size_limit == 4242
    assert rest_probe(h).json() == [{"v": "replica"}]
    assert httpx.get(f"{h.url}/ready").json()["read_replica"] == "ok"
    # ... and what was just written on the primary is found right after.
    files.upload("new.txt", b"fresh bytes", {"content-type": "text/plain"})
    assert files.download("new.txt") == b"fresh bytes"
    assert files.info("new.txt")["size"] == len(b"fresh bytes")
    assert files.exists("new.txt")
    files.copy("new.txt", "copied.txt")
    assert files.download("copied.txt") == b"fresh bytes"
    signed = files.create_signed_url("new.txt", 60)["signedURL"]
    assert httpx.get(signed).content == b"fresh bytes"
    batch = files.create_signed_urls(["new.txt", "copied.txt"], 60)
    assert all(item["error"] is None and item["signedURL"] for item in batch)
    assert {o["name"] for o in files.list()} >= {"new.txt", "copied.txt", "old.txt"}
    files.move("copied.txt", "moved.txt")
    assert files.download("moved.txt") == b"fresh bytes"
    # A new bucket created on the primary is found by a GET the replica cannot answer.
    admin.storage.create_bucket("fresh-bucket")
    assert admin.storage.get_bucket("fresh-bucket").id == "fresh-bucket"
    # The replica's row of old.txt points at version one; replacing it sweeps that blob on the
    # primary's say-so, and the download still answers with the new bytes.
    files.update("old.txt", b"version two")
    assert files.download("old.txt") == b"version two"
    with http(target, h.service_key) as c:
        r = c.get("/object/lagging/old.txt", headers={"range": "bytes=0-6"})
        assert r.status_code == 206 and r.content == b"version"
    # The sweeper works from the primary: exactly the primary's current blobs are on disk.
    current = {f"{r['name']}/{r['version']}" for r in
               sql(h, "select name, version from storage.objects where bucket_id = 'lagging'")}
    root = Path(replica.env["OWNBASE_STORAGE_LOCAL_DIR"]) / "lagging"
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == current


def test_replica_down_at_run_time_reads_from_the_primary(replica: Setup) -> None:
    h = replica.handle
    admin = sb(StorageTarget("local", h), h.service_key)
    files = admin.storage.from_("lagging")
    files.upload("during.txt", b"served anyway", {"upsert": "true"})
    replica.relay.stop()
    try:
        assert rest_probe(h).status_code == 200 and rest_probe(h).json() == [{"v": "primary"}]
        assert admin.storage.get_bucket("lagging").file_size_limit is None  # the primary's value
        assert files.download("during.txt") == b"served anyway"
        assert files.info("during.txt")["size"] == len(b"served anyway")
        ready = httpx.get(f"{h.url}/ready")
        assert ready.status_code == 200
        assert ready.json()["read_replica"] == "unavailable" and ready.json()["reads_served_by"] == "primary"
    finally:
        replica.relay.start()
    # Back: /ready sees it answer, and GET reads return to it.
    deadline = time.monotonic() + 30
    while httpx.get(f"{h.url}/ready").json().get("read_replica") != "ok":
        assert time.monotonic() < deadline, h.log()
        time.sleep(0.2)
    assert rest_probe(h).json() == [{"v": "replica"}]
    assert admin.storage.get_bucket("lagging").file_size_limit == 4242


def test_replica_down_at_start_starts_on_the_primary(replica: Setup,
                                                     server_factory: Callable[..., ServerHandle]) -> None:
    dead = with_database(with_port(replica.primary_url, free_port()), "nowhere")
    h = server_factory({**replica.env, "OWNBASE_DATABASE_READ_URL": dead})  # would raise if it exited
    assert h.process.poll() is None
    warnings = [line for line in h.log().splitlines() if "read replica unreachable" in line]
    assert len(warnings) == 1, h.log()
    assert "Traceback" not in h.log()
    admin = sb(StorageTarget("local", h), h.service_key)
    assert admin.storage.get_bucket("lagging").file_size_limit is None
    assert admin.storage.from_("lagging").download("during.txt") == b"served anyway"
    assert rest_probe(h).json() == [{"v": "primary"}]
    ready = httpx.get(f"{h.url}/ready")
    assert ready.status_code == 200 and ready.json()["read_replica"] == "unavailable"
    h.stop()
