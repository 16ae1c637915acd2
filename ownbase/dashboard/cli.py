"""`ownbase admin create EMAIL` / `admin totp EMAIL` / `admin list`: dashboard accounts."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Optional

import typer

admin_app = typer.Typer(no_args_is_help=True, help="Dashboard accounts (separate from your app's users).")

FIRST_ADMIN_HINT = "Dashboard: create the first admin with `ownbase admin create you@example.com`, then open {url}/dashboard"


async def _work(conn: Any, work: Any) -> Any:
    from ownbase.db.migrate import apply_migrations

    await apply_migrations(conn)  # the accounts table exists even before the first `ownbase start`
    return await work(conn)


async def _direct(url: str, work: Any) -> Any:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(f"cannot connect to the database ({exc}); start ownbase first or set "
                           "OWNBASE_DATABASE_URL") from None
    try:
        return await _work(conn, work)
    finally:
        await conn.close()


def _run(data_dir: Optional[str], work: Any) -> Any:
    from ownbase import cli as base
    from ownbase.dashboard.accounts import AccountError

    overrides = {"data_dir": data_dir} if data_dir else {}
    try:
        if hasattr(base, "database"):  # the public CLI surface (docs/cli.md "Adding a command")
            cfg = base.settings(**overrides)

            async def go(target: Any) -> Any:
                conn = await base.connect(target)
                try:
                    return await _work(conn, work)
                finally:
                    await conn.close()

            with base.database(cfg) as target:
                return base.run(go(target))
        return asyncio.run(_direct(str(base._db_url(base._settings(**overrides))), work))
    except (AccountError, RuntimeError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(1) from None


@admin_app.command("create")
def create(
    email: str = typer.Argument(..., help="The admin's email (their dashboard login)."),
    data_dir: Optional[str] = typer.Option(None, help="Data folder (default ./.ownbase)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin (scripts)."),
) -> None:
    """Create a dashboard account; the password is prompted (bcrypt-hashed, at least 8 characters)."""
    from ownbase.dashboard.accounts import create_account

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
    from ownbase.dashboard.accounts import enable_totp

    sys.stdout.write(_run(data_dir, lambda conn: enable_totp(conn, email)) + "\n")


@admin_app.command("list")
def list_admins(data_dir: Optional[str] = typer.Option(None, help="Data folder (default ./.ownbase).")) -> None:
    """List dashboard accounts."""
    async def fetch(conn: Any) -> list[Any]:
        return await conn.fetch("select email, totp_secret is not null as totp, last_login_at::text"
                                " from ownbase_dashboard.accounts order by email")

    for row in _run(data_dir, fetch):
        sys.stdout.write(f"{row['email']}\ttotp={'on' if row['totp'] else 'off'}\tlast login {row['last_login_at'] or '-'}\n")


def first_admin_hint(database_url: str, api_url: str) -> str | None:
    """The start banner's line when no dashboard account exists yet (None otherwise or on error)."""
    async def count() -> int:
        import asyncpg

        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            return int(await conn.fetchval("select count(*) from ownbase_dashboard.accounts"))
        finally:
            await conn.close()

    try:
        return FIRST_ADMIN_HINT.format(url=api_url) if asyncio.run(count()) == 0 else None
    except Exception:  # noqa: BLE001 - a hint must never stop start-up
        return None


def register(app: typer.Typer, **_: Any) -> None:
    app.add_typer(admin_app, name="admin")
