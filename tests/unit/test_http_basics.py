"""Client address resolution, rate limiter, settings validation, request credentials."""

from __future__ import annotations

import asyncio

import pytest

from ownbase.http.auth_context import CredentialError, resolve
from ownbase.http.client_ip import client_ip, parse_networks
from ownbase.keys import build_keyring, generate_private_key_pem
from ownbase.limits import MemoryRateLimiter
from ownbase.settings import Settings, SettingsError, load_settings

NETS = parse_networks(["10.0.0.0/8"])


@pytest.mark.parametrize(
    "peer,xff,expected",
    [
        ("10.1.2.3", "203.0.113.9", "203.0.113.9"),  # trusted proxy: believed
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # untrusted peer: ignored
        ("10.1.2.3", "1.1.1.1, 203.0.113.9, 10.0.0.5", "203.0.113.9"),  # rightmost untrusted hop
        ("10.1.2.3", "not-an-ip", "10.1.2.3"),
        ("10.1.2.3", None, "10.1.2.3"),
    ],
)
def test_client_ip(peer: str, xff: str | None, expected: str) -> None:
    assert client_ip(peer, xff, NETS) == expected


def test_token_bucket() -> None:
    limiter = MemoryRateLimiter()

    async def go() -> list[bool]:
        return [(await limiter.hit("k", 3, 60)).allowed for _ in range(5)]

    assert asyncio.run(go()) == [True, True, True, False, False]
    decision = asyncio.run(limiter.hit("k", 3, 60))
    assert not decision.allowed and decision.retry_after >= 1


def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWNBASE_PORT", "not-a-number")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "OWNBASE_PORT" in str(info.value)
    monkeypatch.setenv("OWNBASE_PORT", "1")
    monkeypatch.setenv("OWNBASE_DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "OWNBASE_DATABASE_URL" in str(info.value)


def test_csv_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWNBASE_DB_SCHEMAS", "public, api")
    assert load_settings().db_schemas == ["public", "api"]


def test_opaque_keys_map_to_roles() -> None:
    keys = build_keyring(Settings(jwt_private_key=generate_private_key_pem("RS256"),
                                  publishable_keys=["sb_publishable_abc"], secret_keys=["sb_secret_xyz"]))
    assert resolve(keys, {"apikey": "sb_publishable_abc"}).role == "anon"
    assert resolve(keys, {"apikey": "sb_secret_xyz"}).role == "service_role"
    assert resolve(keys, {"apikey": "sb_publishable_abc",
                          "authorization": "Bearer sb_secret_xyz"}).role == "service_role"
    with pytest.raises(CredentialError):
        resolve(keys, {"apikey": "sb_secret_wrong"})
    with pytest.raises(CredentialError) as info:
        resolve(keys, {})
    assert info.value.reason == "missing"
    user = keys.sign({"sub": "u1", "role": "authenticated", "exp": 4102444800})
    ctx = resolve(keys, {"apikey": keys.anon_key, "authorization": f"Bearer {user}"})
    assert ctx.role == "authenticated" and ctx.user_id == "u1"
    bad_role = keys.sign({"role": "postgres", "exp": 4102444800})
    with pytest.raises(CredentialError):
        resolve(keys, {"authorization": f"Bearer {bad_role}"})
