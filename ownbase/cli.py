"""The ``ownbase`` command line: ``start``, ``keys``, and the surface every command module uses.

A package adds commands in its own ``ownbase/<package>/cli.py`` with a ``register(app)``
function (listed in COMMAND_MODULES) and reaches everything through this module's public names:

* ``settings(**overrides)``: the one Settings object; a bad value exits 2 naming the variable;
* ``group(name, help)``: the sub-command group ``ownbase <name> ...`` (shared between packages);
* ``database(settings, db_url=None)``: the database to work on. ``--db-url``, then
  ``OWNBASE_DATABASE_URL``, else the data dir's embedded PostgreSQL, started for the duration of
  the command (holding the data-dir lock) when no server runs there;
* ``connect(target)`` / ``open_pool(target)``: owner connections through ``ownbase.db.pool``,
  so TLS settings (``sslmode``, ``OWNBASE_DB_SSL_ROOT_CERT``) apply to every command;
  ``async with connection(target) as conn`` closes the connection when the block ends;
* ``run(coroutine)``: asyncio.run, with database errors turned into one clear line;
* ``fail(message, code)``, ``console`` (stderr) for messages.

See docs/cli.md ("Adding a command").
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import importlib
import json
import os
import signal
import socket
import sys
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Coroutine, Iterator, NoReturn, Optional, TypeVar

import asyncpg
import typer
import uvicorn
from rich.console import Console

from ownbase import logs
from ownbase.db.pool import connect as pool_connect
from ownbase.db.pool import create_pool
from ownbase.db.startup import StartupLockTimeout
from ownbase.embedded import EmbeddedError, EmbeddedPostgres, free_port
from ownbase.http.server import uvicorn_http_options
from ownbase.keys import build_keyring
from ownbase.settings import Settings, SettingsError, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="ownbase: your own Supabase-compatible backend.")
console = Console(stderr=True)

# Packages that add commands; each has register(app: typer.Typer) -> None.
COMMAND_MODULES = ("ownbase.db.cli", "ownbase.auth.cli", "ownbase.mail.cli", "ownbase.sms.cli",
                   "ownbase.storage.cli", "ownbase.migrate.cli", "ownbase.dashboard.cli", "ownbase.bridge.cli",
                   "ownbase.ops.cli")

T = TypeVar("T")
_GROUPS: dict[str, typer.Typer] = {}
_registered = False  # command modules are imported by main(), after this module is complete


# --- the surface for command modules -------------------------------------------------------
def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def settings(**overrides: Any) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(**clean)
    except SettingsError as exc:
        fail(str(exc), 2)


def group(name: str, help: str) -> typer.Typer:
    """The Typer of ``ownbase <name>``; the first caller creates it."""
    if name not in _GROUPS:
        _GROUPS[name] = typer.Typer(no_args_is_help=True, help=help)
        app.add_typer(_GROUPS[name], name=name)
    return _GROUPS[name]


@dataclass(frozen=True)
class Target:
    """The database a command works on, with the settings to reach it."""

    url: str
    embedded: bool  # the data dir's embedded PostgreSQL (no extensions, local only)
    settings: Settings


@contextmanager
def database(settings: Settings, db_url: str | None = None) -> Iterator[Target]:
    if db_url:
        yield Target(db_url, False, settings)
        return
    if settings.database_url:
        yield Target(settings.database_url, False, settings)
        return

    emb = embedded_postgres(settings)
    if emb.pgdata.exists() and emb.is_running():
        yield Target(emb.url(), True, settings)  # a running server's: it holds the data-dir lock
        return
    data = Path(settings.data_dir).resolve()
    lock = DataDirLock(data)
    try:
        lock.acquire()
    except RuntimeError as exc:
        fail(str(exc))
    try:
        console.print(f"Starting the embedded PostgreSQL of {data} ...", highlight=False)
        try:
            emb.start()
        except EmbeddedError as exc:
            fail(str(exc))
        try:
            yield Target(emb.url(), True, settings)
        finally:
            emb.stop()
    finally:
        lock.release()


async def connect(target: Target) -> asyncpg.Connection:
    try:
        return await pool_connect(target.url, target.settings)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        fail(f"cannot connect to the database: {exc}")


@asynccontextmanager
async def connection(target: Target) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(target)
    try:
        yield conn
    finally:
        await conn.close()


async def open_pool(target: Target, max_size: int = 2) -> asyncpg.Pool:
    try:
        return await create_pool(target.url, target.settings, min_size=1, max_size=max_size)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        fail(f"cannot connect to the database: {exc}")


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's async work; database errors become one clear line, not a traceback."""
    try:
        return asyncio.run(work)
    except asyncpg.UndefinedTableError as exc:
        fail(f"{exc} - ownbase's schema is not in this database yet: run `ownbase start` (or "
             "`ownbase db migrate`) against it once")
    except asyncpg.PostgresError as exc:
        fail(f"database error: {type(exc).__name__}: {exc}")


