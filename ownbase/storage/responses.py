"""Object download responses: conditional requests, ranges, disposition, streaming bodies."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any, AsyncIterator
from urllib.parse import quote

import asyncpg
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ownbase.storage import errors
from ownbase.storage.backends.base import BlobNotFound
from ownbase.storage.service import READAHEAD_BYTES, Storage, blob_key
from ownbase.storage.streams import readahead

class BlobGone(errors.StorageError):
    """The row was found but its blob is gone: a stale row (read replica lag) whose old version
    was swept. Callers that read the row from the replica retry on the primary."""

    def __init__(self) -> None:
        e = errors.not_found_download()
        super().__init__(e.status, e.code, e.error, e.message)


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_disposition(download: str | None) -> str | None:
    if download is None:
        return None
    if download == "":
        return "attachment;"
    enc = quote(download, safe="")
    return f"attachment; filename={enc}; filename*=UTF-8''{enc}"


def http_date(iso: str | None) -> str | None:
    if not iso:
        return None
    try:
        return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)
    except ValueError:
        return None


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) or None for a header we ignore; raises InvalidRange if unsatisfiable."""
    m = _RANGE_RE.match(header.strip().replace(" ", ""))
    if not m:
        return None  # multi-range or junk: serve the whole object, as servers may
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        n = int(last)
        if n == 0:
            raise errors.invalid_range()
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise errors.invalid_range()
    return start, min(end, size - 1)


# Types a browser would run as a page at the API's origin. HTML is served as plain text, as
# Supabase Storage does; the other active types keep their type (an <img> of an SVG must work)
# but get a Content-Security-Policy that sandboxes them when opened as a document.
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ACTIVE_TYPES = frozenset({"image/svg+xml", "text/xml", "application/xml", "text/xsl", "application/xslt+xml",
                          "application/rdf+xml", "application/mathml+xml", "text/xml-external-parsed-entity"})
SANDBOX_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def media_type(mime: str) -> str:
    return mime.split(";", 1)[0].strip().lower()


def is_active(mime: str) -> bool:
    base = media_type(mime)
    return base in ACTIVE_TYPES or base.endswith("+xml")


def safe_type_headers(mime: str) -> dict[str, str]:
    """Content-Type (HTML downgraded to text/plain) plus a sandboxing CSP for other active types."""
    base = media_type(mime)
    if base in HTML_TYPES or base.endswith("html"):
        charset = re.search(r"charset=([\w.:-]+)", mime, re.IGNORECASE)
        return {"content-type": f"text/plain; charset={charset.group(1)}" if charset else "text/plain"}
    headers = {"content-type": mime}
    if is_active(mime):
        headers["content-security-policy"] = SANDBOX_CSP
    return headers


def object_headers(meta: dict[str, Any]) -> dict[str, str]:
    headers = {
        **safe_type_headers(str(meta.get("mimetype") or "application/octet-stream")),
        "cache-control": str(meta.get("cacheControl") or "no-cache"),
        "accept-ranges": "bytes",
    }
    if meta.get("eTag"):
        headers["etag"] = str(meta["eTag"])
    if lm := http_date(meta.get("lastModified")):
        headers["last-modified"] = lm
    return headers


def _etag_matches(header: str, etag: str | None) -> bool:
    if not etag:
        return False
    bare = etag.strip('"')
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == bare:
            return True
    return False


async def _first_chunk_then_rest(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Prime the backend stream before answering, so a missing blob is an error, not a cut body."""
    it = stream.__aiter__()
    try:
        first = await it.__anext__()
    except StopAsyncIteration:
        first = b""

    async def rest() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in it:
            yield chunk

    return rest()


async def serve_object(storage: Storage, request: Request, row: asyncpg.Record, *, head: bool = False) -> Response:
    meta = row["metadata"] or {}
    size = int(meta.get("size") or 0)
    headers = object_headers(meta)
    download = request.query_params.get("download")
    disposition = content_disposition(download)
    if disposition:
        headers["content-disposition"] = disposition
    inm = request.headers.get("if-none-match")
    if inm and _etag_matches(inm, headers.get("etag")):
        return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "content-type"})
    key = blob_key(row["name"], row["version"])
    if not head:
        url = await storage.backend.download_url(row["bucket_id"], key, 600, disposition, headers["content-type"])
        if url:
            return RedirectResponse(url, status_code=302, headers={"cache-control": "no-store"})
    status = 200
    start, end = 0, size - 1
    rng = request.headers.get("range")
    if rng and size > 0:
        try:
            parsed = parse_range(rng, size)
        except errors.StorageError as exc:
            resp = exc.response()
            resp.headers["content-range"] = f"bytes */{size}"
            return resp
        if parsed:
            start, end = parsed
            status = 206
            headers["content-range"] = f"bytes {start}-{end}/{size}"
    elif rng and size == 0:
        pass
    headers["content-length"] = str(end - start + 1 if size else 0)
    if head:
        return Response(status_code=status, headers=headers)
    if size == 0:
        return Response(b"", status_code=status, headers=headers)
    try:
        body = await _first_chunk_then_rest(
            readahead(storage.backend.read(row["bucket_id"], key, start, end), READAHEAD_BYTES))
    except BlobNotFound:
        raise BlobGone() from None
    return StreamingResponse(body, status_code=status, headers=headers)
