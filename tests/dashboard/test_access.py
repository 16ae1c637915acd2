"""Dashboard access: CLI accounts, session cookie, CSRF, login rate limit, no API privileges."""

from __future__ import annotations

import re
from typing import Callable

import httpx
import pyotp
import pytest

from ownbase.dashboard.routes import ROUTES
from tests.conftest import ServerHandle, create_database
from tests.dashboard.conftest import PASSWORD, create_admin, csrf_of, sign_in

PUBLIC = {"/dashboard", "/dashboard/login"}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: {"op": "insert", "kind": "create", "service": "auth",
                                                   "path": "admin/users"}.get(m.group(1), "x"), path)


def test_admin_create_cli_and_duplicate(dash: ServerHandle) -> None:
    out = create_admin(dash, "Dup-Admin@Example.com")
    assert out.returncode == 0, out.stderr
    assert "dup-admin@example.com created" in out.stdout
    again = create_admin(dash, "dup-admin@example.com")
    assert again.returncode == 1 and "exists already" in again.stderr
    short = create_admin(dash, "short@example.com", "abc")
    assert short.returncode == 1 and "at least 8" in short.stderr


def test_fresh_start_prints_first_admin_hint(pg_admin_url: str, server_factory: Callable[..., ServerHandle]) -> None:
    fresh = server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url)})
    assert "ownbase admin create" in fresh.log()
    fresh.stop()


def test_every_route_needs_the_session_cookie(dash: ServerHandle) -> None:
    checked = 0
    with httpx.Client(base_url=dash.url, timeout=30) as client:
        for route in ROUTES:
            path = getattr(route, "path", "")
            if path in PUBLIC or path.startswith("/dashboard/static"):
                continue
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method == "HEAD":
                    continue
                r = client.request(method, _concrete(path), json={})
                assert r.status_code in (401, 303), (method, path, r.status_code, r.text[:200])
                if r.status_code == 303:
                    assert r.headers["location"] == "/dashboard/login"
                checked += 1
        # A forged cookie is no better than none.
        client.cookies.set("ownbase_dashboard", "forged", path="/dashboard")
        assert client.get("/dashboard/api/tables").status_code == 401
    assert checked >= 15


def test_cookie_flags_and_logout(dash: ServerHandle, admin: str) -> None:
    with httpx.Client(base_url=dash.url, timeout=30) as client:
        r = client.post("/dashboard/login", data={"email": admin, "password": PASSWORD})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
        token = csrf_of(client)
        assert client.get("/dashboard/api/tables").status_code == 200
        assert client.post("/dashboard/logout", headers={"x-csrf-token": token}).status_code == 200
        assert client.get("/dashboard/api/tables").status_code == 401


def test_wrong_password_refused(dash: ServerHandle, admin: str) -> None:
    r = httpx.post(dash.url + "/dashboard/login", data={"email": admin, "password": "wrong password"})
    assert r.status_code == 401 and "ownbase_dashboard" not in r.headers.get("set-cookie", "")
    # An app user (auth.users) is not a dashboard account.
    r = httpx.post(dash.url + "/dashboard/login", data={"email": "nobody@example.com", "password": PASSWORD})
    assert r.status_code == 401


