"""Bodies nested ~1,000 levels deep (and far deeper) answer a clear 400 PGRST102 on every write and
on RPC, never a 500; bodies within the bound still work; nothing is written."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerHandle, sql
from tests.rest.conftest import raw


def nested(depth: int, kinds: str = "[") -> str:
    opens = "".join("[" if kinds[i % len(kinds)] == "[" else '{"a":' for i in range(depth))
    closes = "".join("]" if kinds[i % len(kinds)] == "[" else "}" for i in reversed(range(depth)))
    return opens + "1" + closes


def _kv_rows(handle: ServerHandle) -> int:
    return sql(handle, "select count(*) from rest_fixture.kv")[0]["count"]


@pytest.mark.parametrize("depth", [1000, 5000, 200_000])
def test_deep_bodies_answer_400(reset: ServerHandle, depth: int) -> None:
    deep = nested(depth, "[{")
    with raw(reset, reset.service_key, Content_Type="application/json") as c:
        answers = [
            c.post("/kv", content='{"k": "x", "note": "n", "v": 1, "meta": ' + deep + "}"),
            c.post("/kv", content="[" + deep + "]"),
            c.patch("/kv?k=eq.x", content='{"note": ' + deep + "}"),
            c.put("/kv?k=eq.x", content='{"k": "x", "note": ' + deep + "}"),
            c.post("/rpc/echo_json", content='{"a": ' + deep + "}"),
            c.post("/rpc/hello", content='{"name": ' + deep + "}"),
        ]
    for r in answers:
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "PGRST102"
        assert r.json()["message"] == "Empty or invalid json"
    assert _kv_rows(reset) == 0


def test_moderate_nesting_still_works(reset: ServerHandle) -> None:
    doc = nested(200, "[{")
    with raw(reset, reset.service_key, Content_Type="application/json") as c:
        r = c.post("/rpc/echo_json", content='{"d":' + doc + "}")
        assert r.status_code == 200, r.text
        assert r.text.replace(" ", "") == '{"d":' + doc + "}"
        r = c.patch("/users?username=eq.alice", content='{"meta": ' + doc + "}",
                    headers={"Prefer": "return=representation"})
        assert r.status_code == 200, r.text
    assert sql(reset, "select jsonb_typeof(meta) t from rest_fixture.users where username = 'alice'")[0]["t"] == "array"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(min_value=1, max_value=20_000), kinds=st.sampled_from(["[", "{", "[{", "{[{"]),
       path=st.sampled_from(["/kv", "/rpc/echo_json", "/kv?k=eq.none"]))
def test_fuzz_nesting_never_5xx(rest_server: ServerHandle, depth: int, kinds: str, path: str) -> None:
    with raw(rest_server, rest_server.service_key, Content_Type="application/json") as c:
        method = "PATCH" if "?" in path else "POST"
        r = c.request(method, path, content='{"k": "fz", "note": ' + nested(depth, kinds) + "}")
    assert r.status_code < 500, r.text
    sql(rest_server, "delete from rest_fixture.kv where k = 'fz'")
