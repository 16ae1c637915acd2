"""Resume points on the target (``ownbase.migrate_progress``) and the JSON report of each step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

console = Console(stderr=True)


class StepError(Exception):
    """A step cannot go on; the message says why and what to do (exit code 2 unless given)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code

BOOKKEEPING = """
create schema if not exists ownbase;
create table if not exists ownbase.migrate_progress (
  step text not null,
  item text not null,
  info jsonb not null default '{}',
  done_at timestamptz not null default now(),
  primary key (step, item)
)"""


async def ensure(conn: asyncpg.Connection) -> None:
    await conn.execute(BOOKKEEPING)


async def done_items(conn: asyncpg.Connection, step: str) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch("select item, info from ownbase.migrate_progress where step = $1", step)
    return {r["item"]: json.loads(r["info"]) for r in rows}


async def mark(conn: asyncpg.Connection, step: str, item: str, info: dict[str, Any] | None = None) -> None:
    await conn.execute(
        """insert into ownbase.migrate_progress (step, item, info) values ($1, $2, $3::jsonb)
           on conflict (step, item) do update set info = excluded.info, done_at = now()""",
        step, item, json.dumps(info or {}, default=str))


def bar(bytes_mode: bool = False) -> Progress:
    """A rich progress display with rate and ETA (rows/s or bytes/s)."""
    rate = TransferSpeedColumn() if bytes_mode else TextColumn("{task.fields[rate]}")
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), rate,
                    TimeRemainingColumn(), console=console, transient=False)


def write_report(path: Path | None, step: str, body: dict[str, Any]) -> None:
    if path is None:
        return
    path.write_text(json.dumps({"step": step, **body}, indent=2, default=str) + "\n")
