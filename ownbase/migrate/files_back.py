"""``migrate files --to``: the way back for Storage.

Objects on ownbase that the Supabase project lacks, or that changed on ownbase after its copy
(a newer ``updated_at``), are uploaded through the project's Storage API with the service key
(which writes Supabase's rows itself); with ``--replace``, objects gone from ownbase are deleted
there too. Bytes stream from ownbase's backend, ``jobs`` at a time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator
from urllib.parse import quote

import asyncpg
import httpx

from ownbase.migrate import catalog, progress
from ownbase.migrate.conn import connect
from ownbase.migrate.files import blob_key
from ownbase.migrate.progress import StepError
from ownbase.settings import Settings

PAGE = 200


async def run(own_url: str, settings: Settings, to_db: str, to_url: str, service_key: str, jobs: int,
              only: set[str], replace: bool) -> dict[str, Any]:
    from ownbase.storage.backends import build_backend

    started = time.monotonic()
    own = await connect(own_url)
    sb = await connect(to_db)
    backend = build_backend(settings)
    await backend.start()
    headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
    try:
        if not await catalog.relation_exists(sb, "storage", "objects"):
            raise StepError("the --to database has no storage.objects table")
        buckets = [b for b in await own.fetch(
            "select id, public, file_size_limit, allowed_mime_types from storage.buckets order by id")
            if not only or b["id"] in only]
        results = []
        async with httpx.AsyncClient(base_url=to_url.rstrip("/"), headers=headers,
                                     timeout=httpx.Timeout(60, connect=15)) as http:
            with progress.bar(bytes_mode=True) as bar:
                task = bar.add_task("uploading objects", total=None)
                for b in buckets:
                    await _ensure_bucket(http, b)
                    results.append(await _bucket(own, sb, http, backend, b["id"], jobs, replace, bar, task))
        return {"ok": not any(r["failed"] for r in results), "buckets": results,
                "seconds": round(time.monotonic() - started, 3)}
    finally:
        await backend.close()
        await own.close()
        await sb.close()


async def _ensure_bucket(http: httpx.AsyncClient, b: asyncpg.Record) -> None:
    body = {"id": b["id"], "name": b["id"], "public": b["public"], "file_size_limit": b["file_size_limit"],
            "allowed_mime_types": b["allowed_mime_types"]}
    r = await http.get(f"/storage/v1/bucket/{quote(b['id'], safe='')}")
    if r.status_code == 200:
        return
    r = await http.post("/storage/v1/bucket", json=body)
    if r.status_code not in (200, 201):
        raise StepError(f"could not create bucket {b['id']} on the Supabase project: {r.status_code} {r.text[:200]}")


async def _bucket(own: asyncpg.Connection, sb: asyncpg.Connection, http: httpx.AsyncClient, backend: Any,
                  bucket: str, jobs: int, replace: bool, bar: Any, task: Any) -> dict[str, Any]:
    uploaded, nbytes, failed = 0, 0, []
    after = ""
    gate = asyncio.Semaphore(jobs)
    while True:
        page = await own.fetch(
            """select name, version, updated_at, metadata ->> 'mimetype' as mime,
                      coalesce(metadata ->> 'cacheControl', 'max-age=3600') as cache
               from storage.objects where bucket_id = $1 and name collate "C" > $2
               order by name collate "C" limit $3""", bucket, after, PAGE)
        if not page:
            break
        after = page[-1]["name"]
        theirs = {r["name"]: r["updated_at"] for r in await sb.fetch(
            "select name, updated_at from storage.objects where bucket_id = $1 and name = any($2::text[])",
            bucket, [r["name"] for r in page])}
        todo = [r for r in page if r["name"] not in theirs
                or (r["updated_at"] and theirs[r["name"]] and r["updated_at"] > theirs[r["name"]])]

        async def one(row: asyncpg.Record) -> None:
            nonlocal uploaded, nbytes
            async with gate:
                size = 0

                async def body() -> AsyncIterator[bytes]:
                    nonlocal size
                    async for chunk in backend.read(bucket, blob_key(row["name"], row["version"])):
                        size += len(chunk)
                        bar.advance(task, len(chunk))
                        yield chunk

                r = await http.post(
                    f"/storage/v1/object/{quote(bucket, safe='')}/{quote(row['name'], safe='/')}", content=body(),
                    headers={"content-type": row["mime"] or "application/octet-stream", "x-upsert": "true",
                             "cache-control": row["cache"]})
                if r.status_code == 200:
                    uploaded += 1
                    nbytes += size
                else:
                    failed.append(f"{bucket}/{row['name']}: {r.status_code}")

        await asyncio.gather(*(one(r) for r in todo))
    deleted = 0
    if replace:  # objects deleted on ownbase since the copy go on Supabase too
        gone = [r["name"] for r in await sb.fetch(
            "select name from storage.objects where bucket_id = $1 order by name", bucket)]
        mine = {r["name"] for r in await own.fetch(
            "select name from storage.objects where bucket_id = $1", bucket)}
        gone = [n for n in gone if n not in mine]
        for i in range(0, len(gone), 500):
            r = await http.request("DELETE", f"/storage/v1/object/{quote(bucket, safe='')}",
                                   json={"prefixes": gone[i:i + 500]})
            if r.status_code == 200:
                deleted += len(gone[i:i + 500])
            else:
                failed.append(f"{bucket}: delete {r.status_code}")
    return {"bucket": bucket, "uploaded": uploaded, "bytes": nbytes, "deleted": deleted, "failed": failed}
