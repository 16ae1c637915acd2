"""TUS 1.0 resumable uploads at /storage/v1/upload/resumable (creation, termination, expiration).

State lives in ``ownbase.storage_tus_uploads`` so any process can take the next request; each
PATCH body is streamed into its own part blob (``.tus/<id>/<offset>`` in the target bucket), and
the final PATCH streams the parts, in order, into a normal object upload (RLS checked again at
commit). An interrupted PATCH keeps nothing of its partial body: the client resumes from the
offset HEAD reports. Errors inside TUS are plain text with the real status, as Supabase does.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ownbase.http.auth_context import CredentialError, resolve
from ownbase.storage import errors
from ownbase.storage.body import cache_control_from_field
from ownbase.storage.paths import check_key, mime_allowed

if TYPE_CHECKING:
    from ownbase.storage.service import Caller, Storage

P = "/storage/v1/upload/resumable"
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
COLUMNS = ("id, bucket_id, name, version, upload_length, upload_offset, part_offsets, content_type, cache_control, "
           "user_metadata, upsert, role, claims, expires_at")


def _text(status: int, message: str, extra: dict[str, str] | None = None) -> Response:
    return Response(message, status_code=status, media_type="text/plain",
                    headers={**TUS_HEADERS, **(extra or {})})


def _storage(request: Request) -> "Storage":
    return request.app.state.ctx.state["storage"]  # type: ignore[no-any-return]


def _signed(request: Request) -> bool:
    return request.url.path.rstrip("/").startswith(P + "/sign")


def _signed_caller(request: Request, bucket_id: str, name: str) -> tuple["Caller", dict[str, Any]]:
    """``/upload/resumable/sign``: the ``x-signature`` upload token (from createSignedUploadUrl)
    is the grant; the upload then runs as service_role with the token's owner."""
    from ownbase.storage.service import SERVICE_AUTH, Caller

    token = request.headers.get("x-signature")
    if not token:
        raise errors.invalid_request("x-signature header is required")
    claims = _storage(request).signer.verify(token, f"{bucket_id}/{name}", "upload")
    return Caller(auth=SERVICE_AUTH, method=request.method, path=request.url.path), claims


def _caller(request: Request) -> "Caller":
    from ownbase.storage.service import Caller

    ctx = request.app.state.ctx
    try:
        auth = resolve(ctx.keys, request.headers, request.query_params.get("apikey"))
    except CredentialError as exc:
        raise errors.access_denied(exc.message) from None
    return Caller(auth=auth, method=request.method, path=request.url.path, headers=dict(request.headers))


