"""Object routes through storage3 (supabase-py), and raw HTTP for the wire details it hides."""

from __future__ import annotations

import base64
import json
import threading
import time

import httpx
import pytest
from storage3.exceptions import StorageApiError

from tests.conftest import sql
from tests.storage.conftest import StorageTarget, http, unique


def test_upload_download_roundtrip_and_row(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    res = files.upload("docs/readme.txt", b"hello storage", {"content-type": "text/plain", "cache-control": "120"})
    assert res.full_path == f"{bucket}/docs/readme.txt"
    assert files.download("docs/readme.txt") == b"hello storage"
    row = sql(target.server, "select name, owner, metadata, path_tokens, version from storage.objects "
              "where bucket_id = $1", bucket)[0]
    meta = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
    assert row["path_tokens"] == ["docs", "readme.txt"]
    assert meta["size"] == 13 and meta["mimetype"] == "text/plain" and meta["cacheControl"] == "max-age=120"
    assert meta["eTag"].startswith('"') and meta["eTag"].endswith('"') and len(meta["eTag"]) > 10
    with http(target, target.server.service_key) as c:
        assert c.head(f"/object/{bucket}/docs/readme.txt").headers["etag"] == meta["eTag"]
    # The blob lives under a version key, not the bare name.
    assert target.blob_keys(bucket) == [f"docs/readme.txt/{row['version']}"]
    # A new upload is a new entity: a new tag.
    files.update("docs/readme.txt", b"hello storage, v2")
    assert files.info("docs/readme.txt")["etag"] != meta["eTag"]


def test_post_existing_is_409_unless_upsert(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("a.txt", b"one")
    with pytest.raises(StorageApiError) as err:
        files.upload("a.txt", b"two")
    assert str(err.value.status) == "409" and err.value.code == "Duplicate"
    assert err.value.message == "The resource already exists"
    files.upload("a.txt", b"three", {"upsert": "true"})
    assert files.download("a.txt") == b"three"
    files.update("a.txt", b"four")
    assert files.download("a.txt") == b"four"
    # Replacing removed the old versions' blobs: one blob left.
    assert len(target.blob_keys(bucket)) == 1


def test_raw_body_upload_with_x_metadata(target: StorageTarget, bucket: str) -> None:
    meta = base64.b64encode(json.dumps({"owner_note": "raw"}).encode()).decode()
    with http(target, target.server.service_key) as c:
        r = c.post(f"/object/{bucket}/raw/data.bin", content=b"\x00\x01\x02" * 1000,
                   headers={"content-type": "application/octet-stream", "cache-control": "max-age=60",
                            "x-metadata": meta})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["Key"] == f"{bucket}/raw/data.bin" and len(body["Id"]) == 36
        info = c.get(f"/object/info/{bucket}/raw/data.bin").json()
        assert info["metadata"] == {"owner_note": "raw"}
        assert info["size"] == 3000 and info["cache_control"] == "max-age=60"
        assert info["content_type"] == "application/octet-stream"
        got = c.get(f"/object/{bucket}/raw/data.bin")
        assert got.content == b"\x00\x01\x02" * 1000
        assert got.headers["cache-control"] == "max-age=60"


def test_multipart_metadata_and_info_shape(admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("m/x.json", b"{}", {"content-type": "application/json", "metadata": {"k": "v"}})
    info = files.info("m/x.json")
    assert set(info) >= {"id", "name", "version", "bucket_id", "size", "content_type", "cache_control", "etag",
                         "metadata", "last_modified", "created_at"}
    assert info["metadata"] == {"k": "v"} and info["content_type"] == "application/json"
    assert info["cache_control"] == "max-age=3600"
    assert info["last_modified"].endswith("Z")
    assert files.exists("m/x.json") is True
    assert files.exists("m/nope.json") is False


def test_missing_object_errors(target: StorageTarget, admin, bucket: str) -> None:
    with http(target, target.server.service_key) as c:
        r = c.get(f"/object/info/{bucket}/nope.txt")
        assert r.status_code == 400
        assert r.json() == {"statusCode": "404", "code": "NoSuchKey", "error": "not_found",
                            "message": "Object not found"}
        r = c.get(f"/object/{bucket}/nope.txt")
        assert r.status_code == 400 and r.json()["statusCode"] == "404" and r.json()["code"] == "NoSuchKey"
        r = c.get("/object/no-such-bucket-x/a.txt")
        assert r.json()["code"] == "NoSuchBucket"
        r = c.get("/no/such/route")
        assert r.status_code == 404 and r.json()["error"] == "Not Found"


def test_head_range_etag_disposition(target: StorageTarget, admin, bucket: str) -> None:
    data = bytes(range(256)) * 40
    admin.storage.from_(bucket).upload("r.bin", data, {"content-type": "application/octet-stream"})
    with http(target, target.server.service_key) as c:
        h = c.head(f"/object/{bucket}/r.bin")
        assert h.status_code == 200 and h.headers["content-length"] == str(len(data)) and h.content == b""
        etag = h.headers["etag"]
        r = c.get(f"/object/{bucket}/r.bin", headers={"range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20]
        assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
        r = c.get(f"/object/{bucket}/r.bin", headers={"range": "bytes=-5"})
        assert r.status_code == 206 and r.content == data[-5:]
        r = c.get(f"/object/{bucket}/r.bin", headers={"range": f"bytes={len(data) + 5}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
        assert r.json()["code"] == "InvalidRange"
        r = c.get(f"/object/{bucket}/r.bin", headers={"if-none-match": etag})
        assert r.status_code == 304 and r.content == b""
        r = c.get(f"/object/{bucket}/r.bin", params={"download": ""})
        assert r.headers["content-disposition"] == "attachment;"
        r = c.get(f"/object/{bucket}/r.bin", params={"download": "my file.bin"})
        assert r.headers["content-disposition"] == "attachment; filename=my%20file.bin; filename*=UTF-8''my%20file.bin"


def test_list_folders_prefix_sort_search(admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    for name in ("b.txt", "A.txt", "c.txt", "dir/one.txt", "dir/sub/two.txt", "zeta/x.txt"):
        files.upload(name, b"x")
    root = files.list()
    assert [e["name"] for e in root] == ["A.txt", "b.txt", "c.txt", "dir", "zeta"]
    folder = next(e for e in root if e["name"] == "dir")
    assert folder["id"] is None and folder["metadata"] is None
    assert [e["name"] for e in files.list("dir")] == ["one.txt", "sub"]
    assert [e["name"] for e in files.list("dir/sub")] == ["two.txt"]
    assert [e["name"] for e in files.list(None, {"limit": 2, "offset": 1})] == ["b.txt", "c.txt"]
    desc = files.list(None, {"sortBy": {"column": "name", "order": "desc"}})
    assert [e["name"] for e in desc] == ["zeta", "dir", "c.txt", "b.txt", "A.txt"]
    by_created = files.list(None, {"sortBy": {"column": "created_at", "order": "asc"}})
    assert [e["name"] for e in by_created][:2] == ["dir", "zeta"]  # folders first
    assert [e["name"] for e in files.list(None, {"search": "c"})] == ["c.txt"]


def test_move_copy_remove(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("src.txt", b"payload", {"metadata": {"tag": "t"}})
    moved = files.move("src.txt", "moved/dst.txt")
    assert moved["message"] == "Successfully moved"
    assert files.download("moved/dst.txt") == b"payload"
    assert files.exists("src.txt") is False
    copied = files.copy("moved/dst.txt", "copy.txt")
    assert copied["Key"] == f"{bucket}/copy.txt"
    assert files.download("copy.txt") == b"payload"
    assert files.info("copy.txt")["metadata"] == {"tag": "t"}
    with pytest.raises(StorageApiError) as err:
        files.copy("moved/dst.txt", "copy.txt")
    assert str(err.value.status) == "409"
    with pytest.raises(StorageApiError) as err:
        files.move("nope.txt", "x.txt")
    assert str(err.value.status) == "404"
    assert len(target.blob_keys(bucket)) == 2
    removed = files.remove(["copy.txt", "moved/dst.txt", "never.txt"])
    assert sorted(r["name"] for r in removed) == ["copy.txt", "moved/dst.txt"]
    assert set(removed[0]) >= {"name", "bucket_id", "owner", "id", "updated_at", "created_at", "metadata",
                               "user_metadata", "version"}
    assert files.list() == []
    assert target.blob_keys(bucket) == []


def test_copy_across_buckets(admin, bucket: str) -> None:
    other = unique()
    admin.storage.create_bucket(other)
    with httpx.Client() as _:
        pass
    files = admin.storage.from_(bucket)
    files.upload("x.txt", b"cross")
    files._request("POST", ["object", "copy"], json={"bucketId": bucket, "sourceKey": "x.txt",
                                                      "destinationKey": "y.txt", "destinationBucket": other})
    assert admin.storage.from_(other).download("y.txt") == b"cross"


def test_bucket_limits_size_and_mime(target: StorageTarget, admin) -> None:
    name = unique()
    admin.storage.create_bucket(name, options={"file_size_limit": "1kb", "allowed_mime_types": ["image/*", "text/plain"]})
    files = admin.storage.from_(name)
    files.upload("ok.txt", b"x" * 1000, {"content-type": "text/plain"})
    with pytest.raises(StorageApiError) as err:
        files.upload("big.txt", b"x" * 1001, {"content-type": "text/plain"})
    assert str(err.value.status) == "413" and err.value.code == "Payload too large"
    files.upload("pic.png", b"x", {"content-type": "image/png"})
    with pytest.raises(StorageApiError) as err:
        files.upload("doc.pdf", b"x", {"content-type": "application/pdf"})
    assert str(err.value.status) == "415"
    assert err.value.message == "mime type application/pdf is not supported"
    # Raw bodies over the limit are refused from Content-Length before reading.
    with http(target, target.server.service_key) as c:
        r = c.post(f"/object/{name}/raw.txt", content=b"y" * 2000, headers={"content-type": "text/plain"})
        assert r.status_code == 400 and r.json()["statusCode"] == "413"
    assert sorted(k.split("/")[0] for k in target.blob_keys(name)) == ["ok.txt", "pic.png"]


def test_invalid_keys_are_refused(target: StorageTarget, bucket: str) -> None:
    with http(target, target.server.service_key) as c:
        for bad in ["..%2F..%2Fetc%2Fpasswd", "a/%2E%2E/%2E%2E/b", "%2E/x", "a%00b", "a%5Cb", "caf%C3%A9",
                    "%EF%BC%8E%EF%BC%8E/x", "a//b"]:
            r = c.post(f"/object/{bucket}/{bad}", content=b"x", headers={"content-type": "text/plain"})
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["code"] == "InvalidKey", (bad, r.text)
    assert target.blob_keys(bucket) == []


def test_special_characters_and_empty_files(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    name = "dir with space/a b&c=d+e@f(1)!'$;:,.txt"
    files.upload(name, b"odd name", {"content-type": "text/plain"})
    assert files.download(name) == b"odd name"
    assert [e["name"] for e in files.list("dir with space")] == ["a b&c=d+e@f(1)!'$;:,.txt"]
    signed = files.create_signed_url(name, 60)["signedURL"]
    assert httpx.get(signed).content == b"odd name"
    files.upload("q?mark.txt", b"question")
    assert files.download("q?mark.txt") == b"question"
    files.upload("empty.txt", b"")
    assert files.download("empty.txt") == b""
    assert files.info("empty.txt")["size"] == 0


def test_replacing_keeps_old_version_readable_until_commit(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("live.txt", b"old version")
    release = threading.Event()
    started = threading.Event()

    def slow_body():
        yield b"new "
        started.set()
        release.wait(20)
        yield b"version"

    result: dict[str, int] = {}

    def upload() -> None:
        with http(target, target.server.service_key) as c:
            r = c.put(f"/object/{bucket}/live.txt", content=slow_body(), headers={"content-type": "text/plain"})
            result["status"] = r.status_code

    t = threading.Thread(target=upload)
    t.start()
    assert started.wait(10)
    time.sleep(0.3)  # the first bytes are on the server, the row is not yet replaced
    assert files.download("live.txt") == b"old version"
    release.set()
    t.join(30)
    assert result["status"] == 200
    assert files.download("live.txt") == b"new version"
    assert len(target.blob_keys(bucket)) == 1


def test_list_v2_flat_delimited_and_paged(admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    for name in ("a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "d.txt"):
        files.upload(name, b"x")
    flat = files.list_v2({"prefix": "b/"})
    assert [o.name for o in flat.objects] == ["b/1.txt", "b/2.txt", "b/c/3.txt"] and flat.folders == []
    tree = files.list_v2({"with_delimiter": True})
    assert [f.name for f in tree.folders] == ["b"]  # no trailing slash, as Supabase
    assert [o.name for o in tree.objects] == ["a.txt", "d.txt"]
    sub = files.list_v2({"prefix": "b/", "with_delimiter": True})
    assert [f.name for f in sub.folders] == ["b/c"] and [o.name for o in sub.objects] == ["b/1.txt", "b/2.txt"]
    page1 = files.list_v2({"limit": 2})
    assert page1.hasNext and [o.name for o in page1.objects] == ["a.txt", "b/1.txt"]
    page2 = files.list_v2({"limit": 2, "cursor": page1.nextCursor})
    assert [o.name for o in page2.objects] == ["b/2.txt", "b/c/3.txt"]
    page3 = files.list_v2({"limit": 2, "cursor": page2.nextCursor})
    assert [o.name for o in page3.objects] == ["d.txt"] and not page3.hasNext
