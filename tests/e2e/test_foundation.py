"""The platform foundation against real processes: start/stop, keys, locks, CORS, limits, scope."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import asyncpg
import httpx
import pytest
from supabase import create_client

from ownbase.db.migrate import apply_migrations
from ownbase.db.pool import open_database
from ownbase.db.scope import RequestScope, request_scope
from ownbase.embedded import free_port
from ownbase.keys import build_keyring
from ownbase.settings import Settings
from tests.conftest import ServerHandle, sql, start_server


def test_health_ready_and_request_id(server: ServerHandle) -> None:
    r = httpx.get(server.url + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = httpx.get(server.url + "/ready", headers={"x-request-id": "abc-123"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "abc-123"
    assert len(httpx.get(server.url + "/health").headers["x-request-id"]) >= 16


def test_cors_preflight_and_exposed_headers(server: ServerHandle) -> None:
    r = httpx.options(server.url + "/rest/v1/todos", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "apikey, authorization, x-client-info, prefer"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    allowed = r.headers["access-control-allow-headers"]
    for h in ("apikey", "authorization", "x-client-info", "prefer", "range", "x-upsert"):
        assert h in allowed
    r = httpx.get(server.url + "/auth/v1/health", headers={"Origin": "http://app.example"})
    exposed = r.headers["access-control-expose-headers"]
    assert "Content-Range" in exposed and "X-Total-Count" in exposed


def test_supabase_py_reaches_auth_health_and_settings(server: ServerHandle) -> None:
    client = create_client(server.url, server.anon_key)
    resp = client.auth._request("GET", "health")
    assert resp is not None
    assert resp.status_code == 200
    settings = client.auth._request("GET", "settings")
    assert settings.status_code == 200 and settings.json()["external"]["email"] is True


def test_jwks_served_without_secret(server_factory: Callable[..., ServerHandle]) -> None:
    secret = "legacy-secret-of-a-migrated-project-0123456789"
    srv = server_factory({"OWNBASE_JWT_SECRET": secret})
    r = httpx.get(srv.url + "/auth/v1/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.json()["keys"] and all(k["kty"] in ("RSA", "EC") for k in r.json()["keys"])
    assert secret not in r.text


def test_request_scope_switches_role(server: ServerHandle) -> None:
    async def go() -> None:
        settings = Settings(jwt_private_key=server.env["OWNBASE_JWT_PRIVATE_KEY"])
        keys = build_keyring(settings)
        password = keys.derive_secret("db-authenticator")
        db = await open_database(settings, server.db_url, password)
        try:
            uid = str(uuid.uuid4())
            scope = RequestScope(role="authenticated", claims={"sub": uid, "role": "authenticated",
                                                               "email": "a@b.c"})
            async with request_scope(db, scope) as conn:
                row = await conn.fetchrow("select current_user, auth.uid(), auth.role(), auth.email(), "
                                          "auth.jwt()->>'sub' as sub")
            assert row["current_user"] == "authenticated"
            assert str(row["uid"]) == uid
            assert row["role"] == "authenticated" and row["email"] == "a@b.c" and row["sub"] == uid
            async with request_scope(db, RequestScope(role="anon", claims={"role": "anon"})) as conn:
                assert await conn.fetchval("select current_user") == "anon"
                assert await conn.fetchval("select auth.uid()") is None
            # After the transaction the pooled connection is the login role again.
            async with db.api.acquire() as conn:
                assert await conn.fetchval("select current_user") == "ownbase_authenticator"
                with pytest.raises(asyncpg.PostgresError):
                    await conn.execute("set role postgres")
            with pytest.raises(ValueError):
                async with request_scope(db, RequestScope(role="postgres", claims={})):
                    pass
        finally:
            await db.close()

    asyncio.run(go())


def test_migrations_run_twice_without_change(server: ServerHandle) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(server.db_url)
        try:
            before = await conn.fetch("select version, checksum from ownbase.migrations order by 1")
            assert await apply_migrations(conn) == []
            after = await conn.fetch("select version, checksum from ownbase.migrations order by 1")
            assert before == after and len(before) >= 1
            schemas = {r[0] for r in await conn.fetch("select nspname from pg_namespace")}
            assert {"auth", "storage", "realtime", "extensions", "ownbase"} <= schemas
            assert await conn.fetchval("select extensions.uuid_generate_v4() is not null")
        finally:
            await conn.close()

    asyncio.run(go())


def test_public_schema_grants_like_supabase(server: ServerHandle) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(server.db_url)
        try:
            name = f"grants_{uuid.uuid4().hex[:8]}"
            await conn.execute(f"create table public.{name}(id int)")
            for role in ("anon", "authenticated", "service_role"):
                assert await conn.fetchval("select has_table_privilege($1, $2, 'select,insert')",
                                           role, f"public.{name}")
            await conn.execute(f"drop table public.{name}")
        finally:
            await conn.close()

    asyncio.run(go())


def test_untrusted_and_trusted_forwarded_for(server_factory: Callable[..., ServerHandle]) -> None:
    limited = server_factory({"OWNBASE_RATE_LIMIT_IP_PER_MINUTE": "3"})
    statuses = [httpx.get(limited.url + "/auth/v1/health",
                          headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429  # XFF ignored: one client
    r = httpx.get(limited.url + "/auth/v1/health")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error_code"] == "over_request_rate_limit"

    trusted = server_factory({"OWNBASE_RATE_LIMIT_IP_PER_MINUTE": "3",
                              "OWNBASE_TRUSTED_PROXIES": "127.0.0.0/8"})
    statuses = [httpx.get(trusted.url + "/auth/v1/health",
                          headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(5)]
    assert statuses == [200] * 5  # each forwarded client has its own budget


def test_embedded_start_stop_restart_keeps_data_and_keys(tmp_root: Path) -> None:
    data_dir = tmp_root / f"embedded-{uuid.uuid4().hex[:6]}"
    env = {"OWNBASE_DATABASE_URL": ""}
    first = start_server(tmp_root, env, data_dir=data_dir)
    try:
        # A second start on the same data dir fails clearly and leaves the first one running.
        second = subprocess.run(
            [sys.executable, "-m", "ownbase", "start", "--data-dir", str(data_dir), "--port",
             str(free_port())], env={**first.env}, capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "already running" in (second.stdout + second.stderr)
        assert httpx.get(first.url + "/ready").status_code == 200
        keys_before = (first.anon_key, first.service_key)

        async def create() -> None:
            conn = await asyncpg.connect(first.db_url)
            await conn.execute("create table public.kept(id int primary key); insert into kept values (42)")
            await conn.close()

        asyncio.run(create())
        assert first.db_url.startswith("postgresql://") and "127.0.0.1" in first.db_url
    finally:
        assert first.stop() == 0
    out = subprocess.run([sys.executable, "-m", "ownbase", "keys", "--json", "--data-dir", str(data_dir)],
                         env=first.env, capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert {"api_url", "anon_key", "service_role_key", "jwks_url", "db_url"} <= set(info)
    assert (info["anon_key"], info["service_role_key"]) == keys_before

    again = start_server(tmp_root, env, data_dir=data_dir)
    try:
        assert (again.anon_key, again.service_key) == keys_before

        async def check() -> int:
            conn = await asyncpg.connect(again.db_url)
            try:
                return int(await conn.fetchval("select id from kept"))
            finally:
                await conn.close()

        assert asyncio.run(check()) == 42
    finally:
        assert again.stop() == 0
    # Stopped cleanly: no postmaster left behind.
    assert not (data_dir / "postgres" / "data" / "postmaster.pid").exists()


def test_invalid_setting_stops_startup(tmp_root: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ownbase", "start", "--data-dir", str(tmp_root / "bad")],
                          env={**os.environ, "OWNBASE_JWT_ALGORITHM": "HS512"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "OWNBASE_JWT_ALGORITHM" in proc.stdout + proc.stderr


def test_workers_need_redis(tmp_root: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ownbase", "start", "--workers", "2",
                           "--data-dir", str(tmp_root / "w")],
                          env={k: v for k, v in os.environ.items() if k != "OWNBASE_REDIS_URL"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "OWNBASE_REDIS_URL" in proc.stdout + proc.stderr


def test_two_workers_with_redis(server_factory: Callable[..., ServerHandle], redis_url: str) -> None:
    srv = server_factory({"OWNBASE_REDIS_URL": redis_url}, args=["--workers", "2"])
    assert all(httpx.get(srv.url + "/ready").status_code == 200 for _ in range(10))


def test_one_json_log_line_per_request(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_LOG_LEVEL": "info"})
    rid = f"log-{uuid.uuid4().hex}"
    assert httpx.get(srv.url + "/auth/v1/health", headers={"x-request-id": rid}).status_code == 200

    for _ in range(50):
        lines = [json.loads(line) for line in srv.log_path.read_text().splitlines()
                 if line.startswith("{") and rid in line]
        if lines:
            break
        time.sleep(0.1)
    assert len(lines) == 1
    entry = lines[0]
    assert entry["request_id"] == rid and entry["path"] == "/auth/v1/health" and entry["status"] == 200
    assert entry["method"] == "GET" and "duration_ms" in entry and entry["client_ip"] == "127.0.0.1"


def test_sigterm_lets_in_flight_requests_finish(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory()
    name = f"slow_{uuid.uuid4().hex[:8]}"

    sql(srv, f"create function public.{name}() returns int language sql as "
             f"'select 7 from pg_sleep(1.5)'; notify pgrst, 'reload schema';")
    headers = {"apikey": srv.anon_key, "Authorization": f"Bearer {srv.anon_key}"}
    for _ in range(50):  # wait for the schema cache to see the function
        if httpx.post(f"{srv.url}/rest/v1/rpc/{name}", headers=headers, timeout=30).status_code == 200:
            break
        time.sleep(0.1)
    result: dict[str, object] = {}

    def call() -> None:
        r = httpx.post(f"{srv.url}/rest/v1/rpc/{name}", headers=headers, timeout=30)
        result["status"], result["body"] = r.status_code, r.json()

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.5)
    srv.process.send_signal(15)
    worker.join(30)
    assert result == {"status": 200, "body": 7}
    assert srv.process.wait(30) == 0
