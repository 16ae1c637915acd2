"""Storage routes (/storage/v1): thin handlers; logic lives in service.py, SQL in db.py."""

from __future__ import annotations

import functools
import logging
import json
from typing import Any, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ownbase.db.pool import database_unreachable
from ownbase.http.errors import generic_status
from ownbase.service import Service
from ownbase.storage import errors, tus_routes
from ownbase.storage.body import parse_upload
from ownbase.storage.callers import caller_of, storage_of
from ownbase.storage.lifecycle import shutdown, startup
from ownbase.storage.responses import BlobGone, content_disposition, safe_type_headers, serve_object
from ownbase.storage.service import SERVICE_AUTH, Caller, Storage, _url_path, info_json, object_json
from ownbase.storage.images import read_limited
from ownbase.storage.transform import negotiate, parse_token_transform, parse_transform, render, sniff

P = "/storage/v1"
log = logging.getLogger("ownbase.storage")


def handler(fn: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    @functools.wraps(fn)
    async def wrapped(request: Request, *args: Any) -> Response:
        try:
            return await fn(request, *args)
        except errors.StorageError as exc:
            return exc.response()
        except ClientDisconnect:
            # The client went away mid-body: the upload was discarded; nobody reads this.
            return errors.invalid_request("Client disconnected").response()
        except RecursionError:  # a client value nested too deeply for some step past parsing
            return errors.invalid_request("The request is nested too deeply").response()
        except Exception as exc:  # noqa: BLE001 - backend/database failures: Storage's 500 shape
            if database_unreachable(exc):
                log.warning("storage request failed, database unavailable: %s %s: %s", request.method,
                            request.url.path, exc)
                return errors.database_unavailable().response()
            if generic_status(exc) is not None:
                raise  # the http layer answers (503 / 400) in Storage's shape
            log.exception("storage request failed: %s %s", request.method, request.url.path)
            return errors.internal().response()

    return wrapped


async def json_body(request: Request) -> dict[str, Any]:
    limit = request.app.state.ctx.settings.max_body_bytes
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise errors.entity_too_large()
    if not buf:
        return {}
    try:
        value = json.loads(buf)
    except RecursionError:
        raise errors.invalid_request("Body is nested too deeply") from None
    except ValueError:
        raise errors.invalid_request("Body is not valid JSON") from None
    if not isinstance(value, dict):
        raise errors.invalid_request("body must be object")
    return value


def _upsert(request: Request) -> bool:
    return request.headers.get("x-upsert", "").strip().lower() == "true"


def _expires(body: dict[str, Any]) -> int:
    value = body.get("expiresIn")
    try:
        n = int(value)  # storage3 sends it as a string
    except (TypeError, ValueError):
        raise errors.invalid_request("body must have required property 'expiresIn'") from None
    if n < 1:
        raise errors.invalid_request("body/expiresIn must be >= 1")
    return n


# --- buckets -------------------------------------------------------------------------------------

@handler
async def buckets(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    if request.method == "POST":
        name = await st.create_bucket(caller, await json_body(request))
        return JSONResponse({"name": name})
    q = request.query_params
    limit = int(q["limit"]) if q.get("limit", "").isdigit() else None
    offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
    rows = await st.list_buckets(caller, limit, offset, q.get("sortColumn", "name"), q.get("sortOrder", "asc"),
                                 q.get("search"))
    return JSONResponse(rows)


@handler
async def bucket(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    bucket_id = request.path_params["bucket"]
    if request.method == "GET":
        return JSONResponse(await st.get_bucket(caller, bucket_id))
    if request.method == "PUT":
        await st.update_bucket(caller, bucket_id, await json_body(request))
        return JSONResponse({"message": "Successfully updated"})
    await st.delete_bucket(caller, bucket_id)
    return JSONResponse({"message": "Successfully deleted"})


@handler
async def empty_bucket(request: Request) -> Response:
    await storage_of(request).empty_bucket(caller_of(request), request.path_params["bucket"])
    # Supabase's words: it empties in the background; here it is done when this answers.
    return JSONResponse({"message": "Empty bucket has been queued. Completion may take up to an hour."})


# --- objects -------------------------------------------------------------------------------------

@handler
async def object_route(request: Request) -> Response:
    """/object/{bucket}/{path}: upload (POST/PUT), download (GET/HEAD), delete."""
    st, caller = storage_of(request), caller_of(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    if request.method in ("POST", "PUT"):
        body = await parse_upload(request)
        upsert = request.method == "PUT" or _upsert(request)
        row = await st.upload(caller, bucket_id, name, body, upsert=upsert)
        return JSONResponse({"Id": str(row["id"]), "Key": f"{bucket_id}/{name}"})
    if request.method == "DELETE":
        await st.delete_one(caller, bucket_id, name)
        return JSONResponse({"message": "Successfully deleted"})
    return await serve_authenticated(st, request, caller, bucket_id, name)


@handler
async def object_authenticated(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    return await serve_authenticated(st, request, caller, request.path_params["bucket"], request.path_params["path"])


async def serve_authenticated(st: Storage, request: Request, caller: Caller, bucket_id: str, name: str) -> Response:
    head = request.method == "HEAD"
    row = await st.find_for_read(caller, bucket_id, name, "authenticated")
    try:
        return await serve_object(st, request, row, head=head)
    except BlobGone:
        if not st.on_replica(caller, True):
            raise
    # The replica's row points at a version the primary has already replaced and swept.
    row = await st.find_for_read(caller, bucket_id, name, "authenticated", primary=True)
    return await serve_object(st, request, row, head=head)


@handler
async def object_public(request: Request) -> Response:
    st = storage_of(request)
    row = await st.find_for_read(None, request.path_params["bucket"], request.path_params["path"], "public")
    return await serve_object(st, request, row, head=request.method == "HEAD")


async def object_info_public(request: Request) -> Response:
    return await _object_info(request, "public")


async def object_info_authenticated(request: Request) -> Response:
    return await _object_info(request, "authenticated")


async def object_info(request: Request) -> Response:
    return await _object_info(request, "authenticated")


@handler
async def _object_info(request: Request, mode: str) -> Response:
    st = storage_of(request)
    caller = caller_of(request) if mode == "authenticated" else None
    row = await st.find_for_read(caller, request.path_params["bucket"], request.path_params["path"], mode,
                                 not_found=errors.no_such_key)
    return JSONResponse(info_json(row))


@handler
async def delete_many(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    body = await json_body(request)
    prefixes = body.get("prefixes")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise errors.invalid_request("body must have required property 'prefixes'")
    if len(prefixes) > 1000:
        raise errors.invalid_request("body/prefixes must NOT have more than 1000 items")
    return JSONResponse(await st.delete_many(caller, request.path_params["bucket"], prefixes))


@handler
async def list_objects(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    return JSONResponse(await st.list_objects(caller, request.path_params["bucket"], await json_body(request)))


@handler
async def list_objects_v2(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    return JSONResponse(await st.list_objects_v2(caller, request.path_params["bucket"], await json_body(request)))


@handler
async def move(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    body = await json_body(request)
    row = await st.move_or_copy(caller, body, copy=False)
    return JSONResponse({"message": "Successfully moved", "Id": str(row["id"]),
                         "Key": f"{row['bucket_id']}/{row['name']}"})


@handler
async def copy(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    body = await json_body(request)
    row = await st.move_or_copy(caller, body, copy=True)
    return JSONResponse({"Id": str(row["id"]), "Key": f"{row['bucket_id']}/{row['name']}", **object_json(row)})


# --- signed URLs ---------------------------------------------------------------------------------

@handler
async def sign_one(request: Request) -> Response:
    st = storage_of(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    if request.method in ("GET", "HEAD"):
        token = request.query_params.get("token")
        if not token:
            raise errors.invalid_request("querystring must have required property 'token'")
        st.signer.verify(token, f"{bucket_id}/{name}", "download")
        row = await st.find_for_read(None, bucket_id, name, "signed")
        return await serve_object(st, request, row, head=request.method == "HEAD")
    caller = caller_of(request)
    body = await json_body(request)
    expires = _expires(body)
    transform = body.get("transform")
    token_t = None
    if isinstance(transform, dict) and transform:
        t = parse_transform(transform)
        token_t = t.token_string()
    result = (await st.sign_urls(caller, bucket_id, [name], expires, token_t))[0]
    if result["signedURL"] is None:
        raise errors.no_such_key()
    return JSONResponse({"signedURL": result["signedURL"]})


@handler
async def sign_many(request: Request) -> Response:
    st, caller = storage_of(request), caller_of(request)
    body = await json_body(request)
    paths = body.get("paths")
    if not isinstance(paths, list):
        raise errors.invalid_request("body must have required property 'paths'")
    return JSONResponse(await st.sign_urls(caller, request.path_params["bucket"], paths, _expires(body)))


@handler
async def upload_sign(request: Request) -> Response:
    st = storage_of(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    if request.method == "POST":
        caller = caller_of(request)
        token = await st.sign_upload(caller, bucket_id, name, _upsert(request))
        return JSONResponse({"url": f"/object/upload/sign/{_url_path(bucket_id)}/{_url_path(name)}?token={token}",
                             "token": token})
    token = request.query_params.get("token")
    if not token:
        raise errors.invalid_request("querystring must have required property 'token'")
    claims = st.signer.verify(token, f"{bucket_id}/{name}", "upload")
    body = await parse_upload(request)
    # The signer's permission was checked under RLS when the URL was made; the token is the grant.
    row = await st.upload(Caller(auth=SERVICE_AUTH, method="PUT", path=request.url.path), bucket_id, name, body,
                          upsert=bool(claims.get("upsert")), owner=claims.get("owner"), check=False)
    return JSONResponse({"Key": f"{bucket_id}/{name}", "Id": str(row["id"])})


# --- image rendering -----------------------------------------------------------------------------

@handler
async def render_image(request: Request) -> Response:
    st = storage_of(request)
    mode = request.path_params["mode"]
    if mode not in ("public", "authenticated", "sign"):
        raise errors.route_not_found(request.method, request.url.path)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    if mode == "sign":
        token = request.query_params.get("token")
        if not token:
            raise errors.invalid_request("querystring must have required property 'token'")
        claims = st.signer.verify(token, f"{bucket_id}/{name}", "download")
        t = parse_token_transform(claims.get("transformations") or "")
        row = await st.find_for_read(None, bucket_id, name, "signed")
    elif mode == "public":
        t = parse_transform(request.query_params)
        row = await st.find_for_read(None, bucket_id, name, "public")
    else:
        t = parse_transform(request.query_params)
        row = await st.find_for_read(caller_of(request), bucket_id, name, "authenticated")
    try:
        data = await read_limited(st, row)
    except BlobGone:
        if mode != "authenticated" or not st.on_replica(caller_of(request), True):
            raise
        row = await st.find_for_read(caller_of(request), bucket_id, name, "authenticated", primary=True)
        data = await read_limited(st, row)
    meta = row["metadata"] or {}
    headers = {"cache-control": str(meta.get("cacheControl") or "no-cache")}
    if (disp := content_disposition(request.query_params.get("download"))) is not None:
        headers["content-disposition"] = disp
    if sniff(data) == "svg":
        # As Supabase's image service: an SVG is served as the SVG it is unless a raster format
        # is asked for explicitly (sandboxed like any active type served from the API's origin).
        if t.format not in (None, "origin"):
            raise errors.invalid_request(f"format {t.format} is not supported for SVG images; use format=origin")
        return Response(data, headers={**headers, **safe_type_headers("image/svg+xml")})
    # No format given: WebP for clients that accept it (Supabase's automatic optimisation).
    t, negotiated = negotiate(t, request.headers.get("accept"))
    out, mime = await render(data, t, st.settings.storage_image_max_pixels)
    if negotiated:
        headers["vary"] = "Accept"
    return Response(out, media_type=mime, headers=headers)


@handler
async def not_found(request: Request) -> Response:
    raise errors.route_not_found(request.method, request.url.path)


class StorageRoute(Route):
    """A route whose every response says ``X-Content-Type-Options: nosniff``: browsers must not
    guess an active type (HTML, script) from the bytes of a stored object or an error body."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-content-type-options"]
                message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
            await send(message)

        await super().handle(scope, receive, send_nosniff)


def _nosniff(route: Route) -> StorageRoute:
    return StorageRoute(route.path, route.endpoint, methods=sorted(route.methods) if route.methods else None,
                        name=route.name)


ROUTES = [
    Route(f"{P}/bucket", buckets, methods=["GET", "POST"]),
    Route(f"{P}/bucket/", buckets, methods=["GET", "POST"]),
    Route(f"{P}/bucket/{{bucket}}/empty", empty_bucket, methods=["POST"]),
    Route(f"{P}/bucket/{{bucket}}", bucket, methods=["GET", "PUT", "DELETE"]),
    Route(f"{P}/object/list/{{bucket}}", list_objects, methods=["POST"]),
    Route(f"{P}/object/list-v2/{{bucket}}", list_objects_v2, methods=["POST"]),
    Route(f"{P}/object/move", move, methods=["POST"]),
    Route(f"{P}/object/copy", copy, methods=["POST"]),
    Route(f"{P}/object/sign/{{bucket}}", sign_many, methods=["POST"]),
    Route(f"{P}/object/sign/{{bucket}}/{{path:path}}", sign_one, methods=["GET", "HEAD", "POST"]),
    Route(f"{P}/object/upload/sign/{{bucket}}/{{path:path}}", upload_sign, methods=["POST", "PUT"]),
    Route(f"{P}/object/info/authenticated/{{bucket}}/{{path:path}}", object_info_authenticated, methods=["GET"]),
    Route(f"{P}/object/info/public/{{bucket}}/{{path:path}}", object_info_public, methods=["GET"]),
    Route(f"{P}/object/info/{{bucket}}/{{path:path}}", object_info, methods=["GET"]),
    Route(f"{P}/object/public/{{bucket}}/{{path:path}}", object_public, methods=["GET", "HEAD"]),
    Route(f"{P}/object/authenticated/{{bucket}}/{{path:path}}", object_authenticated, methods=["GET", "HEAD"]),
    Route(f"{P}/object/{{bucket}}", delete_many, methods=["DELETE"]),
    Route(f"{P}/object/{{bucket}}/{{path:path}}", object_route, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    Route(f"{P}/render/image/{{mode}}/{{bucket}}/{{path:path}}", render_image, methods=["GET"]),
    *tus_routes.ROUTES,
    Route(f"{P}/{{rest:path}}", not_found, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
]
ROUTES = [_nosniff(r) for r in ROUTES]

SERVICE = Service(name="storage", routes=ROUTES, startup=startup, shutdown=shutdown)
