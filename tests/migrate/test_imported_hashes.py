"""Users imported with argon2 or Firebase scrypt hashes sign in with their password, and the hash
becomes bcrypt at that moment; malformed or out-of-bounds hashes are simply no match."""

from __future__ import annotations

import uuid

import argon2
import httpx
from argon2 import low_level
from hypothesis import given, settings
from hypothesis import strategies as st
from supabase import ClientOptions, create_client

from ownbase.auth import imported_hashes
from tests.conftest import ServerHandle, sql

# Firebase's published scrypt example (github.com/firebase/scrypt README): password "user1password".
FIREBASE = ("$fbscrypt$v=1,n=14,r=8,p=1,ss=Bw==,"
            "sk=jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
            "$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==")
FIREBASE_PASSWORD = "user1password"


def _argon2(password: str, kind: low_level.Type, time_cost: int = 2) -> str:
    return low_level.hash_secret(password.encode(), b"saltsaltsaltsalt", time_cost=time_cost, memory_cost=1024,
                                 parallelism=1, hash_len=32, type=kind).decode()


def test_firebase_scrypt_vector() -> None:
    assert imported_hashes.check(FIREBASE_PASSWORD, FIREBASE)
    assert not imported_hashes.check(FIREBASE_PASSWORD + "!", FIREBASE)


def test_argon2_kinds_and_bounds() -> None:
    assert imported_hashes.check("pw", argon2.PasswordHasher(time_cost=1, memory_cost=1024).hash("pw"))
    assert imported_hashes.check("pw", _argon2("pw", low_level.Type.I))
    assert not imported_hashes.check("px", _argon2("pw", low_level.Type.I))
    assert not imported_hashes.is_imported(_argon2("pw", low_level.Type.D))  # argon2d: GoTrue refuses it
    assert not imported_hashes.check("pw", _argon2("pw", low_level.Type.ID, time_cost=21))  # t > 20


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["$fbscrypt$", "$argon2id$", "$argon2i$"]), st.text(max_size=120))
def test_malformed_hashes_are_no_match(password: str, prefix: str, rest: str) -> None:
    assert imported_hashes.check(password, prefix + rest) is False


def _insert_user(server: ServerHandle, email: str, hashed: str) -> str:
    uid = str(uuid.uuid4())
    sql(server, """insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                     confirmation_token, recovery_token, email_change_token_new, email_change,
                     raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
                   values ('00000000-0000-0000-0000-000000000000', $1::uuid, 'authenticated', 'authenticated',
                     $2, $3, now(), '', '', '', '', '{"provider":"email","providers":["email"]}', '{}', now(), now())""",
        uid, email, hashed)
    return uid


def _sign_in(server: ServerHandle, email: str, password: str) -> str:
    client = create_client(server.url, server.anon_key,
                           options=ClientOptions(auto_refresh_token=False, persist_session=False))
    res = client.auth.sign_in_with_password({"email": email, "password": password})
    assert res.user is not None
    return res.user.id


def test_imported_hashes_sign_in_and_become_bcrypt(server: ServerHandle) -> None:
    for hashed, password in ((FIREBASE, FIREBASE_PASSWORD), (_argon2("s3cret-pass", low_level.Type.ID), "s3cret-pass")):
        email = f"imported-{uuid.uuid4().hex[:10]}@example.com"
        uid = _insert_user(server, email, hashed)
        assert _sign_in(server, email, password) == uid
        stored = sql(server, "select encrypted_password from auth.users where id = $1::uuid", uid)[0][0]
        assert stored.startswith("$2")
        assert _sign_in(server, email, password) == uid  # and the bcrypt hash works from now on


def test_password_grant_fuzz_against_imported_hash(server: ServerHandle) -> None:
    email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
    _insert_user(server, email, FIREBASE)

    @settings(max_examples=40, deadline=None)
    @given(st.one_of(st.text(max_size=100), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
    def attempt(password: str) -> None:
        r = httpx.post(f"{server.url}/auth/v1/token?grant_type=password", headers={"apikey": server.anon_key},
                       json={"email": email, "password": password}, timeout=30)
        assert r.status_code < 500, r.text
        if password != FIREBASE_PASSWORD:
            assert r.status_code == 400

    attempt()
