"""`ownbase storage sweep`: remove orphaned blobs and expired TUS uploads now (the server also
does it every minute)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ownbase import cli


async def run_sweep(target: cli.Target, stale_seconds: int, bucket: str | None) -> int:
    # Imported here: every `ownbase` command registers this module, only this one needs storage.
    from ownbase.storage import tus
    from ownbase.storage.backends import build_backend
    from ownbase.storage.service import sweep

    backend = build_backend(target.settings)
    await backend.start()
    try:
        pool = await cli.open_pool(target)
        try:
            expired = await tus.expire(pool, backend)
            return expired + await sweep(pool, backend, stale_seconds, bucket)
        finally:
            await pool.close()
    finally:
        await backend.close()


def register(app: typer.Typer) -> None:
    storage_app = cli.group("storage", "Storage tools.")

    @storage_app.command("sweep")
    def sweep_cmd(
        stale_seconds: int = typer.Option(24 * 3600, "--stale-seconds", min=0,
                                          help="Uploads registered longer ago than this without a row are dead."),
        bucket: Optional[str] = typer.Option(None, "--bucket", help="Only this storage bucket."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Delete blobs that no object row references, and expired resumable uploads."""
        with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
            removed = cli.run(run_sweep(target, stale_seconds, bucket))
        sys.stdout.write(f"removed {removed} orphaned blob(s) / expired upload(s)\n")
