"""Cached catalog facts the change dispatcher needs: table shape (columns, primary key, RLS,
replica identity), per-role column privileges, the SELECT policies that apply to a role, and
whether a role bypasses RLS. Each is refreshed every few seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ownbase.context import Context

INFO_TTL = 5.0


@dataclass
class TableInfo:
    oid: int
    schema: str
    name: str
    rls: bool
    replident: str
    columns: list[tuple[str, str]]  # (name, pg type name) in attribute order
    pk: list[str]
    loaded: float = field(default_factory=time.monotonic)


_INFO_SQL = """
select c.oid, n.nspname, c.relname, c.relrowsecurity, c.relreplident::text as replident,
  coalesce((select json_agg(json_build_array(a.attname, t.typname) order by a.attnum)
            from pg_attribute a join pg_type t on t.oid = a.atttypid
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as cols,
  coalesce((select json_agg(a.attname order by a.attnum)
            from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = c.oid and i.indisprimary), '[]') as pk
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.oid = $1
"""

_PRIV_SQL = """
select a.attname from pg_attribute a
where a.attrelid = $2 and a.attnum > 0 and not a.attisdropped
  and has_column_privilege($1, a.attrelid, a.attnum, 'SELECT')
"""

_POLICIES_SQL = """
select p.polpermissive, pg_get_expr(p.polqual, p.polrelid) as qual
from pg_policy p
where p.polrelid = $1 and p.polcmd in ('r', '*')
  and (0 = any(p.polroles)
       or exists (select 1 from unnest(p.polroles) r where r <> 0 and pg_has_role($2, r, 'MEMBER')))
"""


class Catalog:
    """Cached table metadata and per-role column privileges (refreshed every few seconds)."""

    def __init__(self, ctx: "Context") -> None:
        self.ctx = ctx
        self._tables: dict[int, TableInfo] = {}
        self._privs: dict[tuple[str, int], tuple[float, frozenset[str]]] = {}
        self._bypass: dict[str, tuple[float, bool]] = {}
        self._policies: dict[tuple[str, int], tuple[float, str | None]] = {}

    async def table(self, oid: int) -> TableInfo | None:
        info = self._tables.get(oid)
        if info is not None and time.monotonic() - info.loaded < INFO_TTL:
            return info
        row = await self.ctx.db.owner.fetchrow(_INFO_SQL, oid)
        if row is None:
            self._tables.pop(oid, None)
            return None
        info = TableInfo(row["oid"], row["nspname"], row["relname"], row["relrowsecurity"],
                         row["replident"], [(c[0], c[1]) for c in row["cols"]], list(row["pk"]))
        self._tables[oid] = info
        return info

    async def readable(self, role: str, oid: int) -> frozenset[str]:
        hit = self._privs.get((role, oid))
        if hit is not None and time.monotonic() - hit[0] < INFO_TTL:
            return hit[1]
        rows = await self.ctx.db.owner.fetch(_PRIV_SQL, role, oid)
        cols = frozenset(r["attname"] for r in rows)
        self._privs[(role, oid)] = (time.monotonic(), cols)
        return cols

    async def policy_predicate(self, role: str, oid: int) -> str | None:
        """The SELECT policies that apply to ``role`` on the table, combined as PostgreSQL does
        (permissive ones OR'ed, restrictive ones AND'ed); None when no permissive policy applies."""
        hit = self._policies.get((role, oid))
        if hit is not None and time.monotonic() - hit[0] < INFO_TTL:
            return hit[1]
        rows = await self.ctx.db.owner.fetch(_POLICIES_SQL, oid, role)
        permissive = [r["qual"] for r in rows if r["polpermissive"]]
        restrictive = [r["qual"] for r in rows if not r["polpermissive"]]
        predicate: str | None = None
        if permissive:
            # A policy without USING grants nothing to SELECT here: count it as false (never leak).
            perm = " or ".join(f"coalesce(({q}), false)" if q else "false" for q in permissive)
            parts = [f"({perm})"] + [f"coalesce(({q}), false)" if q else "true" for q in restrictive]
            predicate = " and ".join(parts)
        self._policies[(role, oid)] = (time.monotonic(), predicate)
        return predicate

    async def bypasses_rls(self, role: str) -> bool:
        hit = self._bypass.get(role)
        if hit is not None and time.monotonic() - hit[0] < INFO_TTL:
            return hit[1]
        value = bool(await self.ctx.db.owner.fetchval(
            "select rolbypassrls from pg_roles where rolname = $1", role))
        self._bypass[role] = (time.monotonic(), value)
        return value

