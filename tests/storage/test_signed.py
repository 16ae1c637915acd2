"""Signed download and upload URLs: expiry, tampering, binding to bucket + path."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError

from tests.storage.conftest import StorageTarget, http, sb


def test_signed_download_url(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("s/secret.txt", b"top secret")
    signed = files.create_signed_url("s/secret.txt", 60)["signedURL"]
    assert signed.startswith(target.url + "/storage/v1/object/sign/" + bucket + "/s/secret.txt?token=")
    r = httpx.get(signed)  # no apikey, no JWT: the token is the grant
    assert r.status_code == 200 and r.content == b"top secret"
    with http(target, target.server.service_key) as c:
        raw = c.post(f"/object/sign/{bucket}/s/secret.txt", json={"expiresIn": 60}).json()
        assert raw["signedURL"].startswith(f"/object/sign/{bucket}/s/secret.txt?token=")
    r = httpx.get(signed + "&download=x.txt")
    assert r.headers["content-disposition"].startswith("attachment; filename=x.txt")
    with_download = files.create_signed_url("s/secret.txt", 60, {"download": True})["signedURL"]
    assert httpx.get(with_download).headers["content-disposition"] == "attachment;"


def test_signed_url_tampered_expired_and_wrong_path(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("one.txt", b"1")
    files.upload("two.txt", b"2")
    signed = files.create_signed_url("one.txt", 60)["signedURL"]
    token = signed.split("token=")[1]
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}"
    r = httpx.get(signed.replace(token, tampered))
    assert r.status_code == 400 and r.json()["code"] == "InvalidJWT"
    # A token for one.txt does not open two.txt.
    r = httpx.get(signed.replace("one.txt?", "two.txt?"))
    assert r.status_code == 400 and r.json()["code"] == "InvalidSignature"
    # A token forged with another key is refused.
    forged = jwt.encode({"url": f"{bucket}/one.txt", "scope": "download", "exp": int(time.time()) + 60}, "x" * 32)
    r = httpx.get(f"{target.url}/storage/v1/object/sign/{bucket}/one.txt?token={forged}")
    assert r.json()["code"] == "InvalidJWT"
    short = files.create_signed_url("one.txt", 1)["signedURL"]
    time.sleep(2.1)
    r = httpx.get(short)
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidJWT" and "exp" in r.json()["message"]


def test_signed_urls_batch(admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("a.txt", b"a")
    out = files.create_signed_urls(["a.txt", "missing.txt"], 60)
    assert out[0]["error"] is None and out[0]["path"] == "a.txt"
    assert httpx.get(out[0]["signedURL"]).content == b"a"
    assert out[1]["signedURL"] is None
    assert out[1]["error"] == "Either the object does not exist or you do not have access to it"


def test_signed_url_for_missing_object(admin, bucket: str) -> None:
    with pytest.raises(StorageApiError) as err:
        admin.storage.from_(bucket).create_signed_url("nope.txt", 60)
    assert str(err.value.status) == "404"


def test_signed_upload_url(target: StorageTarget, admin, bucket: str, mint) -> None:
    files = admin.storage.from_(bucket)
    signed = files.create_signed_upload_url("up/file.txt")
    assert signed["signed_url"].startswith(target.url + "/storage/v1/object/upload/sign/" + bucket + "/up/file.txt")
    # Anyone holding the token may upload, even without a user session.
    anon = sb(target, target.server.anon_key).storage.from_(bucket)
    res = anon.upload_to_signed_url("up/file.txt", signed["token"], b"via token")
    assert res.full_path == f"{bucket}/up/file.txt"
    assert files.download("up/file.txt") == b"via token"
    # Without upsert the same token cannot overwrite.
    with pytest.raises(StorageApiError) as err:
        anon.upload_to_signed_url("up/file.txt", signed["token"], b"again")
    assert str(err.value.status) == "409"
    # The token is bound to its path.
    with pytest.raises(StorageApiError) as err:
        anon.upload_to_signed_url("up/other.txt", signed["token"], b"x")
    assert err.value.code == "InvalidSignature"
    # A download token is not an upload token.
    dl = files.create_signed_url("up/file.txt", 60)["signedURL"].split("token=")[1]
    with pytest.raises(StorageApiError) as err:
        anon.upload_to_signed_url("up/file.txt", dl, b"x")
    assert err.value.code == "InvalidSignature"
    assert files.download("up/file.txt") == b"via token"
