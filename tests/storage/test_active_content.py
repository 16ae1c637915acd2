"""Active content at the API's origin (issue 10 item 7): HTML is served as text/plain, every storage
response says nosniff, SVG and XML keep their type but come with a sandboxing CSP."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ServerHandle
from tests.storage.conftest import StorageTarget, http, sb, unique

PAGE = b"<html><body><script>fetch('/auth/v1/user')</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><script>alert(1)</script></svg>'
SANDBOX = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@pytest.fixture(scope="module")
def local(server: ServerHandle) -> StorageTarget:
    return StorageTarget("local", server)


@pytest.fixture(scope="module")
def public_bucket(local: StorageTarget) -> str:
    name = unique("act")
    admin = sb(local, local.server.service_key)
    admin.storage.create_bucket(name, options={"public": True})
    files = admin.storage.from_(name)
    files.upload("page.html", PAGE, {"content-type": "text/html; charset=utf-8"})
    files.upload("page.xhtml", PAGE, {"content-type": "application/xhtml+xml"})
    files.upload("pic.svg", SVG, {"content-type": "image/svg+xml"})
    files.upload("feed.xml", b"<?xml version='1.0'?><feed/>", {"content-type": "application/xml"})
    files.upload("notes.txt", b"plain", {"content-type": "text/plain"})
    return name


def _all_reads(c: httpx.Client, local: StorageTarget, bucket: str, path: str) -> list[httpx.Response]:
    signed = c.post(f"/object/sign/{bucket}/{path}", json={"expiresIn": 60}).json()["signedURL"]
    return [c.get(f"/object/{bucket}/{path}"), c.get(f"/object/authenticated/{bucket}/{path}"),
            c.head(f"/object/{bucket}/{path}"), httpx.get(f"{local.url}/storage/v1/object/public/{bucket}/{path}"),
            httpx.get(f"{local.url}/storage/v1{signed}")]


@pytest.mark.parametrize("path", ["page.html", "page.xhtml"])
def test_html_is_served_as_plain_text(local: StorageTarget, public_bucket: str, path: str) -> None:
    with http(local, local.server.service_key) as c:
        for r in _all_reads(c, local, public_bucket, path):
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].split(";")[0] == "text/plain"
            assert r.headers["x-content-type-options"] == "nosniff"
            if r.request.method == "GET":
                assert r.content == PAGE  # the bytes are untouched, only the type changes
        # The stored type is what was uploaded; only serving changes it.
        info = c.get(f"/object/info/{public_bucket}/{path}").json()
        assert info["content_type"].startswith(("text/html", "application/xhtml+xml"))
    assert sb(local, local.server.service_key).storage.from_(public_bucket).download(path) == PAGE


@pytest.mark.parametrize("path,mime", [("pic.svg", "image/svg+xml"), ("feed.xml", "application/xml")])
def test_svg_and_xml_keep_their_type_in_a_sandbox(local: StorageTarget, public_bucket: str, path: str,
                                                   mime: str) -> None:
    with http(local, local.server.service_key) as c:
        for r in _all_reads(c, local, public_bucket, path):
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == mime
            assert r.headers["content-security-policy"] == SANDBOX
            assert r.headers["x-content-type-options"] == "nosniff"


def test_nosniff_on_every_storage_response(local: StorageTarget, public_bucket: str) -> None:
    with http(local, local.server.service_key) as c:
        plain = c.get(f"/object/{public_bucket}/notes.txt")
        assert plain.headers["content-type"] == "text/plain" and "content-security-policy" not in plain.headers
        responses = [
            plain,
            c.get("/bucket"),  # JSON
            c.get(f"/object/{public_bucket}/missing.txt"),  # error in Storage's shape
            c.get("/no/such/route"),  # the catch-all 404
            c.post(f"/object/list/{public_bucket}", json={"prefix": ""}),
            c.options("/upload/resumable"),  # TUS routes too
            httpx.get(f"{local.url}/storage/v1/object/public/{public_bucket}/missing.txt"),  # no credentials
        ]
    for r in responses:
        assert r.headers.get("x-content-type-options") == "nosniff", (r.request.url, r.status_code)
