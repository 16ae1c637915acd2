"""`ownbase sms list`: read the SMS outbox (what the console backend "sent")."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import typer

from ownbase import cli

_OUTBOX_SQL = """
select id, created_at, backend, to_number, kind, status, message_id, body
from ownbase.sms_outbox where $1::text is null or to_number = $1
order by id desc limit $2
"""


async def fetch(target: cli.Target, to: str | None, limit: int) -> list[dict[str, Any]]:
    async with cli.connection(target) as conn:
        rows = await conn.fetch(_OUTBOX_SQL, to, limit)
    return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in reversed(rows)]


def register(app: typer.Typer) -> None:
    sms_app = cli.group("sms", "SMS outbox.")

    @sms_app.command("list")
    def list_sms(
        to: Optional[str] = typer.Option(None, "--to", help="Only messages to this number (E.164)."),
        limit: int = typer.Option(20, "--limit", min=1, help="Newest N messages."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (includes texts)."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """List text messages in the outbox (the console backend's SMS catcher)."""
        number = "+" + to.replace(" ", "").lstrip("+") if to else None
        with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
            rows = cli.run(fetch(target, number, limit))
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        for r in rows:
            sys.stdout.write(f"#{r['id']} {r['created_at']} [{r['backend']}/{r['status']}] "
                             f"to={r['to_number']} kind={r['kind']}: {r['body']}\n")
