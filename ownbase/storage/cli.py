"""`ownbase storage sweep`: remove orphaned blobs, expired TUS uploads and killed writers'
leftovers now (the server also does it every minute), and say how many of each."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ownbase import cli
from ownbase.storage.sweeper import SweepReport, sweep_all


async def run_sweep(target: cli.Target, stale_seconds: int, bucket: str | None) -> SweepReport:
    # Imported here: every `ownbase` command registers this module, only this one needs storage.
    from ownbase.storage.backends import build_backend

    backend = build_backend(target.settings)
    await backend.start()
    try:
        pool = await cli.open_pool(target)
        try:
            return await sweep_all(pool, backend, stale_seconds, bucket)
        finally:
            await pool.close()
    finally:
        await backend.close()


def register(app: typer.Typer) -> None:
    storage_app = cli.group("storage", "Storage tools.")

    @storage_app.command("sweep")
    def sweep_cmd(
        stale_seconds: int = typer.Option(24 * 3600, "--stale-seconds", min=0,
                                          help="Uploads, temp files and multipart uploads older than this "
                                          "without a row are dead."),
        bucket: Optional[str] = typer.Option(None, "--bucket", help="Only this storage bucket."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Delete blobs no object row references, expired resumable uploads, and stale temp files /
        incomplete S3 multipart uploads of killed writers."""
        with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
            report = cli.run(run_sweep(target, stale_seconds, bucket))
        sys.stdout.write(report.describe() + "\n")
