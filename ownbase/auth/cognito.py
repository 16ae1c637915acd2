"""Accept tokens issued by an AWS Cognito user pool (Supabase's "third-party auth" role).

A verifier is added to the key ring, so every service (REST, storage, realtime, auth) accepts
Cognito access and ID tokens: signature against the pool's JWKS, issuer, ``token_use`` and client id
are checked. Each Cognito ``sub`` is linked to one ``auth.users`` row through ``auth.identities``
(provider ``cognito``): on first sight a verified email that matches an existing (e.g. migrated) user
links to it, so ``auth.uid()`` keeps returning the original Supabase UUID; otherwise a user is
created. The verifier hook is synchronous, so links are cached per process and a first sight is
resolved on a private event-loop thread (one short database round trip, once per user and process).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

import asyncpg
import httpx
import jwt

from ownbase.context import Context
from ownbase.keys import TokenError, unverified_claims
from ownbase.settings import Settings

log = logging.getLogger("ownbase.auth.cognito")
JWKS_REFRESH_SECONDS = 60


def issuer_for(settings: Settings) -> str:
    if settings.auth_cognito_issuer:
        return settings.auth_cognito_issuer.rstrip("/")
    return f"https://cognito-idp.{settings.auth_cognito_region}.amazonaws.com/{settings.auth_cognito_user_pool_id}"


class CognitoVerifier:
    def __init__(self, settings: Settings, owner_url: str) -> None:
        self.settings = settings
        self.issuer = issuer_for(settings)
        self.jwks_url = settings.auth_cognito_jwks_url or f"{self.issuer}/.well-known/jwks.json"
        self.client_ids = frozenset(settings.auth_cognito_client_ids)
        self.owner_url = owner_url
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._links: dict[str, str] = {}  # cognito sub -> auth.users id
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cognito-linker", daemon=True)
        self._thread.start()
        self._pool: asyncpg.Pool | None = None

    # --- keys --------------------------------------------------------------------------------
    def _load_jwks(self, data: dict[str, Any]) -> None:
        keys = {}
        for jwk in data.get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("kid"):
                keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm="RS256")
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def prefetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.get(self.jwks_url)
                r.raise_for_status()
                self._load_jwks(r.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch the Cognito JWKS from %s: %s", self.jwks_url, exc)

    def _key(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._fetched_at > JWKS_REFRESH_SECONDS:
            # Key rotation: refetch (rate-limited), off the event loop's own coroutines.
            future = asyncio.run_coroutine_threadsafe(self.prefetch(), self._loop)
            future.result(timeout=15)
            key = self._keys.get(kid)
        if key is None:
            raise TokenError("invalid JWT: unknown Cognito signing key")
        return key

    # --- the key-ring hook -------------------------------------------------------------------
    def __call__(self, token: str, header: dict[str, Any]) -> dict[str, Any] | None:
        unverified = unverified_claims(token)
        iss = unverified.get("iss")
        if not isinstance(iss, str) or not (iss.startswith("https://cognito-idp.") or iss.rstrip("/") == self.issuer):
            return None  # not a Cognito token: the normal keys decide
        if iss.rstrip("/") != self.issuer:
            raise TokenError("JWT issued by another Cognito user pool", "claims")
        if header.get("alg") != "RS256":
            raise TokenError("Cognito tokens must be RS256")
        key = self._key(str(header.get("kid") or ""))
        try:
            claims = jwt.decode(token, key.key, algorithms=["RS256"], issuer=self.issuer,
                                options={"verify_aud": False, "require": ["exp", "sub", "token_use"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("JWT expired", "expired") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"JWT cryptographic operation failed: {exc}") from None
        use = claims.get("token_use")
        if use not in ("access", "id"):
            raise TokenError("Cognito token_use must be access or id", "claims")
        client = claims.get("client_id") if use == "access" else claims.get("aud")
        if self.client_ids and client not in self.client_ids:
            raise TokenError("Cognito token issued for another app client", "claims")
        user_id = self._link(claims, token)
        return self._supabase_claims(claims, user_id)

    def _supabase_claims(self, claims: dict[str, Any], user_id: str) -> dict[str, Any]:
        email = claims.get("email") or ""
        return {
            "iss": claims["iss"], "sub": user_id, "aud": self.settings.jwt_aud, "exp": claims["exp"],
            "iat": claims.get("iat", int(time.time())), "email": email, "phone": claims.get("phone_number", ""),
            "app_metadata": {"provider": "cognito", "providers": ["cognito"]}, "user_metadata": {},
            "role": "authenticated", "aal": "aal1",
            "amr": [{"method": "oauth", "timestamp": claims.get("auth_time", claims.get("iat", 0))}],
            "is_anonymous": False,
            "cognito": {"sub": claims["sub"], "token_use": claims["token_use"],
                        "username": claims.get("username") or claims.get("cognito:username")},
        }

    # --- linking -----------------------------------------------------------------------------
    def _link(self, claims: dict[str, Any], token: str) -> str:
        sub = str(claims["sub"])
        cached = self._links.get(sub)
        if cached is not None:
            return cached
        future: Future[str] = asyncio.run_coroutine_threadsafe(self._link_db(claims, token), self._loop)
        try:
            user_id = future.result(timeout=15)
        except TokenError:
            raise
        except Exception as exc:  # noqa: BLE001 - surfaced as an invalid token, logged for operators
            log.exception("linking Cognito user %s failed", sub)
            raise TokenError(f"could not link the Cognito user: {type(exc).__name__}") from None
        with self._lock:
            self._links[sub] = user_id
        return user_id

    async def _attributes(self, token: str) -> dict[str, str]:
        """GetUser with the access token itself: access tokens carry no email."""
        # Imported here: aiobotocore is slow to import and only a Cognito set-up needs it.
        from aiobotocore.session import get_session  # noqa: PLC0415 - see above
        from botocore import UNSIGNED  # noqa: PLC0415 - see above
        from botocore.config import Config  # noqa: PLC0415 - see above

        kwargs: dict[str, Any] = {"region_name": self.settings.auth_cognito_region or "us-east-1",
                                  "config": Config(signature_version=UNSIGNED)}
        if self.settings.auth_cognito_endpoint_url:
            kwargs["endpoint_url"] = self.settings.auth_cognito_endpoint_url
        async with get_session().create_client("cognito-idp", **kwargs) as client:
            reply = await client.get_user(AccessToken=token)
        return {a["Name"]: a["Value"] for a in reply.get("UserAttributes", [])}

    async def _link_db(self, claims: dict[str, Any], token: str) -> str:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self.owner_url, min_size=0, max_size=2)
        sub = str(claims["sub"])
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "select user_id from auth.identities where provider = 'cognito' and provider_id = $1", sub)
            if found is not None:
                return str(found)
        attrs: dict[str, Any] = dict(claims)
        if not attrs.get("email") and claims.get("token_use") == "access":
            try:
                attrs.update(await self._attributes(token))
            except Exception as exc:  # noqa: BLE001 - without attributes we simply do not link by email
                log.warning("Cognito GetUser failed: %s", exc)
        email = str(attrs.get("email") or "").lower()
        verified = str(attrs.get("email_verified", "")).lower() == "true"
        identity = {"sub": sub, "email": email, "email_verified": verified,
                    "username": claims.get("username") or claims.get("cognito:username"), "iss": claims["iss"]}
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("select pg_advisory_xact_lock(hashtext('ownbase-cognito:' || $1))", sub)
            found = await conn.fetchval(
                "select user_id from auth.identities where provider = 'cognito' and provider_id = $1", sub)
            if found is not None:
                return str(found)
            user_id = None
            if email and verified:
                user_id = await conn.fetchval(
                    "select id from auth.users where lower(email) = $1 and not is_sso_user"
                    " order by created_at limit 1", email)
            if user_id is None:
                # An unverified address that another user holds stays in identity_data only.
                if email and await conn.fetchval("select 1 from auth.users where lower(email) = $1", email):
                    email = ""
                user_id = uuid.uuid4()
                await conn.execute(
                    """insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
                           email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
                       values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated',
                               $2, '', case when $3 then now() end, $4::jsonb, '{}'::jsonb, now(), now())""",
                    user_id, email or None, verified,
                    json.dumps({"provider": "cognito", "providers": ["cognito"]}))
            else:
                await conn.execute(
                    """update auth.users set raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'),
                           '{providers}', coalesce(raw_app_meta_data->'providers', '[]'::jsonb) || '["cognito"]')
                       where id = $1 and not coalesce(raw_app_meta_data->'providers', '[]') ? 'cognito'""",
                    user_id)
            await conn.execute(
                """insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
                       created_at, updated_at) values ($1, $2, $3::jsonb, 'cognito', now(), now(), now())""",
                sub, user_id, json.dumps(identity))
            return str(user_id)

    def close(self) -> None:
        async def stop() -> None:
            if self._pool is not None:
                await self._pool.close()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - best effort on shutdown
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)


async def install(ctx: Context) -> None:
    verifier = CognitoVerifier(ctx.settings, ctx.db.owner_url)
    await verifier.prefetch()
    ctx.keys.extra_verifiers.append(verifier)
    ctx.state.setdefault("auth", {})["cognito"] = verifier
