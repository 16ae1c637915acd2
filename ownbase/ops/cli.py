"""`ownbase keys rotate`, `ownbase backup`, `ownbase restore`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ownbase import cli


def register(app: typer.Typer) -> None:
    keys = cli.group("keys", "Signing keys.")

    @keys.command("rotate")
    def rotate_cmd(
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (settings mode: the values to set)."),
    ) -> None:
        """Advance a signing-key rotation by one step (create the next key, or make it the signing key)."""
        from ownbase.ops.keyrotation import as_json as step_json  # noqa: PLC0415 - loaded when the command runs
        from ownbase.ops.keyrotation import describe, rotate  # noqa: PLC0415 - loaded when the command runs

        cfg = cli.settings(data_dir=data_dir)
        try:
            step = rotate(cfg)
        except ValueError as exc:
            cli.fail(str(exc))
        if as_json:
            sys.stdout.write(json.dumps(step_json(step)) + "\n")
            return
        cli.console.print(describe(step, not cfg.jwt_private_key), soft_wrap=True, highlight=False, markup=False)
        for name, value in step.settings.items():
            sys.stdout.write(f"{name}={json.dumps(value)}\n")

    @app.command("backup")
    def backup_cmd(
        to: str = typer.Option(..., "--to", help="Folder, or s3://bucket/prefix (S3 settings as for storage)."),
        objects: Optional[bool] = typer.Option(None, "--objects/--no-objects",
                                               help="Copy the objects' bytes (default: yes for the local backend)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Back up the database (pg_dump, one snapshot) and storage (manifest, and the objects)."""
        from ownbase.ops.backup import BackupError, backup  # noqa: PLC0415 - loaded when the command runs

        cfg = cli.settings(data_dir=data_dir)
        with cli.database(cfg, db_url) as target:
            try:
                where = cli.run(backup(lambda: cli.connect(target), target.url, cfg, to, objects))
            except BackupError as exc:
                cli.fail(str(exc))
        sys.stdout.write(where + "\n")

    @app.command("restore")
    def restore_cmd(
        source: str = typer.Option(..., "--from", help="A backup folder (or the folder holding them: the newest), or s3://bucket/prefix."),
        force: bool = typer.Option(False, "--force", help="Restore even if the database has ownbase's schemas."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Restore a backup into a fresh database and the configured storage backend."""
        from ownbase.ops.backup import BackupError, restore  # noqa: PLC0415 - loaded when the command runs

        cfg = cli.settings(data_dir=data_dir)
        with cli.database(cfg, db_url) as target:
            try:
                report = cli.run(restore(lambda: cli.connect(target), target.url, cfg, source, force))
            except BackupError as exc:
                cli.fail(str(exc))
        sys.stdout.write(json.dumps(report) + "\n")
        if report["objects_missing"]:
            cli.fail(f"{report['objects_missing']} object(s) of the manifest are not in the storage backend")
