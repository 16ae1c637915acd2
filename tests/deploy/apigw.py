"""An httpx transport that turns each request into an API Gateway HTTP API (payload 2.0) event,
calls a Lambda handler with it and turns the handler's answer back into an httpx response.

With it the official client (supabase-py, which takes an httpx client) drives the Lambda handler
exactly as API Gateway would.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Callable

import httpx

from ownbase.aws.lambda_entry import decode_body


class FakeContext:
    function_name = "ownbase-api"
    memory_limit_in_mb = 1024
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def event_for(request: httpx.Request) -> dict[str, Any]:
    body = request.read()
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers.multi_items():
        name = name.lower()
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        elif name in headers:
            headers[name] += "," + value  # API Gateway joins repeated headers with commas
        else:
            headers[name] = value
    path = request.url.path
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": request.url.query.decode(),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000", "apiId": "testapi", "domainName": request.url.host,
            "domainPrefix": "testapi", "requestId": uuid.uuid4().hex, "routeKey": "ANY /{proxy+}",
            "stage": "$default", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
            "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": headers.get("user-agent", "")},
        },
        "pathParameters": {"proxy": path.lstrip("/")},
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    return event


class LambdaTransport(httpx.BaseTransport):
    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        self.handler = handler
        self.events: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        event = event_for(request)
        self.events.append(event)
        answer = self.handler(event, FakeContext())
        headers = list((answer.get("headers") or {}).items())
        headers += [("set-cookie", c) for c in answer.get("cookies") or []]
        return httpx.Response(answer["statusCode"], headers=headers, content=decode_body(answer),
                              request=request)
