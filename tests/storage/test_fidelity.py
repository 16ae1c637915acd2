"""Storage answers as Supabase Storage does (issue 10 item 14), checked through storage3."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from storage3.exceptions import StorageApiError

from tests.conftest import sql
from tests.storage.conftest import StorageTarget, http

SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- drawn by hand -->\n'
       b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>')


def jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def test_list_v2_folder_keys_have_no_trailing_slash(admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    for name in ("fold/a.txt", "fold/sub/b.txt", "other/c.txt", "top.txt"):
        files.upload(name, b"x")
    res = files.list_v2({"with_delimiter": True})
    assert sorted(f.key for f in res.folders) == ["fold", "other"]
    assert sorted(f.name for f in res.folders) == ["fold", "other"]
    assert [o.key for o in res.objects] == ["top.txt"]
    inner = files.list_v2({"with_delimiter": True, "prefix": "fold/"})
    assert [f.key for f in inner.folders] == ["fold/sub"] and [o.key for o in inner.objects] == ["fold/a.txt"]
    # Paging by cursor still walks every entry once.
    seen: list[str] = []
    cursor = None
    while True:
        page = files.list_v2({"with_delimiter": True, "limit": 1, **({"cursor": cursor} if cursor else {})})
        seen += [f.key or "" for f in page.folders] + [o.key or "" for o in page.objects]
        if not page.hasNext:
            break
        cursor = page.nextCursor
    assert seen == ["fold", "other", "top.txt"]


@pytest.mark.parametrize("column", ["created_at", "updated_at"])
def test_list_v2_sorts_by_time(target: StorageTarget, admin, bucket: str, column: str) -> None:
    files = admin.storage.from_(bucket)
    order = ["m.txt", "z.txt", "a.txt", "k/inner.txt"]
    for name in order:
        files.upload(name, b"x")
    # Distinct, known times (uploads in one test can share a millisecond).
    for i, name in enumerate(order):
        sql(target.server, f"update storage.objects set {column} = now() - make_interval(mins => $3) "
            "where bucket_id = $1 and name = $2", bucket, name, 10 - i)
    flat = files.list_v2({"sortBy": {"column": column, "order": "asc"}})
    assert [o.name for o in flat.objects] == order
    desc = files.list_v2({"sortBy": {"column": column, "order": "desc"}})
    assert [o.name for o in desc.objects] == order[::-1]
    # With folders: folders first, then objects by time; pages of one follow the same order.
    expect = ["k", "m.txt", "z.txt", "a.txt"]
    seen: list[str] = []
    cursor = None
    while True:
        opts = {"with_delimiter": True, "limit": 1, "sortBy": {"column": column, "order": "asc"}}
        page = files.list_v2({**opts, **({"cursor": cursor} if cursor else {})})
        seen += [f.key or "" for f in page.folders] + [o.key or "" for o in page.objects]
        if not page.hasNext:
            break
        cursor = page.nextCursor
    assert seen == expect
    with http(target, target.server.service_key) as c:
        r = c.post(f"/object/list-v2/{bucket}", json={"sortBy": {"column": "size"}})
        assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"
        r = c.post(f"/object/list-v2/{bucket}", json={"sortBy": {"column": column}, "cursor": "bm90IGpzb24"})
        assert r.status_code == 400 and r.json()["message"] == "Invalid cursor"


def test_info_metadata_is_an_object_and_empty_bucket_message(admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("plain.txt", b"no user metadata")
    assert files.info("plain.txt")["metadata"] == {}
    assert admin.storage.empty_bucket(bucket) == {
        "message": "Empty bucket has been queued. Completion may take up to an hour."}
    assert files.list() == []


def test_transform_sniffs_the_bytes_not_the_stored_type(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    with http(target, target.server.service_key) as c:
        r = c.post(f"/object/{bucket}/photo", content=jpeg(64, 32), headers={"content-type": "text/plain"})
        assert r.status_code == 200
    assert files.info("photo")["content_type"] == "text/plain"
    out = files.download("photo", {"transform": {"width": 16, "height": 8, "resize": "fill"}})
    img = Image.open(io.BytesIO(out))
    assert img.size == (16, 8) and img.format == "JPEG"
    # Bytes that are not an image stay refused even under an image type.
    with http(target, target.server.service_key) as c:
        c.post(f"/object/{bucket}/fake.png", content=b"not an image at all", headers={"content-type": "image/png"})
    with pytest.raises(StorageApiError) as err:
        files.download("fake.png", {"transform": {"width": 10}})
    assert str(err.value.status) == "415"


def test_svg_through_a_signed_transform_url(target: StorageTarget, admin, bucket: str) -> None:
    files = admin.storage.from_(bucket)
    files.upload("logo.svg", SVG, {"content-type": "image/svg+xml"})
    files.upload("logo-untyped", SVG, {"content-type": "application/octet-stream"})
    for name in ("logo.svg", "logo-untyped"):
        url = files.create_signed_url(name, 60, {"transform": {"width": 5, "height": 5}})["signedURL"]
        assert "/render/image/sign/" in url
        # Browsers send image/webp in Accept: an SVG is still served as the SVG it is.
        r = httpx.get(url, headers={"accept": "image/avif,image/webp,*/*"})
        assert r.status_code == 200, r.text
        assert r.content == SVG and r.headers["content-type"] == "image/svg+xml"
        assert r.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        assert r.headers["x-content-type-options"] == "nosniff"
    # A raster format asked for explicitly is a clear 400, not a 5xx.
    url = files.create_signed_url("logo.svg", 60, {"transform": {"width": 5, "format": "webp"}})["signedURL"]
    r = httpx.get(url)
    assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"
