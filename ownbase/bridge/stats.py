"""Bridge counters: summed in memory, added to PostgreSQL per minute so every process and every
restart sees the same numbers (`ownbase bridge status`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("ownbase.bridge")

MAX_KEYS = 10_000  # distinct counters held between flushes; beyond, resources fold into "(other)"
KINDS = ("local", "upstream", "fallback", "lazy_copy", "upstream_error", "mirrored")

_UPSERT = """
insert into ownbase_bridge.counters (minute, service, resource, kind, n)
select * from unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[])
on conflict (minute, service, resource, kind) do update set n = counters.n + excluded.n
"""


def _minute() -> int:
    return int(time.time()) // 60  # cheap on the request path; a datetime only at flush


class Stats:
    def __init__(self) -> None:
        self.pending: Counter[tuple[int, str, str, str]] = Counter()

    def add(self, service: str, resource: str, kind: str, n: int = 1) -> None:
        # Bounded: keys are (minute, service, configured-or-requested resource, kind) and flushed
        # every few seconds; resource names are capped so odd paths cannot grow the map.
        key = (_minute(), service, resource[:128], kind)
        if key not in self.pending and len(self.pending) >= MAX_KEYS:
            key = (key[0], service, "(other)", kind)
        self.pending[key] += n

    async def flush(self, pool: Any) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, Counter()
        cols: list[list[Any]] = [[], [], [], [], []]
        for (minute, service, resource, kind), n in batch.items():
            when = datetime.fromtimestamp(minute * 60, timezone.utc)
            for col, value in zip(cols, (when, service, resource, kind, n)):
                col.append(value)
        try:
            await pool.execute(_UPSERT, *cols)
        except Exception as exc:  # noqa: BLE001 - keep the numbers for the next flush
            log.warning("could not store bridge counters: %s", exc)
            self.pending.update(batch)

    async def run(self, pool: Any, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.flush(pool)
