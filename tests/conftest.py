"""Shared fixtures: a real PostgreSQL (embedded by default, or OWNBASE_TEST_DATABASE_URL), real
ownbase server processes, a real Redis. Nothing here is mocked."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import asyncpg
import httpx
import pytest

from ownbase.db.pool import with_database
from ownbase.embedded import EmbeddedPostgres, free_port
from ownbase.keys import build_keyring, generate_private_key_pem
from ownbase.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# Settings that only lower costs for tests (never change product behaviour being tested).
TEST_ENV = {
    "OWNBASE_AUTH_BCRYPT_COST": "4",
    "OWNBASE_AUTH_RATE_LIMIT_SIGNUP": "100000",
    "OWNBASE_AUTH_RATE_LIMIT_TOKEN": "100000",
    "OWNBASE_AUTH_RATE_LIMIT_OTP": "100000",
    "OWNBASE_AUTH_RATE_LIMIT_VERIFY": "100000",
    "OWNBASE_RATE_LIMIT_IP_PER_MINUTE": "1000000",
    "OWNBASE_RATE_LIMIT_USER_PER_MINUTE": "1000000",
    "OWNBASE_LOG_LEVEL": "warning",
    "OWNBASE_DB_POOL_MAX": "8",
}


def run(coro: Any) -> Any:
    return asyncio.get_event_loop_policy().get_event_loop().run_until_complete(coro) \
        if False else asyncio.run(coro)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ownbase-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_root: Path) -> Iterator[str]:
    """A PostgreSQL server URL with a superuser/owner login."""
    external = os.environ.get("OWNBASE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    # A test session keeps every ownbase process it starts until it ends (each with small pools),
    # plus bridges, dashboards and migration targets: room for all of them, as .ci/run gives PG 15.
    emb = EmbeddedPostgres(tmp_root / "pg", extra_options="-c max_connections=1500")
    emb.start()
    try:
        yield emb.url()
    finally:
        emb.stop()


def create_database(admin_url: str, prefix: str = "ownbase_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'create database "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    return with_database(admin_url, name)


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> str:
    """A fresh database for this test session (shared by the session's servers)."""
    return create_database(pg_admin_url)


@pytest.fixture(scope="session")
def jwt_private_key() -> str:
    return generate_private_key_pem("RS256")


@dataclass
class ServerHandle:
    url: str
    port: int
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    anon_key: str = ""
    service_key: str = ""
    db_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def storage_root(self) -> Path:
        """Where this server's local storage backend keeps blobs."""
        local = self.env.get("OWNBASE_STORAGE_LOCAL_DIR")
        return Path(local) if local else self.data_dir / "storage"

    @property
    def settings(self) -> Settings:
        return Settings(**{k[8:].lower(): v for k, v in self.env.items() if k.startswith("OWNBASE_")
                           and k[8:].lower() in Settings.model_fields})

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-6000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode or 0)

    def client(self, key: str | None = None, token: str | None = None) -> httpx.Client:
        key = key or self.anon_key
        headers = {"apikey": key, "Authorization": f"Bearer {token or key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(
    tmp_root: Path,
    env: dict[str, str],
    *,
    data_dir: Path | None = None,
    port: int | None = None,
    wait: bool = True,
    args: list[str] | None = None,
) -> ServerHandle:
    port = port or free_port()
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="srv-", dir=tmp_root))
    full_env = {**os.environ, **TEST_ENV, **env}
    full_env.pop("OWNBASE_TEST_DATABASE_URL", None)
    log_path = data_dir.parent / f"{data_dir.name}-{port}.log"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ownbase", "start", "--data-dir", str(data_dir), "--port", str(port),
         *(args or [])],
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=str(tmp_root),
    )
    handle = ServerHandle(f"http://127.0.0.1:{port}", port, data_dir, full_env, proc, log_path)
    if wait:
        wait_ready(handle)
        fill_keys(handle)
    return handle


def wait_ready(handle: ServerHandle, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(f"ownbase exited with {handle.process.returncode}:\n{handle.log()}")
        try:
            if httpx.get(handle.url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    handle.stop()
    raise RuntimeError(f"ownbase did not become ready:\n{handle.log()}")


def fill_keys(handle: ServerHandle) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ownbase", "keys", "--json", "--data-dir", str(handle.data_dir)],
        env=handle.env, capture_output=True, text=True, check=True, cwd=str(handle.data_dir.parent),
    )

    info = json.loads(out.stdout)
    handle.anon_key = info["anon_key"]
    handle.service_key = info["service_role_key"]
    handle.db_url = info["db_url"]


@pytest.fixture(scope="session")
def server_factory(tmp_root: Path, database_url: str, jwt_private_key: str) -> Iterator[Callable[..., ServerHandle]]:
    """Start extra ownbase processes on the session database (same keys), stopped at the end."""
    started: list[ServerHandle] = []

    def factory(env: dict[str, str] | None = None, **kwargs: Any) -> ServerHandle:
        # Processes serving one project share one database and one storage backend: the local
        # backend of every test server on the session database is the same folder, as it would
        # be for several processes on one machine (their sweepers share the bookkeeping rows).
        base = {"OWNBASE_DATABASE_URL": database_url, "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key,
                "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "storage-local")}
        handle = start_server(tmp_root, {**base, **(env or {})}, **kwargs)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()


@pytest.fixture(scope="session")
def server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    """The default ownbase server of the test session."""
    return server_factory()


@pytest.fixture(scope="session")
def redis_url(tmp_root: Path) -> Iterator[str]:
    """A real redis-server of our own on a free port (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: the test command installs it (scripts/test)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def wait_for_port(port: int, timeout: float = 10) -> None:
    """Wait until something accepts TCP connections on the loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)


def keyring_for(pem: str) -> Any:
    return build_keyring(Settings(jwt_private_key=pem))


async def owner_connect(handle: ServerHandle) -> asyncpg.Connection:
    return await asyncpg.connect(handle.db_url)


def sql(handle: ServerHandle, statement: str, *args: Any) -> list[asyncpg.Record]:
    """Run SQL as the database owner (fixtures, assertions on stored state)."""

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(handle.db_url)
        try:
            if args:
                return list(await conn.fetch(statement, *args))
            if ";" in statement.strip().rstrip(";"):
                await conn.execute(statement)
                return []
            return list(await conn.fetch(statement))
        finally:
            await conn.close()

    return asyncio.run(go())
