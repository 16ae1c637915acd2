"""JWTs on /rest/v1 (PostgREST 401 shapes) and the RLS matrix: anon, user A, user B, service role
× select/insert/update/delete, decided by PostgreSQL policies."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from ownbase.keys import generate_private_key_pem
from tests.conftest import sql
from tests.rest.conftest import ALICE, BOB, SCHEMA, raw, supa

LEGACY_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(sub: str = ALICE, ttl: int = 3600) -> dict:
    now = int(time.time())
    return {"sub": sub, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + ttl}


def _get(handle, token: str, path: str = "/notes?select=text"):
    with raw(handle, token) as h:
        return h.get(path)


def _assert_401(r, code: str, message: str | None = None) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["code"] == code and set(body) == {"code", "message", "details", "hint"}
    if message:
        assert body["message"] == message
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_rs256_accepted_and_bad_tokens_rejected(rest_server, mint, jwt_private_key) -> None:
    r = _get(rest_server, mint(ALICE))
    assert r.status_code == 200
    _assert_401(_get(rest_server, mint(ALICE, ttl=-10)), "PGRST303", "JWT expired")
    other = generate_private_key_pem("RS256")
    foreign = jwt.encode(_claims(), other, algorithm="RS256")
    _assert_401(_get(rest_server, foreign), "PGRST301")
    none_token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + "."
    _assert_401(_get(rest_server, none_token), "PGRST301")
    _assert_401(_get(rest_server, "abc.def"), "PGRST301", "Expected 3 parts in JWT; got 2")
    # HS256 signed with the server's RSA *public* key as the secret (key-confusion attack)
    public_pem = serialization.load_pem_private_key(jwt_private_key.encode(), None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = _hs256(public_pem, _claims())
    _assert_401(_get(rest_server, forged), "PGRST301")
    # a legacy HS256 token is refused where no legacy secret is configured
    _assert_401(_get(rest_server, jwt.encode(_claims(), LEGACY_SECRET, algorithm="HS256")), "PGRST301")


def _hs256(secret: bytes, claims: dict) -> str:
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64(claims)
    sig = base64.urlsafe_b64encode(hmac.new(secret, head.encode(), hashlib.sha256).digest()).rstrip(b"=")
    return head + "." + sig.decode()


def test_legacy_hs256_and_rs256_both_accepted(server_factory, rest_server, mint) -> None:
    legacy = server_factory({"OWNBASE_JWT_SECRET": LEGACY_SECRET, "OWNBASE_DB_SCHEMAS": f"{SCHEMA},public"})
    hs = jwt.encode(_claims(ALICE), LEGACY_SECRET, algorithm="HS256")
    r = _get(legacy, hs, "/rpc/whoami")
    assert r.status_code == 200 and r.json() == f"{ALICE}:authenticated"
    r = _get(legacy, mint(BOB), "/rpc/whoami")
    assert r.status_code == 200 and r.json() == f"{BOB}:authenticated"
    _assert_401(_get(legacy, jwt.encode(_claims(ALICE), "wrong-secret-wrong-secret-wrong-secret", algorithm="HS256")),
                "PGRST301")


def test_missing_key_and_unknown_role(rest_server, mint) -> None:
    import httpx

    r = httpx.get(f"{rest_server.url}/rest/v1/posts")
    assert r.status_code == 401 and r.json()["message"] == "No API key found in request"
    # postgres exists but the authenticator cannot switch to it: PostgREST's SET ROLE failure
    r = _get(rest_server, mint(ALICE, role="postgres"))
    assert r.status_code == 403 and r.json()["code"] == "42501"
    r = _get(rest_server, mint(ALICE, role="nobody_by_this_name"))
    assert r.status_code == 401 and r.json()["code"] == "22023"
    # apikey in the query string works like the header (and is not taken for a filter)
    r = httpx.get(f"{rest_server.url}/rest/v1/posts?select=id&apikey={rest_server.anon_key}",
                  headers={"Accept-Profile": SCHEMA})
    assert r.status_code == 200 and len(r.json()) == 3


@pytest.fixture()
def notes(reset, mint):
    a, b = mint(ALICE), mint(BOB)
    sql(reset, f"insert into rest_fixture.notes (owner_id, text) values ('{ALICE}', 'a1'), ('{ALICE}', 'a2'), "
               f"('{BOB}', 'b1')")
    return reset, a, b


def test_rls_select(notes) -> None:
    handle, a, b = notes
    assert supa(handle).table("notes").select("text").execute().data == []
    assert sorted(r["text"] for r in supa(handle, token=a).table("notes").select("text").execute().data) == ["a1", "a2"]
    assert [r["text"] for r in supa(handle, token=b).table("notes").select("text").execute().data] == ["b1"]
    assert len(supa(handle, handle.service_key).table("notes").select("text").execute().data) == 3
    # posts: anon sees published ones only; bob also sees his draft
    assert len(supa(handle).table("posts").select("id").execute().data) == 3
    assert len(supa(handle, token=b).table("posts").select("id").execute().data) == 4


def test_rls_insert(notes) -> None:
    handle, a, _b = notes
    with raw(handle) as h:
        r = h.post("/notes", json={"text": "anon"})
        assert r.status_code == 401 and r.json()["code"] == "42501"
        assert r.headers["www-authenticate"] == "Bearer"
    with raw(handle, a) as h:
        r = h.post("/notes", json={"text": "mine"}, headers={"Prefer": "return=representation"})
        assert r.status_code == 201 and r.json()[0]["owner_id"] == ALICE  # default auth.uid()
        r = h.post("/notes", json={"text": "forged", "owner_id": BOB})
        assert r.status_code == 403 and r.json()["code"] == "42501"
        assert "row-level security" in r.json()["message"]
        r = h.post("/posts", json={"author_id": BOB, "title": "as bob"})
        assert r.status_code == 403
    with raw(handle, handle.service_key) as h:
        r = h.post("/notes", json={"text": "svc", "owner_id": BOB})
        assert r.status_code == 201
    owners = sql(handle, "select owner_id::text, text from rest_fixture.notes order by id")
    assert [(o, t) for o, t in owners][-2:] == [(ALICE, "mine"), (BOB, "svc")]


def test_rls_update_delete(notes) -> None:
    handle, a, b = notes
    with raw(handle, b) as h:
        r = h.patch("/notes?text=eq.a1", json={"text": "hacked"}, headers={"Prefer": "return=representation"})
        assert r.status_code == 200 and r.json() == []
        r = h.delete("/notes?text=eq.a2", headers={"Prefer": "return=representation"})
        assert r.json() == []
        r = h.patch("/notes?text=eq.b1", json={"owner_id": ALICE})  # with check forbids giving it away
        assert r.status_code == 403
        r = h.patch("/posts?id=eq.1", json={"title": "bob was here"}, headers={"Prefer": "return=representation"})
        assert r.json() == []
    with raw(handle) as h:
        r = h.delete("/notes", headers={"Prefer": "return=representation"})
        assert r.json() == []
    with raw(handle, a) as h:
        r = h.patch("/notes?text=eq.a1", json={"text": "edited"}, headers={"Prefer": "return=representation"})
        assert r.json()[0]["text"] == "edited"
        r = h.delete("/notes?text=eq.a2", headers={"Prefer": "count=exact"})
        assert r.status_code == 204 and r.headers["content-range"] == "*/1"
    rows = sql(handle, "select text from rest_fixture.notes order by id")
    assert [r[0] for r in rows] == ["edited", "b1"]
    assert sql(handle, "select title from rest_fixture.posts where id = 1")[0][0] == "Hello world"
    with raw(handle, handle.service_key) as h:
        r = h.delete("/notes", headers={"Prefer": "count=exact"})
        assert r.headers["content-range"] == "*/2"
