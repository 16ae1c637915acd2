"""Signing keys, JWKS, API keys and token verification.

Each verification key pins its algorithm, so an HS256 token "signed" with the RSA public key as a
secret is never checked against that public key (the classic alg-confusion attack). Parsed key
objects are kept for the life of the key ring: no per-request PEM parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ownbase.settings import Settings

# Fixed issue time for the anon / service-role keys, so the same key pair always prints the same
# keys (RS256 and HS256 signatures are deterministic) and apps need not be reconfigured.
API_KEY_IAT = 1_735_689_600  # 2025-01-01
API_KEY_EXP = API_KEY_IAT + 20 * 365 * 24 * 3600


class TokenError(Exception):
    """A token that cannot be accepted; ``reason`` is a short machine tag."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # "invalid" | "expired" | "claims"


@dataclass(frozen=True)
class VerificationKey:
    kid: str | None
    algorithm: str
    key: Any  # parsed public key object or HS secret bytes
    public_jwk: dict[str, Any] | None  # None for symmetric keys: never published


@dataclass
class KeyRing:
    signing_algorithm: str
    signing_kid: str | None
    signing_key: Any
    verification: list[VerificationKey]
    publishable_keys: frozenset[str] = frozenset()
    secret_keys: frozenset[str] = frozenset()
    fixed_anon_key: str = ""
    fixed_service_key: str = ""
    extra_verifiers: list[Callable[[str, dict[str, Any]], dict[str, Any] | None]] = field(
        default_factory=list
    )
    _by_kid: dict[str, VerificationKey] = field(default_factory=dict)
    # Verified tokens (bounded): the same JWT arrives on every request of a session.
    _cache: "OrderedDict[str, dict[str, Any]]" = field(default_factory=OrderedDict)
    cache_size: int = 10_000

    def __post_init__(self) -> None:
        self._by_kid = {k.kid: k for k in self.verification if k.kid}

    # --- signing ------------------------------------------------------------------
    def sign(self, claims: dict[str, Any]) -> str:
        headers = {"kid": self.signing_kid} if self.signing_kid else None
        return jwt.encode(claims, self.signing_key, algorithm=self.signing_algorithm, headers=headers)

    def api_key(self, role: str) -> str:
        if role == "anon" and self.fixed_anon_key:
            return self.fixed_anon_key
        if role == "service_role" and self.fixed_service_key:
            return self.fixed_service_key
        claims = {"iss": "ownbase", "role": role, "iat": API_KEY_IAT, "exp": API_KEY_EXP}
        return self.sign(claims)

    @property
    def anon_key(self) -> str:
        return self.api_key("anon")

    @property
    def service_role_key(self) -> str:
        return self.api_key("service_role")

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.verification if k.public_jwk]}

    def derive_secret(self, label: str) -> str:
        """A stable secret derived from the signing key, identical on every process."""
        if isinstance(self.signing_key, (bytes, str)):
            material = self.signing_key if isinstance(self.signing_key, bytes) else self.signing_key.encode()
        else:
            material = self.signing_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return hmac.new(material, label.encode(), hashlib.sha256).hexdigest()

    # --- verification -------------------------------------------------------------
    def verify(self, token: str, *, audience: str | None = None, leeway: int = 0) -> dict[str, Any]:
        """Verify a JWT against the pinned keys; raise TokenError with a client-facing message."""
        if audience is None and leeway == 0:
            cached = self._cache.get(token)
            if cached is not None:
                exp = cached.get("exp")
                # No exp: accepted without expiry, as GoTrue and PostgREST do (ownbase's own tokens
                # always carry one); a present exp was checked to be a number when first verified.
                if exp is None or exp > time.time():
                    return cached
                self._cache.pop(token, None)
                raise TokenError("JWT expired", "expired")
            claims = self._verify(token, audience=None, leeway=0)
            self._cache[token] = claims
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return claims
        return self._verify(token, audience=audience, leeway=leeway)

    def _verify(self, token: str, *, audience: str | None, leeway: int) -> dict[str, Any]:
        if not token:
            raise TokenError("Empty JWT is sent in Authorization header")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError(f"Expected 3 parts in JWT; got {len(parts)}")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("JWT couldn't be decoded") from None
        alg = header.get("alg")
        kid = header.get("kid")
        for verifier in self.extra_verifiers:
            result = verifier(token, header)
            if result is not None:
                return result
        if kid and kid in self._by_kid:
            candidates = [self._by_kid[kid]]
        else:
            candidates = [k for k in self.verification if k.algorithm == alg]
        candidates = [k for k in candidates if k.algorithm == alg]
        if not candidates:
            raise TokenError("No suitable key or wrong key type")
        last: Exception | None = None
        for key in candidates:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[key.algorithm],
                    options={"verify_aud": audience is not None},
                    audience=audience,
                    leeway=leeway,
                )
            except jwt.ExpiredSignatureError:
                raise TokenError("JWT expired", "expired") from None
            except jwt.ImmatureSignatureError:
                raise TokenError("JWT not yet valid", "claims") from None
            except jwt.InvalidAudienceError:
                raise TokenError("JWT not in audience", "claims") from None
            except jwt.MissingRequiredClaimError as exc:
                raise TokenError(f"The JWT '{exc.claim}' claim must be a number", "claims") from None
            except jwt.InvalidSignatureError as exc:
                last = exc
            except jwt.PyJWTError as exc:
                last = exc
        if isinstance(last, jwt.InvalidSignatureError) or last is None:
            raise TokenError("JWT cryptographic operation failed")
        raise TokenError("JWT couldn't be decoded")


