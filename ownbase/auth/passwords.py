"""bcrypt hashing off the event loop.

bcrypt releases the GIL, so a thread pool sized to the CPU count runs hashes in parallel while the
event loop keeps serving other requests. Any cost is verified (imported Supabase hashes use 10).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import bcrypt

from ownbase.auth import imported_hashes

MAX_PASSWORD_BYTES = 72

_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="bcrypt")


def _hash(password: str, cost: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def _check(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # not a bcrypt hash (e.g. empty or another scheme)
        return False


@lru_cache(maxsize=8)
def _dummy_hash(cost: int) -> str:
    # Compared against when the user does not exist, so unknown and known addresses take the same time.
    return _hash("ownbase-timing-equaliser", cost)


async def hash_password(password: str, cost: int) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool, _hash, password, cost)


def needs_rehash(hashed: str | None) -> bool:
    """An imported argon2 / Firebase scrypt hash: replaced by bcrypt after a successful sign-in."""
    return bool(hashed) and imported_hashes.is_imported(hashed or "")


async def verify_password(password: str, hashed: str | None, cost: int) -> bool:
    target = hashed if hashed and hashed.startswith("$2") else None
    loop = asyncio.get_running_loop()
    if hashed and target is None and imported_hashes.is_imported(hashed):
        return await loop.run_in_executor(_pool, imported_hashes.check, password, hashed)
    if target is None:
        dummy = await loop.run_in_executor(_pool, _dummy_hash, cost)
        await loop.run_in_executor(_pool, _check, password, dummy)
        return False
    return await loop.run_in_executor(_pool, _check, password, target)


def warm_up(cost: int) -> None:
    _pool.submit(_dummy_hash, cost)
