"""Bridge pieces without servers: routing, fallback decisions, credential swapping, counters."""

from __future__ import annotations

import json

import jwt
import pytest

from ownbase.bridge.forward import Credentials
from ownbase.bridge.proxy import _is_upload, object_of, wants_fallback
from ownbase.bridge.routing import RoutingError, bucket_of, load_routes
from ownbase.bridge.stats import MAX_KEYS, Stats
from ownbase.bridge.status import render
from ownbase.keys import build_keyring, generate_private_key_pem
from ownbase.settings import Settings


def settings(**kw: object) -> Settings:
    return Settings(bridge_url="http://up.example", **kw)  # type: ignore[arg-type]


def test_service_table_and_bucket_routing(tmp_path) -> None:
    file = tmp_path / "routes.txt"
    file.write_text("# moved\ntable archive local\nbucket photos fallback\ntable orders local\n")
    routes = load_routes(settings(bridge_rest="fallback", bridge_tables=["orders=upstream", "app.items=local"],
                                  bridge_buckets=["avatars=local"], bridge_routes_file=str(file)))
    r = routes.resolve
    assert r("/rest/v1/orders", {}).mode == "upstream"  # the settings list wins over the file
    assert r("/rest/v1/archive", {}).mode == "local"
    assert r("/rest/v1/items", {"accept-profile": "app"}).mode == "local"
    assert r("/rest/v1/items", {}).mode == "fallback"
    assert r("/rest/v1/rpc/fn", {}).resource == "rpc/fn"
    assert r("/storage/v1/object/public/avatars/a/b.png", {}).mode == "local"
    assert r("/storage/v1/object/sign/photos/x.png", {}).mode == "fallback"
    assert r("/storage/v1/object/docs/x", {}).mode == "upstream"
    assert r("/auth/v1/token", {}).service == "auth" and r("/health", {}) is None and r("/db/v1/x", {}) is None
    assert r("/realtime/v1/websocket", {}).service == "realtime"


def test_bad_routes_file_is_a_clear_error(tmp_path) -> None:
    file = tmp_path / "routes.txt"
    file.write_text("table orders sideways\n")
    with pytest.raises(RoutingError, match="routes.txt:1"):
        load_routes(settings(bridge_routes_file=str(file)))


def test_paths_to_buckets_and_objects() -> None:
    assert bucket_of("bucket/avatars") == "avatars"
    assert bucket_of("object/list/avatars") == "avatars"
    assert bucket_of("object/upload/sign/avatars/a.png") == "avatars"
    assert bucket_of("object/move") == "" and bucket_of("") == ""
    assert bucket_of("render/image/public/photos/a.png") == "photos"
    assert object_of("/storage/v1/object/public/docs/a/b.txt") == ("docs", "a/b.txt")
    assert object_of("/storage/v1/object/docs/a.txt") == ("docs", "a.txt")
    assert object_of("/storage/v1/object/info/docs/a.txt") is None
    assert object_of("/storage/v1/object/public/docs/") is None
    assert _is_upload("POST", "/storage/v1/object/docs/a.txt")
    assert not _is_upload("POST", "/storage/v1/object/list/docs")
    assert not _is_upload("GET", "/storage/v1/object/docs/a.txt")


def test_what_counts_as_not_here_yet() -> None:
    body = lambda **kw: json.dumps(kw).encode()  # noqa: E731
    assert wants_fallback("rest", 404, body(code="PGRST205"))
    assert wants_fallback("rest", 404, body(code="42P01"))
    assert not wants_fallback("rest", 400, body(code="22P02"))  # bad input is the same on both sides
    assert not wants_fallback("rest", 403, body(code="42501"))
    assert wants_fallback("storage", 400, body(statusCode="404", error="not_found"))
    assert not wants_fallback("storage", 400, body(statusCode="403"))
    assert wants_fallback("auth", 400, body(error_code="refresh_token_not_found"))
    assert not wants_fallback("auth", 400, body(error_code="validation_failed"))
    assert wants_fallback("rest", 500, b"not json")
    assert not wants_fallback("rest", 404, b"\xff\xfe")


def test_keys_swapped_and_own_tokens_resigned() -> None:
    local = build_keyring(Settings(jwt_private_key=generate_private_key_pem("RS256")))
    creds = Credentials(settings(bridge_anon_key="UP-ANON", bridge_service_key="UP-SERVICE",
                                 bridge_jwt_secret="s3cret" * 6), local)
    assert creds.token(local.anon_key) == "UP-ANON" and creds.token(local.service_role_key) == "UP-SERVICE"
    user = local.sign({"sub": "u1", "role": "authenticated", "exp": 4102444800})
    resigned = creds.token(user)
    assert jwt.decode(resigned, "s3cret" * 6, algorithms=["HS256"])["sub"] == "u1"
    foreign = jwt.encode({"sub": "x", "exp": 4102444800}, "other", algorithm="HS256")
    assert creds.token(foreign) == foreign  # not ours: the upstream decides
    assert creds.token(user[:-2] + "xx") == user[:-2] + "xx"  # forged: passed on, refused there
    assert creds.query(f"vsn=1.0.0&apikey={local.anon_key}") == "vsn=1.0.0&apikey=UP-ANON"
    headers = dict(creds.headers([(b"host", b"me"), (b"apikey", local.anon_key.encode()),
                                  (b"authorization", f"Bearer {user}".encode())]))
    assert "host" not in headers and headers["apikey"] == "UP-ANON" and headers["authorization"] != f"Bearer {user}"


def test_counters_stay_bounded() -> None:
    stats = Stats()
    for n in range(MAX_KEYS + 500):
        stats.add("rest", f"t{n}", "local")
    assert len(stats.pending) <= MAX_KEYS + 1
    assert sum(stats.pending.values()) == MAX_KEYS + 500


def test_status_render() -> None:
    text = render({"window_minutes": 60, "mirror_queue": {"pending": 2, "rejected": 0}, "routes": [
        {"service": "rest", "resource": "orders", "local": 1, "upstream": 5, "fallback": 0, "lazy_copy": 0,
         "upstream_error": 1, "upstream_error_rate": 0.2, "mirrored": 0, "mirror_pending": 2, "mirror_rejected": 0}]})
    assert "2 pending" in text and "orders" in text and "0.2" in text
