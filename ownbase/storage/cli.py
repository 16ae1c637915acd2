"""`ownbase storage sweep`: remove orphaned blobs, expired TUS uploads and killed writers'
leftovers now (the server also does it every minute), and say how many of each."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Optional

import asyncpg
import typer

from ownbase.storage.backends import build_backend
from ownbase.storage.sweeper import SweepReport, sweep_all


async def run_sweep(stale_seconds: int, bucket: str | None, data_dir: str | None) -> SweepReport:
    # Imported here: ownbase.cli imports this module while it registers commands.
    from ownbase.cli import _db_url, _settings

    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    settings = _settings(**overrides)
    backend = build_backend(settings)
    await backend.start()
    pool = await asyncpg.create_pool(_db_url(settings), min_size=1, max_size=2)
    try:
        return await sweep_all(pool, backend, stale_seconds, bucket)
    finally:
        await pool.close()
        await backend.close()


def register(app: typer.Typer, db_app: typer.Typer, gen_app: typer.Typer, mail_app: typer.Typer,
             auth_app: typer.Typer) -> None:
    storage_app = typer.Typer(no_args_is_help=True, help="Storage tools.")
    app.add_typer(storage_app, name="storage")

    @storage_app.command("sweep")
    def sweep_cmd(
        stale_seconds: int = typer.Option(24 * 3600, "--stale-seconds", min=0,
                                          help="Uploads, temp files and multipart uploads older than this "
                                          "without a row are dead."),
        bucket: Optional[str] = typer.Option(None, "--bucket", help="Only this storage bucket."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
    ) -> None:
        """Delete blobs no object row references, expired resumable uploads, and stale temp files /
        incomplete S3 multipart uploads of killed writers."""
        report = asyncio.run(run_sweep(stale_seconds, bucket, data_dir))
        sys.stdout.write(report.describe() + "\n")
