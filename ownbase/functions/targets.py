"""The three places a function runs: AWS Lambda, an HTTP URL (streamed), a local command."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx

from ownbase.functions.event import Reply, parse_reply

# Hop-by-hop and per-connection headers are not forwarded (RFC 9110 7.6.1).
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                 "trailer", "transfer-encoding", "upgrade", "host", "content-length"})
# A request's Content-Length is kept: the body streams with its declared length (no chunking).
REQUEST_HOP = HOP - {"content-length"}


class RelayError(Exception):
    """The function could not be reached or answered garbage: the caller gets x-relay-error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FunctionFailed(Exception):
    """The function ran and failed (Lambda's unhandled error, a command's non-zero exit)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def forward_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    # As bytes: header values may be any latin-1 octets, which httpx refuses as str.
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers if k.lower() not in REQUEST_HOP]


class LambdaInvoker:
    """aiobotocore Lambda clients per region, with the process's AWS credentials (the task role).

    The endpoint follows botocore's own variables (AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL),
    e.g. for a VPC endpoint or a local stand-in.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def _client(self, region: str) -> Any:
        async with self._lock:
            if region not in self._clients:
                # Imported here: aiobotocore is slow to import and only Lambda targets need it.
                from aiobotocore.config import AioConfig  # noqa: PLC0415 - see above
                from aiobotocore.session import get_session  # noqa: PLC0415 - see above

                # botocore's 60 s read timeout would cut long functions short, and its retries
                # would run a function twice after a timeout: one attempt, our own deadline.
                config = AioConfig(read_timeout=self.timeout + 10, connect_timeout=10,
                                   retries={"total_max_attempts": 1})
                self._clients[region] = await self._stack.enter_async_context(
                    get_session().create_client("lambda", region_name=region, config=config))
            return self._clients[region]

    async def invoke(self, target: str, region: str, event: dict[str, Any], timeout: float) -> Reply:
        parts = target.split(":")
        region = parts[3] if target.startswith("arn:") and len(parts) > 3 else (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - Lambda targets only

        try:
            client = await self._client(region)
            async with asyncio.timeout(timeout):
                out = await client.invoke(FunctionName=target, InvocationType="RequestResponse",
                                          Payload=json.dumps(event).encode())
                payload = await out["Payload"].read()
        except TimeoutError:
            raise RelayError(504, "WORKER_TIMEOUT", "the function did not answer in time") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Error")
            raise RelayError(502, "BOOT_ERROR", f"Lambda refused the invocation: {code}") from None
        except (BotoCoreError, OSError) as exc:
            raise RelayError(502, "BOOT_ERROR", f"Lambda is unreachable: {type(exc).__name__}") from None
        if out.get("FunctionError"):
            try:
                detail = json.loads(payload).get("errorMessage", "")
            except (ValueError, AttributeError):
                detail = ""
            raise FunctionFailed(f"the function failed: {detail}".rstrip(": "))
        return parse_reply(payload)

    async def close(self) -> None:
        await self._stack.aclose()


class UrlProxy:
    """A streamed reverse proxy to a container of the team's (bodies never buffered whole)."""

    def __init__(self, timeout: float) -> None:
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10), follow_redirects=False)

    async def open(self, base: str, rest: str, method: str, query: str, headers: list[tuple[str, str]],
                   body: AsyncIterator[bytes]) -> httpx.Response:
        url = base.rstrip("/") + ("/" + rest if rest else "") + ("?" + query if query else "")
        request = self.client.build_request(method, url, headers=forward_headers(headers),
                                            content=body if method not in ("GET", "HEAD") else None)
        try:
            return await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise RelayError(504, "WORKER_TIMEOUT", "the function did not answer in time") from None
        except httpx.HTTPError as exc:
            raise RelayError(502, "BOOT_ERROR", f"the function is unreachable: {type(exc).__name__}") from None

    async def close(self) -> None:
        await self.client.aclose()


async def run_command(command: str, event: dict[str, Any], timeout: float, limit: int) -> Reply:
    """Development: the event as one JSON document on stdin, the proxy response on stdout."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(command), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise RelayError(502, "BOOT_ERROR", f"the command could not start: {exc.strerror}") from None
    assert proc.stdin is not None and proc.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            try:
                proc.stdin.write(json.dumps(event).encode())
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # it may answer without reading its input
            out = await proc.stdout.read(limit + 1)
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RelayError(504, "WORKER_TIMEOUT", "the function did not answer in time") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if len(out) > limit:
        raise RelayError(502, "WORKER_LIMIT", "the function's response is too large")
    if code != 0:
        raise FunctionFailed(f"the command exited with status {code}")
    return parse_reply(out)
