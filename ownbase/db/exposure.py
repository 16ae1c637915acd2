"""Start-up advice: the two ways a Supabase project most often leaks data.

* a table in an exposed schema, reachable by ``anon``/``authenticated``, without row level
  security: anyone with the (public) anon key reads and changes every row;
* a ``SECURITY DEFINER`` function in an exposed schema that ``anon`` may execute: it runs with its
  owner's rights, past every policy.
"""

from __future__ import annotations

import asyncpg

MAX_LINES = 20  # per kind; a schema with hundreds of tables gets a count, not a flood

_TABLES = """
select n.nspname as schema, c.relname as name
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'p') and not c.relrowsecurity
  and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
  and (has_table_privilege('anon', c.oid, 'select,insert,update,delete')
       or has_table_privilege('authenticated', c.oid, 'select,insert,update,delete'))
order by 1, 2
"""

_FUNCTIONS = """
select n.nspname as schema, p.proname as name, pg_get_function_identity_arguments(p.oid) as args
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = any($1::text[]) and p.prosecdef and p.prokind in ('f', 'p')
  and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
  and has_function_privilege('anon', p.oid, 'execute')
order by 1, 2, 3
"""


def _cap(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_LINES:
        return lines
    return lines[:MAX_LINES] + [f"... and {len(lines) - MAX_LINES} more {what}"]


async def exposure_warnings(conn: asyncpg.Connection, schemas: list[str]) -> list[str]:
    """One line per risky table or function in the schemas the API exposes."""
    if not await conn.fetchval("select count(*) = 2 from pg_roles where rolname in ('anon', 'authenticated')"):
        return []
    tables = [
        f'table {r["schema"]}.{r["name"]} has row level security disabled: anyone with the anon key '
        f'can read and change all its rows (alter table "{r["schema"]}"."{r["name"]}" enable row level security)'
        for r in await conn.fetch(_TABLES, schemas)
    ]
    functions = [
        f'function {r["schema"]}.{r["name"]}({r["args"]}) is SECURITY DEFINER and executable by anon: '
        "it runs with its owner's rights, past row level security (revoke execute from anon, "
        "or make it security invoker)"
        for r in await conn.fetch(_FUNCTIONS, schemas)
    ]
    return _cap(tables, "tables without row level security") + _cap(functions, "SECURITY DEFINER functions")
