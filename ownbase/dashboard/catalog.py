"""Table editor queries: list, describe, read rows with PostgREST-style filters, write rows.

Every identifier is quoted by ``idents``; every value is a text parameter cast to the column's
catalog type (so "42" becomes an int, "{1,2}" an int[] and '{"a":1}' a jsonb).
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ownbase.dashboard.idents import BadInput, ident, qualified

HIDDEN_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
             "like": "like", "ilike": "ilike"}
MAX_LIMIT = 500


async def list_tables(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """select n.nspname as schema, c.relname as name, c.relkind::text as kind,
                  c.relrowsecurity as rls,
                  -- live-row statistics are current within a second or so; reltuples only after ANALYZE
                  coalesce(s.n_live_tup, greatest(c.reltuples, 0)::bigint) as estimate,
                  (select count(*) from pg_policy p where p.polrelid = c.oid) as policies
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             left join pg_stat_all_tables s on s.relid = c.oid
            where c.relkind in ('r', 'p', 'v', 'm') and n.nspname <> all($1::text[])
              and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast%'
            order by n.nspname = 'public' desc, n.nspname, c.relname""", list(HIDDEN_SCHEMAS))
    return [dict(r) for r in rows]


async def columns(conn: Any, schema: str, table: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
                  pg_get_expr(d.adbin, d.adrelid) as default, t.typtype::text as typtype,
                  a.attidentity <> '' or a.attgenerated <> '' as generated,
                  case when t.typtype = 'e' then (select array_agg(e.enumlabel order by e.enumsortorder)
                       from pg_enum e where e.enumtypid = t.oid) end as enum_values,
                  coalesce(a.attnum = any(i.indkey), false) as primary_key,
                  fk.ref_schema, fk.ref_table, fk.ref_column
             from pg_attribute a
             join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
             join pg_type t on t.oid = a.atttypid
             left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             left join pg_index i on i.indrelid = c.oid and i.indisprimary
             left join lateral (
               select rn.nspname as ref_schema, rc.relname as ref_table, ra.attname as ref_column
                 from pg_constraint k
                 join pg_class rc on rc.oid = k.confrelid join pg_namespace rn on rn.oid = rc.relnamespace
                 join pg_attribute ra on ra.attrelid = k.confrelid and ra.attnum = k.confkey[1]
                where k.conrelid = c.oid and k.contype = 'f' and k.conkey = array[a.attnum]
                limit 1) fk on true
            where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
            order by a.attnum""", schema, table)
    if not rows and not await conn.fetchval(
            "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = $1 and c.relname = $2", schema, table):
        raise BadInput(f"no table {schema}.{table}")
    return [dict(r) for r in rows]


async def describe(conn: Any, schema: str, table: str) -> dict[str, Any]:
    cols = await columns(conn, schema, table)
    meta = await conn.fetchrow(
        "select c.oid, c.relrowsecurity as rls, c.relkind::text as kind from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2", schema, table)
    indexes = await conn.fetch("select indexname as name, indexdef as definition from pg_indexes"
                               " where schemaname = $1 and tablename = $2 order by indexname", schema, table)
    policies = await conn.fetch(
        "select policyname as name, cmd, roles::text[] as roles, qual, with_check, permissive from pg_policies"
        " where schemaname = $1 and tablename = $2 order by policyname", schema, table)
    count = None
    try:
        async with conn.transaction():
            await conn.execute("set local statement_timeout = 2000")
            count = await conn.fetchval(f"select count(*) from {qualified(schema, table)}")
    except asyncpg.PostgresError:
        pass  # huge or unreadable table: the grid still pages
    return {"schema": schema, "table": table, "columns": cols, "rls": meta["rls"], "kind": meta["kind"],
            "indexes": [dict(r) for r in indexes], "policies": [dict(r) for r in policies], "count": count}


def _type_of(cols: list[dict[str, Any]], name: Any) -> str:
    for col in cols:
        if col["name"] == name:
            return str(col["type"])
    raise BadInput(f"no column {str(name)[:80]!r}")