def test_csrf_token_checked(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in
    body = {"sql": "select 1 as one"}
    assert client.post("/dashboard/api/sql", json=body).status_code == 403
    assert client.post("/dashboard/api/sql", json=body, headers={"x-csrf-token": "nope"}).status_code == 403
    cross = client.post("/dashboard/api/sql", json=body,
                        headers={"x-csrf-token": token, "origin": "https://evil.example"})
    assert cross.status_code == 403
    ok = client.post("/dashboard/api/sql", json=body, headers={"x-csrf-token": token})
    assert ok.status_code == 200 and ok.json()["rows"] == [[1]]


def test_login_rate_limited(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_DASHBOARD_LOGIN_PER_WINDOW": "3", "OWNBASE_DASHBOARD_LOGIN_WINDOW": "3600"})
    assert create_admin(srv, "limited@example.com").returncode == 0
    for _ in range(3):
        r = httpx.post(srv.url + "/dashboard/login", data={"email": "limited@example.com", "password": "bad password"})
        assert r.status_code == 401
    r = httpx.post(srv.url + "/dashboard/login", data={"email": "limited@example.com", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    srv.stop()


def test_session_gives_no_api_privileges(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    client, _ = signed_in
    session = client.cookies.get("ownbase_dashboard")
    assert session
    with httpx.Client(base_url=dash.url, timeout=30, cookies={"ownbase_dashboard": session}) as raw:
        for path in ("/rest/v1/", "/auth/v1/admin/users", "/storage/v1/bucket", "/auth/v1/user"):
            r = raw.get(path)
            # Storage answers a missing key as Supabase Storage does: HTTP 400, statusCode "403".
            denied = r.status_code in (401, 403) or (r.status_code == 400 and r.json().get("statusCode") == "403")
            assert denied, (path, r.status_code, r.text[:200])
        r = raw.get("/auth/v1/admin/users", headers={"authorization": f"Bearer {session}"})
        assert r.status_code in (401, 403)


def test_totp_login(dash: ServerHandle) -> None:
    import subprocess
    import sys

    assert create_admin(dash, "totp@example.com").returncode == 0
    out = subprocess.run([sys.executable, "-m", "ownbase", "admin", "totp", "totp@example.com",
                          "--data-dir", str(dash.data_dir)], env=dash.env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    secret = re.search(r"secret=([A-Z2-7]+)", out.stdout).group(1)  # type: ignore[union-attr]
    r = httpx.post(dash.url + "/dashboard/login", data={"email": "totp@example.com", "password": PASSWORD})
    assert r.status_code == 401
    sign_in(dash, "totp@example.com", code=pyotp.TOTP(secret).now())


def test_dashboard_off(server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_DASHBOARD": "off"})
    assert httpx.get(srv.url + "/dashboard/login").status_code == 404
    assert httpx.get(srv.url + "/dashboard/api/tables").status_code == 404
    srv.stop()


@pytest.mark.parametrize("path", ["/dashboard/login"])
def test_login_page_has_no_inline_secrets(dash: ServerHandle, path: str) -> None:
    r = httpx.get(dash.url + path)
    assert r.status_code == 200 and "content-security-policy" in r.headers
    assert dash.service_key not in r.text and dash.anon_key not in r.text


def test_proxy_relays_only_admin_surfaces(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in
    h = {"x-csrf-token": token}
    assert client.get("/dashboard/api/proxy/auth/admin/users").status_code == 200
    assert client.get("/dashboard/api/proxy/rest/").json()["swagger"] == "2.0"
    for method, path in (("POST", "/dashboard/api/proxy/auth/token"), ("GET", "/dashboard/api/proxy/auth/user"),
                         ("GET", "/dashboard/api/proxy/storage/object/b/x.png"),
                         ("GET", "/dashboard/api/proxy/rest/anything"), ("GET", "/dashboard/api/proxy/other/x"),
                         ("GET", "/dashboard/api/proxy/auth/admin/../token")):
        r = client.request(method, path, headers=h, json={})
        assert r.status_code == 404, (method, path, r.status_code)


def test_views_and_filters_in_the_grid(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in
    r = client.post("/dashboard/api/sql", headers={"x-csrf-token": token}, json={"sql": (
        "create table if not exists public.grid_people (id int primary key, name text, age int, tags text[]);"
        " insert into public.grid_people values (1, 'ann', 30, '{a,b}'), (2, 'bob', 17, '{c}'), (3, 'cy', null, '{}')"
        " on conflict do nothing; create or replace view public.grid_adults as"
        " select * from public.grid_people where age >= 18")})
    assert r.status_code == 200, r.text
    rows = client.get("/dashboard/api/rows", params=[("table", "grid_people"), ("filter", "age.gte.18")]).json()
    assert [x["name"] for x in rows["rows"]] == ["ann"] and rows["total"] == 1
    rows = client.get("/dashboard/api/rows", params=[("table", "grid_people"), ("filter", "name.in.(bob,cy)"),
                                                     ("order", "id.desc")]).json()
    assert [x["name"] for x in rows["rows"]] == ["cy", "bob"]
    rows = client.get("/dashboard/api/rows", params=[("table", "grid_people"), ("filter", "age.is.null")]).json()
    assert [x["id"] for x in rows["rows"]] == [3]
    view = client.get("/dashboard/api/rows", params={"table": "grid_adults"}).json()
    assert [x["name"] for x in view["rows"]] == ["ann"]
    bad = client.get("/dashboard/api/rows", params=[("table", "grid_people"), ("filter", "age.gte.old")])
    assert bad.status_code == 400
    up = client.post("/dashboard/api/rows/update", headers={"x-csrf-token": token},
                     json={"table": "grid_people", "key": {"id": 2}, "values": {"tags": "{x,y}", "age": "18"}})
    assert up.json() == {"updated": 1}
    rows = client.get("/dashboard/api/rows", params=[("table", "grid_people"), ("filter", "id.eq.2")]).json()
    assert rows["rows"][0]["tags"] == ["x", "y"] and rows["rows"][0]["age"] == 18


def test_slow_queries_show_a_running_statement(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    import threading

    client, token = signed_in
    sleeper = threading.Thread(target=lambda: client.post(
        "/dashboard/api/sql", headers={"x-csrf-token": token}, json={"sql": "select pg_sleep(4), 'slow-marker'"}))
    sleeper.start()
    try:
        found = []
        for _ in range(40):
            found = [q for q in client.get("/dashboard/api/slow-queries").json()["running"] if "slow-marker" in q["query"]]
            if found:
                break
            threading.Event().wait(0.1)
        assert found and found[0]["seconds"] >= 1
    finally:
        sleeper.join()


def test_table_list_counts_rows(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    import time

    client, token = signed_in
    r = client.post("/dashboard/api/sql", headers={"x-csrf-token": token}, json={
        "sql": "create table public.counted (id int); insert into public.counted select generate_series(1, 7)"})
    assert r.status_code == 200, r.text
    for _ in range(50):  # statistics are flushed about once a second
        found = [t for t in client.get("/dashboard/api/tables").json()["tables"] if t["name"] == "counted"]
        if found and found[0]["estimate"] == 7:
            break
        time.sleep(0.2)
    assert found[0]["estimate"] == 7 and found[0]["exposed"] and not found[0]["rls"]
    info = client.get("/dashboard/api/table", params={"table": "counted"}).json()
    assert info["count"] == 7


def test_users_and_storage_through_the_dashboard(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    import uuid

    client, token = signed_in
    h = {"x-csrf-token": token}
    email = f"dash-user-{uuid.uuid4().hex[:6]}@example.com"
    made = client.post("/dashboard/api/proxy/auth/admin/users", headers=h,
                       json={"email": email, "password": "secret-pass-1", "email_confirm": True})
    assert made.status_code == 200, made.text
    uid = made.json()["id"]
    assert dash.client().post("/auth/v1/token?grant_type=password",
                              json={"email": email, "password": "secret-pass-1"}).status_code == 200
    found = client.get("/dashboard/api/proxy/auth/admin/users", params={"filter": email}).json()["users"]
    assert [u["id"] for u in found] == [uid]
    sessions = client.get("/dashboard/api/user-sessions", params={"id": uid}).json()["sessions"]
    assert len(sessions) == 1
    assert client.post("/dashboard/api/proxy/auth/recover", headers=h, json={"email": email}).status_code == 200
    assert client.request("DELETE", f"/dashboard/api/proxy/auth/admin/users/{uid}", headers=h).status_code == 200
    assert client.get(f"/dashboard/api/proxy/auth/admin/users/{uid}").status_code == 404

    bucket = f"dash-{uuid.uuid4().hex[:6]}"
    assert client.post("/dashboard/api/proxy/storage/bucket", headers=h,
                       json={"name": bucket, "id": bucket, "public": False}).status_code == 200
    up = client.post(f"/dashboard/api/proxy/storage/object/{bucket}/docs/a.txt", content=b"hello",
                     headers={**h, "content-type": "text/plain"})
    assert up.status_code == 200, up.text
    moved = client.post("/dashboard/api/proxy/storage/object/move", headers=h,
                        json={"bucketId": bucket, "sourceKey": "docs/a.txt", "destinationKey": "docs/b.txt"})
    assert moved.status_code == 200, moved.text
    signed = client.post(f"/dashboard/api/proxy/storage/object/sign/{bucket}/docs/b.txt", headers=h,
                         json={"expiresIn": 60}).json()["signedURL"]
    assert httpx.get(dash.url + "/storage/v1" + signed).content == b"hello"
    listed = client.post(f"/dashboard/api/proxy/storage/object/list/{bucket}", headers=h,
                         json={"prefix": "docs/", "limit": 10}).json()
    assert [o["name"] for o in listed] == ["b.txt"]
    gone = client.request("DELETE", f"/dashboard/api/proxy/storage/object/{bucket}", headers=h,
                          json={"prefixes": ["docs/b.txt"]})
    assert gone.status_code == 200
    assert client.post(f"/dashboard/api/proxy/storage/object/list/{bucket}", headers=h,
                       json={"prefix": "docs/"}).json() == []