def _b64u_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _kid_for(public_key: Any) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def _public_jwk(private_key: Any, alg: str, kid: str) -> dict[str, Any]:
    pub = private_key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        return {"kty": "RSA", "alg": alg, "use": "sig", "kid": kid, "key_ops": ["verify"],
                "n": _b64u_int(nums.n), "e": _b64u_int(nums.e)}
    nums = pub.public_numbers()
    size = 32
    x = base64.urlsafe_b64encode(nums.x.to_bytes(size, "big")).rstrip(b"=").decode()
    y = base64.urlsafe_b64encode(nums.y.to_bytes(size, "big")).rstrip(b"=").decode()
    return {"kty": "EC", "crv": "P-256", "alg": alg, "use": "sig", "kid": kid,
            "key_ops": ["verify"], "x": x, "y": y}


def generate_private_key_pem(algorithm: str) -> str:
    if algorithm == "ES256":
        key: Any = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _load_or_create_pem(settings: Settings) -> str | None:
    """The asymmetric private key: from settings, else from (or newly into) the data dir."""
    if settings.jwt_private_key:
        return settings.jwt_private_key.replace("\\n", "\n")
    if settings.jwt_algorithm == "HS256":
        return None
    path = Path(settings.data_dir) / "keys" / f"jwt-{settings.jwt_algorithm.lower()}.pem"
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = generate_private_key_pem(settings.jwt_algorithm)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(pem)
    tmp.chmod(0o600)
    tmp.replace(path)
    return pem


def build_keyring(settings: Settings) -> KeyRing:
    verification: list[VerificationKey] = []
    signing_alg: str
    signing_key: Any
    signing_kid: str | None
    pem = _load_or_create_pem(settings)
    if pem is not None:
        private_key = serialization.load_pem_private_key(pem.encode(), password=None)
        if isinstance(private_key, rsa.RSAPrivateKey):
            signing_alg = "RS256"
        elif isinstance(private_key, ec.EllipticCurvePrivateKey):
            signing_alg = "ES256"
        else:
            raise ValueError("OWNBASE_JWT_PRIVATE_KEY must be an RSA or P-256 EC private key")
        signing_kid = _kid_for(private_key.public_key())
        signing_key = private_key
        verification.append(
            VerificationKey(signing_kid, signing_alg, private_key.public_key(),
                            _public_jwk(private_key, signing_alg, signing_kid))
        )
    elif settings.jwt_secret:
        signing_alg, signing_key, signing_kid = "HS256", settings.jwt_secret.encode(), None
    else:
        raise ValueError("OWNBASE_JWT_SECRET is required when OWNBASE_JWT_ALGORITHM=HS256")
    if settings.jwt_secret:
        verification.append(VerificationKey(None, "HS256", settings.jwt_secret.encode(), None))
    verification += trusted_keys(settings.jwt_trusted_jwks)
    return KeyRing(
        signing_algorithm=signing_alg,
        signing_kid=signing_kid,
        signing_key=signing_key,
        verification=verification,
        publishable_keys=frozenset(settings.publishable_keys),
        secret_keys=frozenset(settings.secret_keys),
        fixed_anon_key=settings.anon_key,
        fixed_service_key=settings.service_role_key,
    )


def trusted_keys(value: str) -> list[VerificationKey]:
    """Public keys of a migrated project (``OWNBASE_JWT_TRUSTED_JWKS``): verify-only, never published.

    Only asymmetric keys with a ``kid`` are taken, each pinned to its algorithm, so a token is
    checked against exactly the key its header names.
    """
    if not value.strip():
        return []
    text = value if value.lstrip().startswith("{") else Path(value).read_text()
    try:
        keys = json.loads(text).get("keys", [])
        out = []
        for jwk in keys:
            if jwk.get("kty") in ("RSA", "EC", "OKP") and jwk.get("kid") and "d" not in jwk:
                parsed = jwt.PyJWK(jwk)
                out.append(VerificationKey(str(jwk["kid"]), parsed.algorithm_name, parsed.key, None))
        return out
    except (ValueError, AttributeError, jwt.PyJWTError) as exc:
        raise ValueError(f"OWNBASE_JWT_TRUSTED_JWKS is not a usable JWKS: {exc}") from None


def now() -> int:
    return int(time.time())


def unverified_claims(token: str) -> dict[str, Any]:
    """Decode claims without verification, for logging or error messages only."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        data = json.loads(base64.urlsafe_b64decode(payload))
        return data if isinstance(data, dict) else {}
    except Exception:  # noqa: BLE001 - any garbage is simply "no claims"
        return {}
