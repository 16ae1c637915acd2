"""/metrics: Prometheus text, counts that move, refused without the token, off by default."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ownbase.embedded import free_port

TOKEN = "metrics-token-for-tests"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in parsed.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


def test_metrics_behind_token(server_factory: Callable[..., Any]) -> None:
    srv = server_factory({"OWNBASE_METRICS_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(srv.url + "/metrics").status_code == 401
    assert httpx.get(srv.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(srv.url + "/metrics", headers={"apikey": srv.service_key,
                                                    "Authorization": f"Bearer {srv.service_key}"}).status_code == 401
    before = samples(httpx.get(srv.url + "/metrics", headers=auth).text)
    with srv.client() as c:
        for _ in range(3):
            assert c.get("/auth/v1/settings").status_code == 200
        assert c.get("/rest/v1/no_such_table").status_code == 404
        c.post("/auth/v1/signup", json={"email": "metrics@example.com", "password": "secret-123"})
    with srv.client(key=srv.service_key) as c:
        c.post("/storage/v1/bucket", json={"id": "metrics", "name": "metrics"})
        r = c.post("/storage/v1/object/metrics/a.bin", content=b"x" * 1234,
                   headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    assert httpx.get(srv.url + "/auth/v1/user").status_code == 401  # no apikey: the gateway's 401, counted too
    r = httpx.get(srv.url + "/metrics", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)
    route = "/auth/v1/settings"
    assert value(after, "ownbase_http_requests_total", service="auth", route=route, status="200") \
        - value(before, "ownbase_http_requests_total", service="auth", route=route, status="200") == 3
    assert value(after, "ownbase_http_requests_total", service="auth", status="401") >= 1
    assert value(after, "ownbase_http_requests_total", service="rest", route="/rest/v1/{relation}",
                 status="404") >= 1  # a mounted route's full template, not the table's name
    assert value(after, "ownbase_http_request_duration_seconds_count", service="auth", route=route) >= 3
    assert value(after, "ownbase_db_pool_max_connections", pool="api") >= 1
    assert ("ownbase_realtime_sockets", ()) in after
    assert value(after, "ownbase_storage_bytes", bucket="metrics") == 1234
    assert value(after, "ownbase_mail_total", backend="console", status="sent") >= 1
    # Unknown paths share one label: no label per URL.
    httpx.get(srv.url + "/nope/" + "x" * 20)
    text = httpx.get(srv.url + "/metrics", headers=auth).text
    assert "x" * 20 not in text and 'route="unmatched"' in text


def test_metrics_off_by_default(server: Any) -> None:
    assert httpx.get(server.url + "/metrics").status_code == 404


def test_metrics_port(server_factory: Callable[..., Any]) -> None:
    port = free_port()
    srv = server_factory({"OWNBASE_METRICS_PORT": str(port)})
    assert httpx.get(srv.url + "/metrics").status_code == 404  # not on the public listener
    with srv.client() as c:
        c.get("/auth/v1/settings")
    r = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert r.status_code == 200
    assert value(samples(r.text), "ownbase_http_requests_total", service="auth") >= 1
    assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404
    with socket.create_connection(("127.0.0.1", port)) as s:  # garbage is closed, not crashed on
        s.sendall(b"\x00" * 9000)
        s.recv(10)
    assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200


def test_metrics_fuzz_no_5xx(server_factory: Callable[..., Any]) -> None:
    srv = server_factory({"OWNBASE_METRICS_TOKEN": TOKEN})
    client = httpx.Client(base_url=srv.url, timeout=30)

    @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(method=st.sampled_from(["GET", "POST", "HEAD", "DELETE"]),
           auth=st.one_of(st.none(), st.text(max_size=60), st.just(f"Bearer {TOKEN}")),
           query=st.text(max_size=40))
    def check(method: str, auth: str | None, query: str) -> None:
        headers = {"Authorization": auth} if auth is not None and auth.isascii() and auth.isprintable() else {}
        r = client.request(method, "/metrics", params={"q": query}, headers=headers)
        assert r.status_code < 500, r.text

    check()
    client.close()
