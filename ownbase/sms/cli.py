"""`ownbase sms list`: read the SMS outbox (what the console backend "sent")."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Optional

import typer


async def fetch(url: str, to: str | None, limit: int) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """select id, created_at, backend, to_number, kind, status, message_id, body
               from ownbase.sms_outbox where $1::text is null or to_number = $1
               order by id desc limit $2""", to, limit)
    finally:
        await conn.close()
    return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in reversed(rows)]


def register(app: typer.Typer, **_: Any) -> None:
    sms_app = typer.Typer(no_args_is_help=True, help="SMS outbox.")
    app.add_typer(sms_app, name="sms")

    @sms_app.command("list")
    def list_sms(
        to: Optional[str] = typer.Option(None, "--to", help="Only messages to this number (E.164)."),
        limit: int = typer.Option(20, "--limit", min=1, help="Newest N messages."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (includes texts)."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
    ) -> None:
        """List text messages in the outbox (the console backend's SMS catcher)."""
        from ownbase.mail.cli import _db_url

        number = None
        if to:
            number = "+" + to.replace(" ", "").lstrip("+")
        rows = asyncio.run(fetch(_db_url(data_dir), number, limit))
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        for r in rows:
            sys.stdout.write(f"#{r['id']} {r['created_at']} [{r['backend']}/{r['status']}] "
                             f"to={r['to_number']} kind={r['kind']}: {r['body']}\n")
