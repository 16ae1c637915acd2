"""``ownbase db migrate`` and ``ownbase gen types typescript``.

The logic lives in ``ownbase.db.dbmigrate`` and ``ownbase.db.typegen``; these commands only find
the database through the CLI surface (``--db-url``, ``OWNBASE_DATABASE_URL``, or the data dir's
embedded server, started for the duration of the command when no server runs) and print.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ownbase import cli
from ownbase.db import dbmigrate, typegen
from ownbase.db.migrate import apply_migrations
from ownbase.db.startup import StartupLockTimeout, startup_lock


def _waiting() -> None:
    cli.console.print("waiting for another ownbase to finish start-up (migrations, roles) ...")


async def _migrate(target: cli.Target, directory: Path, dry_run: bool) -> int:
    async with cli.connection(target) as conn:
        # ownbase's own schema first: app migrations use auth.uid(), the request roles, ... Under
        # the start-up lock, so a server starting against the same database meanwhile is waited for.
        try:
            async with startup_lock(conn, target.settings.db_startup_lock_timeout, _waiting):
                await apply_migrations(conn)
        except StartupLockTimeout as exc:
            cli.fail(str(exc))
        if dry_run:
            plan = await dbmigrate.plan(conn, directory)
            for name in plan.ignored:
                cli.console.print(f"Skipping {name} (file name must match <timestamp>_name.sql)", markup=False)
            for m in plan.pending:
                sys.stdout.write(f"would apply {m.filename}\n")
            sys.stdout.write(f"{len(plan.pending)} pending, {len(plan.already)} already applied\n")
            return 0
        try:
            plan = await dbmigrate.migrate(
                conn, directory, on_apply=lambda m: cli.console.print(f"Applying migration {m.filename}..."))
        except dbmigrate.MigrationFailed as exc:
            cli.console.print(f"[red]error:[/red] migration {exc.migration.filename} failed and was rolled "
                              "back (earlier migrations stay applied):", soft_wrap=True)
            cli.console.print(exc.message, markup=False, soft_wrap=True)
            if exc.extension:
                cli.console.print(dbmigrate.extension_help(exc.extension, target.embedded), markup=False,
                                  soft_wrap=True)
            return 1
        for name in plan.ignored:
            cli.console.print(f"Skipped {name} (file name must match <timestamp>_name.sql)", markup=False)
        sys.stdout.write(f"Applied {len(plan.pending)} migration(s); "
                         f"{len(plan.already)} were already applied.\n")
        return 0


async def _typescript(target: cli.Target, schemas: list[str]) -> int:
    async with cli.connection(target) as conn:
        found = await typegen.existing_schemas(conn, schemas)
        missing = [s for s in schemas if s not in found]
        if missing:
            cli.console.print(f"[red]error:[/red] schema(s) not found: {', '.join(missing)}")
            return 2
        sys.stdout.write(await typegen.generate(conn, schemas))
        return 0


def register(app: typer.Typer) -> None:
    db_app = cli.group("db", "Database tools.")
    types_app = typer.Typer(no_args_is_help=True, help="Generate types from the database schema.")
    cli.group("gen", "Code generation.").add_typer(types_app, name="types")

    @db_app.command("migrate")
    def migrate(
        directory: Path = typer.Argument(Path("supabase/migrations"),
                                         help="Folder of <version>_<name>.sql files (default supabase/migrations)."),
        data_dir: Optional[Path] = typer.Option(None, help="Data folder of the embedded server (default ./.ownbase)."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Only list the migrations that would run."),
    ) -> None:
        """Apply an app's SQL migrations in order, each in a transaction, recorded like the Supabase CLI."""
        if not directory.is_dir():
            cli.fail(f"migrations folder {directory} does not exist", 2)
        try:
            dbmigrate.discover(directory)
        except ValueError as exc:
            cli.fail(str(exc), 2)
        with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
            code = cli.run(_migrate(target, directory, dry_run))
        raise typer.Exit(code)

    @types_app.command("typescript")
    def typescript(
        schema: List[str] = typer.Option(["public"], "--schema", "-s", help="Schema(s) to include (repeatable)."),
        data_dir: Optional[Path] = typer.Option(None, help="Data folder of the embedded server (default ./.ownbase)."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Print TypeScript definitions of the schema, as `supabase gen types typescript` does."""
        schemas: list[str] = []
        for item in schema:
            schemas += [s.strip() for s in item.split(",") if s.strip()]
        with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
            code = cli.run(_typescript(target, schemas))
        raise typer.Exit(code)
