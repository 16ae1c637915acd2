"""Start-up under concurrency (issue 17): the start-up database work runs once, under one
advisory lock, whatever number of processes start against one database at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from ownbase.db.migrate import bundled_migrations
from ownbase.db.startup import STARTUP_LOCK_KEY
from tests.conftest import ServerHandle, create_database, start_server, wait_ready

APPLIED = "applied ownbase migrations"
WAITING = "waiting for another ownbase to finish start-up"


def _wait_for_log(handle: ServerHandle, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in handle.log():
            return
        if handle.process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the log:\n{handle.log()}")


def test_workers_four_start_twenty_times_in_a_row(tmp_root: Path, redis_url: str) -> None:
    data_dir = tmp_root / "twenty-starts"
    env = {"OWNBASE_DATABASE_URL": "", "OWNBASE_REDIS_URL": redis_url, "OWNBASE_LOG_LEVEL": "info"}
    for attempt in range(20):
        handle = start_server(tmp_root, env, data_dir=data_dir, args=["--workers", "4"], wait=False)
        try:
            wait_ready(handle)
            # Every worker answers: several requests land on several processes.
            assert all(httpx.get(handle.url + "/ready").status_code == 200 for _ in range(8))
        finally:
            code = handle.stop()
        log = handle.log_path.read_text()
        assert code == 0, log
        assert "concurrently updated" not in log
        assert "Warning" not in log  # workers import uvicorn's websockets module quietly too
        # The work happened in the parent, once: the first start applied the migrations, later
        # starts found them done; the workers never repeated it.
        assert log.count(APPLIED) == (1 if attempt == 0 else 0), log


def _migration_rows(url: str) -> list[tuple[str, int]]:
    async def go() -> list[tuple[str, int]]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("select version, count(*) from ownbase.migrations group by 1 order by 1")
            return [(r[0], r[1]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_four_processes_on_one_database_start_together(tmp_root: Path, pg_admin_url: str,
                                                       jwt_private_key: str) -> None:
    url = create_database(pg_admin_url, "ownbase_together")
    env = {"OWNBASE_DATABASE_URL": url, "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key, "OWNBASE_LOG_LEVEL": "info"}
    handles = [start_server(tmp_root, env, wait=False) for _ in range(4)]
    try:
        for handle in handles:
            wait_ready(handle)
        logs = [h.log() for h in handles]
        assert sum(APPLIED in log for log in logs) == 1, logs  # one did the work, three found it done
        assert not any("concurrently updated" in log for log in logs)
        assert _migration_rows(url) == [(m.version, 1) for m in bundled_migrations()]
    finally:
        for handle in handles:
            handle.stop()


def test_start_waits_for_a_held_lock_then_proceeds(tmp_root: Path, pg_admin_url: str,
                                                   jwt_private_key: str) -> None:
    url = create_database(pg_admin_url, "ownbase_held")
    env = {"OWNBASE_DATABASE_URL": url, "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key}

    async def hold() -> asyncpg.Connection:
        conn = await asyncpg.connect(url)
        await conn.execute("select pg_advisory_lock($1)", STARTUP_LOCK_KEY)
        return conn

    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(hold())
    handle = start_server(tmp_root, env, wait=False)
    try:
        _wait_for_log(handle, WAITING)
        time.sleep(0.5)
        assert handle.process.poll() is None  # still waiting, not failed
        with pytest.raises(httpx.HTTPError):
            httpx.get(handle.url + "/ready", timeout=1)  # not serving before the work is done
        loop.run_until_complete(holder.execute("select pg_advisory_unlock($1)", STARTUP_LOCK_KEY))
        wait_ready(handle)
        assert _migration_rows(url) == [(m.version, 1) for m in bundled_migrations()]
    finally:
        handle.stop()
        loop.run_until_complete(holder.close())
        loop.close()


def test_start_gives_up_on_a_lock_held_too_long(tmp_root: Path, pg_admin_url: str,
                                                jwt_private_key: str) -> None:
    url = create_database(pg_admin_url, "ownbase_stuck")
    env = {"OWNBASE_DATABASE_URL": url, "OWNBASE_JWT_PRIVATE_KEY": jwt_private_key,
           "OWNBASE_DB_STARTUP_LOCK_TIMEOUT": "1"}

    async def hold() -> asyncpg.Connection:
        conn = await asyncpg.connect(url)
        await conn.execute("select pg_advisory_lock($1)", STARTUP_LOCK_KEY)
        return conn

    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(hold())
    handle = start_server(tmp_root, env, wait=False)
    try:
        assert handle.process.wait(60) != 0
        log = handle.log()
        assert WAITING in log
        assert "OWNBASE_DB_STARTUP_LOCK_TIMEOUT" in log and "ownbase is running" not in log
    finally:
        handle.stop()
        loop.run_until_complete(holder.close())
        loop.close()
