"""Every database command of the CLI (issue 18 item 1) against the embedded default while no server
runs (the command starts and stops it, holding the data-dir lock) and against a TLS-only
PostgreSQL reached with sslmode=verify-full and OWNBASE_DB_SSL_ROOT_CERT."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import ipaddress
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ownbase.embedded import SYSTEM_USER, EmbeddedPostgres
from tests.conftest import TEST_ENV, start_server

MIGRATION = "create table public.cli_things(id bigint primary key, label text not null);\n"


def ownbase(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ownbase", *args], env=env, cwd=str(cwd),
                          capture_output=True, text=True, timeout=120)


def _migrations(tmp: Path) -> Path:
    folder = tmp / f"migrations-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "20240101000000_things.sql").write_text(MIGRATION)
    return folder


def test_commands_start_the_stopped_embedded_database(tmp_root: Path) -> None:
    data_dir = tmp_root / f"cli-embedded-{uuid.uuid4().hex[:6]}"
    srv = start_server(tmp_root, {"OWNBASE_DATABASE_URL": ""}, data_dir=data_dir)
    email = f"cli-{uuid.uuid4().hex[:6]}@example.com"
    try:
        r = httpx.post(srv.url + "/auth/v1/signup", json={"email": email, "password": "secret-pass-1"},
                       headers={"apikey": srv.anon_key})
        assert r.status_code == 200, r.text
    finally:
        assert srv.stop() == 0
    env = {**os.environ, **TEST_ENV, "OWNBASE_DATABASE_URL": ""}
    pid_file = data_dir / "postgres" / "data" / "postmaster.pid"
    dd = ["--data-dir", str(data_dir)]

    def check(*args: str) -> str:
        assert not pid_file.exists()
        proc = ownbase(*args, *dd, env=env, cwd=tmp_root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not pid_file.exists()  # started for the command, stopped after it
        return proc.stdout

    mails = json.loads(check("mail", "list", "--json", "--to", email))
    assert len(mails) == 1 and mails[0]["kind"] == "confirmation"
    users = list(csv.DictReader(io.StringIO(check("auth", "export-cognito", "-o", "-"))))
    assert [u["email"] for u in users] == [email]
    assert "removed 0" in check("storage", "sweep")
    assert "Applied 1 migration(s)" in check("db", "migrate", str(_migrations(tmp_root)))
    assert "cli_things: {" in check("gen", "types", "typescript")
    # The data-dir lock was released each time: the server starts again.
    again = start_server(tmp_root, {"OWNBASE_DATABASE_URL": ""}, data_dir=data_dir)
    assert again.stop() == 0


def test_commands_on_a_database_ownbase_never_prepared(tmp_root: Path) -> None:
    data_dir = tmp_root / f"cli-fresh-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **TEST_ENV, "OWNBASE_DATABASE_URL": ""}
    proc = ownbase("mail", "list", "--data-dir", str(data_dir), env=env, cwd=tmp_root)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "ownbase start" in proc.stderr, proc.stderr
    assert not (data_dir / "postgres" / "data" / "postmaster.pid").exists()


def _system_postgres_bin() -> Path:
    """A PostgreSQL build with TLS (the embedded wheel is built without OpenSSL)."""
    for version in ("18", "17", "16", "15"):
        path = Path(f"/usr/lib/postgresql/{version}/bin")
        if (path / "postgres").exists():
            return path
    pytest.fail("no PostgreSQL with TLS under /usr/lib/postgresql (CI's second pass installs 15)")


def _cert(subject: str, issuer_key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          key: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_only_postgres(tmp_root: Path) -> Iterator[tuple[str, Path]]:
    """(URL with sslmode=verify-full, CA file) of a cluster that accepts TLS connections only."""
    root = tmp_root / f"tls-pg-{uuid.uuid4().hex[:6]}"
    tls = root / "tls"
    tls.mkdir(parents=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ownbase cli test CA")])
    ca = _cert("ownbase cli test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("localhost", ca_key, ca_name, key, ca=False)
    pem = serialization.Encoding.PEM
    (tls / "server.crt").write_bytes(cert.public_bytes(pem))
    (tls / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (tls / "server.key").chmod(0o600)
    ca_file = tmp_root / f"ca-{uuid.uuid4().hex[:6]}.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    emb = EmbeddedPostgres(root, bin_dir=_system_postgres_bin(),
                           extra_options=f"-c ssl=on -c ssl_cert_file={tls / 'server.crt'} "
                                         f"-c ssl_key_file={tls / 'server.key'}")
    emb.init()
    (emb.pgdata / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n")
    if os.geteuid() == 0:  # the server runs as the unprivileged system user; its key must be its own
        import pwd

        entry = pwd.getpwnam(SYSTEM_USER)
        for path in (tls, tls / "server.crt", tls / "server.key", emb.pgdata / "pg_hba.conf"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    emb.start()
    try:
        yield f"postgresql://postgres@localhost:{emb.port}/postgres?sslmode=verify-full", ca_file
    finally:
        emb.stop()


def test_commands_reach_a_tls_only_database(tmp_root: Path, tls_only_postgres: tuple[str, Path]) -> None:
    url, ca_file = tls_only_postgres
    plain = url.replace("sslmode=verify-full", "sslmode=disable")

    async def refused() -> str:
        try:
            conn = await asyncpg.connect(plain)
        except Exception as exc:  # noqa: BLE001 - the refusal is what is checked
            return str(exc)
        await conn.close()
        return ""

    assert "no encryption" in asyncio.run(refused())  # TLS-only: a plain connection is refused
    env = {**os.environ, **TEST_ENV, "OWNBASE_DATABASE_URL": url, "OWNBASE_DB_SSL_ROOT_CERT": str(ca_file)}
    data_dir = tmp_root / f"cli-tls-{uuid.uuid4().hex[:6]}"
    dd = ["--data-dir", str(data_dir)]

    def check(*args: str) -> str:
        proc = ownbase(*args, *dd, env=env, cwd=tmp_root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    assert "Applied 1 migration(s)" in check("db", "migrate", str(_migrations(tmp_root)))
    assert "cli_things: {" in check("gen", "types", "typescript")
    assert json.loads(check("mail", "list", "--json")) == []
    assert check("auth", "export-cognito", "-o", "-").startswith("name,given_name")
    assert "removed 0" in check("storage", "sweep")
    assert not (data_dir / "postgres").exists()  # no embedded server was involved
    # Without the CA bundle verify-full refuses the unknown certificate: the setting is what is used.
    env.pop("OWNBASE_DB_SSL_ROOT_CERT")
    proc = ownbase("mail", "list", *dd, env=env, cwd=tmp_root)
    assert proc.returncode != 0 and "cannot connect to the database" in proc.stderr
    assert "Traceback" not in proc.stderr
