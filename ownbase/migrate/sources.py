"""Where `migrate files` reads object bytes: the project's Storage API (service key) or its
S3-compatible endpoint (``https://<ref>.supabase.co/storage/v1/s3`` with S3 access keys, where a
storage bucket is an S3 bucket and an object name its key)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, AsyncIterator
from urllib.parse import quote

import httpx

CHUNK = 256 * 1024


@dataclass
class S3Source:
    endpoint: str
    key_id: str
    secret: str
    region: str = "us-east-1"


class ApiReader:
    def __init__(self, url: str, service_key: str) -> None:
        self.client = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=httpx.Timeout(60, connect=15),
                                        headers={"apikey": service_key, "Authorization": f"Bearer {service_key}"})

    async def close(self) -> None:
        await self.client.aclose()

    @contextlib.asynccontextmanager
    async def open(self, bucket: str, name: str) -> AsyncIterator[tuple[str | None, AsyncIterator[bytes], str]]:
        url = f"/storage/v1/object/authenticated/{quote(bucket, safe='')}/{quote(name, safe='/')}"
        async with self.client.stream("GET", url) as resp:
            if resp.status_code != 200:
                await resp.aread()
                yield f"source answered {resp.status_code}", _empty(), ""
                return
            yield None, resp.aiter_bytes(CHUNK), resp.headers.get("content-type", "application/octet-stream")


class S3Reader:
    def __init__(self, source: S3Source) -> None:
        self.source = source
        self._stack = contextlib.AsyncExitStack()
        self.client: Any = None

    async def start(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        self.client = await self._stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=self.source.endpoint, region_name=self.source.region,
            aws_access_key_id=self.source.key_id, aws_secret_access_key=self.source.secret,
            config=AioConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3})))

    async def close(self) -> None:
        await self._stack.aclose()

    @contextlib.asynccontextmanager
    async def open(self, bucket: str, name: str) -> AsyncIterator[tuple[str | None, AsyncIterator[bytes], str]]:
        from botocore.exceptions import ClientError

        try:
            resp = await self.client.get_object(Bucket=bucket, Key=name)
        except ClientError as exc:
            yield f"source S3 answered {exc.response.get('Error', {}).get('Code', '?')}", _empty(), ""
            return
        body = resp["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await body.read(CHUNK):
                yield chunk

        try:
            yield None, chunks(), resp.get("ContentType") or "application/octet-stream"
        finally:
            body.close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
