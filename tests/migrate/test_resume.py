"""An interrupted `migrate data` (kill -9 mid-run) resumes without duplicates or gaps, and reruns
of `files` add nothing twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import time
from typing import Any, Callable

import asyncpg
import pytest

from tests.conftest import ServerHandle, create_database, sql
from tests.migrate.conftest import SKIPS, Source, migrate



@pytest.fixture(scope="module")
def fresh_target(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_root: Any) -> ServerHandle:
    return server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_resume"),
                           "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "resume-blobs")})


def _done(handle: ServerHandle) -> set[str]:
    return {r["item"] for r in sql(handle, "select item from ownbase.migrate_progress where step = 'data'")}


def test_killed_data_run_resumes_without_duplicates(supabase_source: Source, fresh_target: ServerHandle) -> None:
    src = ["--from", supabase_source.url]
    migrate(fresh_target, "schema", *src, *SKIPS)

    async def hold_lock() -> tuple[asyncpg.Connection, Any]:
        conn = await asyncpg.connect(fresh_target.db_url)
        tx = conn.transaction()
        await tx.start()
        await conn.execute("lock table public.todos in access exclusive mode")
        return conn, tx

    loop = asyncio.new_event_loop()
    try:
        conn, tx = loop.run_until_complete(hold_lock())
        # One table at a time: invoices and profiles complete, then the run waits on todos.
        proc = subprocess.Popen(
            [sys.executable, "-m", "ownbase", "migrate", "data", *src, "--jobs", "1",
             "--data-dir", str(fresh_target.data_dir)],
            env=fresh_target.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=str(fresh_target.data_dir.parent))
        deadline = time.monotonic() + 120
        while _done(fresh_target) != {"public.invoices", "public.profiles"}:
            assert proc.poll() is None and time.monotonic() < deadline, _done(fresh_target)
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        loop.run_until_complete(tx.rollback())
        loop.run_until_complete(conn.close())
    finally:
        loop.close()

    assert sql(fresh_target, "select count(*) as n from public.todos")[0]["n"] == 0
    assert sql(fresh_target, "select count(*) as n from public.posts")[0]["n"] == 0
    report = fresh_target.data_dir.parent / "resume-data.json"
    migrate(fresh_target, "data", *src, "--report", str(report))
    statuses = {t["table"]: t["status"] for t in json.loads(report.read_text())["tables"]}
    assert statuses == {"public.invoices": "done earlier", "public.profiles": "done earlier",
                        "public.todos": "copied", "public.posts": "copied"}
    counts = {t: sql(fresh_target, f"select count(*) as n from public.{t}")[0]["n"]
              for t in ("invoices", "profiles", "todos", "posts")}
    assert counts == {"invoices": 155, "profiles": 200, "todos": 448, "posts": 95}
    # todos has an identity column: the next id continues after the source's
    top = sql(fresh_target, "select max(id) as m from public.todos")[0]["m"]
    assert sql(fresh_target, "select nextval(pg_get_serial_sequence('public.todos', 'id')) as v")[0]["v"] == top + 1


def test_files_rerun_adds_nothing_twice(supabase_source: Source, source_storage: ServerHandle,
                                        fresh_target: ServerHandle) -> None:
    args = ["files", "--from", supabase_source.url, "--from-url", source_storage.url,
            "--from-service-key", source_storage.service_key, "--bucket", "avatars"]
    migrate(fresh_target, *args)
    # Forget the bucket's completion, as if the run had died after writing its last page.
    sql(fresh_target, "delete from ownbase.migrate_progress where step = 'files'")
    report = fresh_target.data_dir.parent / "resume-files.json"
    migrate(fresh_target, *args, "--report", str(report))
    assert json.loads(report.read_text())["buckets"][0]["mismatches"] == []
    rows = sql(fresh_target, "select count(*) as n, count(distinct name) as d from storage.objects"
                             " where bucket_id = 'avatars'")[0]
    assert rows["n"] == rows["d"] == 237


def test_killed_files_run_resumes_without_duplicates_or_gaps(supabase_source: Source, source_storage: ServerHandle,
                                                              fresh_target: ServerHandle) -> None:
    args = ["files", "--from", supabase_source.url, "--from-url", source_storage.url,
            "--from-service-key", source_storage.service_key, "--bucket", "documents"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ownbase", "migrate", *args, "--jobs", "1", "--batch", "5",
         "--data-dir", str(fresh_target.data_dir)],
        env=fresh_target.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=str(fresh_target.data_dir.parent))

    def resume_point() -> dict[str, Any] | None:
        rows = sql(fresh_target, "select info from ownbase.migrate_progress where step = 'files'"
                                 " and item = 'documents'")
        return json.loads(rows[0]["info"]) if rows else None

    deadline = time.monotonic() + 120
    while resume_point() is None:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    # Freeze the source Storage API mid-bucket, then kill the copy outright.
    source_storage.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        source_storage.process.send_signal(signal.SIGCONT)
    point = resume_point()
    assert point is not None and not point.get("complete")
    stored = sql(fresh_target, "select count(*) as n from storage.objects where bucket_id = 'documents'")[0]["n"]
    assert 0 < stored < 182 and stored == point["copied"]

    report = fresh_target.data_dir.parent / "resume-files-kill.json"
    migrate(fresh_target, *args, "--report", str(report))
    assert json.loads(report.read_text())["buckets"][0]["mismatches"] == []
    rows = sql(fresh_target, "select count(*) as n, count(distinct name) as d from storage.objects"
                             " where bucket_id = 'documents'")[0]
    assert rows["n"] == rows["d"] == 182
    with fresh_target.client(fresh_target.service_key) as c:
        for obj in supabase_source.fixture["objects"]:
            if obj["bucket"] == "documents":
                r = c.get(f"/storage/v1/object/authenticated/documents/{obj['name']}")
                assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == obj["sha256"]
