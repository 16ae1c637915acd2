"""With the database down every service answers 503 in its own error shape (clients retry 503s),
never 500."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Iterator

import asyncpg
import httpx
import pytest

from ownbase.embedded import EmbeddedPostgres
from tests.conftest import ServerHandle, start_server


@pytest.fixture()
def own_pg(tmp_root: Path) -> Iterator[EmbeddedPostgres]:
    emb = EmbeddedPostgres(tmp_root / f"pg-down-{uuid.uuid4().hex[:6]}")
    emb.start()
    yield emb
    emb.stop()


def test_services_answer_503_while_the_database_is_down(own_pg: EmbeddedPostgres, tmp_root: Path) -> None:
    async def table() -> None:
        conn = await asyncpg.connect(own_pg.url())
        await conn.execute("create table public.down_t (id int primary key)")
        await conn.close()

    asyncio.run(table())
    srv: ServerHandle = start_server(tmp_root, {"OWNBASE_DATABASE_URL": own_pg.url(),
                                                "OWNBASE_AUTH_AUTOCONFIRM": "true"})
    try:
        key = {"apikey": srv.anon_key}
        service = {"apikey": srv.service_key, "Authorization": f"Bearer {srv.service_key}"}
        email = f"down-{uuid.uuid4().hex[:8]}@example.com"
        r = httpx.post(srv.url + "/auth/v1/signup", json={"email": email, "password": "secret123"}, headers=key)
        assert r.status_code == 200, r.text
        user = {**key, "Authorization": f"Bearer {r.json()['access_token']}"}
        calls = [
            ("POST", "/auth/v1/token?grant_type=password", key, {"email": email, "password": "secret123"}),
            ("GET", "/auth/v1/user", user, None),
            ("GET", "/auth/v1/admin/users", service, None),
            ("GET", "/storage/v1/bucket", service, None),
            ("POST", "/storage/v1/object/list/nobucket", service, {"prefix": ""}),
            ("GET", "/rest/v1/down_t", service, None),
            ("GET", "/db/v1", user, None),
        ]
        for method, path, headers, body in calls:
            r = httpx.request(method, srv.url + path, headers=headers, json=body, timeout=30)
            assert r.status_code < 500, (path, r.status_code, r.text)

        own_pg.stop()
        for method, path, headers, body in calls:
            r = httpx.request(method, srv.url + path, headers=headers, json=body, timeout=30)
            assert r.status_code == 503, (path, r.status_code, r.text)
            body_json = r.json()
            if path.startswith("/auth/"):
                assert body_json["code"] == 503 and body_json["error_code"] and body_json["msg"]
            elif path.startswith("/storage/"):
                assert body_json["statusCode"] == "503" and body_json["message"]
            else:
                assert body_json["code"].startswith("PGRST") and body_json["message"]
        assert httpx.get(srv.url + "/ready").status_code == 503

    finally:
        srv.stop()
