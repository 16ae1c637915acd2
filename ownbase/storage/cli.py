"""`ownbase storage sweep`: remove orphaned blobs and expired TUS uploads now (the server also
does it every minute)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Optional

import typer


async def run_sweep(stale_seconds: int, bucket: str | None, data_dir: str | None) -> int:
    import asyncpg

    from ownbase.cli import _db_url, _settings
    from ownbase.storage.backends import build_backend
    from ownbase.storage.service import sweep

    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    settings = _settings(**overrides)
    backend = build_backend(settings)
    await backend.start()
    pool = await asyncpg.create_pool(_db_url(settings), min_size=1, max_size=2)
    try:
        from ownbase.storage import tus

        expired = await tus.expire(pool, backend)
        return expired + await sweep(pool, backend, stale_seconds, bucket)
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
                                          help="Uploads registered longer ago than this without a row are dead."),
        bucket: Optional[str] = typer.Option(None, "--bucket", help="Only this storage bucket."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
    ) -> None:
        """Delete blobs that no object row references, and expired resumable uploads."""
        removed = asyncio.run(run_sweep(stale_seconds, bucket, data_dir))
        sys.stdout.write(f"removed {removed} orphaned blob(s) / expired upload(s)\n")