def parse_filter(raw: str) -> tuple[str, str, str]:
    """``column.operator.value`` as in PostgREST query strings (``age.gte.18``, ``name.ilike.*an*``)."""
    col, _, rest = raw.partition(".")
    op, _, value = rest.partition(".")
    negate = op == "not"
    if negate:
        op, _, value = value.partition(".")
    if not col or (op not in OPERATORS and op not in ("is", "in")):
        raise BadInput(f"invalid filter {raw[:80]!r}: use column.operator.value (eq, neq, gt, gte, lt, lte, "
                       "like, ilike, is, in, not.<op>)")
    return col, ("not." if negate else "") + op, value


def _condition(cols: list[dict[str, Any]], raw: str, params: list[Any]) -> str:
    col, op, value = parse_filter(raw)
    negate = op.startswith("not.")
    op = op.removeprefix("not.")
    column = ident(col)
    typ = _type_of(cols, col)
    if op == "is":
        lit = {"null": "null", "true": "true", "false": "false", "unknown": "unknown"}.get(value.lower())
        if lit is None:
            raise BadInput("is. takes null, true, false or unknown")
        cond = f"{column} is {lit}"
    elif op == "in":
        items = [v.strip().strip('"') for v in value.strip("()").split(",") if v.strip()]
        params.append(items)
        cond = f"{column} = any(${len(params)}::text[]::{typ}[])"
    elif op in ("like", "ilike"):
        params.append(value.replace("*", "%"))
        cond = f"{column}::text {OPERATORS[op]} ${len(params)}"
    else:
        params.append(value)
        cond = f"{column} {OPERATORS[op]} ${len(params)}::text::{typ}"
    return f"not ({cond})" if negate else cond


