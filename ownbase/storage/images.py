"""Reading an object for an image transformation: bounded in size, identified by its bytes."""

from __future__ import annotations

from typing import Any

from ownbase.storage import errors
from ownbase.storage.backends.base import BlobNotFound
from ownbase.storage.responses import BlobGone
from ownbase.storage.service import Storage, blob_key
from ownbase.storage.transform import MAX_INPUT_BYTES, SNIFF_BYTES, sniff


async def read_limited(st: Storage, row: Any) -> bytes:
    """The whole image, bounded: decoding needs it in memory, so the size is capped first. What
    it is comes from its first bytes, not the stored content type (a JPEG uploaded as
    text/plain is still a JPEG), and anything else is refused before the rest is read."""
    meta = row["metadata"] or {}
    if int(meta.get("size") or 0) > MAX_INPUT_BYTES:
        raise errors.invalid_request("Image is too large to transform")
    buf = bytearray()
    sniffed = False
    try:
        async for chunk in st.backend.read(row["bucket_id"], blob_key(row["name"], row["version"])):
            buf += chunk
            if len(buf) > MAX_INPUT_BYTES:
                raise errors.invalid_request("Image is too large to transform")
            if not sniffed and len(buf) >= SNIFF_BYTES:
                _check_image(bytes(buf[:SNIFF_BYTES]))
                sniffed = True
    except BlobNotFound:
        raise BlobGone() from None
    if not sniffed:
        _check_image(bytes(buf))
    return bytes(buf)


def _check_image(head: bytes) -> None:
    if sniff(head) is None:
        raise errors.not_an_image()
