"""Accept the live project's tokens while its auth still issues them: its JWKS (asymmetric keys),
fetched once at start and again when an unknown kid shows up. HS256 projects share the secret
through OWNBASE_JWT_SECRET instead, which the key ring already verifies."""

from __future__ import annotations

import json
import logging
from typing import Any

import jwt

from ownbase.bridge.forward import Upstream
from ownbase.keys import KeyRing, TokenError

log = logging.getLogger("ownbase.bridge")
REFRESH_AFTER = 300  # seconds between JWKS fetches (key rotation at the upstream)


class UpstreamKeys:
    def __init__(self, url: str, apikey: str) -> None:
        self.url = url
        self.apikey = apikey
        self.keys: dict[str, Any] = {}

    async def refresh(self, upstream: Upstream) -> None:
        try:
            reply = await upstream.request("GET", self.url, [("apikey", self.apikey)] if self.apikey else [], None)
            try:
                body = await reply.aread()
            finally:
                await reply.aclose()
            if reply.status_code != 200:
                raise ValueError(f"status {reply.status_code}")
            found = {}
            for jwk in json.loads(body).get("keys", []):
                if isinstance(jwk, dict) and jwk.get("kid"):
                    try:
                        found[jwk["kid"]] = jwt.PyJWK(jwk)
                    except jwt.PyJWTError:
                        continue
            self.keys = found
        except Exception as exc:  # noqa: BLE001 - upstream down: its tokens are refused until it is back
            log.warning("could not fetch the upstream JWKS from %s: %s", self.url, exc)

    def verifier(self, token: str, header: dict[str, Any]) -> dict[str, Any] | None:
        key = self.keys.get(header.get("kid") or "")
        if key is None:
            return None  # not the upstream's: our own keys decide
        try:
            return jwt.decode(token, key.key, algorithms=[key.algorithm_name], options={"verify_aud": False,
                              "require": ["exp"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("JWT expired", "expired") from None
        except jwt.PyJWTError:
            raise TokenError("JWT cryptographic operation failed") from None


def install(keys: KeyRing, upstream_keys: UpstreamKeys) -> None:
    keys.extra_verifiers.append(upstream_keys.verifier)
