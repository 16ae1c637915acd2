"""Storage's error catalog, in Supabase Storage's shape.

Body ``{statusCode, code, error, message}`` with the semantic status as a string; the HTTP status
is 400 for every client error (as Supabase Storage does) except the few listed in ``_REAL_STATUS``.
"""

from __future__ import annotations

from starlette.responses import JSONResponse


class StorageError(Exception):
    def __init__(self, status: int, code: str, error: str, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error = error
        self.message = message
        self.http_status = http_status

    @property
    def body(self) -> dict[str, str]:
        return {"statusCode": str(self.status), "code": self.code, "error": self.error, "message": self.message}

    def response(self) -> JSONResponse:
        if self.http_status is not None:
            http = self.http_status
        else:
            http = 500 if self.status >= 500 else 400
        return JSONResponse(self.body, status_code=http)


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "not_found", "Object not found")


def not_found_download() -> StorageError:
    return StorageError(404, "NoSuchKey", "Not found", "The resource was not found")


def duplicate() -> StorageError:
    return StorageError(409, "Duplicate", "Duplicate", "The resource already exists")


def not_empty() -> StorageError:
    return StorageError(409, "ResourceNotEmpty", "ResourceNotEmpty", "The bucket you tried to delete is not empty")


def access_denied(message: str) -> StorageError:
    return StorageError(403, "AccessDenied", "Unauthorized", message)


def rls_denied() -> StorageError:
    return access_denied("new row violates row-level security policy")


def invalid_jwt(message: str = "Invalid JWT") -> StorageError:
    return StorageError(400, "InvalidJWT", "InvalidJWT", message)


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, "InvalidSignature", "InvalidSignature", message)


def expired_token() -> StorageError:
    return StorageError(400, "ExpiredToken", "ExpiredToken", "The provided token has expired.")


def entity_too_large() -> StorageError:
    return StorageError(413, "EntityTooLarge", "Payload too large", "The object exceeded the maximum allowed size")


def invalid_mime_type(mime: str) -> StorageError:
    return StorageError(415, "InvalidMimeType", "invalid_mime_type", f"mime type {mime} is not supported")


def invalid_content_type() -> StorageError:
    return StorageError(415, "InvalidMimeType", "invalid_mime_type", "Invalid Content-Type header")


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", "InvalidKey", f"Invalid key: {key}")


def invalid_bucket_name() -> StorageError:
    return StorageError(400, "InvalidBucketName", "Invalid Input", "Bucket name invalid")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", "InvalidRequest", message)


def invalid_range() -> StorageError:
    # Semantic status 400 in the body (as Storage), real HTTP 416 so range-aware clients react.
    return StorageError(400, "InvalidRange", "invalid_range", "invalid range provided", http_status=416)


def not_an_image(message: str = "The object is not an image that can be transformed") -> StorageError:
    return StorageError(415, "InvalidMimeType", "invalid_mime_type", message)


def internal(message: str = "Internal server error") -> StorageError:
    return StorageError(500, "InternalError", "InternalError", message)


def route_not_found(method: str, url: str) -> StorageError:
    return StorageError(404, "InvalidRequest", "Not Found", f"Route {method}:{url} not found", http_status=404)


def database_unavailable() -> StorageError:
    # A real 503 (not Storage's 500 DatabaseError): the request may be retried once the database is back.
    return StorageError(503, "DatabaseError", "DatabaseError", "The database is unavailable, try again later",
                        http_status=503)


def key_conflict(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", "InvalidKey",
                        f"Invalid key: {key} (its path runs through the stored data of another object)")


def key_too_long() -> StorageError:
    return StorageError(400, "InvalidKey", "KeyTooLong",
                        "The object name is too long for the storage backend's key limit")
