"""A new user's first hour (issue 10, items 16-21): stable database port, a taken API port, the
URL `ownbase keys` reports, quiet and readable start-up output, the sign-up hint, and the warnings
about tables without RLS and SECURITY DEFINER functions anon can run."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from ownbase.embedded import EmbeddedPostgres, free_port
from tests.conftest import TEST_ENV, create_database, start_server

NOISE = ("Warning", "XDG_RUNTIME_DIR", "deprecated", "setuptools", "Traceback")


def test_embedded_port_stays_the_same_after_a_quick_restart(tmp_root: Path) -> None:
    emb = EmbeddedPostgres(tmp_root / f"stable-{uuid.uuid4().hex[:6]}")
    emb.start()
    port = emb.port

    async def hold_connections() -> list[asyncpg.Connection]:
        return [await asyncpg.connect(emb.url()) for _ in range(3)]

    loop = asyncio.new_event_loop()
    try:
        conns = loop.run_until_complete(hold_connections())
        # Stopping closes these from the server's side: the server's port now has sockets in
        # TIME_WAIT, which is what made a plain bind probe think the port was taken.
        emb.stop()
        for conn in conns:
            conn.terminate()
    finally:
        loop.close()
    emb.start()
    try:
        assert emb.port == port
        assert emb.url() == f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        emb.stop()
    # Only a port another program really listens on makes it move.
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past our own TIME_WAITs
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        emb.start()
        try:
            assert emb.port != port
        finally:
            emb.stop()


def test_taken_api_port_is_one_clear_line_before_any_banner(tmp_root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data_dir = tmp_root / f"taken-{uuid.uuid4().hex[:6]}"
        proc = subprocess.run(
            [sys.executable, "-m", "ownbase", "start", "--data-dir", str(data_dir), "--port", str(port)],
            env={**os.environ, **TEST_ENV, "OWNBASE_DATABASE_URL": ""}, capture_output=True, text=True,
            timeout=60)
    assert proc.returncode != 0
    assert proc.stdout == ""  # no banner, no keys
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"port {port}" in lines[0] and "--port" in lines[0]
    assert not (data_dir / "postgres").exists()  # failed before starting the database


def test_keys_reports_the_running_servers_url(tmp_root: Path, database_url: str, jwt_private_key: str) -> None:
    srv = start_server(tmp_root, {"OWNBASE_DATABASE_URL": database_url,
                                  "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key})

    def keys(*args: str) -> dict[str, str]:
        out = subprocess.run([sys.executable, "-m", "ownbase", "keys", "--json", "--data-dir",
                              str(srv.data_dir), *args], env=srv.env, capture_output=True, text=True,
                             check=True, cwd=str(tmp_root))
        return dict(json.loads(out.stdout))

    try:
        assert srv.port != 54321
        info = keys()
        assert info["api_url"] == srv.url
        assert info["jwks_url"] == f"{srv.url}/auth/v1/.well-known/jwks.json"
        assert keys("--port", "40001")["api_url"] == "http://127.0.0.1:40001"
    finally:
        assert srv.stop() == 0
    assert keys()["api_url"] == "http://127.0.0.1:54321"  # stopped: the configured URL again
    # A server killed without cleaning up leaves its file, but not its lock: the file is ignored.
    (srv.data_dir / "server.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1", "pid": 1}))
    assert keys()["api_url"] == "http://127.0.0.1:54321"


def _run_on_terminal(args: list[str], env: dict[str, str], ready_url: str, timeout: float = 90) -> str:
    """Run `ownbase start` with stdout and stderr on a pseudo-terminal; stop it once ready."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks: list[bytes] = []

    def drain(wait: float) -> None:
        while True:
            readable, _, _ = select.select([master], [], [], wait)
            if not readable:
                return
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            drain(0.1)
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        httpx.get(ready_url.replace("/ready", "/health"), timeout=5)
        drain(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < end:
            drain(0.1)
        drain(0.2)
        os.close(master)
        proc.wait(10)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_start_output_on_a_terminal_is_readable_and_quiet(tmp_root: Path) -> None:
    port = free_port()
    data_dir = tmp_root / f"tty-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **TEST_ENV, "OWNBASE_DATABASE_URL": "", "OWNBASE_LOG_LEVEL": "info"}
    env.pop("PYTHONWARNINGS", None)
    out = _run_on_terminal([sys.executable, "-m", "ownbase", "start", "--data-dir", str(data_dir),
                            "--port", str(port)], env, f"http://127.0.0.1:{port}/ready")
    assert "ownbase is running" in out, out
    for noise in NOISE:
        assert noise not in out, out
    log_lines = [line for line in out.splitlines() if "Application startup complete" in line]
    assert log_lines and not log_lines[0].lstrip().startswith("{"), out  # text, not JSON
    assert not any(line.lstrip().startswith('{"') for line in out.splitlines()), out
    assert "ownbase mail list" in out and "OWNBASE_AUTH_AUTOCONFIRM=true" in out  # the sign-up hint


def test_start_output_off_a_terminal_is_json_and_quiet(tmp_root: Path, database_url: str,
                                                       jwt_private_key: str) -> None:
    env = {"OWNBASE_DATABASE_URL": database_url, "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key,
           "OWNBASE_LOG_LEVEL": "info", "OWNBASE_AUTH_AUTOCONFIRM": "true"}
    srv = start_server(tmp_root, env)
    srv.stop()
    out = srv.log_path.read_text()
    for noise in NOISE:
        assert noise not in out, out
    started = [line for line in out.splitlines() if "Application startup complete" in line]
    assert started and json.loads(started[0])["msg"] == "Application startup complete."
    assert "ownbase mail list" not in out  # sign-ups need no confirmation: no hint


def test_start_warns_about_tables_without_rls_and_definer_functions(
        tmp_root: Path, pg_admin_url: str, jwt_private_key: str) -> None:
    url = create_database(pg_admin_url, "ownbase_advice")
    env = {"OWNBASE_DATABASE_URL": url, "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key}
    first = start_server(tmp_root, env)  # creates the roles and schemas
    first.stop()

    async def setup() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("""
                create table public.open_notes(id int);
                create table public.guarded_notes(id int);
                alter table public.guarded_notes enable row level security;
                create table public.hidden_notes(id int);
                revoke all on public.hidden_notes from anon, authenticated;
                create function public.leaky() returns int language sql security definer as 'select 1';
                create function public.safe() returns int language sql as 'select 1';
                create function public.private_definer() returns int language sql security definer as 'select 1';
                revoke execute on function public.private_definer() from public, anon;
            """)
        finally:
            await conn.close()

    asyncio.run(setup())
    srv = start_server(tmp_root, env)
    srv.stop()
    lines = srv.log_path.read_text().splitlines()
    tables = [line for line in lines if "row level security disabled" in line]
    functions = [line for line in lines if "SECURITY DEFINER" in line]
    assert len(tables) == 1 and "public.open_notes" in tables[0], lines
    assert len(functions) == 1 and "public.leaky()" in functions[0], lines
    assert all(json.loads(line)["level"] == "warning" for line in tables + functions)
