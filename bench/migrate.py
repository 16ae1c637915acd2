"""Benchmark of `ownbase migrate` in one run (issue 11):

* rows/s of `migrate data` vs `pg_dump -Fc | pg_restore` of the same tables (data only, into the
  same target tables, triggers disabled as `migrate data` does);
* MB/s of `migrate files` vs a direct copy of the same objects (HTTP GET into local files, same
  concurrency);
* `migrate sync` lag under a steady write load on the source.

The source is the shared Supabase-shaped fixture (../shared/fixtures/supabase-source) on a private
PostgreSQL 15+ cluster, grown with extra rows; the Storage source is a second ownbase.

    PYTHONPATH=. python bench/migrate.py [--rows 1000000] [--objects 300] [--object-kb 256]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import start_server  # noqa: E402

from ownbase.embedded import SYSTEM_USER, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def fixture_dir() -> Path:
    for base in (ROOT.parent, Path("/work")):
        path = base / "shared" / "fixtures" / "supabase-source"
        if path.is_dir():
            return path
    raise SystemExit("the fixture ../shared/fixtures/supabase-source is missing")


def pg_bin() -> Path:
    found = sorted((int(p.parent.name), p) for p in Path("/usr/lib/postgresql").glob("*/bin")
                   if p.parent.name.isdigit() and int(p.parent.name) >= 15)
    if not found:
        raise SystemExit("install the postgresql package (PostgreSQL 15+ with contrib)")
    return found[-1][1]


def as_user() -> dict[str, str]:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


def build_source(tmp: Path, rows: int) -> tuple[str, subprocess.CompletedProcess[bytes] | None, Path, dict]:
    bindir, fixture = pg_bin(), fixture_dir()
    tmp.chmod(0o777)
    pgdata = tmp / "src"
    subprocess.run([str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8"], check=True, capture_output=True, **as_user())
    port = free_port()
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(tmp / "src.log"), "-w", "start", "-o",
                    f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c wal_level=logical"],
                   check=True, capture_output=True, **as_user())
    url = f"postgresql://postgres@127.0.0.1:{port}/sb_source"
    psql = str(bindir / "psql")
    subprocess.run([psql, url.replace("sb_source", "postgres"), "-c", "create database sb_source"], check=True,
                   capture_output=True)
    for name in ("roles.sql", "schema.sql", "app.sql"):
        subprocess.run([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(fixture / name)], check=True,
                       capture_output=True)
    out = tmp / "fixture.json"
    subprocess.run([sys.executable, str(fixture / "data.py"), url, "--out", str(out), "--files-dir",
                    str(tmp / "files")], check=True, capture_output=True)
    # Grow the app tables: `rows` todos spread over the users (no trigger on todos).
    subprocess.run([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"""
        insert into public.todos (user_id, title, is_complete)
        select u.id, 'bench todo number ' || g, g % 3 = 0
        from generate_series(1, {rows}) g
        join (select id, row_number() over () - 1 as n from auth.users) u on u.n = g % 200;
        analyze;"""], check=True, capture_output=True)
    return url, None, pgdata, json.loads(out.read_text())


def migrate(data_dir: Path, *args: str) -> float:
    """Run a step; return the seconds it reports (the work, without the CLI's start-up)."""
    report = data_dir.parent / "step.json"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ownbase", "migrate", *args, "--data-dir", str(data_dir),
                           "--report", str(report)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})
    if proc.returncode != 0:
        raise SystemExit(f"migrate {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return float(json.loads(report.read_text()).get("seconds") or time.monotonic() - started)


async def count_rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "select (select count(*) from public.todos) + (select count(*) from public.profiles)"
            " + (select count(*) from public.posts) + (select count(*) from public.invoices)"))
    finally:
        await conn.close()


async def truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("truncate public.todos, public.posts, public.invoices, public.profiles;"
                           " delete from ownbase.migrate_progress where step = 'data'")
    finally:
        await conn.close()


def pg_dump_restore(source: str, target: str) -> float:
    bindir = pg_bin()
    started = time.monotonic()
    dump = subprocess.Popen([str(bindir / "pg_dump"), "-Fc", "--data-only", "-n", "public", "--dbname", source],
                            stdout=subprocess.PIPE)
    subprocess.run([str(bindir / "pg_restore"), "--data-only", "--disable-triggers", "--dbname", target],
                   stdin=dump.stdout, check=True, capture_output=True)
    dump.wait()
    return time.monotonic() - started


async def upload_objects(url: str, key: str, n: int, kb: int) -> tuple[int, str]:
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as c:
        await c.post("/storage/v1/bucket", json={"id": "bench", "name": "bench", "public": False})
        body = os.urandom(kb * 1024)
        for i in range(n):
            r = await c.post(f"/storage/v1/object/bench/obj-{i:05d}.bin", content=body,
                             headers={"content-type": "application/octet-stream", "x-upsert": "true"})
            r.raise_for_status()
    return n * kb * 1024, hashlib.md5(body).hexdigest()


