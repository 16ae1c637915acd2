"""`migrate files` into a target whose Storage backend is S3 (SeaweedFS): same bytes, verify agrees."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from tests.conftest import ServerHandle, create_database
from tests.migrate.conftest import Source, migrate
from tests.storage.conftest import s3_env, s3_server  # noqa: F401 - the S3 server fixture


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
