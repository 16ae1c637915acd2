"""`ownbase bridge status [--json]`: what the bridge served where over the last hour."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import typer

from ownbase import cli
from ownbase.bridge.status import collect, render


async def _report(target: cli.Target, minutes: int) -> dict[str, Any]:
    async with cli.connection(target) as conn:
        return await collect(conn, minutes)


def _print(report: dict[str, Any], as_json: bool) -> None:
    sys.stdout.write((json.dumps(report, default=str) if as_json else render(report)) + "\n")


def register(app: typer.Typer, **_: Any) -> None:
    bridge = cli.group("bridge", "Bridge mode (in front of a live Supabase project).")

    @bridge.command("status")
    def status_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        minutes: int = typer.Option(60, min=1, max=7 * 24 * 60, help="Window in minutes."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Requests served locally / upstream, fallbacks, lazy copies, mirror queue, upstream errors."""
        with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
            _print(cli.run(_report(target, minutes)), as_json)
