"""Bounded property-based fuzzing of every service's routes: random methods, paths, headers, query
strings and bodies, with and without valid keys, must never get a 5xx.

The server runs on a database of its own, so nothing the fuzzer creates or deletes (with the
service key it may do both) touches other tests' data.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlencode

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerHandle, create_database, sql

BUCKET = "fuzzb"
TABLE = "fuzz_t"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# "<methods> <template>" per service; {s} is one path segment, {p} an object path (may contain '/'),
# {b} a bucket, {t} a table; the methods are the route's own (others are tried too).
ROUTES: dict[str, list[str]] = {
    "auth": ["GET /auth/v1/health", "GET /auth/v1/settings", "GET /auth/v1/.well-known/jwks.json",
             "GET /auth/v1/authorize", "POST /auth/v1/signup", "POST /auth/v1/token", "POST /auth/v1/otp",
             "POST /auth/v1/magiclink", "GET,POST /auth/v1/verify", "POST /auth/v1/recover",
             "POST /auth/v1/resend", "GET,PUT /auth/v1/user", "GET /auth/v1/reauthenticate",
             "POST /auth/v1/logout", "POST /auth/v1/invite", "GET,POST /auth/v1/admin/users",
             "GET,PUT,DELETE /auth/v1/admin/users/{s}", "POST /auth/v1/admin/generate_link",
             "GET,POST /auth/v1/{s}", "GET,POST,DELETE /auth/v1/factors/{s}"],
    "rest": ["GET /rest/v1/", "GET,HEAD,POST,PATCH,PUT,DELETE /rest/v1/{t}", "GET,POST /rest/v1/rpc/{s}",
             "GET,POST /rest/v1/{s}", "GET /rest/v1/{s}/{s}"],
    "tables": ["GET /db/v1", "GET,POST /db/v1/{s}/tables", "GET,DELETE /db/v1/{s}/tables/{s}",
               "GET,HEAD,POST /db/v1/{s}/tables/{s}/rows", "GET,PATCH,DELETE /db/v1/{s}/tables/{s}/rows/{s}",
               "GET /db/v1/{s}"],
    "storage": ["GET,POST /storage/v1/bucket", "GET,PUT,DELETE /storage/v1/bucket/{b}",
                "POST /storage/v1/bucket/{b}/empty", "POST /storage/v1/object/list/{b}",
                "POST /storage/v1/object/list-v2/{b}", "POST /storage/v1/object/move",
                "POST /storage/v1/object/copy", "POST /storage/v1/object/sign/{b}",
                "GET,POST /storage/v1/object/sign/{b}/{p}", "POST,PUT /storage/v1/object/upload/sign/{b}/{p}",
                "GET /storage/v1/object/info/{b}/{p}", "GET /storage/v1/object/info/public/{b}/{p}",
                "GET,HEAD /storage/v1/object/public/{b}/{p}", "GET,HEAD /storage/v1/object/authenticated/{b}/{p}",
                "DELETE /storage/v1/object/{b}", "GET,HEAD,POST,PUT,DELETE /storage/v1/object/{b}/{p}",
                "GET /storage/v1/render/image/{s}/{b}/{p}", "POST /storage/v1/upload/resumable",
                "HEAD,PATCH,DELETE /storage/v1/upload/resumable/{s}",
                "HEAD,PATCH /storage/v1/upload/resumable/sign/{s}", "GET /storage/v1/{s}"],
    "realtime": ["POST /realtime/v1/api/broadcast", "POST /realtime/v1/api/broadcast/{s}/events/{s}"],
}

odd_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
segment = st.one_of(
    st.sampled_from(["x", "..", ".", "%00", "a b", "public", "sign", "1", "-1", "99999999999999999999",
                     str(uuid.UUID(int=0)), "null", "true", ".tmp", "a" * 300]),
    odd_text.filter(lambda s: s not in ("", ".", "..")),
).map(lambda s: quote(s, safe=""))
object_path = st.lists(segment, min_size=1, max_size=4).map("/".join)

QUERY_KEYS = ["select", "order", "limit", "offset", "id", "or", "and", "not.id", "on_conflict", "columns",
              "token", "apikey", "page", "per_page", "grant_type", "type", "redirect_to", "email", "provider",
              "width", "height", "resize", "format", "quality", "download", "scope", "filter"]
query_value = st.one_of(
    st.sampled_from(["eq.1", "in.(1,2)", "id.desc", "*", "id,title", "(id.eq.1,title.is.null)", "-5", "0",
                     "99999999999999999999", "password", "refresh_token", "pkce", "signup", "recovery",
                     "x" * 500, "cs.{a,b}", "like.*a*", "count()", "title->>a", "fts(english).x"]),
    odd_text,
)
query = st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_KEYS), odd_text.filter(bool)), query_value),
                 max_size=5)

KNOWN_KEYS = {"name", "id", "public", "email", "password", "prefix", "limit", "offset", "sortBy", "bucketId",
              "sourceKey", "destinationKey", "destinationBucket", "expiresIn", "paths", "messages", "topic",
              "event", "payload", "data", "columns", "type", "token", "token_hash", "refresh_token",
              "file_size_limit", "allowed_mime_types", "user_metadata", "app_metadata", "title", "tags", "doc",
              "phone", "options", "redirect_to", "email_confirm", "ban_duration", "search", "cursor"}
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text
    | st.sampled_from(["fuzzb", "a.txt", "fuzz_t", "a@example.com", "secret123", "1", "2024-01-01"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.one_of(st.sampled_from(sorted(KNOWN_KEYS)), odd_text), children, max_size=5),
    max_leaves=20,
)


def deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


json_object = st.dictionaries(st.sampled_from(sorted(KNOWN_KEYS)), json_value, max_size=6)

body = st.one_of(
    st.none(),
    json_object.map(lambda v: json.dumps(v).encode()),
    json_object.map(lambda v: json.dumps(v).encode()),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=3000).map(deep),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
)

CONTENT_TYPES = ["application/json", "text/plain", "application/octet-stream", "multipart/form-data",
                 "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "image/png",
                 "application/vnd.pgrst.object+json", "text/csv", "", "garbage/\u00ff"]
EXTRA_HEADERS = {
    "prefer": ["return=representation", "count=exact", "resolution=merge-duplicates", "tx=rollback",
               "missing=default", "max-affected=1", "handling=strict", "return=minimal,count=planned", "x"],
    "range": ["0-1", "5-2", "bytes=0-10", "bytes=-5", "x", "0-"],
    "accept": ["application/json", "text/csv", "application/vnd.pgrst.object+json",
               "application/vnd.pgrst.plan", "application/geo+json", "image/webp", "*/*", "x"],
    "accept-profile": ["public", "auth", "nope", ""],
    "content-profile": ["public", "storage", "nope"],
    "x-upsert": ["true", "false", "x"],
    "tus-resumable": ["1.0.0", "0.1"],
    "upload-length": ["0", "10", "-1", "99999999999999999999", "x"],
    "upload-offset": ["0", "5", "-1", "x"],
    "upload-metadata": ["bucketName Zm9v,objectName YmFy", "x", "bucketName !!!"],
    "x-supabase-api-version": ["2024-01-01", "x"],
    "cache-control": ["no-cache", "max-age=x"],
    "content-disposition": ["attachment", "x"],
}


@pytest.fixture(scope="module")
def fuzz_server(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_root: Path) -> ServerHandle:
    srv = server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "ownbase_fuzz"),
                          "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "storage-fuzz")})
    sql(srv, f"create table public.{TABLE} (id int primary key, title text, tags text[], doc jsonb);"
             f"grant all on public.{TABLE} to anon, authenticated, service_role;"
             f"insert into public.{TABLE} values (1, 'a', '{{a}}', '{{\"a\": 1}}');"
             "notify pgrst, 'reload schema'")
    headers = {"apikey": srv.service_key, "Authorization": f"Bearer {srv.service_key}"}
    r = httpx.post(srv.url + "/storage/v1/bucket", json={"name": BUCKET, "public": True}, headers=headers)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{srv.url}/storage/v1/object/{BUCKET}/a.txt", content=b"hello", headers=headers)
    assert r.status_code == 200, r.text
    return srv


def credentials(srv: ServerHandle) -> st.SearchStrategy[dict[str, str]]:
    user = jwt.encode({"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated",
                       "exp": 4102444800}, srv.env["OWNBASE_JWT_PRIVATE_KEY"], algorithm="RS256")
    keys = st.sampled_from([srv.anon_key, srv.service_key, "garbage", "sb_secret_x", user])
    bearers = st.sampled_from([srv.anon_key, srv.service_key, user, "garbage", "a.b.c", "-"])
    anything = st.fixed_dictionaries({}, optional={"apikey": keys,
                                                   "authorization": bearers.map(lambda t: f"Bearer {t}")})
    # Mostly valid callers, so requests get past the key check into the services.
    valid = st.sampled_from([(srv.service_key, srv.service_key), (srv.anon_key, user), (srv.anon_key, srv.anon_key)])
    return st.one_of(valid.map(lambda kb: {"apikey": kb[0], "authorization": f"Bearer {kb[1]}"}), anything)


def requests_for(service: str, srv: ServerHandle) -> st.SearchStrategy[dict[str, Any]]:
    def fill(template: str, draw: Callable[..., Any]) -> str:
        out = template
        while "{" in out:
            start = out.index("{")
            kind = out[start + 1]
            value = {"s": lambda: draw(segment), "p": lambda: draw(st.one_of(st.just("a.txt"), object_path)),
                     "b": lambda: draw(st.one_of(st.just(BUCKET), segment)),
                     "t": lambda: draw(st.one_of(st.just(TABLE), segment))}[kind]()
            out = out[:start] + value + out[start + 3:]
        return out

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        methods, template = draw(st.sampled_from(ROUTES[service])).split(" ")
        method = draw(st.one_of(st.sampled_from(methods.split(",")), st.sampled_from(METHODS)))
        path = fill(template, draw)
        headers = dict(draw(credentials(srv)))
        content_type = draw(st.one_of(st.sampled_from(["application/json", None]), st.sampled_from(CONTENT_TYPES)))
        if content_type is not None:
            headers["content-type"] = content_type
        for name in draw(st.lists(st.sampled_from(sorted(EXTRA_HEADERS)), max_size=3, unique=True)):
            headers[name] = draw(st.sampled_from(EXTRA_HEADERS[name]))
        return {"method": method, "path": path, "query": draw(query),
                "headers": headers, "body": draw(body)}

    return build()


def send(srv: ServerHandle, req: dict[str, Any]) -> httpx.Response:
    url = srv.url + req["path"]
    if req["query"]:
        url += "?" + urlencode(req["query"])
    headers = {k: v.encode("utf-8") for k, v in req["headers"].items()}  # raw bytes, as a client may send
    return httpx.request(req["method"], url, headers=headers, content=req["body"], timeout=60)


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_no_5xx_on_random_requests(fuzz_server: ServerHandle, service: str) -> None:
    @settings(max_examples=100, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(req=requests_for(service, fuzz_server))
    def check(req: dict[str, Any]) -> None:
        r = send(fuzz_server, req)
        assert r.status_code < 500, (req["method"], req["path"], req["query"], req["headers"],
                                     (req["body"] or b"")[:200], r.status_code, r.text[:500])

    check()
