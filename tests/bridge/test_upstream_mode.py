"""Upstream mode: every service forwarded verbatim to the live project (day one of a migration)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.bridge.conftest import PASSWORD, supa
from tests.realtime.conftest import Inbox, subscribed


@pytest.fixture(scope="module")
def bridge(bridge_factory):
    return bridge_factory({"OWNBASE_BRIDGE_READ_TIMEOUT": "2"})


def test_rest_reads_and_writes_go_upstream(bridge, upstream):
    client = supa(bridge)
    rows = client.table("orders").select("item").execute().data
    assert {"item": "upstream-order"} in rows and {"item": "local-order"} not in rows
    item = f"via-bridge-{uuid.uuid4().hex[:6]}"
    client.table("orders").insert({"item": item}).execute()
    assert supa(upstream.handle).table("orders").select("item").eq("item", item).execute().data == [{"item": item}]
    # The upstream's own error comes back verbatim (PostgREST shape, status).
    r = httpx.get(f"{bridge.url}/rest/v1/nope", headers={"apikey": bridge.anon_key})
    assert r.status_code == 404 and r.json()["code"] == "PGRST205"


def test_auth_sign_up_and_in_go_upstream(bridge, upstream):
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    client = supa(bridge)
    client.auth.sign_up({"email": email, "password": PASSWORD})
    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert session is not None
    # The token is the upstream's: the upstream itself accepts it.
    r = httpx.get(f"{upstream.handle.url}/auth/v1/user",
                  headers={"apikey": upstream.handle.anon_key, "Authorization": f"Bearer {session.access_token}"})
    assert r.status_code == 200 and r.json()["email"] == email


def test_storage_upload_and_download_stream_through(bridge, upstream):
    name = f"big-{uuid.uuid4().hex[:6]}.bin"
    blob = bytes(range(256)) * 8192  # 2 MiB
    supa(bridge, bridge.service_key).storage.from_("docs").upload(name, blob, {"content-type": "application/octet-stream"})
    assert supa(upstream.handle, upstream.handle.service_key).storage.from_("docs").download(name) == blob
    assert supa(bridge, bridge.service_key).storage.from_("docs").download(name) == blob
    assert httpx.get(f"{bridge.url}/storage/v1/object/public/docs/{name}").content == blob


def test_upstream_slow_is_a_504_and_upstream_down_is_a_502(bridge, upstream):
    r = httpx.post(f"{bridge.url}/rest/v1/rpc/slow", json={"secs": 6}, timeout=30,
                   headers={"apikey": bridge.anon_key})
    assert r.status_code == 504 and r.json()["code"] == "upstream_timeout"
    upstream.stop()
    try:
        r = httpx.get(f"{bridge.url}/rest/v1/orders", headers={"apikey": bridge.anon_key}, timeout=30)
        assert r.status_code == 502 and set(r.json()) >= {"code", "message", "details", "hint"}
        r = httpx.get(f"{bridge.url}/storage/v1/bucket", headers={"apikey": bridge.anon_key}, timeout=30)
        assert r.status_code == 502 and "statusCode" in r.json()
    finally:
        upstream.start()
    assert httpx.get(f"{bridge.url}/rest/v1/orders", headers={"apikey": bridge.anon_key}).status_code == 200


async def test_realtime_broadcast_through_the_bridge(bridge, upstream):
    from supabase import acreate_client

    via_bridge = await acreate_client(bridge.url, bridge.anon_key)
    direct = await acreate_client(upstream.handle.url, upstream.handle.anon_key)
    name = "room-" + uuid.uuid4().hex[:8]
    a, b = via_bridge.channel(name), direct.channel(name)
    got = Inbox()
    b.on_broadcast("chat", got)
    await subscribed(a)
    await subscribed(b)
    await a.send_broadcast("chat", {"text": "through the bridge"})
    items = await got.wait(1)
    assert items[0]["payload"] == {"text": "through the bridge"}
    await via_bridge.realtime.close()
    await direct.realtime.close()


def test_fuzz_no_5xx_through_an_upstream_bridge(bridge):
    from tests.bridge.conftest import fuzz_no_5xx

    fuzz_no_5xx(bridge)
