"""Local stand-ins the function targets talk to.

* ``LambdaStandIn``: the Lambda Invoke REST API (POST /2015-03-31/functions/{name}/invocations)
  that aiobotocore calls, running Python handlers in-process. moto's Lambda executes code only in
  Docker, and this machine has no Docker daemon, so the Invoke API is stood in for; the ownbase side
  (aiobotocore, signing, the payload and error headers) is the real one.
* ``EchoServer``: a team's container: echoes the request, streams a chunked answer.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

Handler = Callable[[dict[str, Any], Any], Any]


def _serve(handler_cls: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class LambdaStandIn:
    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.events: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                parts = self.path.split("?")[0].split("/")
                # /2015-03-31/functions/{name}/invocations
                name = unquote(parts[3]) if len(parts) > 4 else ""
                name = name.rsplit(":", 1)[-1] if name.startswith("arn:") else name
                payload = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"null")
                outer.auth_headers.append(self.headers.get("authorization", ""))
                handler = outer.handlers.get(name)
                if handler is None:
                    body = json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode()
                    self._answer(404, body, {"x-amzn-errortype": "ResourceNotFoundException"})
                    return
                outer.events.append(payload)
                try:
                    result = handler(payload, None)
                    self._answer(200, json.dumps(result).encode(), {})
                except Exception as exc:  # noqa: BLE001 - Lambda reports it as a function error
                    body = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
                    self._answer(200, body, {"x-amz-function-error": "Unhandled"})

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.send_header("x-amz-executed-version", "$LATEST")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = _serve(H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EchoServer:
    def __init__(self) -> None:
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _echo(self) -> None:
                length = int(self.headers.get("content-length", 0) or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/stream"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for i in range(3):
                        chunk = f"data: {i}\n\n".encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                        time.sleep(0.05)
                    self.wfile.write(b"0\r\n\r\n")
                    return
                status = 418 if self.path.startswith("/teapot") else 200
                out = json.dumps({"method": self.command, "path": self.path,
                                  "headers": {k.lower(): v for k, v in self.headers.items()},
                                  "body": base64.b64encode(body).decode()}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.send_header("x-from-function", "yes")
                self.send_header("access-control-allow-origin", "*")
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo

        self.server = _serve(H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
