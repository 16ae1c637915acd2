"""TUS 1.0 over HTTP at /storage/v1/upload/resumable (creation, termination, expiration): headers
are read and checked here, the protocol steps run in ``tus.py``. Errors inside TUS are plain text
with the real status, as Supabase does; auth failures before TUS are Storage's JSON.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ownbase.storage import errors
from ownbase.storage.body import cache_control_from_field
from ownbase.storage.callers import caller_of, storage_of
from ownbase.storage.service import SERVICE_AUTH, Caller
from ownbase.storage.tus import NewUpload, Tus, TusError, Upload, offset_conflict

P = "/storage/v1/upload/resumable"
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"
HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,4096}")


def _text(status: int, message: str, extra: dict[str, str] | None = None) -> Response:
    return Response(message, status_code=status, media_type="text/plain",
                    headers={**TUS_HEADERS, **(extra or {})})


def _refusal(exc: Exception) -> Response:
    """A TUS-step failure as TUS answers it: plain text, real status (500 stays 500)."""
    if isinstance(exc, TusError):
        return _text(exc.status, exc.message)
    assert isinstance(exc, errors.StorageError)
    return _text(exc.status if exc.status < 500 else 500, exc.message)


def _tus(request: Request) -> Tus:
    return Tus(storage_of(request))


def _signed(request: Request) -> bool:
    return request.url.path.rstrip("/").startswith(P + "/sign")


def _signed_caller(request: Request, bucket_id: str, name: str) -> tuple[Caller, dict[str, Any]]:
    """``/upload/resumable/sign``: the ``x-signature`` upload token (from createSignedUploadUrl)
    is the grant; the upload then runs as service_role with the token's owner."""
    token = request.headers.get("x-signature")
    if not token:
        raise errors.invalid_request("x-signature header is required")
    claims = storage_of(request).signer.verify(token, f"{bucket_id}/{name}", "upload")
    return Caller(auth=SERVICE_AUTH, method=request.method, path=request.url.path), claims


