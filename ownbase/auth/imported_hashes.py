"""Password hashes GoTrue accepts for imported users besides bcrypt: argon2i/argon2id (PHC strings)
and Firebase's modified scrypt. Verified with GoTrue's bounds, so a hash GoTrue would refuse is
refused here too; a successful sign-in re-hashes the password to bcrypt (see grants.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import argon2
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ARGON2_PREFIXES = ("$argon2i$", "$argon2id$")
FIREBASE_PREFIX = "$fbscrypt$"
ARGON2_MAX_MEMORY_KIB = 1_048_576
ARGON2_MAX_TIME = 20
ARGON2_MAX_PARALLELISM = 16
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024  # bytes scrypt may use for one verification


def is_imported(hashed: str) -> bool:
    return hashed.startswith(ARGON2_PREFIXES) or hashed.startswith(FIREBASE_PREFIX)


def check(password: str, hashed: str) -> bool:
    """True if ``password`` matches; any malformed or out-of-bounds hash is simply a mismatch."""
    try:
        if hashed.startswith(ARGON2_PREFIXES):
            return _argon2(password, hashed)
        if hashed.startswith(FIREBASE_PREFIX):
            return _firebase_scrypt(password, hashed)
    except (ValueError, TypeError):
        return False
    return False


def _argon2(password: str, hashed: str) -> bool:
    params = argon2.extract_parameters(hashed)
    if (params.version != 19 or params.memory_cost > ARGON2_MAX_MEMORY_KIB or params.time_cost > ARGON2_MAX_TIME
            or params.parallelism > ARGON2_MAX_PARALLELISM):
        return False
    try:
        return argon2.PasswordHasher().verify(hashed, password)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


def _firebase_scrypt(password: str, hashed: str) -> bool:
    # $fbscrypt$v=1,n=<log2 N>,r=<r>,p=<p>[,ss=<b64>][,sk=<b64>]$<b64 salt>$<b64 hash>
    _, _, params, salt_b64, hash_b64 = hashed.split("$")
    fields = dict(part.split("=", 1) for part in params.split(","))
    if fields.get("v") != "1":
        return False
    n, r, p = int(fields["n"]), int(fields["r"]), int(fields["p"])
    if not (1 <= n <= 31 and 1 <= r <= 64 and 1 <= p <= 16) or 128 * r * (2 ** n) > SCRYPT_MAX_MEMORY:
        return False
    separator = base64.b64decode(fields.get("ss", ""))
    signer_key = base64.b64decode(fields.get("sk", ""))
    salt = base64.b64decode(salt_b64)
    expected = base64.b64decode(hash_b64)
    key = hashlib.scrypt(password.encode(), salt=salt + separator, n=2 ** n, r=r, p=p, dklen=32,
                         maxmem=SCRYPT_MAX_MEMORY + 1024 * 1024)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    derived = encryptor.update(signer_key) + encryptor.finalize()
    return hmac.compare_digest(derived, expected)
