"""Upload bodies, parsed as a stream: multipart (fields, then one file part) or a raw body.

The multipart parser is fed the request stream chunk by chunk; fields are collected until the
first file part begins, then the file's bytes are handed on as an async iterator. Memory stays at
one network chunk plus the (small) fields.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ownbase.storage import errors

MAX_FIELD_BYTES = 1024 * 1024  # metadata / cacheControl fields
_FIELDS = ("cacheControl", "metadata", "contentType", "contentEncoding")


@dataclass
class UploadBody:
    content_type: str
    cache_control: str
    user_metadata: Any
    chunks: AsyncIterator[bytes]
    content_length: int | None  # exact file size when known up front (raw bodies)


def cache_control_from_field(value: str | None) -> str:
    if value is None or value == "":
        return "no-cache"
    value = value.strip()
    if value.isdigit():
        return f"max-age={value}"
    return value


def _json_metadata(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        raise errors.invalid_request("metadata must be valid JSON") from None
    if value is not None and not isinstance(value, dict):
        raise errors.invalid_request("metadata must be a JSON object")
    return value


def decode_x_metadata(value: str | None) -> Any:
    if not value:
        return None
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise errors.invalid_request("x-metadata must be base64 encoded JSON") from None
    return _json_metadata(raw)


async def parse_upload(request: Request) -> UploadBody:
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return await _parse_multipart(request, content_type)
    length = request.headers.get("content-length")
    return UploadBody(
        content_type=content_type or "application/octet-stream",
        cache_control=request.headers.get("cache-control") or "no-cache",
        user_metadata=decode_x_metadata(request.headers.get("x-metadata")),
        chunks=_raw_chunks(request),
        content_length=int(length) if length and length.isdigit() else None,
    )


async def _raw_chunks(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


class _Events:
    """Collects parser callbacks into a queue of events between feeds."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.decode("latin-1").lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        self.events.append(("part", dict(self.headers)))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", bytes(data[start:end])))

    def on_part_end(self) -> None:
        self.events.append(("end", None))


async def _parse_multipart(request: Request, content_type: str) -> UploadBody:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise errors.invalid_content_type()
    sink = _Events()
    parser = MultipartParser(boundary, {
        "on_part_begin": sink.on_part_begin, "on_header_field": sink.on_header_field,
        "on_header_value": sink.on_header_value, "on_header_end": sink.on_header_end,
        "on_headers_finished": sink.on_headers_finished, "on_part_data": sink.on_part_data,
        "on_part_end": sink.on_part_end,
    })
    stream = request.stream().__aiter__()

    async def next_events() -> bool:
        try:
            chunk = await stream.__anext__()
        except StopAsyncIteration:
            return False
        try:
            parser.write(chunk)
        except Exception:  # noqa: BLE001 - malformed multipart is the client's error
            raise errors.invalid_request("Malformed multipart body") from None
        return True

    fields: dict[str, str] = {}
    field_name: str | None = None  # the form field being read, if any
    field_buf = bytearray()
    file_headers: dict[str, bytes] | None = None
    # Phase 1: form fields, until the first file part starts (its data stays queued in sink).
    while file_headers is None:
        while sink.events and file_headers is None:
            kind, value = sink.events.pop(0)
            if kind == "part":
                _, dparams = parse_options_header(value.get("content-disposition", b""))
                name = dparams.get(b"name", b"").decode()
                # supabase-js appends the file with an empty field name: a part is the file if
                # it has a filename, or a content type and is not one of the known fields.
                is_file = b"filename" in dparams or ("content-type" in value and name not in _FIELDS)
                if is_file:
                    file_headers = value
                else:
                    field_name = name
                    field_buf.clear()
            elif kind == "data" and field_name is not None:
                field_buf += value
                if len(field_buf) > MAX_FIELD_BYTES:
                    raise errors.invalid_request("multipart field too large")
            elif kind == "end" and field_name is not None:
                fields[field_name] = field_buf.decode("utf-8", "replace")
                field_name = None
        if file_headers is None and not await next_events():
            break
    if file_headers is None:
        raise errors.invalid_request("Empty file")

    async def file_chunks() -> AsyncIterator[bytes]:
        finished = False
        while True:
            while sink.events:
                kind, value = sink.events.pop(0)
                if finished:
                    continue
                if kind == "data":
                    if value:
                        yield value
                elif kind == "end":
                    finished = True
            if not await next_events():
                break
            if finished and not sink.events:
                # Drain the rest of the body (closing boundary) without keeping it.
                while await next_events():
                    sink.events.clear()
                break
        if not finished:
            raise errors.invalid_request("Malformed multipart body: the file part is incomplete")

    part_type = (file_headers.get("content-type") or b"").decode("latin-1").strip()
    mime = fields.get("contentType") or part_type or "application/octet-stream"
    metadata = _json_metadata(fields["metadata"]) if fields.get("metadata") else None
    return UploadBody(
        content_type=mime,
        cache_control=cache_control_from_field(fields.get("cacheControl")),
        user_metadata=metadata,
        chunks=file_chunks(),
        content_length=None,
    )
