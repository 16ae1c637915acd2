"""``ownbase db migrate`` and ``ownbase gen types typescript`` (registered by ownbase/cli.py).

The logic lives in ``ownbase.tables.dbmigrate`` and ``ownbase.tables.typegen``; this module only
finds the database (``--db-url``, ``OWNBASE_DATABASE_URL``, or the embedded server of
``--data-dir``, started for the duration of the command if it is not running) and prints.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer
from rich.console import Console

console = Console(stderr=True)


@contextmanager
def _database(data_dir: Optional[Path], db_url: Optional[str]) -> Iterator[tuple[str, bool]]:
    """Yield (owner URL, is_embedded). Starts the embedded PostgreSQL if needed and stops it after."""
    from ownbase.cli import DataDirLock, _embedded, _settings

    if db_url:
        yield db_url, False
        return
    settings = _settings(data_dir=data_dir)
    if settings.database_url:
        yield settings.database_url, False
        return
    from ownbase.embedded import EmbeddedError

    emb = _embedded(settings)
    if emb.pgdata.exists() and emb.is_running():
        yield emb.url(), True
        return
    lock = DataDirLock(Path(settings.data_dir).resolve())
    try:
        lock.acquire()
    except RuntimeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    try:
        console.print(f"Starting the embedded PostgreSQL of {Path(settings.data_dir).resolve()} ...")
        try:
            emb.start()
        except EmbeddedError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        try:
            yield emb.url(), True
        finally:
            emb.stop()
    finally:
        lock.release()


async def _connect(url: str) -> Any:
    from ownbase.db.pool import connect
    from ownbase.settings import Settings

    return await connect(url, Settings(database_url=url))


def register(app: typer.Typer, db_app: typer.Typer, gen_app: typer.Typer, mail_app: typer.Typer,
             auth_app: typer.Typer) -> None:
    types_app = typer.Typer(no_args_is_help=True, help="Generate types from the database schema.")
    gen_app.add_typer(types_app, name="types")

    @db_app.command("migrate")
    def migrate(
        directory: Path = typer.Argument(Path("supabase/migrations"),
                                         help="Folder of <version>_<name>.sql files (default supabase/migrations)."),
        data_dir: Optional[Path] = typer.Option(None, help="Data folder of the embedded server (default ./.ownbase)."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Only list the migrations that would run."),
    ) -> None:
        """Apply an app's SQL migrations in order, each in a transaction, recorded like the Supabase CLI."""
        from ownbase.tables import dbmigrate

        if not directory.is_dir():
            console.print(f"[red]error:[/red] migrations folder {directory} does not exist")
            raise typer.Exit(2)
        try:
            dbmigrate.discover(directory)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None

        async def run(url: str, embedded: bool) -> int:
            from ownbase.db.migrate import apply_migrations

            try:
                conn = await _connect(url)
            except Exception as exc:  # noqa: BLE001 - report, don't trace
                console.print(f"[red]error:[/red] cannot connect to the database: {exc}")
                return 1
            try:
                # ownbase's own schema first: app migrations use auth.uid(), the request roles, ...
                await apply_migrations(conn)
                if dry_run:
                    plan = await dbmigrate.plan(conn, directory)
                    for name in plan.ignored:
                        console.print(f"Skipping {name} (file name must match <timestamp>_name.sql)", markup=False)
                    for m in plan.pending:
                        sys.stdout.write(f"would apply {m.filename}\n")
                    sys.stdout.write(f"{len(plan.pending)} pending, {len(plan.already)} already applied\n")
                    return 0
                try:
                    plan = await dbmigrate.migrate(
                        conn, directory, on_apply=lambda m: console.print(f"Applying migration {m.filename}..."))
                except dbmigrate.MigrationFailed as exc:
                    console.print(f"[red]error:[/red] migration {exc.migration.filename} failed and was rolled "
                                  "back (earlier migrations stay applied):", soft_wrap=True)
                    console.print(exc.message, markup=False, soft_wrap=True)
                    if exc.extension:
                        console.print(dbmigrate.extension_help(exc.extension, embedded), markup=False,
                                      soft_wrap=True)
                    return 1
                for name in plan.ignored:
                    console.print(f"Skipped {name} (file name must match <timestamp>_name.sql)", markup=False)
                sys.stdout.write(f"Applied {len(plan.pending)} migration(s); "
                                 f"{len(plan.already)} were already applied.\n")
                return 0
            finally:
                await conn.close()

        with _database(data_dir, db_url) as (url, embedded):
            code = asyncio.run(run(url, embedded))
        raise typer.Exit(code)

    @types_app.command("typescript")
    def typescript(
        schema: List[str] = typer.Option(["public"], "--schema", "-s", help="Schema(s) to include (repeatable)."),
        data_dir: Optional[Path] = typer.Option(None, help="Data folder of the embedded server (default ./.ownbase)."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Print TypeScript definitions of the schema, as `supabase gen types typescript` does."""
        from ownbase.tables import typegen

        schemas: list[str] = []
        for item in schema:
            schemas += [s.strip() for s in item.split(",") if s.strip()]

        async def run(url: str) -> int:
            try:
                conn = await _connect(url)
            except Exception as exc:  # noqa: BLE001
                console.print(f"[red]error:[/red] cannot connect to the database: {exc}")
                return 1
            try:
                found = await typegen.existing_schemas(conn, schemas)
                missing = [s for s in schemas if s not in found]
                if missing:
                    console.print(f"[red]error:[/red] schema(s) not found: {', '.join(missing)}")
                    return 2
                sys.stdout.write(await typegen.generate(conn, schemas))
                return 0
            finally:
                await conn.close()

        with _database(data_dir, db_url) as (url, _embedded_db):
            code = asyncio.run(run(url))
        raise typer.Exit(code)
