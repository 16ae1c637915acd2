"""Calls to OAuth providers: a 10 s timeout (GoTrue's) and a size cap, so a slow or huge answer
from a provider cannot stall a worker or grow its memory."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import httpx

TIMEOUT = 10.0
MAX_RESPONSE = 1024 * 1024


class ProviderError(Exception):
    """The provider could not be reached or answered with an error or garbage."""


async def fetch_json(method: str, url: str, *, headers: dict[str, str] | None = None,
                     data: dict[str, str] | None = None, auth: tuple[str, str] | None = None) -> Any:
    """``method`` ``url`` and return the JSON object it answers (form-encoded answers too: GitHub)."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            async with client.stream(method, url, headers={"accept": "application/json", **(headers or {})},
                                     data=data, auth=auth) as response:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE:
                        raise ProviderError(f"{url}: answer larger than {MAX_RESPONSE} bytes")
                status = response.status_code
                ctype = response.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise ProviderError(f"{url}: {exc}") from None
    text = raw.decode("utf-8", "replace")
    if "application/x-www-form-urlencoded" in ctype:
        value: Any = dict(parse_qsl(text))
    else:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise ProviderError(f"{url}: answered {status} with no JSON") from None
    if status >= 400:
        raise ProviderError(f"{url}: answered {status}: {text[:200]}")
    return value
