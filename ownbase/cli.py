"""The ``ownbase`` command line."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from ownbase.settings import Settings, SettingsError, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="ownbase: your own Supabase-compatible backend.")
db_app = typer.Typer(no_args_is_help=True, help="Database tools.")
gen_app = typer.Typer(no_args_is_help=True, help="Code generation.")
mail_app = typer.Typer(no_args_is_help=True, help="Mail outbox.")
auth_app = typer.Typer(no_args_is_help=True, help="Auth tools.")
app.add_typer(db_app, name="db")
app.add_typer(gen_app, name="gen")
app.add_typer(mail_app, name="mail")
app.add_typer(auth_app, name="auth")

console = Console(stderr=True)


def _settings(**overrides: Any) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(**clean)
    except SettingsError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _export(settings: Settings, **values: Any) -> None:
    """Pass CLI choices to uvicorn workers, which rebuild settings from the environment."""
    for key, value in values.items():
        if value is not None:
            os.environ[f"OWNBASE_{key.upper()}"] = str(value)


class DataDirLock:
    """An exclusive lock on the data dir: a second `ownbase start` fails clearly."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "ownbase.lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RuntimeError(
                f"another ownbase is already running on data dir {self.path.parent} (pid {other}); "
                "stop it first or use --data-dir for a separate instance"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _embedded(settings: Settings) -> Any:
    from ownbase.embedded import EmbeddedPostgres

    return EmbeddedPostgres(Path(settings.data_dir).resolve() / "postgres")


def _db_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    from ownbase.embedded import free_port

    emb = _embedded(settings)
    if not emb.state_file.exists():
        emb.root.mkdir(parents=True, exist_ok=True)
        emb.state_file.write_text(json.dumps({"port": free_port()}))
    return str(emb.url())


def key_info(settings: Settings) -> dict[str, str]:
    from ownbase.keys import build_keyring

    keys = build_keyring(settings)
    return {
        "api_url": settings.api_url,
        "anon_key": keys.anon_key,
        "service_role_key": keys.service_role_key,
        "jwks_url": f"{settings.api_url}/auth/v1/.well-known/jwks.json",
        "db_url": _db_url(settings),
        "data_dir": str(Path(settings.data_dir).resolve()),
        "jwt_algorithm": keys.signing_algorithm,
    }


@app.command()
def start(
    data_dir: Optional[Path] = typer.Option(None, help="Data folder (default ./.ownbase)."),
    port: Optional[int] = typer.Option(None, help="HTTP port (default 54321)."),
    host: Optional[str] = typer.Option(None, help="Listen address (default 127.0.0.1)."),
    workers: Optional[int] = typer.Option(None, help="Processes sharing the port (needs Redis if > 1)."),
) -> None:
    """Start ownbase (embedded PostgreSQL unless OWNBASE_DATABASE_URL is set)."""
    settings = _settings(data_dir=data_dir, port=port, host=host, workers=workers)
    if settings.workers > 1 and not settings.redis_url:
        console.print("[red]error:[/red] --workers > 1 needs OWNBASE_REDIS_URL: rate limits, realtime "
                      "fan-out and presence must be shared between processes.")
        raise typer.Exit(2)
    data = Path(settings.data_dir).resolve()
    _export(settings, data_dir=data, port=settings.port, host=settings.host, workers=settings.workers)
    lock = DataDirLock(data)
    try:
        lock.acquire()
    except RuntimeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    embedded = None

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # A stop signal during start-up (initdb, migrations) still stops the embedded server below.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        if not settings.database_url:
            from ownbase.embedded import EmbeddedError

            embedded = _embedded(settings)
            try:
                embedded.start()
            except EmbeddedError as exc:
                console.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(1) from None
            os.environ["OWNBASE_DATABASE_URL"] = embedded.url()
            settings = _settings(database_url=embedded.url(), data_dir=data)
        _prepare(settings)
        _banner(settings)
        import uvicorn

        from ownbase import logs

        logs.configure(settings.log_level, settings.log_format)
        # uvicorn re-raises the stop signal after its graceful shutdown; with no-op handlers in
        # place that re-raise returns here, so the embedded PostgreSQL is stopped cleanly below.
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, lambda *_: None)
        uvicorn.run(
            "ownbase.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            ws="websockets",
            # Realtime: no permessage-deflate. Its zlib state costs ~250 KB per socket and CPU on
            # every frame (Supabase Realtime does not compress either); see docs/realtime.md.
            ws_per_message_deflate=False,
            proxy_headers=False,  # X-Forwarded-For is handled by OWNBASE_TRUSTED_PROXIES
            timeout_graceful_shutdown=20,
            log_config=None,
            access_log=False,
        )
    except KeyboardInterrupt:
        console.print("interrupted during start-up; stopping")
        raise typer.Exit(130) from None
    finally:
        if embedded is not None:
            embedded.stop()
        lock.release()


def _prepare(settings: Settings) -> None:
    from ownbase.app import authenticator_password, prepare_database
    from ownbase.keys import build_keyring

    keys = build_keyring(settings)
    password = authenticator_password(settings, keys.derive_secret("db-authenticator"))
    try:
        asyncio.run(prepare_database(settings, settings.database_url, password))
    except Exception as exc:  # noqa: BLE001 - report, don't trace
        console.print(f"[red]error:[/red] could not prepare the database: {exc}")
        raise typer.Exit(1) from None


def _banner(settings: Settings) -> None:
    info = key_info(settings)
    out = Console()
    out.print("[bold green]ownbase is running.[/bold green]")
    for label, key in (("API URL", "api_url"), ("anon key", "anon_key"),
                       ("service_role key", "service_role_key"), ("JWKS URL", "jwks_url"),
                       ("DB URL", "db_url"), ("Data dir", "data_dir")):
        out.print(f"{label:>17}: {info[key]}", soft_wrap=True)
    sys.stdout.flush()


@app.command()
def keys(
    data_dir: Optional[Path] = typer.Option(None, help="Data folder (default ./.ownbase)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Print the API URL, API keys, JWKS URL and database URL of a data dir."""
    settings = _settings(data_dir=data_dir)
    info = key_info(settings)
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        for key, value in info.items():
            sys.stdout.write(f"{key}: {value}\n")


def _register_service_commands() -> None:
    """Service packages add their own commands (db migrate, gen types, mail list, ...)."""
    import importlib

    for module in ("ownbase.rest.cli", "ownbase.auth.cli", "ownbase.mail.cli", "ownbase.sms.cli", "ownbase.storage.cli",
                   "ownbase.realtime.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        mod.register(app=app, db_app=db_app, gen_app=gen_app, mail_app=mail_app, auth_app=auth_app)


_register_service_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
