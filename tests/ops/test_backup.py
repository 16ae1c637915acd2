"""`ownbase backup` then `ownbase restore` into a fresh database and storage backend gives the same
data: rows, users (they sign in with their password), objects byte-identical. Local and S3."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ownbase.ops import backup as bk
from ownbase.settings import Settings
from tests.conftest import create_database, sql
from tests.storage.conftest import S3_BUCKET, S3_KEY_ID, S3_SECRET

BLOBS = {"a/one.bin": bytes(range(256)) * 40, "two.txt": "héllo wörld\n".encode(), "empty": b""}


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "ownbase", *args], env=env, capture_output=True, text=True,
                         cwd=str(cwd), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def _fill(srv: Any) -> None:
    sql(srv, "create table public.notes (id bigint generated always as identity primary key, body text, "
             "data jsonb); alter table public.notes enable row level security; "
             "create policy own on public.notes for select to authenticated using (true); "
             "grant select on public.notes to authenticated;"
             "insert into public.notes (body, data) values ('first', '{\"k\": 1}'), ('second', null)")
    with srv.client() as c:
        r = c.post("/auth/v1/signup", json={"email": "backup@example.com", "password": "secret-123"})
        assert r.status_code == 200, r.text
    with srv.client(key=srv.service_key) as c:
        assert c.post("/storage/v1/bucket", json={"id": "docs", "name": "docs"}).status_code == 200
        for name, data in BLOBS.items():
            r = c.post(f"/storage/v1/object/docs/{name}", content=data,
                       headers={"content-type": "application/octet-stream"})
            assert r.status_code == 200, r.text


def _snapshot(srv: Any) -> dict[str, Any]:
    rows = [tuple(r) for r in sql(srv, "select id, body, data::text from public.notes order by id")]
    users = [tuple(r) for r in sql(srv, "select id::text, email, encrypted_password from auth.users order by email")]
    objects = [tuple(r) for r in sql(srv, "select bucket_id, name, version, metadata->>'size' from storage.objects "
                                          "order by name")]
    return {"rows": rows, "users": users, "objects": objects}


def _check_restored(srv: Any, before: dict[str, Any]) -> None:
    assert _snapshot(srv) == before
    with srv.client() as c:
        r = c.post("/auth/v1/token?grant_type=password", json={"email": "backup@example.com", "password": "secret-123"})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
    with srv.client(token=token) as c:
        assert [n["body"] for n in c.get("/rest/v1/notes?select=body&order=id").json()] == ["first", "second"]
    with srv.client(key=srv.service_key) as c:
        for name, data in BLOBS.items():
            r = c.get(f"/storage/v1/object/docs/{name}")
            assert r.status_code == 200 and r.content == data, name


def _round_trip(server_factory: Callable[..., Any], pg_admin_url: str, tmp_root: Path,
                storage_env: Callable[[str], dict[str, str]], to: str, extra: list[str]) -> None:
    src_db = create_database(pg_admin_url, "ownbase_bk_src")
    src = server_factory({"OWNBASE_DATABASE_URL": src_db, "OWNBASE_AUTH_AUTOCONFIRM": "true", **storage_env("src")})
    _fill(src)
    before = _snapshot(src)
    env = {**src.env}
    out = _cli(["backup", "--to", to, "--db-url", src_db, *extra], env, tmp_root)
    where = out.stdout.strip().splitlines()[-1]
    assert "ownbase-backup-" in where
    src.stop()

    dst_db = create_database(pg_admin_url, "ownbase_bk_dst")
    dst_env = {**env, "OWNBASE_DATABASE_URL": dst_db, **storage_env("dst")}
    report = json.loads(_cli(["restore", "--from", to, "--db-url", dst_db], dst_env, tmp_root).stdout)
    assert report == {"objects_restored": len(BLOBS), "objects_missing": 0, "objects": len(BLOBS)}
    dst = server_factory({"OWNBASE_DATABASE_URL": dst_db, "OWNBASE_AUTH_AUTOCONFIRM": "true", **storage_env("dst")})
    _check_restored(dst, before)
    # Restoring twice into the same database is refused: restore is for fresh databases.
    again = subprocess.run([sys.executable, "-m", "ownbase", "restore", "--from", to, "--db-url", dst_db],
                           env=dst_env, capture_output=True, text=True, cwd=str(tmp_root))
    assert again.returncode == 1 and "not empty" in again.stderr
    dst.stop()


def test_backup_restore_local(server_factory: Callable[..., Any], pg_admin_url: str, tmp_root: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    backups = tmp_root / f"backups-{tag}"

    def storage(side: str) -> dict[str, str]:
        return {"OWNBASE_STORAGE_BACKEND": "local", "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / f"st-{side}-{tag}")}

    _round_trip(server_factory, pg_admin_url, tmp_root, storage, str(backups), [])
    folder = next(backups.glob("ownbase-backup-*"))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["objects_included"] and len(manifest["objects"]) == len(BLOBS)
    assert (folder / "database.dump").read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format


def test_backup_restore_s3(server_factory: Callable[..., Any], pg_admin_url: str, tmp_root: Path,
                           s3_server: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

    def storage(side: str) -> dict[str, str]:
        return {"OWNBASE_STORAGE_BACKEND": "s3", "OWNBASE_STORAGE_S3_BUCKET": S3_BUCKET,
                "OWNBASE_STORAGE_S3_ENDPOINT_URL": s3_server.endpoint,
                "OWNBASE_STORAGE_S3_FORCE_PATH_STYLE": "true", "OWNBASE_STORAGE_S3_PREFIX": f"{side}-{tag}",
                "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET}

    to = f"s3://{S3_BUCKET}/backups-{tag}"
    _round_trip(server_factory, pg_admin_url, tmp_root, storage, to, ["--objects"])
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=S3_BUCKET, Prefix=f"backups-{tag}/")
            ["Contents"]]
    assert any(k.endswith("/database.dump") for k in keys) and any(k.endswith("/manifest.json") for k in keys)


def test_large_files_go_up_in_parts(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bk, "PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part: fewer bytes to move
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    data = os.urandom(bk.PART_BYTES * 2 + 1234)
    key = f"parts-{uuid.uuid4().hex[:6]}/big.bin"
    dest = bk.Destination(f"s3://{S3_BUCKET}/x", Settings(storage_s3_endpoint_url=s3_server.endpoint,
                                                          storage_s3_force_path_style=True))

    async def chunks() -> Any:
        for i in range(0, len(data), 777_777):
            yield data[i:i + 777_777]

    async def go() -> None:
        async with dest.client() as s3:
            await dest.put(s3, key, chunks())

    asyncio.run(go())
    assert s3_server.client().get_object(Bucket=S3_BUCKET, Key=key)["Body"].read() == data
