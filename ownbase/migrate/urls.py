"""``migrate rewrite-urls``: stored Supabase Storage URLs rewritten to the ownbase public URL.

Only the ``<project URL>/storage/v1/`` prefix is replaced, so paths, query strings and the rest
of a jsonb document stay as they were. Each rewritten column is recorded (with both prefixes) so
``verify`` compares the source's values with the same rewrite applied.
"""

from __future__ import annotations

from typing import Any

from ownbase.db.sql import quote_ident, quote_qualified
from ownbase.migrate import catalog, progress
from ownbase.migrate.conn import connect, quiet_triggers, restore_triggers
from ownbase.migrate.progress import StepError

TEXT_TYPES = ("text", "character varying", "jsonb", "json")


def prefixes(from_url: str, to_url: str) -> tuple[str, str]:
    old = from_url.rstrip("/") + "/storage/v1/"
    new = to_url.rstrip("/") + "/storage/v1/"
    for url in (old, new):
        if not url.startswith(("http://", "https://")) or any(c in url for c in '"\\\'') or \
                any(ord(c) < 32 for c in url):
            raise StepError(f"not a plain http(s) URL: {url!r}")
    return old, new


def cast(expr: str, type_: str) -> tuple[str, str]:
    """(expression as text, how to turn text back into the column type)."""
    if type_ in ("jsonb", "json"):
        return f"{expr}::text", f"::{type_}"
    return expr, ""


async def run(target_url: str, from_url: str, to_url: str, only: set[str], dry_run: bool) -> dict[str, Any]:
    old, new = prefixes(from_url, to_url)
    tgt = await connect(target_url)
    try:
        await progress.ensure(tgt)
        schemas = await catalog.app_schemas(tgt)
        cols = await tgt.fetch(
            """select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c
               join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
               where c.table_schema = any($1::text[]) and t.table_type = 'BASE TABLE'
                 and c.data_type = any($2::text[]) and c.is_generated = 'NEVER'
               order by 1, 2, 3""", schemas, list(TEXT_TYPES))
        out = []
        async with tgt.transaction():
            for c in cols:
                key = f"{c['table_schema']}.{c['table_name']}.{c['column_name']}"
                if only and key not in only:
                    continue
                table = quote_qualified(c["table_schema"], c["table_name"])
                col = quote_ident(c["column_name"])
                as_text, back = cast(col, c["data_type"])
                n = int(await tgt.fetchval(f"select count(*) from {table} where strpos({as_text}, $1) > 0", old))
                signed = int(await tgt.fetchval(
                    f"select count(*) from {table} where strpos({as_text}, $1) > 0", old + "object/sign/"))
                if n == 0:
                    continue
                out.append({"column": key, "rows": n, "signed_urls": signed})
                if dry_run:
                    continue
                method = await quiet_triggers(tgt, [table])
                await tgt.execute(f"update {table} set {col} = replace({as_text}, $1, $2){back}"
                                  f" where strpos({as_text}, $1) > 0", old, new)
                await restore_triggers(tgt, method, [table])
                await progress.mark(tgt, "rewrite-urls", key, {"old": old, "new": new, "rows": n})
        notes = []
        if any(c["signed_urls"] for c in out):
            notes.append("signed URLs (object/sign/...?token=) carry a token signed by the old project;"
                         " they are rewritten but must be re-signed by the app to work")
        return {"ok": True, "dry_run": dry_run, "old_prefix": old, "new_prefix": new, "columns": out,
                "notes": notes}
    finally:
        await tgt.close()
