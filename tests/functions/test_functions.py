"""/functions/v1 through supabase-py and supabase-js: Lambda (Invoke API stand-in), an HTTP target,
a local command; JWT required unless public; relay vs function errors; CORS; fuzz without 5xx."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from supabase import create_client
from supabase_functions.errors import FunctionsHttpError, FunctionsRelayError

from ownbase.embedded import free_port
from tests.functions.standins import EchoServer, LambdaStandIn

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"


def hello(event: dict[str, Any], context: Any) -> Any:
    body = event.get("body") or "{}"
    try:
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        data = json.loads(body) if body.strip().startswith("{") else {}
        assert isinstance(data, dict) and isinstance(data.get("status", 200), int)
    except (ValueError, AssertionError):
        return {"statusCode": 400, "body": "bad input"}
    claims = event["requestContext"].get("authorizer", {}).get("jwt", {}).get("claims", {})
    if data.get("status") and 100 <= data["status"] <= 599:
        return {"statusCode": data["status"], "headers": {"content-type": "application/json"},
                "body": json.dumps({"error": "as asked"})}
    return {"statusCode": 200, "headers": {"content-type": "application/json", "x-fn": "hello"},
            "cookies": ["a=1; Path=/"],
            "body": json.dumps({"message": f"Hello {data.get('name', 'world')}", "role": claims.get("role"),
                                "path": event["rawPath"], "query": event["rawQueryString"],
                                "method": event["requestContext"]["http"]["method"]})}


def plain(event: dict[str, Any], context: Any) -> Any:
    return {"just": "json"}


def boom(event: dict[str, Any], context: Any) -> Any:
    raise RuntimeError("kaput")


def garbage(event: dict[str, Any], context: Any) -> Any:
    return {"statusCode": "nope"}


@pytest.fixture(scope="module")
def fn_server(server_factory: Callable[..., Any]) -> Iterator[Any]:
    lam = LambdaStandIn({"hello": hello, "plain": plain, "boom": boom, "garbage": garbage})
    echo = EchoServer()
    functions = {
        "hello": {"lambda": "arn:aws:lambda:eu-west-1:123456789012:function:hello"},
        "plain": {"lambda": "plain", "region": "eu-west-1"},
        "boom": {"lambda": "boom"},
        "garbage": {"lambda": "garbage"},
        "missing-lambda": {"lambda": "nobody"},
        "api": {"url": echo.url},
        "open": {"url": echo.url, "verify_jwt": False},
        "down": {"url": f"http://127.0.0.1:{free_port()}"},
        "dev": {"command": f"{sys.executable} {HERE / 'fn_command.py'}"},
    }
    env = {"OWNBASE_FUNCTIONS": json.dumps(functions), "AWS_ENDPOINT_URL_LAMBDA": lam.url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    srv = server_factory(env)
    srv.extra["lambda"] = lam
    yield srv
    srv.stop()
    lam.close()
    echo.close()


def test_supabase_py_reaches_lambda_url_and_command(fn_server: Any) -> None:
    sb = create_client(fn_server.url, fn_server.anon_key)
    out = sb.functions.invoke("hello", {"body": {"name": "py"}, "responseType": "json"})
    assert out["message"] == "Hello py" and out["role"] == "anon" and out["method"] == "POST"
    event = fn_server.extra["lambda"].events[-1]
    assert event["version"] == "2.0" and event["rawPath"] == "/hello"
    assert event["headers"]["content-type"] == "application/json"
    assert fn_server.extra["lambda"].auth_headers[-1].startswith("AWS4-HMAC-SHA256")  # a signed Invoke
    assert sb.functions.invoke("plain", {"responseType": "json"}) == {"just": "json"}
    echoed = sb.functions.invoke("api/some/where?q=1", {"body": b"\x00\x01bin", "method": "PUT",
                                                        "headers": {"x-custom": "v"}, "responseType": "json"})
    assert echoed["method"] == "PUT" and echoed["path"] == "/some/where?q=1"
    assert base64.b64decode(echoed["body"]) == b"\x00\x01bin" and echoed["headers"]["x-custom"] == "v"
    assert echoed["headers"]["authorization"] == f"Bearer {fn_server.anon_key}"
    dev = sb.functions.invoke("dev/x?y=2", {"body": "hi", "method": "PUT", "responseType": "json"})
    assert dev == {"via": "command", "got": "hi", "path": "/dev/x", "role": "anon", "query": "y=2"}
    with pytest.raises(FunctionsHttpError) as http_err:
        sb.functions.invoke("hello", {"body": {"status": 409}})
    assert http_err.value.status == 409
    with pytest.raises(FunctionsHttpError) as teapot:
        sb.functions.invoke("api/teapot", {"body": {}})
    assert teapot.value.status == 418
    with pytest.raises(FunctionsRelayError):
        sb.functions.invoke("down", {"body": {}})
    with pytest.raises(FunctionsRelayError):
        sb.functions.invoke("garbage", {"body": {}})
    with pytest.raises(FunctionsRelayError):
        sb.functions.invoke("missing-lambda", {"body": {}})
    with pytest.raises(FunctionsHttpError) as failed:
        sb.functions.invoke("boom", {"body": {}})
    assert failed.value.status == 500
    with pytest.raises(FunctionsHttpError) as failed_cmd:
        sb.functions.invoke("dev/fail", {"body": {}})
    assert failed_cmd.value.status == 500
    with pytest.raises(FunctionsHttpError) as unknown:
        sb.functions.invoke("nobody-here", {"body": {}})
    assert unknown.value.status == 404


def test_reply_headers_and_cookies(fn_server: Any) -> None:
    with fn_server.client() as c:
        r = c.post("/functions/v1/hello", json={}, headers={"origin": "https://app.example"})
    assert r.status_code == 200 and r.headers["x-fn"] == "hello" and r.headers["set-cookie"] == "a=1; Path=/"
    assert r.headers["access-control-allow-origin"] == "*"
    with fn_server.client() as c:
        head = c.head("/functions/v1/hello")
        assert head.status_code == 200 and int(head.headers["content-length"]) > 0 and head.content == b""
        assert c.get("/functions/v1/hello").status_code == 200  # the connection is still usable
        r = c.get("/functions/v1/api/x", headers={"origin": "https://app.example"})
    # the function's own ACAO is replaced by the service's, never doubled
    assert r.headers.get_list("access-control-allow-origin") == ["*"] and r.headers["x-from-function"] == "yes"


def test_jwt_required_unless_public(fn_server: Any) -> None:
    base = fn_server.url + "/functions/v1/"
    key = {"apikey": fn_server.anon_key}
    r = httpx.post(base + "api", headers=key)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED_NO_AUTH_HEADER"
    assert "x-relay-error" not in r.headers
    r = httpx.post(base + "api", headers={**key, "Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and r.json()["message"] == "Invalid JWT"
    forged = fn_server.anon_key[:-4] + ("AAAA" if not fn_server.anon_key.endswith("AAAA") else "BBBB")
    assert httpx.post(base + "api", headers={**key, "Authorization": f"Bearer {forged}"}).status_code == 401
    assert httpx.post(base + "open", headers=key).status_code == 200  # public: no JWT needed
    assert httpx.post(base + "api", headers={**key, "Authorization": f"Bearer {fn_server.anon_key}"}).status_code == 200
    assert httpx.post(base + "api").status_code == 401  # the gateway's API key check still applies


def test_preflight_allows_the_functions_headers(fn_server: Any) -> None:
    r = httpx.options(fn_server.url + "/functions/v1/hello", headers={
        "origin": "https://app.example", "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, x-client-info, apikey, content-type, x-my-header"})
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == "*"
    allowed = r.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "x-client-info", "apikey", "content-type", "x-my-header"):
        assert name in allowed
    assert "POST" in r.headers["access-control-allow-methods"]


def test_body_limit_and_timeout(server_factory: Callable[..., Any]) -> None:
    functions = {"dev": {"command": f"{sys.executable} {HERE / 'fn_command.py'}", "public": True},
                 "slow": {"command": f"{sys.executable} -c 'import time; time.sleep(60)'", "public": True},
                 "silent": {"command": f"{sys.executable} -c 'print(1)'", "public": True}}
    srv = server_factory({"OWNBASE_FUNCTIONS": json.dumps(functions),
                          "OWNBASE_FUNCTIONS_MAX_BODY_BYTES": "2048", "OWNBASE_FUNCTIONS_TIMEOUT": "2"})
    with srv.client() as c:
        assert c.post("/functions/v1/dev", content=b"x" * 1000).status_code == 200
        r = c.post("/functions/v1/dev", content=b"x" * 5000)
        assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
        r = c.post("/functions/v1/slow", json={})
        assert r.status_code == 504 and r.headers["x-relay-error"] == "true"
        r = c.post("/functions/v1/silent", json={})  # "1" is JSON without statusCode: a 200 body
        assert r.status_code == 200 and r.json() == 1
    srv.stop()


def test_supabase_js_invoke(fn_server: Any) -> None:
    node = shutil.which("node")
    assert node, "node is required (scripts/test installs it)"
    env = {**os.environ, "OWNBASE_URL": fn_server.url, "OWNBASE_ANON_KEY": fn_server.anon_key,
           "OWNBASE_SERVICE_KEY": fn_server.service_key}
    proc = subprocess.run([node, str(JS_DIR / "functions.node.mjs")], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:] + fn_server.log()
    assert "functions.node.mjs ok" in proc.stdout


def test_fuzz_no_5xx_except_relay(fn_server: Any) -> None:
    client = httpx.Client(base_url=fn_server.url, timeout=60,
                          headers={"apikey": fn_server.anon_key, "Authorization": f"Bearer {fn_server.anon_key}"})
    names = st.sampled_from(["hello", "plain", "api", "open", "dev", "nobody", "x" * 200, "a%2Fb", ".."])

    @hsettings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(name=names, rest=st.text(max_size=30), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
           body=st.binary(max_size=300), ctype=st.sampled_from(["application/json", "text/plain",
                                                               "application/octet-stream", "x/\u00ff"]),
           auth=st.one_of(st.none(), st.text(max_size=40)))
    def check(name: str, rest: str, method: str, body: bytes, ctype: str, auth: str | None) -> None:
        headers: dict[str, Any]
        headers = {"content-type": ctype.encode("latin-1")}
        if auth is not None and auth.isascii() and auth.isprintable():
            headers["authorization"] = auth
        try:
            r = client.request(method, f"/functions/v1/{name}/{rest}", content=body if method != "GET" else None,
                               headers=headers)
        except httpx.InvalidURL:
            return
        # The functions here never fail on their own: any 5xx must be a marked relay error.
        assert r.status_code < 500 or r.headers.get("x-relay-error") == "true", (r.status_code, r.text)

    check()
    client.close()


def test_a_broken_functions_table_stops_start_with_its_name(tmp_root: Path) -> None:
    env = {**os.environ, "OWNBASE_FUNCTIONS": '{"a": {"url": "ftp://x"}}'}
    out = subprocess.run([sys.executable, "-m", "ownbase", "start", "--data-dir", str(tmp_root / "fn-bad"),
                          "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 2 and "OWNBASE_FUNCTIONS" in out.stderr and "url must start" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout and "ownbase is running" not in out.stdout
