"""Which bearer tokens GET /auth/v1/user accepts: the RS256 key and a migrated project's HS256
secret; unknown keys, expired, alg none and alg-confusion tokens are refused in GoTrue's shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Callable

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from ownbase.keys import build_keyring, generate_private_key_pem
from ownbase.settings import Settings
from tests.auth.conftest import py_client, unique_email
from tests.conftest import ServerHandle

SECRET = "legacy-supabase-jwt-secret-with-at-least-32-chars"
NEW = {"X-Supabase-Api-Version": "2024-01-01"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _manual(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    sig = _b64(hmac.new(key, signing.encode(), hashlib.sha256).digest()) if key is not None else ""
    return signing + "." + sig


@pytest.fixture(scope="module")
def legacy(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_JWT_SECRET": SECRET})


def _claims(sub: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 600,
            "email": "x@example.com", **over}


def _get(server: ServerHandle, token: str, new: bool = True) -> httpx.Response:
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {token}", **(NEW if new else {})}
    return httpx.get(server.url + "/auth/v1/user", headers=headers)


def test_tokens_accepted_and_rejected(legacy: ServerHandle, jwt_private_key: str) -> None:
    adm = py_client(legacy, legacy.service_key).auth.admin
    email = unique_email("jwt")
    user = adm.create_user({"email": email, "password": "secret123", "email_confirm": True}).user
    # A token of the migrated project (HS256 secret) and one of our RS256 key both work.
    hs = jwt.encode(_claims(user.id), SECRET, algorithm="HS256")
    ok = _get(legacy, hs)
    assert ok.status_code == 200 and ok.json()["email"] == email
    rs = build_keyring(Settings(jwt_private_key=jwt_private_key)).sign(_claims(user.id))
    assert _get(legacy, rs).status_code == 200
    # A key nobody configured.
    stranger = build_keyring(Settings(jwt_private_key=generate_private_key_pem("RS256")))
    bad = _get(legacy, stranger.sign(_claims(user.id)))
    assert bad.status_code == 403 and bad.json()["code"] == "bad_jwt"
    assert bad.headers["x-sb-error-code"] == "bad_jwt"
    # Expired (legacy shape checked too).
    expired = jwt.encode(_claims(user.id, iat=1, exp=2), SECRET, algorithm="HS256")
    old = _get(legacy, expired, new=False)
    assert old.status_code == 403 and old.json()["error_code"] == "bad_jwt" and old.json()["code"] == 403
    assert "expired" in old.json()["msg"]
    # alg none.
    none = _manual({"alg": "none", "typ": "JWT"}, _claims(user.id), None)
    assert _get(legacy, none).status_code == 403
    # HS256 "signed" with the RSA public key as the HMAC secret (alg confusion).
    pub = serialization.load_pem_private_key(jwt_private_key.encode(), None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    confused = _manual({"alg": "HS256", "typ": "JWT"}, _claims(user.id), pub)
    r = _get(legacy, confused)
    assert r.status_code == 403 and r.json()["code"] == "bad_jwt"
    # No bearer at all, and the anon key (no sub).
    none_at_all = httpx.get(legacy.url + "/auth/v1/user", headers={"apikey": legacy.anon_key, **NEW})
    assert none_at_all.status_code == 401 and none_at_all.json()["code"] == "no_authorization"
    anon = _get(legacy, legacy.anon_key)
    assert anon.status_code == 403 and anon.json()["code"] == "bad_jwt"
    # A valid token for a user that no longer exists.
    adm.delete_user(user.id)
    gone = _get(legacy, hs)
    assert gone.status_code == 403 and gone.json()["code"] == "user_not_found"
