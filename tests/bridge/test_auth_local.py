"""Auth moved first: tokens ownbase issues reach upstream data re-signed with the project's secret."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.bridge.conftest import PASSWORD, SHARED_SECRET, supa
from tests.conftest import sql


@pytest.fixture(scope="module")
def bridge(bridge_factory):
    return bridge_factory({"OWNBASE_BRIDGE_AUTH": "local", "OWNBASE_BRIDGE_REST": "upstream",
                           "OWNBASE_BRIDGE_STORAGE": "local", "OWNBASE_BRIDGE_REALTIME": "local",
                           "OWNBASE_AUTH_AUTOCONFIRM": "true", "OWNBASE_BRIDGE_JWT_SECRET": SHARED_SECRET})


def test_local_user_reads_its_upstream_rows(bridge, upstream):
    email = f"local-{uuid.uuid4().hex[:8]}@example.com"
    client = supa(bridge)
    user = client.auth.sign_up({"email": email, "password": PASSWORD}).user
    token = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session.access_token
    # auth is local: the upstream never heard of this user
    assert not sql(upstream.handle, "select 1 from auth.users where email = $1", email)
    sql(upstream.handle, "insert into public.notes values ($1::uuid, 'mine'), (gen_random_uuid(), 'theirs')", user.id)
    headers = {"apikey": bridge.anon_key, "Authorization": f"Bearer {token}"}
    r = httpx.get(f"{bridge.url}/rest/v1/notes?select=body", headers=headers)
    assert r.status_code == 200 and r.json() == [{"body": "mine"}]  # RLS upstream saw the same user id
    # the same token sent to the upstream directly is refused: the bridge did the re-signing
    r = httpx.get(f"{upstream.handle.url}/rest/v1/notes", headers={"apikey": upstream.handle.anon_key,
                                                                    "Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    # a forged token is not laundered into a valid upstream one
    r = httpx.get(f"{bridge.url}/rest/v1/notes", headers={**headers, "Authorization": f"Bearer {token[:-3]}xyz"})
    assert r.status_code == 401


async def test_realtime_local_is_not_relayed(bridge, upstream):
    from supabase import acreate_client

    from tests.realtime.conftest import Inbox, subscribed

    here_a = await acreate_client(bridge.url, bridge.anon_key)
    here_b = await acreate_client(bridge.url, bridge.anon_key)
    there = await acreate_client(upstream.handle.url, upstream.handle.anon_key)
    name = "room-" + uuid.uuid4().hex[:8]
    a, b, c = here_a.channel(name), here_b.channel(name), there.channel(name)
    got_here, got_there = Inbox(), Inbox()
    b.on_broadcast("chat", got_here)
    c.on_broadcast("chat", got_there)
    for channel in (a, b, c):
        await subscribed(channel)
    await a.send_broadcast("chat", {"text": "local only"})
    assert (await got_here.wait(1))[0]["payload"] == {"text": "local only"}
    assert await got_there.quiet(1.0) == []
    for client in (here_a, here_b, there):
        await client.realtime.close()