def parse_metadata(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        try:
            out[key] = base64.b64decode(value.strip()).decode() if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise errors.invalid_request("Upload-Metadata is not valid base64") from None
    return out


def _expires_header(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)


async def _load(st: "Storage", upload_id: str) -> Any:
    row = await st.ctx.db.owner.fetchrow(
        f"select {COLUMNS} from ownbase.storage_tus_uploads where id = $1 and expires_at > now()", upload_id)
    return row


async def _resolve(request: Request) -> tuple["Caller | None", Any]:
    """The caller and the upload row (None when unknown, expired or someone else's)."""
    st = _storage(request)
    row = await _load(st, request.path_params["upload_id"])
    if _signed(request):
        if row is None:
            return None, None
        caller, _ = _signed_caller(request, row["bucket_id"], row["name"])
    else:
        caller = _caller(request)
    if row is None or not _same_user(caller, row):
        return caller, None
    return caller, row


def _same_user(caller: "Caller", row: Any) -> bool:
    claims = row["claims"] or {}
    return caller.auth.role == row["role"] and caller.auth.claims.get("sub") == claims.get("sub")


async def options(request: Request) -> Response:
    st = _storage(request)
    return Response(status_code=204, headers={
        **TUS_HEADERS, "Tus-Version": "1.0.0", "Tus-Extension": "creation,termination,expiration",
        "Tus-Max-Size": str(st.settings.storage_max_file_size)})


async def create(request: Request) -> Response:
    st = _storage(request)
    signed = _signed(request)
    try:
        meta = parse_metadata(request.headers.get("upload-metadata", ""))
        bucket_id, name = meta.get("bucketName", ""), meta.get("objectName", "")
        if signed:
            caller, token = _signed_caller(request, bucket_id, name)
        else:
            caller, token = _caller(request), {}
    except errors.StorageError as exc:
        return exc.response()  # auth failures before TUS: JSON, as Supabase
    try:
        if not bucket_id or not name:
            return _text(400, "bucketName and objectName are required in Upload-Metadata")
        check_key(name)
        bucket = await st.bucket_as_owner(bucket_id)
        length_header = request.headers.get("upload-length")
        if length_header is None or not length_header.isdigit():
            return _text(400, "Upload-Length is required")
        length = int(length_header)
        if length > st.size_limit(bucket):
            return _text(413, "The object exceeded the maximum allowed size")
        content_type = meta.get("contentType") or "application/octet-stream"
        if not mime_allowed(content_type, bucket["allowed_mime_types"]):
            return _text(415, f"mime type {content_type} is not supported")
        user_metadata = None
        if meta.get("metadata"):
            try:
                user_metadata = json.loads(meta["metadata"])
            except ValueError:
                return _text(400, "metadata must be valid JSON")
        if signed:
            upsert, owner = bool(token.get("upsert")), token.get("owner")
        else:
            upsert = request.headers.get("x-upsert", "").lower() == "true"
            owner = caller.auth.user_id
            await st._test_write(caller, bucket_id, name, owner, upsert, user_metadata, content_type)
        if not upsert:
            from ownbase.storage import db

            if await db.find_object(st.ctx.db.owner, bucket_id, name) is not None:
                return _text(409, "The resource already exists")
        version = str(uuid.uuid4())
        upload_id = base64.urlsafe_b64encode(f"{bucket_id}/{name}/{version}".encode()).decode().rstrip("=")
        expires = datetime.now(timezone.utc) + timedelta(seconds=st.settings.storage_tus_expiry)
        await st.ctx.db.owner.execute(
            "insert into ownbase.storage_tus_uploads (id, bucket_id, name, version, upload_length, content_type, "
            "cache_control, user_metadata, upsert, role, claims, expires_at) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb, $12)",
            upload_id, bucket_id, name, version, length, content_type,
            cache_control_from_field(meta.get("cacheControl")), user_metadata, upsert, caller.auth.role,
            {**caller.auth.claims, "ownbase_owner": owner}, expires)
    except errors.StorageError as exc:
        return _text(exc.status if exc.status < 500 else 500, exc.message)
    location = f"{str(request.url).split('?')[0].rstrip('/')}/{upload_id}"
    if request.headers.get("x-forwarded-proto"):
        location = request.headers["x-forwarded-proto"] + location[location.index(":"):]
    return Response(status_code=201, headers={**TUS_HEADERS, "Location": location,
                                              "Upload-Expires": _expires_header(expires)})


async def head(request: Request) -> Response:
    try:
        _caller_, row = await _resolve(request)
    except errors.StorageError as exc:
        return exc.response()
    if row is None:
        return Response(status_code=404, headers=TUS_HEADERS)
    return Response(status_code=200, headers={
        **TUS_HEADERS, "Upload-Offset": str(row["upload_offset"]), "Upload-Length": str(row["upload_length"]),
        "Cache-Control": "no-store", "Upload-Expires": _expires_header(row["expires_at"])})


def _part_key(upload_id: str, offset: int) -> str:
    return f".tus/{upload_id}/{offset}"


async def patch(request: Request) -> Response:
    st = _storage(request)
    upload_id = request.path_params["upload_id"]
    try:
        caller, row = await _resolve(request)
    except errors.StorageError as exc:
        return exc.response()
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
        return _text(415, "Content-Type must be application/offset+octet-stream")
    if row is None or caller is None:
        return _text(404, "Upload not found")
    offset_header = request.headers.get("upload-offset", "")
    if not offset_header.isdigit() or int(offset_header) != row["upload_offset"]:
        return _text(409, "Upload-Offset conflict")
    offset = int(offset_header)
    length = int(row["upload_length"])
    received = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal received
        async for chunk in request.stream():
            received += len(chunk)
            if offset + received > length:
                raise errors.entity_too_large()
            yield chunk

    key = _part_key(upload_id, offset)
    try:
        await st.backend.write(row["bucket_id"], key, body(), "application/octet-stream")
    except errors.StorageError as exc:
        return _text(exc.status, exc.message)
    except ClientDisconnect:
        return _text(400, "Client disconnected")
    new_offset = offset + received
    if received:
        updated = await st.ctx.db.owner.fetchval(
            "update ownbase.storage_tus_uploads set upload_offset = $2, part_offsets = part_offsets || $3::bigint "
            "where id = $1 and upload_offset = $3 returning upload_offset", upload_id, new_offset, offset)
        if updated is None:
            await st.backend.delete(row["bucket_id"], [key])
            return _text(409, "Upload-Offset conflict")
    else:
        await st.backend.delete(row["bucket_id"], [key])
    headers = {**TUS_HEADERS, "Upload-Offset": str(new_offset), "Upload-Expires": _expires_header(row["expires_at"])}
    if new_offset == length:
        try:
            await _finish(st, caller, upload_id)
        except errors.StorageError as exc:
            return _text(exc.status if exc.status < 500 else 500, exc.message)
    return Response(status_code=204, headers=headers)


async def _finish(st: "Storage", caller: "Caller", upload_id: str) -> None:
    row = await st.ctx.db.owner.fetchrow(f"select {COLUMNS} from ownbase.storage_tus_uploads where id = $1", upload_id)
    bucket_id = row["bucket_id"]
    offsets = sorted(row["part_offsets"])
    keys = [_part_key(upload_id, o) for o in offsets]

    async def parts() -> AsyncIterator[bytes]:
        for key in keys:
            async for chunk in st.backend.read(bucket_id, key):
                yield chunk

    bucket = await st.bucket_as_owner(bucket_id)
    owner = (row["claims"] or {}).get("ownbase_owner")
    try:
        await st.store(caller, bucket_id, row["name"], parts(), content_type=row["content_type"],
                       cache_control=row["cache_control"], user_metadata=row["user_metadata"], upsert=row["upsert"],
                       owner=owner, limit=st.size_limit(bucket))
    finally:
        await st.backend.delete(bucket_id, keys)
        await st.ctx.db.owner.execute("delete from ownbase.storage_tus_uploads where id = $1", upload_id)


async def terminate(request: Request) -> Response:
    st = _storage(request)
    try:
        _caller_, row = await _resolve(request)
    except errors.StorageError as exc:
        return exc.response()
    if row is None:
        return _text(404, "Upload not found")
    await _drop(st, row)
    return Response(status_code=204, headers=TUS_HEADERS)


async def _drop(st: "Storage", row: Any) -> None:
    await drop_upload(st.ctx.db.owner, st.backend, row)


async def drop_upload(pool: Any, backend: Any, row: Any) -> None:
    await backend.delete(row["bucket_id"], [_part_key(row["id"], o) for o in row["part_offsets"]])
    await pool.execute("delete from ownbase.storage_tus_uploads where id = $1", row["id"])


async def expire(pool: Any, backend: Any) -> int:
    """Remove abandoned uploads (past Upload-Expires) and their parts."""
    rows = await pool.fetch(f"select {COLUMNS} from ownbase.storage_tus_uploads where expires_at <= now() limit 1000")
    for row in rows:
        await drop_upload(pool, backend, row)
    return len(rows)


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