# --- data dir -------------------------------------------------------------------------------
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

    def is_held(self) -> bool:
        """Whether some process (a running `ownbase start`, a command) holds the lock now."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we may have taken
        return False


def embedded_postgres(settings: Settings) -> Any:
    return EmbeddedPostgres(Path(settings.data_dir).resolve() / "postgres")


def _db_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url

    emb = embedded_postgres(settings)
    if not emb.state_file.exists():
        emb.root.mkdir(parents=True, exist_ok=True)
        emb.state_file.write_text(json.dumps({"port": free_port()}))
    return str(emb.url())


def _server_file(settings: Settings) -> Path:
    """Written while `ownbase start` serves: where that server listens, for `ownbase keys`."""
    return Path(settings.data_dir).resolve() / "server.json"


def _running_api_url(settings: Settings) -> str | None:
    data = Path(settings.data_dir).resolve()
    try:
        info = json.loads(_server_file(settings).read_text())
        url = str(info["api_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no server
    # A server killed without cleaning up left the file behind but no longer holds the lock.
    return url if DataDirLock(data).is_held() else None


def key_info(settings: Settings, api_url: str | None = None) -> dict[str, str]:
    keys = build_keyring(settings)
    api_url = api_url or settings.api_url
    return {
        "api_url": api_url,
        "anon_key": keys.anon_key,
        "service_role_key": keys.service_role_key,
        "jwks_url": f"{api_url}/auth/v1/.well-known/jwks.json",
        "db_url": _db_url(settings),
        "data_dir": str(Path(settings.data_dir).resolve()),
        "jwt_algorithm": keys.signing_algorithm,
    }


# --- ownbase start ----------------------------------------------------------------------------
def _export(**values: Any) -> None:
    """Pass CLI choices to uvicorn workers, which rebuild settings from the environment."""
    for key, value in values.items():
        if value is not None:
            os.environ[f"OWNBASE_{key.upper()}"] = str(value)


def _reserve_port(host: str, port: int) -> socket.socket | None:
    """Bind the API port before anything else, so a taken port is one clear line and a non-zero
    exit, not a banner with keys followed by a failure. The socket stays bound (not listening)
    until uvicorn binds, so no other program takes the port meanwhile; with SO_REUSEADDR on both
    (uvicorn sets it too) uvicorn's bind is not refused by this one."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        fail(f"port {port} on {host} {reason} (another ownbase, or `supabase start`?): stop "
             f"that server or choose another port with --port N (or OWNBASE_PORT)")
    return sock


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Everything `ownbase start` tells uvicorn, in one place."""
    from ownbase.realtime.wsserver import UVICORN_WS  # noqa: PLC0415 - only `ownbase start` needs the realtime websocket protocol; keeps other commands fast

    return dict(
        app="ownbase.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        **uvicorn_http_options(settings),  # httptools with header size and time bounds
        # uvicorn's sans-I/O websockets protocol, plus realtime's frame extension (wsserver.py)
        ws=UVICORN_WS,
        # Realtime: no permessage-deflate. Its zlib state costs ~250 KB per socket and CPU on
        # every frame (Supabase Realtime does not compress either); see docs/realtime.md.
        ws_per_message_deflate=False,
        # No WebSocket pings from the server: like Phoenix servers (Supabase Realtime), liveness
        # is the client's heartbeat (OWNBASE_REALTIME_HEARTBEAT_TIMEOUT). A ping costs a timer,
        # a frame and a pong to parse per socket every 20 s (docs/realtime.md, Performance).
        ws_ping_interval=None,
        proxy_headers=False,  # X-Forwarded-For is handled by OWNBASE_TRUSTED_PROXIES
        timeout_graceful_shutdown=20,
        log_config=None,
        access_log=False,
    )


@app.command()
def start(
    data_dir: Optional[Path] = typer.Option(None, help="Data folder (default ./.ownbase)."),
    port: Optional[int] = typer.Option(None, help="HTTP port (default 54321)."),
    host: Optional[str] = typer.Option(None, help="Listen address (default 127.0.0.1)."),
    workers: Optional[int] = typer.Option(None, help="Processes sharing the port (needs Redis if > 1)."),
) -> None:
    """Start ownbase (embedded PostgreSQL unless OWNBASE_DATABASE_URL is set)."""
    cfg = settings(data_dir=data_dir, port=port, host=host, workers=workers)
    if cfg.workers > 1 and not cfg.redis_url:
        fail("--workers > 1 needs OWNBASE_REDIS_URL: rate limits, realtime fan-out and presence "
             "must be shared between processes.", 2)
    from ownbase.functions.config import FunctionsConfigError, load_functions  # noqa: PLC0415 - only `start` checks it

    try:  # a broken functions table stops here, named, not as a traceback after the banner
        load_functions(cfg.functions, cfg.data_dir)
    except FunctionsConfigError as exc:
        fail(f"invalid settings:\n  OWNBASE_FUNCTIONS: {exc}", 2)
    logs.configure(cfg.log_level, cfg.log_format)
    data = Path(cfg.data_dir).resolve()
    _export(data_dir=data, port=cfg.port, host=cfg.host, workers=cfg.workers)
    lock = DataDirLock(data)
    try:
        lock.acquire()
    except RuntimeError as exc:
        fail(str(exc))
    try:
        reserved = _reserve_port(cfg.host, cfg.port)
    except typer.Exit:
        lock.release()
        raise
    embedded = None
    server_file = _server_file(cfg)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # A stop signal during start-up (initdb, migrations) still stops the embedded server below.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        if not cfg.database_url:
            embedded = embedded_postgres(cfg)
            try:
                embedded.start()
            except EmbeddedError as exc:
                fail(str(exc))
            os.environ["OWNBASE_DATABASE_URL"] = embedded.url()
            cfg = settings(database_url=embedded.url(), data_dir=data)
        _prepare(cfg)
        from ownbase.app import PREPARED_ENV  # noqa: PLC0415 - only `ownbase start` needs the app (every service); keeps other commands fast

        os.environ[PREPARED_ENV] = "1"  # done once here: the workers skip it
        server_file.write_text(json.dumps({"api_url": cfg.api_url, "pid": os.getpid()}))
        _banner(cfg)

        # uvicorn re-raises the stop signal after its graceful shutdown; with no-op handlers in
        # place that re-raise returns here, so the embedded PostgreSQL is stopped cleanly below.
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, lambda *_: None)
        if reserved is not None:
            reserved.close()
        uvicorn.run(**uvicorn_options(cfg))
    except KeyboardInterrupt:
        console.print("interrupted during start-up; stopping")
        raise typer.Exit(130) from None
    finally:
        if reserved is not None:
            reserved.close()
        server_file.unlink(missing_ok=True)
        if embedded is not None:
            embedded.stop()
        lock.release()


def _prepare(cfg: Settings) -> None:
    from ownbase.app import authenticator_password, prepare_database  # noqa: PLC0415 - only `ownbase start` needs the app (every service); keeps other commands fast

    keys = build_keyring(cfg)
    password = authenticator_password(cfg, keys.derive_secret("db-authenticator"))
    try:
        asyncio.run(prepare_database(cfg, cfg.database_url, password))
    except StartupLockTimeout as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - report, don't trace
        fail(f"could not prepare the database: {exc}")


def _banner(cfg: Settings) -> None:
    info = key_info(cfg)
    if not sys.stdout.isatty():
        # Off a terminal the banner ends in log files (Docker, CloudWatch): no secret key there.
        info["service_role_key"] = "(not printed off a terminal; run `ownbase keys`)"
    out = Console()
    out.print("[bold green]ownbase is running.[/bold green]")
    for label, key in (("API URL", "api_url"), ("anon key", "anon_key"),
                       ("service_role key", "service_role_key"), ("JWKS URL", "jwks_url"),
                       ("DB URL", "db_url"), ("Data dir", "data_dir")):
        out.print(f"{label:>17}: {info[key]}", soft_wrap=True, highlight=False)
    if not cfg.auth_autoconfirm:
        out.print("Sign-ups must confirm their email: read the mail with `ownbase mail list` (link, or "
                  "the 6-digit code for verifyOtp), or set OWNBASE_AUTH_AUTOCONFIRM=true for development.",
                  soft_wrap=True, highlight=False, markup=False)
    if cfg.dashboard:  # a fresh install: say how to get into /dashboard
        from ownbase.dashboard.cli import first_admin_hint  # noqa: PLC0415 - breaks the cycle ownbase.cli <-> ownbase.dashboard.cli

        hint = first_admin_hint(cfg)
        if hint:
            out.print(hint, soft_wrap=True, markup=False)
    sys.stdout.flush()


# `ownbase keys` prints the keys; its sub-commands (`ownbase keys rotate`) come from command modules.
_GROUPS["keys"] = typer.Typer(help="Print the API URL, API keys, JWKS URL and database URL; `rotate` the signing key.")
app.add_typer(_GROUPS["keys"], name="keys")


@_GROUPS["keys"].callback(invoke_without_command=True)
def keys(
    context: typer.Context,
    data_dir: Optional[Path] = typer.Option(None, help="Data folder (default ./.ownbase)."),
    port: Optional[int] = typer.Option(None, help="Report URLs for this HTTP port (default: the running server's)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Print the API URL, API keys, JWKS URL and database URL of a data dir."""
    if context.invoked_subcommand is not None:
        return
    cfg = settings(data_dir=data_dir, port=port)
    info = key_info(cfg, None if port is not None else _running_api_url(cfg))
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        for key, value in info.items():
            sys.stdout.write(f"{key}: {value}\n")


def register_commands() -> typer.Typer:
    """Let each package add its commands (once); returns the root app."""
    global _registered
    if not _registered:
        _registered = True
        for module in COMMAND_MODULES:
            importlib.import_module(module).register(app)
    return app


def main() -> None:
    logs.quiet_third_party_warnings()
    register_commands()()


if __name__ == "__main__":
    main()
