"""Dashboard accounts and login sessions (tables in ownbase_dashboard, see migration 0600).

Accounts are not auth.users: an app user can never sign in here, and a dashboard login gives no
API token. The cookie carries a random token; the database holds only its SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
import bcrypt

BCRYPT_COST = 12
# Verified against when the email is unknown, so both paths cost one bcrypt check.
_DUMMY_HASH = bcrypt.hashpw(b"dashboard-dummy", bcrypt.gensalt(4)).decode()


class AccountError(ValueError):
    """A bad email or password given to create an account."""


@dataclass(frozen=True)
class Session:
    account_id: str
    email: str
    csrf_token: str
    token_hash: str


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or "@" not in email or email.startswith("@") or email.endswith("@"):
        raise AccountError("a valid email address is needed")
    return email


def hash_password(password: str, cost: int = BCRYPT_COST) -> str:
    if len(password) < 8:
        raise AccountError("the password needs at least 8 characters")
    if len(password.encode()) > 72:
        raise AccountError("the password may have at most 72 bytes (bcrypt)")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


async def create_account(conn: asyncpg.Connection, email: str, password: str) -> str:
    email = normalize_email(email)
    digest = await asyncio.to_thread(hash_password, password)
    try:
        return str(await conn.fetchval(
            "insert into ownbase_dashboard.accounts (email, password_hash) values ($1, $2) returning id",
            email, digest))
    except asyncpg.UniqueViolationError:
        raise AccountError(f"an account for {email} exists already") from None


async def count_accounts(conn: Any) -> int:
    return int(await conn.fetchval("select count(*) from ownbase_dashboard.accounts"))


def _check(password: str, digest: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:72], digest.encode())
    except ValueError:
        return False


async def verify_login(pool: Any, email: str, password: str) -> dict[str, Any] | None:
    """The account row when the password matches, else None (same cost either way)."""
    email = (email or "").strip().lower()[:254]
    if "\x00" in email:
        email = ""  # PostgreSQL text cannot hold NUL: no account has it
    row = await pool.fetchrow(
        "select id, email, password_hash, totp_secret from ownbase_dashboard.accounts where email = $1", email)
    ok = await asyncio.to_thread(_check, password[:200], row["password_hash"] if row else _DUMMY_HASH)
    return dict(row) if row and ok else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(pool: Any, account_id: Any, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    await pool.execute(
        "insert into ownbase_dashboard.sessions (token_hash, account_id, csrf_token, expires_at)"
        " values ($1, $2, $3, now() + make_interval(secs => $4))",
        token_hash(token), account_id, secrets.token_urlsafe(32), float(ttl))
    await pool.execute("update ownbase_dashboard.accounts set last_login_at = now() where id = $1", account_id)
    # Expired sessions are swept on login: there are few, and logins are rare.
    await pool.execute("delete from ownbase_dashboard.sessions where expires_at < now()")
    return token


async def load_session(pool: Any, token: str | None) -> Session | None:
    if not token or len(token) > 200:
        return None
    row = await pool.fetchrow(
        "select s.account_id, a.email, s.csrf_token, s.token_hash from ownbase_dashboard.sessions s"
        " join ownbase_dashboard.accounts a on a.id = s.account_id"
        " where s.token_hash = $1 and s.expires_at > now()", token_hash(token))
    if row is None:
        return None
    return Session(str(row["account_id"]), row["email"], row["csrf_token"], row["token_hash"])


async def close_session(pool: Any, session: Session) -> None:
    await pool.execute("delete from ownbase_dashboard.sessions where token_hash = $1", session.token_hash)


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf_token.encode(), (presented or "").encode())


def totp_ok(secret: str, code: str) -> bool:
    """RFC 6238 code check (30 s steps, one step of clock drift either way)."""
    import pyotp

    code = code.strip().replace(" ", "")
    return code.isdigit() and len(code) == 6 and pyotp.TOTP(secret).verify(code, valid_window=1)


async def enable_totp(conn: asyncpg.Connection, email: str) -> str:
    """Give the account a fresh TOTP secret and return its otpauth:// URI for an authenticator app."""
    import pyotp

    secret = pyotp.random_base32()
    found = await conn.fetchval("update ownbase_dashboard.accounts set totp_secret = $2 where email = $1 returning 1",
                                normalize_email(email), secret)
    if not found:
        raise AccountError(f"no dashboard account for {email}")
    return pyotp.TOTP(secret).provisioning_uri(name=normalize_email(email), issuer_name="ownbase dashboard")
