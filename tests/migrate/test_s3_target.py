"""`migrate files` into a target whose Storage backend is S3 (SeaweedFS): same bytes, verify agrees."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from tests.conftest import ServerHandle, create_database
from tests.migrate.conftest import Source, migrate
from tests.storage.conftest import S3_KEY_ID, S3_SECRET, s3_env, s3_server  # noqa: F401 - the S3 fixture


def test_files_into_s3_backend(supabase_source: Source, source_storage: ServerHandle, s3_server: Any,  # noqa: F811
                               server_factory: Callable[..., ServerHandle], pg_admin_url: str) -> None:
    handle = server_factory(s3_env(s3_server, OWNBASE_DATABASE_URL=create_database(pg_admin_url, "sb_s3"),
                                   OWNBASE_STORAGE_S3_PREFIX="migrate"))
    report = handle.data_dir.parent / "s3-files.json"
    migrate(handle, "files", "--from", supabase_source.url, "--from-url", source_storage.url,
            "--from-service-key", source_storage.service_key, "--report", str(report))
    assert [b["copied"] for b in json.loads(report.read_text())["buckets"]] == [237, 182]
    with handle.client(handle.service_key) as c:
        for obj in supabase_source.fixture["objects"][::7]:
            r = c.get(f"/storage/v1/object/authenticated/{obj['bucket']}/{obj['name']}")
            assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == obj["sha256"]
    verify = handle.data_dir.parent / "s3-verify.json"
    migrate(handle, "verify", "--from", supabase_source.url, "--report", str(verify), check=False)
    checks = {c["check"]: c["ok"] for c in json.loads(verify.read_text())["checks"]}
    assert checks["object bytes (md5)"] and checks["storage.objects rows"]
    assert checks["objects in avatars (count, bytes)"] and checks["objects in documents (count, bytes)"]


def test_files_read_from_an_s3_compatible_source(supabase_source: Source, s3_server: Any,  # noqa: F811
                                                 server_factory: Callable[..., ServerHandle], pg_admin_url: str,
                                                 tmp_root: Any) -> None:
    """Supabase's S3 endpoint (SeaweedFS standing in): storage bucket = S3 bucket, object name = key."""
    s3 = s3_server.client()
    for bucket in ("avatars", "documents"):
        try:
            s3.create_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - already there from an earlier run of this session
            pass
    for obj in supabase_source.fixture["objects"]:
        s3.put_object(Bucket=obj["bucket"], Key=obj["name"], ContentType=obj["mimetype"],
                      Body=(supabase_source.files_dir / obj["bucket"] / obj["name"]).read_bytes())
    handle = server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_from_s3"),
                             "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "from-s3-blobs")})
    report = handle.data_dir.parent / "from-s3.json"
    migrate(handle, "files", "--from", supabase_source.url, "--from-s3-endpoint", s3_server.endpoint,
            "--from-s3-key-id", S3_KEY_ID, "--from-s3-secret", S3_SECRET, "--report", str(report))
    result = json.loads(report.read_text())["buckets"]
    assert [(b["copied"], b["mismatches"]) for b in result] == [(237, []), (182, [])]
    with handle.client(handle.service_key) as c:
        for obj in supabase_source.fixture["objects"][::5]:
            r = c.get(f"/storage/v1/object/authenticated/{obj['bucket']}/{obj['name']}")
            assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == obj["sha256"]
