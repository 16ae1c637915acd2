"""`ownbase bridge status [--json]`: what the bridge served where over the last hour."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Optional

import typer

from ownbase.bridge.status import collect, render


async def _report(url: str, minutes: int) -> dict[str, Any]:
    from ownbase.db.pool import connect
    from ownbase.settings import load_settings

    conn = await connect(url, load_settings())
    try:
        return await collect(conn, minutes)
    finally:
        await conn.close()


def _print(report: dict[str, Any], as_json: bool) -> None:
    sys.stdout.write((json.dumps(report, default=str) if as_json else render(report)) + "\n")


def register(app: typer.Typer, **_: Any) -> None:
    from ownbase import cli

    if hasattr(cli, "group"):  # the public command surface (docs/cli.md "Adding a command")
        bridge = cli.group("bridge", "Bridge mode (in front of a live Supabase project).")
    else:
        bridge = typer.Typer(no_args_is_help=True, help="Bridge mode (in front of a live Supabase project).")
        app.add_typer(bridge, name="bridge")

    @bridge.command("status")
    def status_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        minutes: int = typer.Option(60, min=1, max=7 * 24 * 60, help="Window in minutes."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Requests served locally / upstream, fallbacks, lazy copies, mirror queue, upstream errors."""
        if hasattr(cli, "database"):
            with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
                _print(cli.run(_report(target.url, minutes)), as_json)
            return
        settings = cli._settings(data_dir=data_dir)
        url = db_url or settings.database_url or cli.key_info(settings)["db_url"]
        _print(asyncio.run(_report(url, minutes)), as_json)
