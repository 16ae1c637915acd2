"""Bounded fuzz of the dashboard's JSON and query endpoints with a valid session: never a 5xx."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerHandle

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=12)
NAMES = st.sampled_from(["", "x", "id", "posts", "\x00", 'a"b', "users", "a" * 70]) | st.text(max_size=20)
SPEC = st.fixed_dictionaries({}, optional={
    "schema": NAMES, "table": NAMES, "name": NAMES, "action": st.sampled_from(["add_column", "drop_column", "set_type",
    "set_default", "add_index", "rename", "bogus"]) | st.text(max_size=8), "column": JSON | NAMES, "columns": JSON,
    "values": JSON, "key": JSON, "keys": JSON, "template": st.text(max_size=16), "roles": JSON, "command": JSON,
    "default": JSON, "type": NAMES, "to": NAMES, "enabled": JSON, "preview": st.just(True), "references": JSON})
POSTS = ["/dashboard/api/ddl/create", "/dashboard/api/ddl/alter", "/dashboard/api/ddl/policy", "/dashboard/api/ddl/rls",
         "/dashboard/api/rows/insert", "/dashboard/api/rows/update", "/dashboard/api/rows/delete",
         "/dashboard/api/snippets"]

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


def test_fuzz_json_endpoints(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in

    @FUZZ
    @given(path=st.sampled_from(POSTS), body=SPEC | JSON)
    def check(path: str, body: object) -> None:
        r = client.post(path, json=body, headers={"x-csrf-token": token})
        assert r.status_code < 500, (path, body, r.text[:300])

    check()


def test_fuzz_reads_and_sql(dash: ServerHandle, signed_in: tuple[httpx.Client, str]) -> None:
    client, token = signed_in
    client.post("/dashboard/api/sql", headers={"x-csrf-token": token}, json={
        "sql": "create table if not exists public.fuzz_dash (id int primary key, j jsonb, t text[], at timestamptz)"})

    @FUZZ
    @given(filt=st.text(max_size=40), order=st.text(max_size=12), limit=st.text(max_size=5),
           sql=st.text(max_size=60), explain=st.booleans())
    def check(filt: str, order: str, limit: str, sql: str, explain: bool) -> None:
        r = client.get("/dashboard/api/rows", params={"schema": "public", "table": "fuzz_dash", "filter": filt,
                                                      "order": order, "limit": limit or "5"})
        assert r.status_code < 500, (filt, order, limit, r.text[:300])
        r = client.post("/dashboard/api/sql", json={"sql": sql, "explain": explain}, headers={"x-csrf-token": token})
        assert r.status_code < 500, (sql, r.text[:300])
        r = client.get("/dashboard/api/logs", params={"q": sql[:20], "min_status": limit, "slow_ms": limit})
        assert r.status_code < 500, r.text[:300]

    check()


def test_fuzz_login_form(dash: ServerHandle) -> None:
    @FUZZ
    @given(email=st.text(max_size=300) | st.just("a\x00@b.c"), password=st.text(max_size=300),
           code=st.text(max_size=12))
    def check(email: str, password: str, code: str) -> None:
        r = httpx.post(dash.url + "/dashboard/login", data={"email": email, "password": password, "code": code})
        assert r.status_code in (401, 429), (email, password, r.status_code, r.text[:200])

    check()
