"""Random secrets and their hashes: OTP codes, link token hashes, refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

_REFRESH_ALPHABET = string.ascii_lowercase + string.digits


def new_otp(length: int) -> str:
    """A numeric one-time code from the OS CSPRNG."""
    return "".join(secrets.choice(string.digits) for _ in range(length))


def link_token_hash(email: str, otp: str) -> str:
    """GoTrue's token hash, the value in email links and POST /verify ``token_hash``."""
    return hashlib.sha224((email.lower() + otp).encode()).hexdigest()


def stored_hash(secret: str, token_hash: str) -> str:
    """What the database keeps: a keyed hash, so a leaked table cannot be brute-forced offline."""
    return hmac.new(secret.encode(), token_hash.encode(), hashlib.sha256).hexdigest()


def new_refresh_token() -> str:
    return "".join(secrets.choice(_REFRESH_ALPHABET) for _ in range(32))


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def pkce_challenge_ok(verifier: str, challenge: str, method: str) -> bool:
    if method.lower() == "s256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return equal(computed, challenge)