async def source_object_rows(storage_db: str, source: str, md5: str) -> None:
    """Copy the Storage stand-in's rows for the bench bucket into the source's storage schema."""
    a = await asyncpg.connect(storage_db)
    b = await asyncpg.connect(source)
    try:
        rows = await a.fetch("select id, name, version, metadata::text as m from storage.objects"
                             " where bucket_id = 'bench'")
        await b.execute("insert into storage.buckets (id, name, public) values ('bench', 'bench', false)"
                        " on conflict do nothing")
        # Supabase's eTag is the S3 MD5 of the bytes (the local stand-in's is not): as Supabase records it.
        await b.executemany("insert into storage.objects (id, bucket_id, name, version, metadata)"
                            " values ($1, 'bench', $2, $3, jsonb_set($4::jsonb, '{eTag}', to_jsonb($5::text)))",
                            [(*tuple(r), f'"{md5}"') for r in rows])
    finally:
        await a.close()
        await b.close()


async def direct_copy(url: str, key: str, names: list[str], dest: Path, jobs: int) -> float:
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    gate = asyncio.Semaphore(jobs)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as c:
        async def one(name: str) -> None:
            async with gate, c.stream("GET", f"/storage/v1/object/authenticated/bench/{name}") as r:
                with open(dest / name, "wb") as fh:
                    async for chunk in r.aiter_bytes(256 * 1024):
                        fh.write(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())  # as durable as the local backend's write
        await asyncio.gather(*(one(n) for n in names))
    return time.monotonic() - started


async def sync_lag(source: str, target: str, seconds: float, rate: int) -> list[float]:
    """Steady inserts on the source; every second a probe row whose arrival on the target is timed."""
    src = await asyncpg.connect(source)
    tgt = await asyncpg.connect(target)
    user = await src.fetchval("select id from auth.users limit 1")
    lags: list[float] = []
    stop = time.monotonic() + seconds

    async def writer() -> None:
        w = await asyncpg.connect(source)
        try:
            while time.monotonic() < stop:
                await w.executemany("insert into public.todos (user_id, title) values ($1, $2)",
                                    [(user, "steady load row") for _ in range(rate // 10)])
                await asyncio.sleep(0.1)
        finally:
            await w.close()

    load = asyncio.create_task(writer())
    try:
        i = 0
        while time.monotonic() < stop:
            i += 1
            title = f"lag probe {i} {time.time()}"
            await src.execute("insert into public.todos (user_id, title) values ($1, $2)", user, title)
            sent = time.monotonic()
            while not await tgt.fetchval("select exists (select 1 from public.todos where title = $1)", title):
                await asyncio.sleep(0.05)
                if time.monotonic() - sent > 120:
                    break
            lags.append(time.monotonic() - sent)
            await asyncio.sleep(max(0.0, 1 - (time.monotonic() - sent)))
    finally:
        await load
        await src.close()
        await tgt.close()
    return lags


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--objects", type=int, default=300)
    ap.add_argument("--object-kb", type=int, default=256)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--sync-seconds", type=float, default=30)
    ap.add_argument("--sync-rate", type=int, default=200, help="rows/s of steady load during the sync test")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    source, _, pgdata, _ = build_source(tmp, args.rows)
    procs = []
    try:
        (tmp / "t").mkdir()
        (tmp / "s").mkdir()
        tproc, turl, tinfo = start_server(tmp / "t")
        sproc, surl, sinfo = start_server(tmp / "s")
        procs += [tproc, sproc]
        tdata = tmp / "t" / "data"
        skips = ["--skip-extension", "pg_cron", "--skip-extension", "supabase_vault"]
        migrate(tdata, "schema", "--from", source, *skips)
        migrate(tdata, "users", "--from", source)
        rows = asyncio.run(count_rows(source))

        t_migrate = migrate(tdata, "data", "--from", source, "--jobs", str(args.jobs))
        asyncio.run(truncate(tinfo["db_url"]))
        t_dump = pg_dump_restore(source, tinfo["db_url"])
        assert asyncio.run(count_rows(tinfo["db_url"])) == rows
        asyncio.run(truncate(tinfo["db_url"]))

        nbytes, md5 = asyncio.run(upload_objects(surl, sinfo["service_role_key"], args.objects, args.object_kb))
        asyncio.run(source_object_rows(sinfo["db_url"], source, md5))
        t_files = migrate(tdata, "files", "--from", source, "--from-url", surl, "--from-service-key",
                          sinfo["service_role_key"], "--bucket", "bench", "--jobs", "8")
        direct = tmp / "direct"
        direct.mkdir()
        t_direct = asyncio.run(direct_copy(surl, sinfo["service_role_key"],
                                           [f"obj-{i:05d}.bin" for i in range(args.objects)], direct, 8))

        migrate(tdata, "sync", "--from", source, "--jobs", str(args.jobs))
        lags = asyncio.run(sync_lag(source, tinfo["db_url"], args.sync_seconds, args.sync_rate))
        migrate(tdata, "sync", "--from", source, "--finish")

        result = {
            "rows": rows, "migrate_data_rows_per_s": round(rows / t_migrate),
            "pg_dump_restore_rows_per_s": round(rows / t_dump), "data_ratio": round(t_dump / t_migrate, 2),
            "object_mb": round(nbytes / 2**20, 1), "migrate_files_mb_per_s": round(nbytes / 2**20 / t_files, 1),
            "direct_copy_mb_per_s": round(nbytes / 2**20 / t_direct, 1), "files_ratio": round(t_direct / t_files, 2),
            "sync_rate_rows_per_s": args.sync_rate, "sync_lag_p50_s": round(statistics.median(lags), 3),
            "sync_lag_max_s": round(max(lags), 3), "sync_probes": len(lags),
        }
        print(json.dumps(result, indent=2))
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        subprocess.run([str(pg_bin() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "stop"], capture_output=True,
                       **as_user())


if __name__ == "__main__":
    main()
