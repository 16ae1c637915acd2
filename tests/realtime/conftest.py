"""Realtime fixtures: the fixture schema, user tokens, and async helpers around the official
Python client (``supabase.acreate_client`` / ``realtime.AsyncRealtimeClient``)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from realtime import AsyncRealtimeClient

from ownbase.embedded import free_port
from tests.conftest import ServerHandle, keyring_for, sql, wait_for_port

SCHEMA = Path(__file__).with_name("schema.sql")


@pytest.fixture(scope="session")
def rt_server(server: ServerHandle) -> ServerHandle:
    sql(server, SCHEMA.read_text())
    return server


@pytest.fixture(scope="session")
def mint(jwt_private_key: str) -> Callable[..., str]:
    keys = keyring_for(jwt_private_key)

    def make(sub: str | None = None, role: str = "authenticated", ttl: int = 3600, **extra: Any) -> str:
        now = int(time.time())
        claims = {"sub": sub or str(uuid.uuid4()), "role": role, "aud": "authenticated",
                  "iat": now, "exp": now + ttl, **extra}
        return keys.sign(claims)

    return make


class Inbox:
    """Collects callback payloads; ``wait`` polls until a predicate holds (bounded)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __call__(self, *args: Any) -> None:
        self.items.append(args[0] if len(args) == 1 else args)

    async def wait(self, pred: Callable[[list[Any]], bool] | int = 1, timeout: float = 10) -> list[Any]:
        check = (lambda items: len(items) >= pred) if isinstance(pred, int) else pred
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ok = check(self.items)
            except (IndexError, KeyError):  # nothing (or not the right thing) arrived yet
                ok = False
            if ok:
                return self.items
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out; got {self.items!r}")

    async def quiet(self, seconds: float = 0.5) -> list[Any]:
        """Let in-flight messages arrive (used before asserting that something did NOT come)."""
        await asyncio.sleep(seconds)
        return self.items


async def subscribed(channel: Any, timeout: float = 10) -> None:
    """Subscribe and wait for the SUBSCRIBED callback."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def cb(status: Any, err: Any) -> None:
        if not fut.done():
            fut.set_result((status, err))

    await channel.subscribe(cb)
    status, err = await asyncio.wait_for(fut, timeout)
    assert str(getattr(status, "value", status)) == "SUBSCRIBED", (status, err)


def ws_url(server: ServerHandle) -> str:
    return server.url.replace("http://", "ws://") + "/realtime/v1"


async def until(fn: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = fn()
        if asyncio.iscoroutine(res):
            res = await res
        if res:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def rt_client(server: ServerHandle, token: str | None = None, key: str | None = None) -> Any:
    """A connected AsyncRealtimeClient (apikey = anon key; optional user token via set_auth)."""
    client = AsyncRealtimeClient(ws_url(server), key or server.anon_key)
    await client.connect()
    if token is not None:
        await client.set_auth(token)
    return client


def run_sql(server: ServerHandle, statement: str, *args: Any) -> Awaitable[Any]:
    """Run owner SQL from async tests without blocking the event loop."""
    return asyncio.to_thread(sql, server, statement, *args)


@pytest.fixture(scope="session")
def tls_redis_url(tmp_root: Path) -> Any:
    """A real redis-server as ElastiCache runs it: TLS only (rediss://) with AUTH."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_root / "redis-tls.crt", tmp_root / "redis-tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", str(crt), "--tls-key-file", str(pem),
         "--tls-ca-cert-file", str(crt), "--tls-auth-clients", "no", "--requirepass", "rt-secret",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    yield f"rediss://:rt-secret@127.0.0.1:{port}/0?ssl_ca_certs={crt}"
    proc.terminate()
    proc.wait(10)
