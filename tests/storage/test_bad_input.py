"""Bad input on storage routes answers a clear 4xx in Storage's shape, never a 500 (issue 10 item
10), and a database that is down answers 503."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage3.exceptions import StorageApiError

from ownbase.embedded import EmbeddedPostgres
from tests.conftest import ServerHandle, start_server
from tests.scenarios import STORAGE_KEYS, Scenario, check, params
from tests.storage.conftest import StorageTarget, http, sb, unique


def storage_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) >= {"statusCode", "error", "message"} and body["code"] == code, body
    return body


@pytest.fixture(scope="module")
def local(server: ServerHandle) -> StorageTarget:
    return StorageTarget("local", server)


@pytest.fixture(scope="module")
def lbucket(local: StorageTarget) -> str:
    name = unique("bad")
    sb(local, local.server.service_key).storage.create_bucket(name)
    return name


def nested(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


# JSON bodies nested deeper than the parser's limit, on every route that reads one; {b} is a bucket.
DEEP = nested(1000)
JSON = {"content-type": "application/json"}
DEEP_JSON = [Scenario(f"deep JSON on {method} {url}", method, url, 400, "InvalidRequest", body=DEEP, headers=JSON,
                      keys=None, min_keys=STORAGE_KEYS)
             for method, url in (("POST", "/bucket"), ("PUT", "/bucket/{b}"), ("POST", "/object/list/{b}"),
                                 ("POST", "/object/list-v2/{b}"), ("POST", "/object/move"), ("POST", "/object/copy"),
                                 ("POST", "/object/sign/{b}"), ("POST", "/object/sign/{b}/a.txt"),
                                 ("DELETE", "/object/{b}"))]
# Deep user metadata on an upload (the x-metadata header) is refused the same way.
DEEP_JSON.append(Scenario("deep JSON in x-metadata", "POST", "/object/{b}/deep.txt", 400, "InvalidRequest",
                          body=b"x", headers={"content-type": "text/plain",
                                              "x-metadata": base64.b64encode(DEEP).decode()},
                          keys=None, min_keys=STORAGE_KEYS))

# Bucket creation with a name or id that is not a bucket name.
BAD_BUCKETS = [Scenario(f"bucket {payload}", "POST", "/bucket", 400, code, body=payload, keys=None,
                        min_keys=STORAGE_KEYS)
               for payload, code in (({"name": 1}, "InvalidRequest"), ({"id": 5, "name": "ok-name"}, "InvalidRequest"),
                                     ({"name": ["a"]}, "InvalidRequest"), ({"name": {"a": 1}}, "InvalidRequest"),
                                     ({"name": True}, "InvalidRequest"), ({"name": ".tmp"}, "InvalidBucketName"),
                                     ({"name": ".hidden"}, "InvalidBucketName"),
                                     ({"id": ".tmp", "name": "x"}, "InvalidBucketName"))]


@pytest.mark.parametrize("scenario", params(DEEP_JSON + BAD_BUCKETS))
def test_bad_bodies_are_a_400(local: StorageTarget, lbucket: str, scenario: Scenario) -> None:
    with http(local, local.server.service_key) as c:
        check(c, scenario, b=lbucket)
    assert ".tmp" not in [b.id for b in sb(local, local.server.service_key).storage.list_buckets()]


def test_deep_metadata_in_a_multipart_upload_is_a_400(local: StorageTarget, lbucket: str) -> None:
    with http(local, local.server.service_key) as c:
        r = c.post(f"/object/{lbucket}/deep2.txt", files={"": ("f.txt", b"x", "text/plain")},
                   data={"metadata": DEEP.decode()})
        storage_error(r, 400, "InvalidRequest")


def test_dot_tmp_bucket_is_refused_through_the_client(local: StorageTarget) -> None:
    with pytest.raises(StorageApiError) as err:
        sb(local, local.server.service_key).storage.create_bucket(".tmp")
    assert err.value.message == "Bucket name invalid" and str(err.value.status) == "400"


def test_name_segment_over_255_bytes_is_a_400(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    for name in ("x" * 256, f"folder/{'y' * 300}/file.txt", f"{'z' * 256}.txt"):
        with pytest.raises(StorageApiError) as err:
            files.upload(name, b"data")
        assert err.value.code == "InvalidKey" and str(err.value.status) == "400"
    files.upload("w" * 255, b"fits")  # the limit itself is fine
    assert files.download("w" * 255) == b"fits"
    files.upload("src.txt", b"s")
    with pytest.raises(StorageApiError) as err:
        files.copy("src.txt", "q" * 256)
    assert err.value.code == "InvalidKey"


def test_name_through_another_objects_blob_is_a_400(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("a.txt", b"first")
    version = files.info("a.txt")["version"]
    with http(target, target.server.service_key) as c:
        for name in (f"a.txt/{version}", f"a.txt/{version}/deeper.txt"):
            r = c.post(f"/object/{bucket}/{name}", content=b"clash", headers={"content-type": "text/plain"})
            storage_error(r, 400, "InvalidKey")
            r = c.post("/object/copy", json={"bucketId": bucket, "sourceKey": "a.txt", "destinationKey": name})
            storage_error(r, 400, "InvalidKey")
            r = c.post(f"/object/upload/sign/{bucket}/{name}")
            storage_error(r, 400, "InvalidKey")
    assert files.download("a.txt") == b"first"
    # A uuid-shaped segment that is nobody's blob is an ordinary name.
    other = f"a.txt-dir/{uuid.uuid4()}"
    files.upload(other, b"fine")
    assert files.download(other) == b"fine"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from([("POST", "/bucket"), ("PUT", "/bucket/{b}"), ("POST", "/bucket/{b}/empty"),
                           ("POST", "/object/list/{b}"), ("POST", "/object/list-v2/{b}"), ("POST", "/object/move"),
                           ("POST", "/object/copy"), ("POST", "/object/sign/{b}"), ("POST", "/object/sign/{b}/{k}"),
                           ("DELETE", "/object/{b}"), ("POST", "/object/{b}/{k}"), ("GET", "/object/{b}/{k}"),
                           ("GET", "/object/info/{b}/{k}"), ("POST", "/object/upload/sign/{b}/{k}"),
                           ("GET", "/render/image/authenticated/{b}/{k}"), ("GET", "/bucket/{b}")]),
    key=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="#?%"), min_size=1,
                max_size=300),
    body=st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                          st.sampled_from(["name", "id", "public", "file_size_limit", "allowed_mime_types", "prefix",
                                           "limit", "offset", "sortBy", "cursor", "with_delimiter", "bucketId",
                                           "sourceKey", "destinationKey", "destinationBucket", "expiresIn", "paths",
                                           "prefixes", "transform", "search", "column", "order"]) | st.text(max_size=8),
                          inner, max_size=6), max_leaves=20),
    query=st.dictionaries(st.sampled_from(["width", "height", "resize", "quality", "format", "download", "token"]),
                          st.text(max_size=12), max_size=3),
)
def test_fuzz_storage_routes_never_5xx(local: StorageTarget, lbucket: str, route: tuple[str, str], key: str,
                                       body: Any, query: dict[str, str]) -> None:
    method, template = route
    path = template.format(b=lbucket, k=key.lstrip("/") or "k")
    with http(local, local.server.service_key) as c:
        r = c.request(method, path, content=json.dumps(body).encode(), params=query,
                      headers={"content-type": "application/json"})
    assert r.status_code < 500, (method, path, body, r.text)


# --- the database down -----------------------------------------------------------------------------

def test_database_down_answers_503(tmp_root: Path) -> None:
    # A server on an embedded database of its own, so stopping that database harms no other test.
    handle = start_server(tmp_root, {})
    try:
        admin = sb(StorageTarget("local", handle), handle.service_key)
        admin.storage.create_bucket("down-test")
        admin.storage.from_("down-test").upload("a.txt", b"before")
        EmbeddedPostgres(handle.data_dir / "postgres").stop()
        with http(StorageTarget("local", handle), handle.service_key) as c:
            for r in (c.get("/bucket"), c.get("/bucket/down-test"), c.get("/object/down-test/a.txt"),
                      c.post("/object/down-test/b.txt", content=b"x", headers={"content-type": "text/plain"}),
                      c.post("/object/list/down-test", json={"prefix": ""}),
                      c.post("/bucket", json={"name": "another"})):
                body = storage_error(r, 503, "DatabaseError")
                assert body["statusCode"] == "503"
        with pytest.raises(StorageApiError) as err:
            admin.storage.from_("down-test").download("a.txt")
        assert str(err.value.status) == "503"
    finally:
        handle.stop()
