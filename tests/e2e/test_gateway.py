"""The gateway's API key check (every service, header or query parameter), keyless routes,
secret keys refused from browsers, tokens without exp, and refused role claims."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import httpx
import jwt
import pytest
from supabase import create_client

from tests.conftest import ServerHandle, sql

PUBLISHABLE = "sb_publishable_edgeTestKey0123456789"
SECRET = "sb_secret_edgeTestKey0123456789abcdef"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


@pytest.fixture(scope="module")
def srv(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    handle = server_factory({"OWNBASE_PUBLISHABLE_KEYS": PUBLISHABLE, "OWNBASE_SECRET_KEYS": SECRET,
                             "OWNBASE_AUTH_AUTOCONFIRM": "true"})
    sql(handle, "create table if not exists public.edge_gate (id int primary key);"
                "grant select on public.edge_gate to anon, authenticated, service_role;"
                "insert into public.edge_gate values (1) on conflict do nothing; notify pgrst, 'reload schema'")
    return handle


@pytest.fixture(scope="module")
def mint(srv: ServerHandle) -> Callable[..., str]:
    def make(role: str = "authenticated", exp: int | None = None, **claims: Any) -> str:
        body: dict[str, Any] = {"role": role, "sub": str(uuid.uuid4()), **claims}
        if exp is not None:
            body["exp"] = exp
        return jwt.encode(body, srv.env["OWNBASE_JWT_PRIVATE_KEY"], algorithm="RS256")
    return make


# One guarded route per service, each answered 2xx with a good key and a user token.
GUARDED = [
    ("GET", "/rest/v1/edge_gate?select=id"),
    ("GET", "/auth/v1/user"),
    ("GET", "/storage/v1/bucket"),
    ("GET", "/db/v1"),
    ("POST", "/realtime/v1/api/broadcast"),
]


def _call(srv: ServerHandle, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {"messages": [{"topic": "t", "event": "e", "payload": {}}]} if "broadcast" in path else None
    return httpx.request(method, srv.url + path, headers=headers, json=body, timeout=30)


def _user_token(srv: ServerHandle) -> str:
    email = f"gate-{uuid.uuid4().hex[:8]}@example.com"
    r = httpx.post(srv.url + "/auth/v1/signup", json={"email": email, "password": "secret123"},
                   headers={"apikey": srv.anon_key})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _wait_table(srv: ServerHandle) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if httpx.get(srv.url + "/rest/v1/edge_gate", headers={"apikey": srv.anon_key}).status_code == 200:
            return
        time.sleep(0.2)


@pytest.mark.parametrize("method,path", GUARDED)
def test_apikey_is_required_next_to_a_valid_token(srv: ServerHandle, method: str, path: str) -> None:
    _wait_table(srv)
    token = _user_token(srv)
    bearer = {"Authorization": f"Bearer {token}"}
    ok = _call(srv, method, path, {"apikey": srv.anon_key, **bearer})
    assert ok.status_code < 300, ok.text
    for headers in ({"apikey": "garbage", **bearer}, {"apikey": "sb_publishable_nope", **bearer},
                    {"apikey": token, **bearer}):  # a user's token is not an API key
        r = _call(srv, method, path, headers)
        assert r.status_code == 401, (headers["apikey"][:20], r.text)
        assert "Invalid API key" in r.text
    r = _call(srv, method, path, bearer)
    assert r.status_code == 401 and "No API key found in request" in r.text
    # the apikey query parameter works like the header (publishable keys too)
    sep = "&" if "?" in path else "?"
    r = _call(srv, method, f"{path}{sep}apikey={PUBLISHABLE}", bearer)
    assert r.status_code < 300, r.text
    r = _call(srv, method, f"{path}{sep}apikey=garbage", bearer)
    assert r.status_code == 401


def test_error_shapes_are_the_services(srv: ServerHandle) -> None:
    r = httpx.get(srv.url + "/auth/v1/user", headers={"apikey": "garbage"})
    assert r.json()["msg"] == "Invalid API key" and r.json()["code"] == 401
    r = httpx.get(srv.url + "/rest/v1/edge_gate")
    assert r.json()["code"] == "PGRST302" and r.json()["message"] == "No API key found in request"
    r = httpx.get(srv.url + "/storage/v1/bucket", headers={"apikey": "garbage"})
    assert r.json()["statusCode"] == "401" and r.json()["message"] == "Invalid API key"


def test_keyless_routes_stay_keyless(srv: ServerHandle) -> None:
    assert httpx.get(srv.url + "/auth/v1/.well-known/jwks.json").status_code == 200
    assert httpx.get(srv.url + "/auth/v1/health").status_code == 200
    assert httpx.get(srv.url + "/auth/v1/settings").status_code == 200
    r = httpx.get(srv.url + "/auth/v1/verify?type=signup&token=nope&redirect_to=http://localhost:3000",
                  follow_redirects=False)
    assert r.status_code in (302, 303) and "No API key" not in r.text
    r = httpx.get(srv.url + "/auth/v1/authorize?provider=github")
    assert "API key" not in r.text and r.status_code != 401
    admin = create_client(srv.url, srv.service_key)
    bucket = f"gate-{uuid.uuid4().hex[:8]}"
    admin.storage.create_bucket(bucket, options={"public": True})
    files = admin.storage.from_(bucket)
    files.upload("a.txt", b"public bytes")
    r = httpx.get(f"{srv.url}/storage/v1/object/public/{bucket}/a.txt")
    assert r.status_code == 200 and r.content == b"public bytes"
    assert httpx.get(f"{srv.url}/storage/v1/object/info/public/{bucket}/a.txt").status_code == 200
    signed = files.create_signed_url("a.txt", 60)["signedURL"]
    r = httpx.get(signed)
    assert r.status_code == 200 and r.content == b"public bytes"
    upload = files.create_signed_upload_url("b.txt")
    r = httpx.put(upload["signed_url"], content=b"signed upload", headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert httpx.get(f"{srv.url}/storage/v1/object/public/{bucket}/b.txt").content == b"signed upload"
    # ...but the same paths with other methods are guarded: creating a signed URL needs a key
    r = httpx.post(f"{srv.url}/storage/v1/object/sign/{bucket}/a.txt", json={"expiresIn": 60})
    assert r.status_code == 401 and "No API key" in r.text
    # top-level health is outside every service
    assert httpx.get(srv.url + "/health").status_code == 200


def test_official_client_still_works(srv: ServerHandle) -> None:
    _wait_table(srv)
    client = create_client(srv.url, srv.anon_key)
    assert client.table("edge_gate").select("id").execute().data == [{"id": 1}]
    email = f"gate-{uuid.uuid4().hex[:8]}@example.com"
    client.auth.sign_up({"email": email, "password": "secret123"})
    assert client.auth.get_user().user.email == email


def test_secret_key_refused_from_browsers(srv: ServerHandle) -> None:
    _wait_table(srv)
    plain = {"apikey": SECRET, "Authorization": f"Bearer {SECRET}"}
    r = httpx.get(srv.url + "/rest/v1/edge_gate", headers=plain)
    assert r.status_code == 200 and r.json() == [{"id": 1}]
    assert httpx.get(srv.url + "/auth/v1/admin/users", headers=plain).status_code == 200
    for browser in ({"User-Agent": BROWSER_UA}, {"Origin": "https://app.example.com"}):
        for path in ("/rest/v1/edge_gate", "/auth/v1/admin/users", "/storage/v1/bucket"):
            r = httpx.get(srv.url + path, headers={**plain, **browser})
            assert r.status_code == 401, (path, browser, r.text)
            assert "Forbidden use of secret API key in browser" in r.text
        # a secret key as bearer next to a publishable apikey is refused the same way
        r = httpx.get(srv.url + "/rest/v1/edge_gate",
                      headers={"apikey": PUBLISHABLE, "Authorization": f"Bearer {SECRET}", **browser})
        assert r.status_code == 401
        # publishable keys are meant for browsers
        r = httpx.get(srv.url + "/rest/v1/edge_gate", headers={"apikey": PUBLISHABLE, **browser})
        assert r.status_code == 200


def test_tokens_without_exp_are_accepted(srv: ServerHandle, mint: Callable[..., str]) -> None:
    _wait_table(srv)
    service = mint("service_role")  # e.g. a service key minted by a tool without expiry
    r = httpx.get(srv.url + "/rest/v1/edge_gate", headers={"apikey": service, "Authorization": f"Bearer {service}"})
    assert r.status_code == 200 and r.json() == [{"id": 1}]
    r = httpx.get(srv.url + "/auth/v1/admin/users", headers={"apikey": service, "Authorization": f"Bearer {service}"})
    assert r.status_code == 200
    user = mint("authenticated")
    r = httpx.get(srv.url + "/rest/v1/edge_gate", headers={"apikey": srv.anon_key, "Authorization": f"Bearer {user}"})
    assert r.status_code == 200
    # exp is still checked when present (twice: the second answer comes from the token cache)
    for _ in range(2):
        expired = mint("authenticated", exp=int(time.time()) - 10)
        r = httpx.get(srv.url + "/rest/v1/edge_gate",
                      headers={"apikey": srv.anon_key, "Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and r.json()["code"] == "PGRST303"
    garbage_exp = mint("authenticated", exp="tomorrow")  # type: ignore[arg-type]
    r = httpx.get(srv.url + "/rest/v1/edge_gate",
                  headers={"apikey": srv.anon_key, "Authorization": f"Bearer {garbage_exp}"})
    assert r.status_code == 401
    # tokens ownbase issues always carry exp
    assert isinstance(jwt.decode(_user_token(srv), options={"verify_signature": False}).get("exp"), int)


def test_refused_role_claims_say_what_postgrest_says(srv: ServerHandle, mint: Callable[..., str]) -> None:
    _wait_table(srv)
    authenticator = srv.settings.db_authenticator_role
    for role in ("pg_read_server_files", authenticator, "postgres"):
        token = mint(role, exp=int(time.time()) + 60)
        r = httpx.get(srv.url + "/rest/v1/edge_gate",
                      headers={"apikey": srv.anon_key, "Authorization": f"Bearer {token}"})
        assert r.status_code == 403, (role, r.text)
        assert r.json() == {"code": "42501", "details": None, "hint": None,
                            "message": f'permission denied to set role "{role}"'}
    token = mint("no_such_role_anywhere", exp=int(time.time()) + 60)
    r = httpx.get(srv.url + "/rest/v1/edge_gate", headers={"apikey": srv.anon_key, "Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["code"] == "22023" and r.json()["message"] == 'role "no_such_role_anywhere" does not exist'
