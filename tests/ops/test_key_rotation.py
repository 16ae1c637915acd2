"""`ownbase keys rotate`: the next key is in JWKS before it signs, then signs; the old one verifies
its tokens until they expire, then is dropped; derived secrets (DB login, signed URLs) survive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt

from ownbase.keys import build_keyring, generate_private_key_pem
from ownbase.ops.keyrotation import rotate
from ownbase.settings import Settings


def _rotate_cli(srv: Any) -> str:
    out = subprocess.run([sys.executable, "-m", "ownbase", "keys", "rotate", "--data-dir", str(srv.data_dir),
                          "--json"], env=srv.env, capture_output=True, text=True, cwd=str(srv.data_dir.parent))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["action"]


def _jwks_kids(srv: Any) -> set[str]:
    return {k["kid"] for k in httpx.get(srv.url + "/auth/v1/.well-known/jwks.json").json()["keys"]}


def _sign_in(srv: Any, email: str) -> str:
    with srv.client() as c:
        r = c.post("/auth/v1/token?grant_type=password", json={"email": email, "password": "secret-123"})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def _verified_by_jwks(srv: Any, token: str) -> dict[str, Any]:
    client = jwt.PyJWKClient(srv.url + "/auth/v1/.well-known/jwks.json", cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience="authenticated")


def test_rotation_through_restarts(server_factory: Callable[..., Any], tmp_root: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="rot-", dir=tmp_root))
    env = {"OWNBASE_JWT_PRIVATE_KEY": "", "OWNBASE_AUTH_AUTOCONFIRM": "true"}
    srv = server_factory(env, data_dir=data_dir)
    with srv.client() as c:
        assert c.post("/auth/v1/signup", json={"email": "rot@example.com", "password": "secret-123"}).status_code == 200
        c2 = httpx.Client(base_url=srv.url, headers={"apikey": srv.service_key, "Authorization": f"Bearer {srv.service_key}"})
        c2.post("/storage/v1/bucket", json={"id": "rot", "name": "rot"})
        assert c2.post("/storage/v1/object/rot/f.txt", content=b"hello").status_code == 200
        signed = c2.post("/storage/v1/object/sign/rot/f.txt", json={"expiresIn": 3600}).json()["signedURL"]
        c2.close()
    old_token = _sign_in(srv, "rot@example.com")
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    assert _jwks_kids(srv) == {old_kid}

    # Step 1: the next key is published, the current one still signs.
    assert _rotate_cli(srv) == "next-created"
    srv.stop()
    srv = server_factory(env, data_dir=data_dir)
    kids = _jwks_kids(srv)
    assert old_kid in kids and len(kids) == 2
    new_kid = (kids - {old_kid}).pop()
    assert jwt.get_unverified_header(_sign_in(srv, "rot@example.com"))["kid"] == old_kid

    # Step 2: the next key signs; the old one stays in JWKS and verifies its tokens.
    assert _rotate_cli(srv) == "promoted"
    srv.stop()
    srv = server_factory(env, data_dir=data_dir)
    assert _jwks_kids(srv) == {old_kid, new_kid}
    new_token = _sign_in(srv, "rot@example.com")
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert _verified_by_jwks(srv, new_token)["email"] == "rot@example.com"
    assert _verified_by_jwks(srv, old_token)["email"] == "rot@example.com"
    for token in (old_token, new_token):
        r = httpx.get(srv.url + "/auth/v1/user", headers={"apikey": srv.anon_key, "Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    # Derived secrets did not change: a URL signed before the rotation still works, the API's
    # database login (derived password) too.
    assert httpx.get(srv.url + "/storage/v1" + signed).content == b"hello"
    assert httpx.get(srv.url + "/rest/v1/", headers={"apikey": srv.anon_key}).status_code < 500

    # Once the old tokens' lifetime is over, the old key is gone (simulated: its drop time passed).
    prev = data_dir / "keys" / "jwt-previous.json"
    jwks = json.loads(prev.read_text())
    assert [k["kid"] for k in jwks["keys"]] == [old_kid] and jwks["keys"][0]["exp"] > time.time()
    jwks["keys"][0]["exp"] = int(time.time()) - 1
    prev.write_text(json.dumps(jwks))
    srv.stop()
    srv = server_factory(env, data_dir=data_dir)
    assert _jwks_kids(srv) == {new_kid}
    r = httpx.get(srv.url + "/auth/v1/user", headers={"apikey": srv.anon_key, "Authorization": f"Bearer {old_token}"})
    assert r.status_code in (401, 403), r.text
    srv.stop()


def test_retired_key_drops_at_its_time_without_restart(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, auth_access_token_ttl=30)
    first = build_keyring(cfg)
    token = first.sign({"sub": "u", "role": "authenticated", "exp": int(time.time()) + 3600})
    secret = first.derive_secret("db-authenticator")
    rotate(cfg)
    step = rotate(cfg, now=time.time() - 95)  # so that the retired key's time is already over ...
    assert step.retired_until is not None and step.retired_until < time.time() + 5
    ring = build_keyring(cfg)
    assert ring.derive_secret("db-authenticator") == secret
    # ... a key ring that loaded it while it was alive stops trusting it when its time comes.
    prev = json.loads((tmp_path / "keys" / "jwt-previous.json").read_text())
    prev["keys"][0]["exp"] = int(time.time()) + 2
    (tmp_path / "keys" / "jwt-previous.json").write_text(json.dumps(prev))
    ring = build_keyring(cfg)
    assert ring.verify(token, audience=None, leeway=1)["sub"] == "u"
    assert len(ring.jwks()["keys"]) == 2
    object.__setattr__(next(k for k in ring.verification if k.not_after), "not_after", time.time() - 1)
    assert len(ring.jwks()["keys"]) == 1
    try:
        ring.verify(token, audience=None, leeway=1)
        raise AssertionError("the retired key still verifies")
    except Exception as exc:  # noqa: BLE001
        assert type(exc).__name__ == "TokenError"


def test_settings_mode_prints_the_settings(tmp_path: Path) -> None:
    pem = generate_private_key_pem("RS256")
    cfg = Settings(data_dir=tmp_path, jwt_private_key=pem)
    step1 = rotate(cfg)
    assert step1.action == "next-created" and "OWNBASE_JWT_NEXT_PRIVATE_KEY" in step1.settings
    nxt = step1.settings["OWNBASE_JWT_NEXT_PRIVATE_KEY"]
    ring = build_keyring(Settings(data_dir=tmp_path, jwt_private_key=pem, jwt_next_private_key=nxt))
    assert len(ring.jwks()["keys"]) == 2 and ring.signing_kid == build_keyring(cfg).signing_kid
    step2 = rotate(Settings(data_dir=tmp_path, jwt_private_key=pem, jwt_next_private_key=nxt))
    s = step2.settings
    assert s["OWNBASE_JWT_PRIVATE_KEY"] == nxt and s["OWNBASE_JWT_NEXT_PRIVATE_KEY"] == ""
    after = build_keyring(Settings(data_dir=tmp_path, jwt_private_key=nxt,
                                   jwt_previous_public_keys=s["OWNBASE_JWT_PREVIOUS_PUBLIC_KEYS"],
                                   jwt_derivation_key=s["OWNBASE_JWT_DERIVATION_KEY"]))
    old_token = build_keyring(cfg).sign({"sub": "x", "exp": int(time.time()) + 60})
    assert after.verify(old_token)["sub"] == "x"
    assert {k["kid"] for k in after.jwks()["keys"]} == {step2.kid, step2.retired_kid}
    assert after.derive_secret("storage-signed-urls") == build_keyring(cfg).derive_secret("storage-signed-urls")
    assert not any(tmp_path.glob("keys/*"))  # nothing written in settings mode


def test_cli_in_settings_mode_prints_what_to_set(tmp_path: Path) -> None:
    pem = generate_private_key_pem("ES256")
    env = {**os.environ, "OWNBASE_JWT_PRIVATE_KEY": pem}
    out = subprocess.run([sys.executable, "-m", "ownbase", "keys", "rotate", "--data-dir", str(tmp_path)],
                         env=env, capture_output=True, text=True, cwd=str(tmp_path), check=False)
    assert out.returncode == 0, out.stderr
    name, _, value = out.stdout.strip().partition("=")
    assert name == "OWNBASE_JWT_NEXT_PRIVATE_KEY" and "BEGIN PRIVATE KEY" in json.loads(value)
    assert "published in JWKS" in out.stderr
    nxt = json.loads(value)
    ring = build_keyring(Settings(data_dir=tmp_path, jwt_private_key=pem, jwt_next_private_key=nxt))
    assert {k["kty"] for k in ring.jwks()["keys"]} == {"EC"}  # the same key type as the current one
    hs = subprocess.run([sys.executable, "-m", "ownbase", "keys", "rotate", "--data-dir", str(tmp_path)],
                        env={**os.environ, "OWNBASE_JWT_ALGORITHM": "HS256", "OWNBASE_JWT_SECRET": "x" * 40},
                        capture_output=True, text=True, cwd=str(tmp_path), check=False)
    assert hs.returncode == 1 and "HS256" in hs.stderr
