"""postgres_changes bindings: what one channel asked for (event, schema, table, filter, select),
parsed and validated at join, and matched against captured changes."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from ownbase.realtime import filters

EVENTS = ("*", "INSERT", "UPDATE", "DELETE")


class BindingError(ValueError):
    pass


@dataclass(frozen=True)
class Binding:
    id: int
    event: str
    schema: str
    table: str | None
    filter: str | None
    select: tuple[str, ...] | None
    conditions: tuple[filters.Condition, ...]
    echo: dict[str, Any]
    filter_columns: frozenset[str] = frozenset()  # the columns the conditions read
    key: str = ""  # event|schema|table|filter|select: equal keys match exactly the same changes

    def prefilter(self, schema: str, table: str, op: str, row: dict[str, Any] | None) -> bool:
        """The cheap part: event, schema, table and the comparison conditions. Pattern
        conditions wait for ``match_patterns`` (after RLS), so a row the subscriber may not see
        costs it no pattern matching."""
        if self.event != "*" and self.event != op:
            return False
        if self.schema != "*" and self.schema != schema:
            return False
        if self.table is not None and self.table != "*" and self.table != table:
            return False
        return all(c.matches(row) for c in self.conditions if not c.expensive)

    def match_patterns(self, row: dict[str, Any] | None) -> bool:
        return all(c.matches(row) for c in self.conditions if c.expensive)

    def matches(self, schema: str, table: str, op: str, row: dict[str, Any] | None) -> bool:
        return self.prefilter(schema, table, op, row) and self.match_patterns(row)


def parse_binding(raw: Any) -> Binding:
    if not isinstance(raw, dict):
        raise BindingError("postgres_changes entries must be objects")
    event = str(raw.get("event") or "*").upper()
    if event not in EVENTS:
        raise BindingError(f"invalid event {raw.get('event')!r}")
    schema = raw.get("schema") or "public"
    table = raw.get("table") or None
    flt = raw.get("filter") or None
    select = raw.get("select")
    if not isinstance(schema, str) or (table is not None and not isinstance(table, str)):
        raise BindingError("schema and table must be strings")
    if flt is not None and not isinstance(flt, str):
        raise BindingError("filter must be a string")
    if select is not None and (not isinstance(select, list) or not all(isinstance(s, str) for s in select)):
        raise BindingError("select must be a list of column names")
    conditions = filters.parse(flt) if flt else ()
    key = "|".join([event, schema, table or "", flt or "", ",".join(select or [])])
    ident = zlib.crc32(key.encode()) & 0x7FFFFFFF
    echo: dict[str, Any] = {k: v for k, v in raw.items() if k in ("event", "schema", "table", "filter", "select")}
    echo["id"] = ident
    return Binding(ident, event, schema, table, flt, tuple(select) if select else None, conditions, echo,
                   frozenset(c.column for c in conditions), key)
