"""Redis as ElastiCache runs it: TLS (rediss://) with AUTH. Two processes share broadcasts."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ownbase.embedded import free_port
from tests.realtime.conftest import Inbox, rt_client, subscribed


@pytest.fixture(scope="module")
def tls_redis_url(tmp_root):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_root / "redis-tls.crt", tmp_root / "redis-tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", str(crt), "--tls-key-file", str(pem),
         "--tls-ca-cert-file", str(crt), "--tls-auth-clients", "no", "--requirepass", "rt-secret",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    yield f"rediss://:rt-secret@127.0.0.1:{port}/0?ssl_ca_certs={crt}"
    proc.terminate()
    proc.wait(10)


async def test_broadcast_across_processes_over_tls_redis_with_auth(server_factory, tls_redis_url):
    env = {"OWNBASE_REDIS_URL": tls_redis_url}
    one, two = server_factory(env), server_factory(env)
    a, b = await rt_client(one), await rt_client(two)
    name = "tls-" + uuid.uuid4().hex[:6]
    ca, cb = a.channel(name), b.channel(name)
    got = Inbox()
    cb.on_broadcast("*", got)
    await subscribed(ca)
    await subscribed(cb)
    await ca.send_broadcast("secure", {"ok": True})
    assert (await got.wait(1))[0]["payload"] == {"ok": True}
    await a.close()
    await b.close()
    one.stop()
    two.stop()
