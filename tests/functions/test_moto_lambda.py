"""functions.invoke reaching a Lambda function on moto's server (AWS's Lambda API: CreateFunction,
Invoke). moto runs function code only in Docker, which this machine lacks; its Docker-free Lambda
("lambda_simple") answers an Invoke with a queued result, or with the invocation's payload when
none is queued. So the function "echo" returns the API Gateway event ownbase sent, and queued
results stand for a function's proxy responses."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from supabase import create_client
from supabase_functions.errors import FunctionsHttpError, FunctionsRelayError

from ownbase.embedded import free_port

JS_DIR = Path(__file__).resolve().parent.parent / "js"
REGION = "eu-west-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def moto_lambda() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    httpx.post(url + "/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
    iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **CREDS)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("index.mjs", "export const handler = async (event) => event")
    aws = boto3.client("lambda", endpoint_url=url, region_name=REGION, **CREDS)
    for name in ("echo", "answer"):
        aws.create_function(FunctionName=name, Runtime="nodejs20.x", Role=role, Handler="index.handler",
                            Code={"ZipFile": zipped.getvalue()})
    yield url
    server.stop()


def queue(url: str, *results: dict[str, Any]) -> None:
    httpx.post(url + "/moto-api/static/lambda-simple/response", json={
        "region": REGION, "results": [json.dumps(r) for r in results]}).raise_for_status()


@pytest.fixture(scope="module")
def moto_server(server_factory: Callable[..., Any], moto_lambda: str) -> Iterator[Any]:
    functions = {"echo": {"lambda": f"arn:aws:lambda:{REGION}:123456789012:function:echo"},
                 "answer": {"lambda": "answer", "region": REGION}}
    srv = server_factory({"OWNBASE_FUNCTIONS": json.dumps(functions), "AWS_ENDPOINT_URL_LAMBDA": moto_lambda,
                          "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    yield srv
    srv.stop()


def test_supabase_py_through_moto(moto_server: Any, moto_lambda: str) -> None:
    sb = create_client(moto_server.url, moto_server.anon_key)
    event = sb.functions.invoke("echo/deep?x=1", {"body": {"name": "py"}, "responseType": "json"})
    assert event["version"] == "2.0" and event["rawPath"] == "/echo/deep" and event["rawQueryString"] == "x=1"
    assert json.loads(event["body"]) == {"name": "py"} and not event["isBase64Encoded"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["role"] == "anon"
    queue(moto_lambda, {"statusCode": 201, "headers": {"content-type": "application/json", "x-fn": "answer"},
                        "body": json.dumps({"ok": True})})
    r = httpx.post(moto_server.url + "/functions/v1/answer", json={},
                   headers={"apikey": moto_server.anon_key, "Authorization": f"Bearer {moto_server.anon_key}"})
    assert r.status_code == 201 and r.json() == {"ok": True} and r.headers["x-fn"] == "answer"
    queue(moto_lambda, {"statusCode": 403, "body": "no"})
    with pytest.raises(FunctionsHttpError) as denied:
        sb.functions.invoke("answer", {"body": {}})
    assert denied.value.status == 403
    queue(moto_lambda, {"statusCode": "not a status"})
    with pytest.raises(FunctionsRelayError):  # an answer ownbase cannot read: the relay failed
        sb.functions.invoke("answer", {"body": {}})


def test_supabase_js_through_moto(moto_server: Any) -> None:
    node = shutil.which("node")
    assert node, "node is required (scripts/test installs it)"
    env = {**os.environ, "OWNBASE_URL": moto_server.url, "OWNBASE_ANON_KEY": moto_server.anon_key,
           "OWNBASE_SERVICE_KEY": moto_server.service_key}
    proc = subprocess.run([node, str(JS_DIR / "functions_moto.node.mjs")], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and "moto ok" in proc.stdout, proc.stdout + proc.stderr
