"""Pure helpers: key rules, local path containment, sizes, MIME patterns, ranges, tokens."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ownbase.storage import errors
from ownbase.storage.backends import local
from ownbase.storage.backends.local import LocalBackend, PathEscape
from ownbase.storage.paths import is_valid_key, mime_allowed, parse_size
from ownbase.storage.responses import content_disposition, parse_range
from ownbase.storage.transform import parse_token_transform, parse_transform


@pytest.mark.parametrize("key", ["a.txt", "folder/sub/file name (1).png", "a!*'()&$=@;:+,?-_.x", "UP/down"])
def test_valid_keys(key: str) -> None:
    assert is_valid_key(key)


@pytest.mark.parametrize("key", [
    "", "/abs", "../x", "a/../b", "a/./b", ".", "..", "a//b", "a/", "a\\b", "a\x00b", "café.txt",
    "\uff0e\uff0e/x",  # fullwidth dots: NFKC would fold them into ".."
    "a\u2215b",  # division slash looks like "/"
    "x" * 1025,
])
def test_invalid_keys(key: str) -> None:
    assert not is_valid_key(key)


def test_local_backend_refuses_escapes(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "root")
    assert backend.path("b", "a/b.txt/v1") == (tmp_path / "root" / "b" / "a" / "b.txt" / "v1").resolve()
    for bucket, key in [("b", "../../etc/passwd"), ("..", "x"), ("b", "/etc/passwd"), ("b", "a\\..\\x"),
                        ("b", "a\x00"), (".tmp", "x"), ("b", "a/../../../x")]:
        with pytest.raises(PathEscape):
            backend.path(bucket, key)
    # A symlink inside the root that points outside cannot be followed.
    (tmp_path / "root" / "b").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "b" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(PathEscape):
        backend.path("b", "link/x")


def test_local_backend_write_is_atomic_on_failure(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)

    async def go() -> None:
        await backend.start()

        async def chunks():
            yield b"part"
            raise RuntimeError("source failed")

        with pytest.raises(RuntimeError):
            await backend.write("b", "k/v", chunks(), "text/plain")
        assert not await backend.exists("b", "k/v")
        assert list((tmp_path / ".tmp").iterdir()) == []

    asyncio.run(go())


def test_local_backend_write_is_durable_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller commits the row right after write() returns, so the blob and its directory
    entry must be on disk by then; long writes are flushed while they run (fdatasync), not all
    at the end. The real os.fsync/os.fdatasync still run: the spies only record the calls."""
    monkeypatch.setattr(local, "FLUSH_EVERY", 4 * 1024 * 1024)
    calls: list[tuple[str, str]] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def what(fd: int) -> str:
        return os.readlink(f"/proc/self/fd/{fd}")

    def fsync(fd: int) -> None:
        calls.append(("fsync", what(fd)))
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        calls.append(("fdatasync", what(fd)))
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    backend = LocalBackend(tmp_path)
    block = bytes(range(256)) * 4096  # 1 MiB

    async def go() -> None:
        await backend.start()

        async def chunks():
            for _ in range(20):
                yield block
                await asyncio.sleep(0.005)  # let a background flush run alongside

        await backend.write("b", "folder/k/v1", chunks(), "application/octet-stream")

    asyncio.run(go())
    final = tmp_path / "b" / "folder" / "k" / "v1"
    assert final.read_bytes() == block * 20
    tmp_flushes = [c for c in calls if c[1].startswith(str(tmp_path / ".tmp"))]
    assert any(kind == "fdatasync" for kind, _ in tmp_flushes)  # flushed while writing
    assert tmp_flushes[-1][0] == "fsync"  # and the whole file before the rename
    assert ("fsync", str(final.parent)) in calls  # the rename itself is durable


@pytest.mark.parametrize("value,expected", [
    (None, None), (0, None), (1024, 1024), ("20mb", 20_000_000), ("20MB", 20_000_000), ("30KB", 30_000),
    ("3B", 3), ("1gb", 1_000_000_000), ("100", 100),
])
def test_parse_size(value: object, expected: int | None) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["lots", "-1mb", True, [1]])
def test_parse_size_refuses(value: object) -> None:
    with pytest.raises(errors.StorageError) as err:
        parse_size(value)
    assert err.value.code == "InvalidRequest"


def test_mime_patterns() -> None:
    assert mime_allowed("image/png", ["image/*"])
    assert mime_allowed("text/plain;charset=UTF-8", ["text/plain"])
    assert not mime_allowed("application/pdf", ["image/*", "text/plain"])
    assert mime_allowed("anything/at-all", None) and mime_allowed("x/y", [])


def test_ranges() -> None:
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=50-1000", 100) == (50, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None
    for bad in ("bytes=100-", "bytes=9-3", "bytes=-0"):
        with pytest.raises(errors.StorageError):
            parse_range(bad, 100)


def test_disposition() -> None:
    assert content_disposition(None) is None
    assert content_disposition("") == "attachment;"
    assert content_disposition("a b.txt") == "attachment; filename=a%20b.txt; filename*=UTF-8''a%20b.txt"


def test_transform_options() -> None:
    t = parse_transform({"width": "100", "height": "50", "resize": "contain", "quality": "70", "format": "webp"})
    assert (t.width, t.height, t.resize, t.quality, t.format) == (100, 50, "contain", 70, "webp")
    assert parse_token_transform(t.token_string()) == t
    assert parse_transform({"width": "99999"}).width == 2500
    for bad in ({"resize": "x"}, {"quality": "5"}, {"format": "bmp"}, {"width": "-1"}, {"width": "abc"}):
        with pytest.raises(errors.StorageError):
            parse_transform(bad)
