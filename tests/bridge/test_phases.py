"""Fallback and local routes, per table and per bucket; lazy migration of users and objects; the
mirror queue of the way back; the status command. One bridge, one upstream playing Supabase."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest

from tests.bridge.conftest import PASSWORD, supa, wait_until
from tests.conftest import sql


@pytest.fixture(scope="module")
def bridge(bridge_factory):
    return bridge_factory({
        "OWNBASE_BRIDGE_AUTH": "fallback", "OWNBASE_BRIDGE_REST": "fallback",
        "OWNBASE_BRIDGE_STORAGE": "fallback", "OWNBASE_BRIDGE_REALTIME": "local",
        "OWNBASE_BRIDGE_TABLES": "orders=upstream,profiles=local",
        "OWNBASE_BRIDGE_BUCKETS": "localonly=local",
        "OWNBASE_BRIDGE_WRITES": "mirror",
    })


def status(bridge) -> dict:
    out = subprocess.run([sys.executable, "-m", "ownbase", "bridge", "status", "--json", "--db-url",
                          bridge.env["OWNBASE_DATABASE_URL"]],
                         env=bridge.env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def route(report: dict, service: str, resource: str) -> dict:
    return next((r for r in report["routes"] if r["service"] == service and r["resource"] == resource), {})


def status_when(bridge, check) -> dict:
    """Poll `ownbase bridge status --json` until check(report) holds (counters are flushed every 0.2 s)."""
    def poll() -> dict | None:
        report = status(bridge)
        return report if check(report) else None
    return wait_until(poll)


def test_per_table_routing(bridge):
    client = supa(bridge, bridge.service_key)
    # orders=upstream: the live project's rows although a local table exists
    items = [r["item"] for r in client.table("orders").select("item").execute().data]
    assert "upstream-order" in items and "local-order" not in items
    # profiles=local: only the local rows
    assert [r["name"] for r in client.table("profiles").select("name").execute().data] == ["local-profile"]
    # legacy is not migrated: the service's fallback mode answers from the upstream
    assert client.table("legacy").select("note").execute().data == [{"note": "only upstream"}]
    # a table neither side has: the local 404 would be PGRST205 and so is the upstream's
    r = httpx.get(f"{bridge.url}/rest/v1/nowhere", headers={"apikey": bridge.anon_key})
    assert r.status_code == 404 and r.json()["code"] == "PGRST205"
    report = status_when(bridge, lambda s: route(s, "rest", "legacy").get("fallback"))
    assert route(report, "rest", "legacy")["fallback"] >= 1
    assert route(report, "rest", "profiles")["local"] >= 1 and route(report, "rest", "orders")["upstream"] >= 1


def test_upstream_tokens_are_accepted_locally(bridge, upstream):
    """While auth still issues tokens upstream, local data accepts them (the upstream's JWKS)."""
    email = f"jwks-{uuid.uuid4().hex[:8]}@example.com"
    up = supa(upstream.handle)
    up.auth.sign_up({"email": email, "password": PASSWORD})
    token = up.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session.access_token
    r = httpx.get(f"{bridge.url}/rest/v1/profiles", headers={"apikey": bridge.anon_key,
                                                              "Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = httpx.get(f"{bridge.url}/rest/v1/profiles", headers={"apikey": bridge.anon_key,
                                                              "Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_user_signs_in_through_the_bridge_then_with_the_upstream_stopped(bridge, upstream):
    email = f"lazy-{uuid.uuid4().hex[:8]}@example.com"
    created = supa(upstream.handle).auth.sign_up({"email": email, "password": PASSWORD,
                                                  "options": {"data": {"plan": "gold"}}}).user
    assert not sql(bridge, "select 1 from auth.users where email = $1", email)
    client = supa(bridge)
    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert session.user.id == created.id and session.user.user_metadata.get("plan") == "gold"
    row = sql(bridge, "select id::text, encrypted_password from auth.users where email = $1", email)[0]
    assert row["id"] == created.id and row["encrypted_password"].startswith("$2")
    assert sql(bridge, "select provider from auth.identities where user_id = $1::uuid", created.id)[0][0] == "email"
    # the session is a local one: local /user accepts it
    assert client.auth.get_user(session.access_token).user.email == email
    upstream.stop()
    try:
        again = supa(bridge).auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
        assert again.user.id == created.id
        from supabase_auth.errors import AuthApiError

        with pytest.raises(AuthApiError, match="Invalid login credentials"):
            supa(bridge).auth.sign_in_with_password({"email": email, "password": "wrong password!"})
        # an unknown user with the upstream down: the ordinary invalid-credentials answer, not a 5xx
        r = httpx.post(f"{bridge.url}/auth/v1/token?grant_type=password", headers={"apikey": bridge.anon_key},
                       json={"email": "nobody@example.com", "password": PASSWORD})
        assert r.status_code == 400 and r.json()["error_code"] == "invalid_credentials"
    finally:
        upstream.start()
    report = status_when(bridge, lambda s: route(s, "auth", "*").get("lazy_copy"))
    assert route(report, "auth", "*")["lazy_copy"] >= 1


def test_wrong_password_for_an_upstream_user_creates_nothing(bridge, upstream):
    email = f"nope-{uuid.uuid4().hex[:8]}@example.com"
    supa(upstream.handle).auth.sign_up({"email": email, "password": PASSWORD})
    r = httpx.post(f"{bridge.url}/auth/v1/token?grant_type=password", headers={"apikey": bridge.anon_key},
                   json={"email": email, "password": "not the password"})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_credentials"
    assert not sql(bridge, "select 1 from auth.users where email = $1", email)


def test_object_read_once_is_served_with_the_upstream_stopped(bridge, upstream):
    name = f"doc-{uuid.uuid4().hex[:6]}.txt"
    blob = b"hello from the live project\n" * 50_000  # ~1.4 MB, streamed in chunks
    supa(upstream.handle, upstream.handle.service_key).storage.from_("docs").upload(
        name, blob, {"content-type": "text/plain"})
    public = f"{bridge.url}/storage/v1/object/public/docs/{name}"
    first = httpx.get(public)
    assert first.status_code == 200 and first.content == blob
    wait_until(lambda: sql(bridge, "select 1 from storage.objects where bucket_id = 'docs' and name = $1", name))
    upstream.stop()
    try:
        again = httpx.get(public)
        assert again.status_code == 200 and again.content == blob
        assert again.headers["content-type"].startswith("text/plain")
        # bucket localonly=local: never asks the upstream
        r = httpx.get(f"{bridge.url}/storage/v1/object/public/localonly/missing.txt")
        assert r.status_code in (400, 404)
    finally:
        upstream.start()


def test_local_bucket_never_reads_upstream(bridge, upstream):
    name = f"up-{uuid.uuid4().hex[:6]}.txt"
    supa(upstream.handle, upstream.handle.service_key).storage.from_("localonly").upload(name, b"upstream only")
    r = httpx.get(f"{bridge.url}/storage/v1/object/public/localonly/{name}")
    assert r.status_code in (400, 404)


def test_mirror_queue_drains_after_an_outage_with_nothing_lost(bridge, upstream):
    client = supa(bridge, bridge.service_key)
    up = supa(upstream.handle, upstream.handle.service_key)
    first = str(uuid.uuid4())
    client.table("profiles").insert({"id": first, "name": "mirrored-0"}).execute()
    wait_until(lambda: up.table("profiles").select("id").eq("id", first).execute().data)
    upstream.stop()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    try:
        for n, ident in enumerate(ids, 1):
            client.table("profiles").insert({"id": ident, "name": f"mirrored-{n}"}).execute()
        client.table("profiles").update({"name": "mirrored-1-renamed"}).eq("id", ids[0]).execute()
        supa(bridge, bridge.service_key).storage.from_("docs").upload("mirror/one.txt", b"written during the outage")
        supa(bridge, bridge.service_key).storage.from_("docs").upload("mirror/two words (1).txt", b"encoded name")
        # served locally at once
        assert len(client.table("profiles").select("id").in_("id", ids).execute().data) == 5
        report = status_when(bridge, lambda s: s["mirror_queue"]["pending"] >= 8)
        assert route(report, "rest", "profiles")["mirror_pending"] >= 6
    finally:
        upstream.start()
    wait_until(lambda: status(bridge)["mirror_queue"]["pending"] == 0, timeout=60)
    names = {r["id"]: r["name"] for r in up.table("profiles").select("id,name").in_("id", ids).execute().data}
    assert names == {ids[0]: "mirrored-1-renamed", **{i: f"mirrored-{n}" for n, i in enumerate(ids[1:], 2)}}
    assert up.storage.from_("docs").download("mirror/one.txt") == b"written during the outage"
    assert up.storage.from_("docs").download("mirror/two words (1).txt") == b"encoded name"
    report = status(bridge)
    assert report["mirror_queue"] == {"pending": 0, "rejected": 0}
    assert route(report, "rest", "profiles")["mirrored"] >= 7 - 1
    # the outage is visible: failed replays count as upstream errors of that table
    assert route(report, "rest", "profiles")["upstream_error"] >= 1
    assert route(report, "rest", "profiles")["upstream_error_rate"] > 0


def test_status_text_output(bridge):
    out = subprocess.run([sys.executable, "-m", "ownbase", "bridge", "status", "--db-url",
                          bridge.env["OWNBASE_DATABASE_URL"]], env=bridge.env, capture_output=True, text=True,
                         check=True)
    assert "mirror queue" in out.stdout and "service" in out.stdout


def test_fuzz_no_5xx_through_a_fallback_bridge(bridge):
    from tests.bridge.conftest import fuzz_no_5xx

    fuzz_no_5xx(bridge)


def test_local_failure_in_fallback_is_answered_by_the_upstream(bridge, upstream):
    headers = {"apikey": bridge.anon_key}
    assert httpx.post(f"{upstream.handle.url}/rest/v1/rpc/flaky", headers={"apikey": upstream.handle.anon_key}
                      ).json() == "answered upstream"
    r = httpx.post(f"{bridge.url}/rest/v1/rpc/flaky", headers=headers)
    assert r.status_code == 200 and r.json() == "answered upstream"
    # both sides failing: the local error stands (a 5xx from the local side, not a bridge crash)
    upstream.stop()
    try:
        r = httpx.post(f"{bridge.url}/rest/v1/rpc/flaky", headers=headers)
        assert r.status_code == 500 and r.json()["message"] == "local side broken"
        # migrated data keeps being served locally during the outage
        assert httpx.get(f"{bridge.url}/rest/v1/profiles?select=name&name=eq.local-profile",
                         headers=headers).json() == [{"name": "local-profile"}]
    finally:
        upstream.start()


def test_upstream_killed_mid_download_keeps_no_partial_copy(bridge, upstream):
    import os
    import signal

    name = f"large-{uuid.uuid4().hex[:6]}.bin"
    blob = os.urandom(1024 * 1024) * 24
    supa(upstream.handle, upstream.handle.service_key).storage.from_("docs").upload(name, blob)
    public = f"{bridge.url}/storage/v1/object/public/docs/{name}"
    received = 0
    try:
        with pytest.raises(httpx.HTTPError), httpx.stream("GET", public, timeout=30) as r:
            assert r.status_code == 200
            chunks = r.iter_raw()
            received += len(next(chunks))
            upstream.handle.stop(signal.SIGKILL)
            for chunk in chunks:
                received += len(chunk)
    finally:
        upstream.start()
    assert 0 < received < len(blob)
    assert httpx.get(f"{bridge.url}/health").status_code == 200
    assert not sql(bridge, "select 1 from storage.objects where bucket_id = 'docs' and name = $1", name)
    # read again in full: now it is copied
    assert httpx.get(public, timeout=60).content == blob
    wait_until(lambda: sql(bridge, "select 1 from storage.objects where bucket_id = 'docs' and name = $1", name))


def test_upload_to_a_bucket_not_migrated_goes_upstream(bridge, upstream):
    name = f"new-{uuid.uuid4().hex[:6]}.txt"
    supa(bridge, bridge.service_key).storage.from_("notmoved").upload(name, b"kept where the bucket lives")
    up = supa(upstream.handle, upstream.handle.service_key)
    assert up.storage.from_("notmoved").download(name) == b"kept where the bucket lives"
    assert httpx.get(f"{bridge.url}/storage/v1/object/public/notmoved/{name}").content == b"kept where the bucket lives"


def test_supabase_js_through_the_bridge(bridge, upstream):
    import os
    import shutil
    from pathlib import Path

    node = shutil.which("node")
    js = Path(__file__).resolve().parents[1] / "js"
    if node is None or not (js / "node_modules" / "@supabase" / "supabase-js").exists():
        pytest.fail("node and tests/js/node_modules are required (scripts/test installs them)")
    email = f"js-{uuid.uuid4().hex[:8]}@example.com"
    user = supa(upstream.handle).auth.sign_up({"email": email, "password": PASSWORD}).user
    name = f"js-{uuid.uuid4().hex[:6]}.txt"
    supa(upstream.handle, upstream.handle.service_key).storage.from_("docs").upload(name, b"from supabase-js")
    env = {**os.environ, "OWNBASE_URL": bridge.url, "OWNBASE_ANON_KEY": bridge.anon_key,
           "OWNBASE_SERVICE_KEY": bridge.service_key, "BRIDGE_EMAIL": email, "BRIDGE_PASSWORD": PASSWORD,
           "BRIDGE_USER_ID": user.id, "BRIDGE_OBJECT": name}
    proc = subprocess.run([node, "--test", "--test-reporter=spec", str(js / "bridge.node.mjs")], cwd=js, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert sql(bridge, "select 1 from auth.users where id = $1::uuid", user.id)


def test_client_leaving_mid_download_stops_the_upstream_transfer(bridge, upstream):
    """Once a client is gone nothing pushes back any more: without a stop, the bridge would pull
    (and here copy) the whole object for nobody."""
    import os
    import time

    name = f"left-{uuid.uuid4().hex[:6]}.bin"
    blob = os.urandom(1024 * 1024) * 24
    supa(upstream.handle, upstream.handle.service_key).storage.from_("docs").upload(name, blob)
    public = f"{bridge.url}/storage/v1/object/public/docs/{name}"
    with httpx.stream("GET", public, timeout=30) as r:
        assert r.status_code == 200
        next(r.iter_raw())
    time.sleep(3)  # plenty for 24 MiB over loopback, had the transfer gone on
    assert not sql(bridge, "select 1 from storage.objects where bucket_id = 'docs' and name = $1", name)
    assert httpx.get(f"{bridge.url}/health").status_code == 200