async def read_rows(conn: Any, schema: str, table: str, *, limit: int = 50, offset: int = 0,
                    order: str | None = None, filters: list[str] | None = None) -> dict[str, Any]:
    cols = await columns(conn, schema, table)
    params: list[Any] = []
    where = [_condition(cols, f, params) for f in (filters or [])[:20]]
    kind = await conn.fetchval("select c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                               " where n.nspname = $1 and c.relname = $2", schema, table)
    ctid = "ctid::text" if kind in ("r", "p") else "null::text"  # views have no ctid
    sql = f"select {ctid} as _ctid, to_jsonb(t) as _row from {qualified(schema, table)} t"
    if where:
        sql += " where " + " and ".join(where)
    if order:
        name, _, direction = order.partition(".")
        _type_of(cols, name)
        sql += f" order by {ident(name)} {'desc' if direction == 'desc' else 'asc'} nulls last"
    limit = max(1, min(int(limit), MAX_LIMIT))
    sql += f" limit {limit} offset {max(0, int(offset))}"
    count_sql = f"select count(*) from {qualified(schema, table)} t" + (" where " + " and ".join(where) if where else "")
    try:
        rows = await conn.fetch(sql, *params)
        total = await conn.fetchval(count_sql, *params)
    except (asyncpg.DataError, asyncpg.SyntaxOrAccessError) as exc:
        raise BadInput(str(exc)) from None
    return {"columns": cols, "total": total,
            "rows": [{"_ctid": r["_ctid"], **_obj(r["_row"])} for r in rows]}


def _obj(value: Any) -> dict[str, Any]:
    """jsonb arrives decoded on pools with a json codec and as text on plain connections."""
    return json.loads(value) if isinstance(value, str) else dict(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _key(cols: list[dict[str, Any]], key: dict[str, Any], params: list[Any]) -> str:
    """Where clause for one row: its primary key values, or its ctid for a table without one."""
    if not isinstance(key, dict) or not key:
        raise BadInput("a row key is needed")
    parts = []
    for name, value in key.items():
        if name == "_ctid":
            params.append(_text(value))
            parts.append(f"ctid = ${len(params)}::text::tid")
        else:
            params.append(_text(value))
            parts.append(f"{ident(name)} = ${len(params)}::text::{_type_of(cols, name)}")
    return " and ".join(parts)


def _values(cols: list[dict[str, Any]], values: Any) -> tuple[list[str], list[str], list[Any]]:
    if not isinstance(values, dict):
        raise BadInput("values must be an object")
    names, exprs, params = [], [], []
    for name, value in values.items():
        typ = _type_of(cols, name)
        params.append(_text(value))
        names.append(ident(name))
        exprs.append(f"${len(params)}::text::{typ}")
    return names, exprs, params


async def _write(conn: Any, sql: str, params: list[Any]) -> Any:
    try:
        return await conn.fetch(sql, *params)
    except asyncpg.PostgresError as exc:
        raise BadInput(getattr(exc, "message", str(exc)) + (f" ({exc.detail})" if getattr(exc, "detail", None) else "")) from None


async def insert_row(conn: Any, schema: str, table: str, values: Any) -> dict[str, Any]:
    cols = await columns(conn, schema, table)
    names, exprs, params = _values(cols, values)
    target = qualified(schema, table)
    sql = (f"insert into {target} ({', '.join(names)}) values ({', '.join(exprs)})" if names
           else f"insert into {target} default values") + " returning to_jsonb(" + target + ".*) as r"
    rows = await _write(conn, sql, params)
    return _obj(rows[0]["r"])


async def update_row(conn: Any, schema: str, table: str, key: Any, values: Any) -> int:
    cols = await columns(conn, schema, table)
    names, exprs, params = _values(cols, values)
    if not names:
        raise BadInput("nothing to update")
    sets = ", ".join(f"{n} = {e}" for n, e in zip(names, exprs))
    rows = await _write(conn, f"update {qualified(schema, table)} set {sets} where {_key(cols, key, params)}"
                              " returning 1", params)
    return len(rows)


async def delete_rows(conn: Any, schema: str, table: str, keys: Any) -> int:
    cols = await columns(conn, schema, table)
    if not isinstance(keys, list) or not keys or len(keys) > MAX_LIMIT:
        raise BadInput(f"1 to {MAX_LIMIT} row keys are needed")
    deleted = 0
    async with conn.transaction():
        for key in keys:
            params: list[Any] = []
            rows = await _write(conn, f"delete from {qualified(schema, table)} where {_key(cols, key, params)}"
                                      " returning 1", params)
            deleted += len(rows)
    return deleted


async def fk_options(conn: Any, schema: str, table: str, column: str, search: str = "") -> list[Any]:
    """Values for an FK picker: the first 50 keys of the referenced column, optionally searched."""
    col = next((c for c in await columns(conn, schema, table) if c["name"] == column), None)
    if col is None or not col["ref_table"]:
        raise BadInput(f"{column!r} is not a foreign key")
    ref = ident(col["ref_column"])
    rows = await conn.fetch(f"select {ref}::text as v from {qualified(col['ref_schema'], col['ref_table'])}"
                            f" where {ref}::text ilike $1 order by 1 limit 50", f"%{search[:100]}%")
    return [r["v"] for r in rows]


async def slow_queries(conn: Any) -> dict[str, Any]:
    """Statements running for over a second now, and (if pg_stat_statements is installed) the
    slowest statements by mean time."""
    running = await conn.fetch(
        """select pid, usename::text as role, state, round(extract(epoch from now() - query_start)::numeric, 1)::float
                  as seconds, left(query, 500) as query
             from pg_stat_activity
            where state <> 'idle' and pid <> pg_backend_pid() and now() - query_start > interval '1 second'
            order by query_start limit 50""")
    top: list[dict[str, Any]] = []
    note = None
    try:
        async with conn.transaction():
            top = [dict(r) for r in await conn.fetch(
                "select left(query, 500) as query, calls, round(mean_exec_time::numeric, 2)::float as mean_ms,"
                " round(total_exec_time::numeric, 2)::float as total_ms from pg_stat_statements"
                " order by mean_exec_time desc limit 20")]
    except asyncpg.PostgresError:
        note = "pg_stat_statements is not installed: only statements running now are shown"
    return {"running": [dict(r) for r in running], "top": top, "note": note}
