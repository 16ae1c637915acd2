"""Key ring: algorithm pinning, JWKS contents, deterministic API keys, rejection matrix."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from ownbase.keys import TokenError, build_keyring, generate_private_key_pem
from ownbase.settings import Settings

PEM = generate_private_key_pem("RS256")
SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def ring(**kw: object):
    return build_keyring(Settings(jwt_private_key=PEM, jwt_secret=SECRET, **kw))  # type: ignore[arg-type]


def test_rs256_and_legacy_hs256_tokens_both_verify() -> None:
    keys = ring()
    exp = int(time.time()) + 60
    rs = keys.sign({"sub": "a", "role": "authenticated", "exp": exp})
    hs = jwt.encode({"sub": "b", "role": "authenticated", "exp": exp}, SECRET, algorithm="HS256")
    assert keys.verify(rs)["sub"] == "a"
    assert keys.verify(hs)["sub"] == "b"
    assert jwt.get_unverified_header(rs)["alg"] == "RS256"


def test_hs256_secret_never_in_jwks() -> None:
    keys = ring()
    body = json.dumps(keys.jwks())
    assert SECRET not in body
    assert [k["kty"] for k in keys.jwks()["keys"]] == ["RSA"]


def test_alg_confusion_rejected() -> None:
    keys = ring()
    public_pem = keys.signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(
        json.dumps({"role": "service_role", "exp": int(time.time()) + 60}).encode()).rstrip(b"=")

    sig = base64.urlsafe_b64encode(hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()).rstrip(b"=")
    forged = (header + b"." + payload + b"." + sig).decode()
    with pytest.raises(TokenError):
        keys.verify(forged)


@pytest.mark.parametrize("case", ["unknown_key", "expired", "alg_none", "garbage", "two_parts"])
def test_rejections(case: str) -> None:
    keys = ring()
    exp = int(time.time()) + 60
    if case == "unknown_key":
        token = jwt.encode({"role": "anon", "exp": exp}, generate_private_key_pem("RS256"), algorithm="RS256")
    elif case == "expired":
        token = keys.sign({"role": "anon", "exp": int(time.time()) - 5})
    elif case == "alg_none":
        token = jwt.encode({"role": "service_role", "exp": exp}, None, algorithm="none")
    elif case == "garbage":
        token = "a.b.c"
    else:
        token = "abc.def"
    with pytest.raises(TokenError) as info:
        keys.verify(token)
    if case == "expired":
        assert info.value.reason == "expired"


def test_api_keys_are_stable_and_carry_roles() -> None:
    a, b = ring(), ring()
    assert a.anon_key == b.anon_key
    assert a.verify(a.anon_key)["role"] == "anon"
    assert a.verify(a.service_role_key)["role"] == "service_role"


def test_es256_selectable() -> None:
    keys = build_keyring(Settings(jwt_private_key=generate_private_key_pem("ES256")))
    assert keys.signing_algorithm == "ES256"
    token = keys.sign({"role": "anon", "exp": int(time.time()) + 60})
    assert keys.verify(token)["role"] == "anon"
    assert keys.jwks()["keys"][0]["kty"] == "EC"


def test_hs256_only_signs_with_secret() -> None:
    keys = build_keyring(Settings(jwt_algorithm="HS256", jwt_secret=SECRET))
    assert keys.signing_algorithm == "HS256"
    assert jwt.decode(keys.anon_key, SECRET, algorithms=["HS256"])["role"] == "anon"
    assert keys.jwks() == {"keys": []}


def test_key_generated_once_in_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = build_keyring(Settings(data_dir=tmp_path))
    b = build_keyring(Settings(data_dir=tmp_path))
    assert a.anon_key == b.anon_key
    assert (tmp_path / "keys" / "jwt-rs256.pem").stat().st_mode & 0o077 == 0
