"""The API Gateway HTTP API (payload 2.0) event a function gets, and the proxy response it returns.

Lambda targets and local commands share this format, so one handler runs in both places.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml",
              "application/javascript")


class BadResponse(ValueError):
    """The function's answer is not in the proxy format (a relay error, not the function's own)."""


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def build_event(*, name: str, method: str, path: str, query: str, headers: list[tuple[str, str]],
                body: bytes, source_ip: str, claims: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in headers:
        key = key.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    ctype = merged.get("content-type", "")
    is_text = ctype.startswith(TEXT_TYPES)
    try:
        text = body.decode() if is_text else None
    except UnicodeDecodeError:
        text = None
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": merged,
        "requestContext": {
            "accountId": "ownbase", "apiId": "ownbase", "domainName": merged.get("host", ""),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": merged.get("user-agent", "")},
            "requestId": uuid.uuid4().hex, "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "pathParameters": {"name": name},
        "isBase64Encoded": text is None and bool(body),
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


def parse_reply(payload: bytes) -> Reply:
    """Lambda's proxy response; like API Gateway, a JSON value without statusCode is a 200 body."""
    try:
        data = json.loads(payload) if payload.strip() else None
    except ValueError:
        raise BadResponse("the function's response is not JSON") from None
    if not (isinstance(data, dict) and "statusCode" in data):
        return Reply(200, [("content-type", "application/json")], json.dumps(data).encode())
    status = data.get("statusCode")
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResponse("statusCode must be an integer HTTP status")
    headers: list[tuple[str, str]] = []
    for key, value in (data.get("headers") or {}).items():
        headers.append((str(key).lower(), str(value)))
    for key, values in (data.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(key).lower(), str(value)))
    for cookie in data.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    body = data.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raw = json.dumps(body).encode()
    elif data.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadResponse("body is not valid base64") from None
    else:
        raw = body.encode()
    return Reply(status, headers, raw)
