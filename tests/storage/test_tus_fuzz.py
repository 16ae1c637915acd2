"""TUS headers from a hostile client never get a 5xx: creation (Upload-Length, Upload-Metadata,
x-upsert) and PATCH (Upload-Offset, Content-Type, body), with a bounded property-based test."""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerHandle
from tests.storage.conftest import unique

# Header values as a client can send them: any latin-1 text without line breaks
# (h11 refuses surrounding whitespace, so values are stripped as any client would send them).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40).map(str.strip)
counts = st.one_of(st.integers(min_value=-5, max_value=10**30).map(str), header_text,
                   st.sampled_from(["", "²", "0x10", "5 ", "¹²"]).map(str.strip))
values = st.one_of(st.text(max_size=40), st.sampled_from(["\x00", "a\r\nX-Injected: 1", "[" * 3000,
                                                          '{"a": "\\u0000"}', '"\\ud800"', "{}", "null"]))
metadata_keys = st.sampled_from(["bucketName", "objectName", "contentType", "cacheControl", "metadata", "x"])


def encode(pairs: list[tuple[str, str]], raw: str | None) -> str:
    if raw is not None:
        return raw
    return ",".join(f"{k} {base64.b64encode(v.encode('utf-8', 'surrogatepass')).decode()}" for k, v in pairs)


@pytest.fixture(scope="module")
def fuzz_bucket(server: ServerHandle) -> str:
    name = unique()
    key = server.service_key
    r = httpx.post(server.url + "/storage/v1/bucket", json={"name": name},
                   headers={"apikey": key, "Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return name


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(length=st.one_of(st.none(), counts), pairs=st.lists(st.tuples(metadata_keys, values), max_size=6),
       raw_meta=st.one_of(st.none(), header_text), real_names=st.booleans(), upsert=st.sampled_from(["true", "x"]),
       offset=st.one_of(st.none(), counts), content_type=st.sampled_from(
           ["application/offset+octet-stream", "text/plain", ""]), body=st.binary(max_size=64))
def test_tus_headers_never_5xx(server: ServerHandle, fuzz_bucket: str, length: str | None,
                               pairs: list[tuple[str, str]], raw_meta: str | None, real_names: bool, upsert: str,
                               offset: str | None, content_type: str, body: bytes) -> None:
    key = server.service_key
    auth = {"apikey": key, "Authorization": f"Bearer {key}", "Tus-Resumable": "1.0.0"}
    if real_names:  # reach the checks behind the bucket/object lookup too
        pairs = [("bucketName", fuzz_bucket), ("objectName", f"fuzz/{unique()}"), *pairs[2:]]
    headers: dict[str, bytes] = {"Upload-Metadata": encode(pairs, raw_meta).strip().encode("latin-1", "replace"),
                                 "x-upsert": upsert.encode()}
    if length is not None:
        headers["Upload-Length"] = length.encode("latin-1", "replace")
    with httpx.Client(base_url=server.url + "/storage/v1/upload/resumable", headers=auth, timeout=30) as client:
        r = client.post("", headers=headers)
        assert r.status_code < 500, (headers, r.text)
        if r.status_code != 201:
            return
        url = r.headers["location"]
        patch_headers: dict[str, bytes] = {"Content-Type": content_type.encode()}
        if offset is not None:
            patch_headers["Upload-Offset"] = offset.encode("latin-1", "replace")
        r = client.patch(url, headers=patch_headers, content=body)
        assert r.status_code < 500, (headers, patch_headers, r.text)
        assert client.head(url).status_code < 500
        assert client.delete(url).status_code < 500


def b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()


# Cases that answered 500 before (each found by the fuzz test above), with the answer now.
SCENARIOS = [
    ("superscript length", {"Upload-Length": "²"}, None, 400, "Upload-Length"),
    ("non-ASCII metadata", {"Upload-Length": "1", "Upload-Metadata": "0 \x80"}, None, 400, "base64"),
    ("NUL bucket name", {"Upload-Length": "1"}, [("bucketName", "\x00"), ("objectName", "a")], 400, "NUL"),
    ("header injection in contentType", {"Upload-Length": "1"},
     [("contentType", "text/plain\r\nX-Injected: 1")], 400, "contentType"),
    ("control character in cacheControl", {"Upload-Length": "1"}, [("cacheControl", "60\x01")], 400, "cacheControl"),
    ("NUL inside metadata JSON", {"Upload-Length": "1"}, [("metadata", '{"a": "\\u0000"}')], 400, "metadata"),
    ("lone surrogate in metadata JSON", {"Upload-Length": "1"}, [("metadata", '"\\ud800"')], 400, "metadata"),
    ("deeply nested metadata JSON", {"Upload-Length": "1"}, [("metadata", "[" * 3000 + "]" * 3000)], 400, "metadata"),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=[c[0] for c in SCENARIOS])
def test_tus_bad_creation_headers(server: ServerHandle, fuzz_bucket: str, case: tuple) -> None:
    _name, extra, pairs, status, mentions = case
    key = server.service_key
    meta = [("bucketName", fuzz_bucket), ("objectName", f"bad/{unique()}")]
    if pairs:
        meta = [*dict([*meta, *pairs]).items()]
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Tus-Resumable": "1.0.0",
               "Upload-Metadata": ",".join(f"{k} {b64(v)}" for k, v in meta), **extra}
    r = httpx.post(server.url + "/storage/v1/upload/resumable",
                   headers={k: v.encode("latin-1") for k, v in headers.items()})
    assert r.status_code == status, r.text
    assert mentions in r.text


@pytest.mark.parametrize("upload_id", ["%00", "a%00b", "x" * 5000, "..%2F..", "%F0%9F%98%80"])
def test_tus_unknown_upload_ids_are_404(server: ServerHandle, upload_id: str) -> None:
    key = server.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Tus-Resumable": "1.0.0"}
    url = f"{server.url}/storage/v1/upload/resumable/{upload_id}"
    assert httpx.head(url, headers=headers).status_code == 404
    r = httpx.patch(url, content=b"x", headers={**headers, "Upload-Offset": "0",
                                                "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 404, r.text
    assert httpx.delete(url, headers=headers).status_code == 404
