"""Signed download / upload URL tokens: HS256 JWTs bound to ``<bucket>/<path>`` and a scope.

The secret is derived from the signing key, so every process verifies every other's tokens.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from ownbase.keys import KeyRing
from ownbase.storage import errors

UPLOAD_URL_TTL = 60 * 60 * 2  # upload tokens: Supabase uses 2 h for createSignedUploadUrl


class Signer:
    def __init__(self, keys: KeyRing) -> None:
        self.secret = keys.derive_secret("storage-signed-urls").encode()

    def sign_download(self, url: str, expires_in: int, transformations: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"url": url, "scope": "download", "iat": now, "exp": now + expires_in}
        if transformations:
            claims["transformations"] = transformations
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def sign_upload(self, url: str, owner: str | None, upsert: bool) -> str:
        now = int(time.time())
        claims = {"url": url, "scope": "upload", "owner": owner, "upsert": upsert, "iat": now,
                  "exp": now + UPLOAD_URL_TTL}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str, url: str, scope: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["exp", "url"]})
        except jwt.ExpiredSignatureError:
            raise errors.invalid_jwt('"exp" claim timestamp check failed') from None
        except jwt.InvalidSignatureError:
            raise errors.invalid_jwt("signature verification failed") from None
        except jwt.PyJWTError:
            raise errors.invalid_jwt("Invalid JWT") from None
        token_scope = claims.get("scope") or ("upload" if "upsert" in claims else "download")
        if token_scope != scope:
            raise errors.invalid_signature(f"Token is not scoped for {scope}")
        if claims.get("url") != url:
            raise errors.invalid_signature("Invalid signature")
        return claims
