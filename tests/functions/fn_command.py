"""A function run as a local command: the API Gateway v2 event on stdin, the proxy response on stdout."""

import base64
import json
import sys

event = json.load(sys.stdin)
body = event.get("body") or ""
if event.get("isBase64Encoded"):
    body = base64.b64decode(body).decode("latin-1")
if event["rawPath"].endswith("/fail"):
    sys.exit(3)
claims = event["requestContext"].get("authorizer", {}).get("jwt", {}).get("claims", {})
print(json.dumps({"statusCode": 201 if event["requestContext"]["http"]["method"] == "PUT" else 200,
                  "headers": {"content-type": "application/json"},
                  "body": json.dumps({"via": "command", "got": body, "path": event["rawPath"],
                                      "role": claims.get("role"), "query": event["rawQueryString"]})}))
