"""TLS to the database: sslmode=verify-full with a CA bundle (as with RDS's global bundle)."""

from __future__ import annotations

import datetime
import ipaddress
import asyncio
import ssl
import subprocess
import sys
import threading
from urllib.parse import urlsplit
from pathlib import Path
from typing import Callable

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import ServerHandle


def _cert(subject: str, issuer_key, issuer_name, key, *, ca: bool, sans=None):  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class PgTlsProxy:
    """Accepts PostgreSQL SSLRequests, terminates TLS, forwards the protocol to a plain server."""

    def __init__(self, ctx: ssl.SSLContext, host: str, port: int) -> None:
        self.ctx, self.host, self.port = ctx, host, port
        self.loop = asyncio.new_event_loop()
        self.tls_sessions = 0
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> int:
        ready = threading.Event()

        async def boot() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            ready.set()

        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(boot(), self.loop)
        ready.wait(10)
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        if self._server is not None:
            self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(8)
            if first != b"\x00\x00\x00\x08\x04\xd2\x16\x2f":  # not an SSLRequest: refuse
                writer.close()
                return
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(self.ctx)
            self.tls_sessions += 1
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def test_verify_full_with_ca_bundle(tmp_root: Path, database_url: str,
                                   server_factory: Callable[..., ServerHandle]) -> None:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ownbase test CA")])
    ca_cert = _cert("ownbase test CA", ca_key, ca_name, ca_key, ca=True)
    srv_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    srv_cert = _cert("localhost", ca_key, ca_name, srv_key, ca=False,
                     sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])

    pem = serialization.Encoding.PEM
    cert_file, key_file = tmp_root / "pg-server.crt", tmp_root / "pg-server.key"
    _write(cert_file, srv_cert.public_bytes(pem))
    _write(key_file, srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), 0o600)
    ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ssl_ctx.load_cert_chain(cert_file, key_file)
    # The embedded server is built without TLS, so a real TLS endpoint speaking the PostgreSQL
    # protocol (SSLRequest -> 'S' -> handshake) fronts it, as RDS's TLS listener would.
    upstream = urlsplit(database_url)
    proxy = PgTlsProxy(ssl_ctx, upstream.hostname or "127.0.0.1", upstream.port or 5432)
    port = proxy.start()
    ca_file = tmp_root / "ca-bundle.pem"
    _write(ca_file, ca_cert.public_bytes(pem))
    try:
        db = upstream.path.lstrip("/")
        user = upstream.username or "postgres"
        url = f"postgresql://{user}@localhost:{port}/{db}?sslmode=verify-full&sslrootcert={ca_file}"
        srv = server_factory({"OWNBASE_DATABASE_URL": url})
        assert httpx.get(srv.url + "/ready").status_code == 200
        # Without the CA bundle, verify-full must refuse the unknown certificate.
        bad_url = f"postgresql://{user}@localhost:{port}/{db}?sslmode=verify-full"
        proc = subprocess.run(
            [sys.executable, "-c",
             "import asyncio, asyncpg, sys; asyncio.run(asyncpg.connect(sys.argv[1]))", bad_url],
            capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert proxy.tls_sessions >= 1
        srv.stop()
    finally:
        proxy.stop()
