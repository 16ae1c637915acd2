"""S3 backend (aiobotocore): one private S3 bucket holds every storage bucket under its own key
prefix, unless ``OWNBASE_STORAGE_S3_BUCKET_MAP`` maps a storage bucket to an S3 bucket of its own.

Credentials come from the standard AWS chain (env, profile, ECS/EC2 role). Large objects go up as
a multipart upload in ``PART_SIZE`` parts, so memory stays at one part whatever the size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator
from urllib.parse import quote

from ownbase.settings import Settings
from ownbase.storage.backends.base import BlobNotFound

log = logging.getLogger("ownbase.storage")

PART_SIZE = 8 * 1024 * 1024
MAX_KEY_BYTES = 1024  # S3's limit on an object key (UTF-8)
COPY_OBJECT_MAX = 5 * 1000**3  # S3's single CopyObject limit
COPY_PART_SIZE = 512 * 1024 * 1024


class S3Backend:
    name = "s3"
    leftover_kind = "stale incomplete multipart upload(s)"

    def __init__(self, settings: Settings) -> None:
        if not settings.storage_s3_bucket:
            raise ValueError("OWNBASE_STORAGE_S3_BUCKET is required when OWNBASE_STORAGE_BACKEND=s3")
        self.settings = settings
        self.default_bucket = settings.storage_s3_bucket
        self.prefix = settings.storage_s3_prefix.strip("/")
        self.bucket_map: dict[str, str] = {}
        for pair in settings.storage_s3_bucket_map:
            src, _, dst = pair.partition("=")
            if src and dst:
                self.bucket_map[src.strip()] = dst.strip()
        self._stack = contextlib.AsyncExitStack()
        self.client: Any = None
        self._inflight: set[str] = set()  # multipart uploads this process is writing

    async def start(self) -> None:
        from aiobotocore.config import AioConfig  # noqa: PLC0415 - aiobotocore is slow to import; loaded when the S3 backend starts, not when storage is imported
        from aiobotocore.session import get_session  # noqa: PLC0415 - as above

        s = self.settings
        config = AioConfig(
            s3={"addressing_style": "path" if s.storage_s3_force_path_style else "auto"},
            signature_version="s3v4",  # presigned URLs: SigV4 (required by most AWS regions)
            max_pool_connections=50,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        self.client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3", region_name=s.storage_s3_region, endpoint_url=s.storage_s3_endpoint_url or None,
                config=config,
            )
        )

    async def close(self) -> None:
        await self._stack.aclose()

    def locate(self, bucket: str, key: str) -> tuple[str, str]:
        """(S3 bucket, S3 key) of a blob."""
        mapped = self.bucket_map.get(bucket)
        parts = [self.prefix] if self.prefix else []
        if mapped is None:
            parts.append(bucket)
        parts.append(key)
        return (mapped or self.default_bucket), "/".join(parts)

    def _sse(self) -> dict[str, str]:
        s = self.settings
        if not s.storage_s3_sse:
            return {}
        extra = {"ServerSideEncryption": s.storage_s3_sse}
        if s.storage_s3_sse == "aws:kms" and s.storage_s3_kms_key_id:
            extra["SSEKMSKeyId"] = s.storage_s3_kms_key_id
        return extra

    async def write(self, bucket: str, key: str, chunks: AsyncIterator[bytes], content_type: str) -> str | None:
        s3_bucket, s3_key = self.locate(bucket, key)
        buf: list[bytes] = []
        buffered = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        # One part in flight while the next one fills: network and request body overlap, and
        # memory stays at two parts.
        inflight: asyncio.Task[None] | None = None

        async def send_part(n: int, body: bytes) -> None:
            resp = await self.client.upload_part(
                Bucket=s3_bucket, Key=s3_key, UploadId=upload_id, PartNumber=n, Body=body)
            parts.append({"ETag": resp["ETag"], "PartNumber": n})

        async def flush(body: bytes) -> None:
            nonlocal inflight, upload_id
            if upload_id is None:
                resp = await self.client.create_multipart_upload(
                    Bucket=s3_bucket, Key=s3_key, ContentType=content_type, **self._sse())
                upload_id = resp["UploadId"]
                self._inflight.add(upload_id)
            if inflight is not None:
                await inflight
                inflight = None
            inflight = asyncio.create_task(send_part(len(parts) + 1, body))

        try:
            async for chunk in chunks:
                buf.append(chunk)
                buffered += len(chunk)
                if buffered >= PART_SIZE:
                    body = b"".join(buf)
                    buf, buffered = [], 0
                    await flush(body)
            if upload_id is None:
                resp = await self.client.put_object(Bucket=s3_bucket, Key=s3_key, Body=b"".join(buf),
                                                    ContentType=content_type, **self._sse())
                return str(resp.get("ETag", "")).strip('"') or None
            if buf:
                await flush(b"".join(buf))
            if inflight is not None:
                await inflight
                inflight = None
            parts.sort(key=lambda p: p["PartNumber"])
            done = await self.client.complete_multipart_upload(
                Bucket=s3_bucket, Key=s3_key, UploadId=upload_id, MultipartUpload={"Parts": parts})
            return str(done.get("ETag", "")).strip('"') or None
        except BaseException:
            if inflight is not None:
                inflight.cancel()
                with contextlib.suppress(BaseException):
                    await inflight
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await self.client.abort_multipart_upload(Bucket=s3_bucket, Key=s3_key, UploadId=upload_id)
            raise
        finally:
            self._inflight.discard(upload_id or "")

    def key_fits(self, bucket: str, key: str) -> bool:
        return len(self.locate(bucket, key)[1].encode()) <= MAX_KEY_BYTES

    def _areas(self, bucket: str | None) -> list[tuple[str, str]]:
        """(S3 bucket, key prefix) pairs holding ownbase's blobs (of one storage bucket)."""
        if bucket is not None:
            return [self.locate(bucket, "")]
        own = f"{self.prefix}/" if self.prefix else ""
        areas = [(self.default_bucket, own)]
        areas += [(b, own) for b in sorted(set(self.bucket_map.values())) if b != self.default_bucket]
        return areas

    async def sweep_leftovers(self, older_than: float, bucket: str | None = None) -> int:
        """Abort multipart uploads under ownbase's prefix started more than ``older_than`` seconds
        ago (their writer was killed: a live write aborts its own on failure), never one this
        process is writing. The bucket lifecycle rule AbortIncompleteMultipartUpload is the
        second line (docs/storage.md)."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)
        aborted = 0
        for s3_bucket, prefix in self._areas(bucket):
            try:
                paginator = self.client.get_paginator("list_multipart_uploads")
                async for page in paginator.paginate(Bucket=s3_bucket, Prefix=prefix):
                    for upload in page.get("Uploads", []):
                        if upload["Initiated"] > cutoff or upload["UploadId"] in self._inflight:
                            continue
                        try:
                            await self.client.abort_multipart_upload(
                                Bucket=s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                        except self.client.exceptions.NoSuchUpload:
                            continue  # finished or aborted meanwhile
                        aborted += 1
            except Exception as exc:  # noqa: BLE001 - one unreachable S3 bucket must not stop the others
                log.warning("could not sweep incomplete multipart uploads of %s: %s", s3_bucket, exc)
        return aborted

    async def read(self, bucket: str, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        s3_bucket, s3_key = self.locate(bucket, key)
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            resp = await self.client.get_object(Bucket=s3_bucket, Key=s3_key, **extra)
        except self.client.exceptions.NoSuchKey:
            raise BlobNotFound(key) from None
        body = resp["Body"]
        try:
            async for chunk in body.iter_chunks(256 * 1024):
                yield chunk
        finally:
            body.close()

    async def delete(self, bucket: str, keys: list[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for key in keys:
            b, k = self.locate(bucket, key)
            by_bucket.setdefault(b, []).append(k)
        for b, ks in by_bucket.items():
            for i in range(0, len(ks), 1000):
                await self.client.delete_objects(
                    Bucket=b, Delete={"Objects": [{"Key": k} for k in ks[i:i + 1000]], "Quiet": True})

    async def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        sb, sk = self.locate(src_bucket, src_key)
        db, dk = self.locate(dst_bucket, dst_key)
        source = {"Bucket": sb, "Key": sk}
        try:
            size = int((await self.client.head_object(Bucket=sb, Key=sk))["ContentLength"])
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError 404 for HEAD
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise BlobNotFound(src_key) from None
            raise
        if size <= COPY_OBJECT_MAX:
            await self.client.copy_object(Bucket=db, Key=dk, CopySource=source, **self._sse())
            return
        # CopyObject stops at 5 GB: copy larger objects part by part, server side.
        upload_id = (await self.client.create_multipart_upload(Bucket=db, Key=dk, **self._sse()))["UploadId"]
        self._inflight.add(upload_id)
        try:
            parts = []
            for n, start in enumerate(range(0, size, COPY_PART_SIZE), start=1):
                end = min(start + COPY_PART_SIZE, size) - 1
                resp = await self.client.upload_part_copy(
                    Bucket=db, Key=dk, UploadId=upload_id, PartNumber=n, CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}")
                parts.append({"ETag": resp["CopyPartResult"]["ETag"], "PartNumber": n})
            await self.client.complete_multipart_upload(
                Bucket=db, Key=dk, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                await self.client.abort_multipart_upload(Bucket=db, Key=dk, UploadId=upload_id)
            raise
        finally:
            self._inflight.discard(upload_id)

    async def exists(self, bucket: str, key: str) -> bool:
        b, k = self.locate(bucket, key)
        try:
            await self.client.head_object(Bucket=b, Key=k)
            return True
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError 404 for HEAD
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    async def list_keys(self, bucket: str, prefix: str) -> list[str]:
        b, base = self.locate(bucket, "")
        out: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=b, Prefix=base + prefix):
            for item in page.get("Contents", []):
                out.append(item["Key"][len(base):])
        return sorted(out)

    async def download_url(self, bucket: str, key: str, expires: int, disposition: str | None,
                           content_type: str) -> str | None:
        mode = self.settings.storage_download_redirect
        b, k = self.locate(bucket, key)
        if mode == "cloudfront" and self.settings.storage_cloudfront_domain:
            domain = self.settings.storage_cloudfront_domain.rstrip("/")
            if not domain.startswith("http"):
                domain = "https://" + domain
            return f"{domain}/{quote(k)}"
        if mode == "presigned":
            params: dict[str, Any] = {"Bucket": b, "Key": k, "ResponseContentType": content_type}
            if disposition:
                params["ResponseContentDisposition"] = disposition
            return str(await self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires))
        return None
