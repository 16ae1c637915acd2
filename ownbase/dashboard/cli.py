"""`ownbase admin create EMAIL` / `admin totp EMAIL` / `admin list`: dashboard accounts."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Optional

import typer

from ownbase import cli
from ownbase.dashboard.accounts import AccountError, create_account, enable_totp
from ownbase.db.migrate import apply_migrations
from ownbase.db.pool import connect
from ownbase.db.startup import StartupLockTimeout, startup_lock
from ownbase.settings import Settings

admin_app = typer.Typer(no_args_is_help=True, help="Dashboard accounts (separate from your app's users).")

FIRST_ADMIN_HINT = "Dashboard: create the first admin with `ownbase admin create you@example.com`, then open {url}/dashboard"


def _waiting() -> None:
    sys.stderr.write("waiting for another ownbase to finish start-up (migrations, roles) ...\n")


async def _work(conn: Any, work: Any, lock_timeout: float) -> Any:
    # The accounts table exists even before the first `ownbase start`: ownbase's migrations are
    # applied here, under the start-up lock like every other start-up database work.
    async with startup_lock(conn, lock_timeout, _waiting):
        await apply_migrations(conn)
    return await work(conn)


def _run(data_dir: Optional[str], work: Any) -> Any:
    cfg = cli.settings(data_dir=data_dir)

    async def go(target: cli.Target) -> Any:
        async with cli.connection(target) as conn:
            return await _work(conn, work, target.settings.db_startup_lock_timeout)

    try:
        with cli.database(cfg) as target:
            return cli.run(go(target))
    except (AccountError, StartupLockTimeout) as exc:
        cli.fail(str(exc))


@admin_app.command("create")
def create(
    email: str = typer.Argument(..., help="The admin's email (their dashboard login)."),
    data_dir: Optional[str] = typer.Option(None, help="Data folder (default ./.ownbase)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin (scripts)."),
) -> None:
    """Create a dashboard account; the password is prompted (bcrypt-hashed, at least 8 characters)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    _run(data_dir, lambda conn: create_account(conn, email, password))
    sys.stdout.write(f"dashboard admin {email.strip().lower()} created\n")


@admin_app.command("totp")
def totp(
    email: str = typer.Argument(..., help="The admin's email."),
    data_dir: Optional[str] = typer.Option(None, help="Data folder (default ./.ownbase)."),
) -> None:
    """Turn on TOTP for an account; prints the otpauth:// URI to add to an authenticator app."""
    sys.stdout.write(_run(data_dir, lambda conn: enable_totp(conn, email)) + "\n")


@admin_app.command("list")
def list_admins(data_dir: Optional[str] = typer.Option(None, help="Data folder (default ./.ownbase).")) -> None:
    """List dashboard accounts."""
    async def fetch(conn: Any) -> list[Any]:
        return await conn.fetch("select email, totp_secret is not null as totp, last_login_at::text"
                                " from ownbase_dashboard.accounts order by email")

    for row in _run(data_dir, fetch):
        sys.stdout.write(f"{row['email']}\ttotp={'on' if row['totp'] else 'off'}\tlast login {row['last_login_at'] or '-'}\n")


def first_admin_hint(settings: Settings) -> str | None:
    """The start banner's line when no dashboard account exists yet (None otherwise or on error)."""
    async def count() -> int:
        conn = await connect(settings.database_url, settings)
        try:
            return int(await conn.fetchval("select count(*) from ownbase_dashboard.accounts"))
        finally:
            await conn.close()

    try:
        return FIRST_ADMIN_HINT.format(url=settings.api_url) if asyncio.run(count()) == 0 else None
    except Exception:  # noqa: BLE001 - a hint must never stop start-up
        return None


def register(app: typer.Typer, **_: Any) -> None:
    app.add_typer(admin_app, name="admin")