def parse_metadata(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        try:
            out[key] = base64.b64decode(value.strip()).decode() if value.strip() else ""
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
            raise errors.invalid_request("Upload-Metadata is not valid base64") from None
        if "\x00" in out[key]:
            raise errors.invalid_request("Upload-Metadata values must not contain NUL")
    return out


def _count(value: str | None) -> int | None:
    """A TUS byte count header (ASCII digits only: ``isdigit`` also accepts ``²``)."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _user_metadata(raw: str) -> tuple[bool, Any]:
    """(ok, value) of the ``metadata`` entry: JSON that PostgreSQL's jsonb can store."""
    try:
        value = json.loads(raw)
        stored = json.dumps(value, ensure_ascii=False)
        stored.encode()  # lone surrogates cannot be stored
    except (ValueError, RecursionError, UnicodeEncodeError):
        return False, None
    return "\\u0000" not in stored and "\x00" not in stored, value


def _expires_header(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)


async def _resolve(request: Request) -> tuple[Caller | None, Upload | None]:
    """The caller and the upload (None when unknown, expired or someone else's)."""
    upload_id = request.path_params["upload_id"]
    # Ids are base64url (of bucket/name/version): anything else names no upload.
    upload = await _tus(request).get(upload_id) if UPLOAD_ID.fullmatch(upload_id) else None
    if _signed(request):
        if upload is None:
            return None, None
        caller, _ = _signed_caller(request, upload.bucket_id, upload.name)
    else:
        caller = caller_of(request)
    if upload is None or not upload.belongs_to(caller):
        return caller, None
    return caller, upload


async def options(request: Request) -> Response:
    st = storage_of(request)
    return Response(status_code=204, headers={
        **TUS_HEADERS, "Tus-Version": "1.0.0", "Tus-Extension": "creation,termination,expiration",
        "Tus-Max-Size": str(st.settings.storage_max_file_size)})


def _new_upload(request: Request, meta: dict[str, str], token: dict[str, Any] | None,
                caller: Caller) -> NewUpload | Response:
    """The creation request as typed arguments, or the plain-text refusal of a bad header."""
    bucket_id, name = meta.get("bucketName", ""), meta.get("objectName", "")
    if not bucket_id or not name:
        return _text(400, "bucketName and objectName are required in Upload-Metadata")
    length = _count(request.headers.get("upload-length"))
    if length is None:
        return _text(400, "Upload-Length is required")
    # Both come back as response headers on download: printable ASCII only.
    for field in ("contentType", "cacheControl"):
        if not HEADER_SAFE.fullmatch(meta.get(field, "")):
            return _text(400, f"{field} must be printable ASCII")
    user_metadata = None
    if meta.get("metadata"):
        ok, user_metadata = _user_metadata(meta["metadata"])
        if not ok:
            return _text(400, "metadata must be valid JSON")
    if token is not None:
        upsert, owner = bool(token.get("upsert")), token.get("owner")
    else:
        upsert, owner = request.headers.get("x-upsert", "").lower() == "true", caller.auth.user_id
    return NewUpload(bucket_id=bucket_id, name=name, length=length,
                     content_type=meta.get("contentType") or "application/octet-stream",
                     cache_control=cache_control_from_field(meta.get("cacheControl")),
                     user_metadata=user_metadata, upsert=upsert, owner=owner, check_write=token is None)


async def create(request: Request) -> Response:
    try:
        meta = parse_metadata(request.headers.get("upload-metadata", ""))
        if _signed(request):
            caller, token = _signed_caller(request, meta.get("bucketName", ""), meta.get("objectName", ""))
        else:
            caller, token = caller_of(request), None
    except errors.StorageError as exc:
        return exc.response()  # auth failures before TUS: JSON, as Supabase
    new = _new_upload(request, meta, token, caller)
    if isinstance(new, Response):
        return new
    try:
        upload_id, expires = await _tus(request).create(caller, new)
    except (TusError, errors.StorageError) as exc:
        return _refusal(exc)
    location = f"{str(request.url).split('?')[0].rstrip('/')}/{upload_id}"
    if request.headers.get("x-forwarded-proto"):
        location = request.headers["x-forwarded-proto"] + location[location.index(":"):]
    return Response(status_code=201, headers={**TUS_HEADERS, "Location": location,
                                              "Upload-Expires": _expires_header(expires)})


async def head(request: Request) -> Response:
    try:
        _caller, upload = await _resolve(request)
    except errors.StorageError as exc:
        return exc.response()
    if upload is None:
        return Response(status_code=404, headers=TUS_HEADERS)
    return Response(status_code=200, headers={
        **TUS_HEADERS, "Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length),
        "Cache-Control": "no-store", "Upload-Expires": _expires_header(upload.expires_at)})


async def patch(request: Request) -> Response:
    try:
        caller, upload = await _resolve(request)
    except errors.StorageError as exc:
        return exc.response()
    if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_TYPE:
        return _text(415, "Content-Type must be application/offset+octet-stream")
    if upload is None or caller is None:
        return _text(404, "Upload not found")
    offset = _count(request.headers.get("upload-offset"))
    if offset is None:
        return _refusal(offset_conflict())
    try:
        new_offset = await _tus(request).append(caller, upload, offset, request.stream())
    except (TusError, errors.StorageError) as exc:
        return _refusal(exc)
    except ClientDisconnect:
        return _text(400, "Client disconnected")
    return Response(status_code=204, headers={**TUS_HEADERS, "Upload-Offset": str(new_offset),
                                              "Upload-Expires": _expires_header(upload.expires_at)})


async def terminate(request: Request) -> Response:
    try:
        _caller, upload = await _resolve(request)
    except errors.StorageError as exc:
        return exc.response()
    if upload is None:
        return _text(404, "Upload not found")
    await _tus(request).terminate(upload)
    return Response(status_code=204, headers=TUS_HEADERS)


async def upload_route(request: Request) -> Response:
    if request.method == "OPTIONS":
        return await options(request)
    return await create(request)


async def upload_id_route(request: Request) -> Response:
    method = request.method
    if method == "HEAD":
        return await head(request)
    if method == "PATCH":
        return await patch(request)
    if method == "DELETE":
        return await terminate(request)
    return await options(request)


ROUTES = [
    Route(P + "/sign", upload_route, methods=["POST", "OPTIONS"]),
    Route(P + "/sign/", upload_route, methods=["POST", "OPTIONS"]),
    Route(P + "/sign/{upload_id}", upload_id_route, methods=["HEAD", "PATCH", "DELETE", "OPTIONS"]),
    Route(P, upload_route, methods=["POST", "OPTIONS"]),
    Route(P + "/", upload_route, methods=["POST", "OPTIONS"]),
    Route(P + "/{upload_id}", upload_id_route, methods=["HEAD", "PATCH", "DELETE", "OPTIONS"]),
]
