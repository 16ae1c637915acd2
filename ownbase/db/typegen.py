"""``ownbase gen types typescript``: TypeScript definitions in the shape ``supabase gen types`` prints.

Reads the catalog directly (tables, views, columns, foreign keys, functions, enums, composite
types) so it works without a running server. The output declares ``Database`` with, per schema,
``Tables`` (Row / Insert / Update / Relationships), ``Views``, ``Functions`` (Args / Returns),
``Enums`` and ``CompositeTypes``, plus the ``Tables<>``, ``TablesInsert<>``, ``TablesUpdate<>``,
``Enums<>`` and ``CompositeTypes<>`` helpers and the ``Constants`` object, so
``createClient<Database>()`` type-checks queries.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
import asyncpg

NUMBER_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric", "oid", "money"}
STRING_TYPES = {
    "text", "varchar", "bpchar", "char", "name", "uuid", "date", "time", "timetz", "timestamp", "timestamptz",
    "interval", "bytea", "inet", "cidr", "macaddr", "macaddr8", "citext", "tsvector", "tsquery", "xml",
    "bit", "varbit", "point", "line", "lseg", "box", "path", "polygon", "circle", "int4range", "int8range",
    "numrange", "tsrange", "tstzrange", "daterange", "regclass", "regproc", "regtype", "ltree",
}

_TYPES_SQL = """
select t.oid, t.typname, n.nspname as schema, t.typtype::text as typtype, t.typelem, t.typbasetype, t.typrelid,
       t.typcategory::text as typcategory
  from pg_type t join pg_namespace n on n.oid = t.typnamespace
"""

_RELATIONS_SQL = """
select c.oid, c.relname, c.relkind::text as relkind, n.nspname as schema,
       (pg_relation_is_updatable(c.oid::regclass, false) & 8) = 8 as insertable,
       (pg_relation_is_updatable(c.oid::regclass, false) & 4) = 4 as updatable
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'm', 'f') and not c.relispartition
 order by n.nspname, c.relname
"""

_COLUMNS_SQL = """
select a.attrelid, a.attname, a.atttypid, a.attnum, not a.attnotnull as nullable,
       a.atthasdef as has_default, a.attidentity::text as attidentity,
       a.attgenerated::text as attgenerated
  from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any($1::text[]) and a.attnum > 0 and not a.attisdropped
   and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c')
 order by a.attrelid, a.attname
"""

_FKEYS_SQL = """
select con.conname, con.conrelid, rel.relname, fn.nspname as fschema, frel.relname as frelname,
       array(select a.attname from unnest(con.conkey) with ordinality k(num, i)
               join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.i) as columns,
       array(select a.attname from unnest(con.confkey) with ordinality k(num, i)
               join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.i) as fcolumns,
       exists(select 1 from pg_constraint u where u.conrelid = con.conrelid and u.contype in ('p', 'u')
                and (select array_agg(x order by x) from unnest(u.conkey) x)
                  = (select array_agg(x order by x) from unnest(con.conkey) x)) as one_to_one
  from pg_constraint con
  join pg_class rel on rel.oid = con.conrelid join pg_namespace n on n.oid = rel.relnamespace
  join pg_class frel on frel.oid = con.confrelid join pg_namespace fn on fn.oid = frel.relnamespace
 where con.contype = 'f' and n.nspname = any($1::text[])
 order by con.conname, frel.relname
"""

# Columns a view exposes unchanged from a base table (through its rewrite rule's dependencies):
# the foreign keys of those base columns apply to the view too, as the server infers them.
_VIEW_COLUMNS_SQL = """
select v.oid as view_oid, b.oid as base_oid, ba.attname as base_column, va.attname as view_column
  from pg_class v
  join pg_namespace vn on vn.oid = v.relnamespace
  join pg_rewrite r on r.ev_class = v.oid
  join pg_depend d on d.objid = r.oid and d.classid = 'pg_rewrite'::regclass
       and d.refclassid = 'pg_class'::regclass and d.deptype = 'n' and d.refobjsubid > 0
  join pg_class b on b.oid = d.refobjid and b.oid <> v.oid
  join pg_attribute ba on ba.attrelid = b.oid and ba.attnum = d.refobjsubid
  join pg_attribute va on va.attrelid = v.oid and va.attname = ba.attname and va.atttypid = ba.atttypid
 where v.relkind in ('v', 'm') and vn.nspname = any($1::text[])
"""

_FUNCTIONS_SQL = """
select p.oid, p.proname, n.nspname as schema, p.prorettype, p.proretset, p.provolatile::text as provolatile,
       coalesce(p.proargnames, '{}') as argnames, coalesce(p.proallargtypes, p.proargtypes::oid[]) as argtypes,
       coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs])) as argmodes,
       p.pronargs, p.pronargdefaults
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = any($1::text[]) and p.prokind = 'f'
   and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
   and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
 order by p.proname, p.oid
"""

_ENUMS_SQL = """
select n.nspname as schema, t.typname, array_agg(e.enumlabel order by e.enumsortorder) as labels
  from pg_enum e join pg_type t on t.oid = e.enumtypid join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = any($1::text[])
 group by n.nspname, t.typname order by t.typname
"""

_COMPOSITES_SQL = """
select t.typname, t.typrelid, n.nspname as schema
  from pg_type t join pg_namespace n on n.oid = t.typnamespace join pg_class c on c.oid = t.typrelid
 where n.nspname = any($1::text[]) and t.typtype = 'c' and c.relkind = 'c'
 order by t.typname
"""


@dataclass
class Catalog:
    schemas: list[str]
    types: dict[int, asyncpg.Record] = field(default_factory=dict)
    relations: list[asyncpg.Record] = field(default_factory=list)
    columns: dict[int, list[asyncpg.Record]] = field(default_factory=lambda: defaultdict(list))
    fkeys: dict[int, list[asyncpg.Record]] = field(default_factory=lambda: defaultdict(list))
    functions: list[asyncpg.Record] = field(default_factory=list)
    enums: list[asyncpg.Record] = field(default_factory=list)
    composites: list[asyncpg.Record] = field(default_factory=list)
    relation_by_oid: dict[int, asyncpg.Record] = field(default_factory=dict)
    # view oid -> {(base table oid, base column): view column} for columns a view passes through
    view_columns: dict[int, dict[tuple[int, str], str]] = field(default_factory=lambda: defaultdict(dict))


async def load_catalog(conn: asyncpg.Connection, schemas: list[str]) -> Catalog:
    cat = Catalog(schemas=schemas)
    cat.types = {r["oid"]: r for r in await conn.fetch(_TYPES_SQL)}
    cat.relations = list(await conn.fetch(_RELATIONS_SQL, schemas))
    cat.relation_by_oid = {r["oid"]: r for r in cat.relations}
    for r in await conn.fetch(_COLUMNS_SQL, schemas):
        cat.columns[r["attrelid"]].append(r)
    for r in await conn.fetch(_FKEYS_SQL, schemas):
        cat.fkeys[r["conrelid"]].append(r)
    cat.functions = list(await conn.fetch(_FUNCTIONS_SQL, schemas))
    cat.enums = list(await conn.fetch(_ENUMS_SQL, schemas))
    cat.composites = list(await conn.fetch(_COMPOSITES_SQL, schemas))
    for r in await conn.fetch(_VIEW_COLUMNS_SQL, schemas):
        cat.view_columns[r["view_oid"]][r["base_oid"], r["base_column"]] = r["view_column"]
    return cat


def _key(name: str) -> str:
    """A property name, quoted when it is not a plain identifier."""
    if name and (name[0].isalpha() or name[0] in "_$") and all(c.isalnum() or c in "_$" for c in name):
        return name
    return json.dumps(name)


def _str(value: str) -> str:
    return json.dumps(value)


class Renderer:
    def __init__(self, cat: Catalog) -> None:
        self.cat = cat
        self.table_rel_oids = {r["oid"]: r for r in cat.relations}

    # --- types --------------------------------------------------------------------------------
    def ts_type(self, oid: int, *, for_return: bool = False) -> str:
        t = self.cat.types.get(oid)
        if t is None:
            return "unknown"
        name, schema, kind = t["typname"], t["schema"], t["typtype"]
        if kind == "d":  # domain: its base type
            return self.ts_type(t["typbasetype"], for_return=for_return)
        if t["typcategory"] == "A" and t["typelem"]:
            inner = self.ts_type(t["typelem"])
            return f"({inner})[]" if "|" in inner else f"{inner}[]"
        if kind == "e":
            if schema in self.cat.schemas:
                return f'Database[{_str(schema)}]["Enums"][{_str(name)}]'
            return "string"
        if kind == "c":
            rel = self.table_rel_oids.get(t["typrelid"])
            if rel is not None:
                section = "Tables" if rel["relkind"] in ("r", "p", "f") else "Views"
                return f'Database[{_str(rel["schema"])}][{_str(section)}][{_str(rel["relname"])}]["Row"]'
            if schema in self.cat.schemas:
                return f'Database[{_str(schema)}]["CompositeTypes"][{_str(name)}]'
            return "Record<string, unknown>"
        if name == "bool":
            return "boolean"
        if name in NUMBER_TYPES:
            return "number"
        if name in ("json", "jsonb"):
            return "Json"
        if name in STRING_TYPES:
            return "string"
        if name == "void":
            return "undefined"
        if name == "record":
            return "Record<string, unknown>"
        return "unknown"

    # --- relations ------------------------------------------------------------------------------
    def _columns(self, oid: int) -> list[asyncpg.Record]:
        return self.cat.columns.get(oid, [])

    def _row(self, oid: int, indent: str, *, view: bool) -> list[str]:
        out = []
        for col in self._columns(oid):
            typ = self.ts_type(col["atttypid"])
            nullable = col["nullable"] or view
            out.append(f"{indent}{_key(col['attname'])}: {typ}{' | null' if nullable else ''}")
        return out

    def _write(self, oid: int, indent: str, *, update: bool, view: bool) -> list[str]:
        out = []
        for col in self._columns(oid):
            typ = self.ts_type(col["atttypid"])
            nullable = col["nullable"] or view
            if col["attgenerated"] == "s" or col["attidentity"] == "a":
                out.append(f"{indent}{_key(col['attname'])}?: never")
                continue
            optional = update or nullable or col["has_default"] or col["attidentity"] == "d"
            out.append(f"{indent}{_key(col['attname'])}{'?' if optional else ''}: {typ}{' | null' if nullable else ''}")
        return out

    def _relationships(self, oid: int, indent: str) -> list[str]:
        rel = self.cat.relation_by_oid[oid]
        items = [(fk["conname"], tuple(fk["columns"]), bool(fk["one_to_one"]), fk["frelname"], tuple(fk["fcolumns"]))
                 for fk in self.cat.fkeys.get(oid, []) if fk["fschema"] == rel["schema"]]
        mapping = self.cat.view_columns.get(oid)
        if mapping:
            for base_oid in sorted({b for b, _ in mapping}):
                for fk in self.cat.fkeys.get(base_oid, []):
                    cols = [mapping.get((base_oid, c)) for c in fk["columns"]]
                    if fk["fschema"] == rel["schema"] and all(cols):
                        items.append((fk["conname"], tuple(c for c in cols if c), False, fk["frelname"],
                                      tuple(fk["fcolumns"])))
            items.sort(key=lambda x: (x[0], x[3]))
        out = []
        for name, columns, one, ref_table, ref_columns in items:
            out += [
                f"{indent}{{",
                f"{indent}  foreignKeyName: {_str(name)}",
                f"{indent}  columns: [{', '.join(_str(c) for c in columns)}]",
                f"{indent}  isOneToOne: {'true' if one else 'false'}",
                f"{indent}  referencedRelation: {_str(ref_table)}",
                f"{indent}  referencedColumns: [{', '.join(_str(c) for c in ref_columns)}]",
                f"{indent}}},",
            ]
        return out

    def _relation_block(self, rel: asyncpg.Record, indent: str, *, view: bool) -> list[str]:
        i2, i3 = indent + "  ", indent + "    "
        out = [f"{indent}{_key(rel['relname'])}: {{", f"{i2}Row: {{"]
        out += self._row(rel["oid"], i3, view=view)
        out.append(f"{i2}}}")
        if not view or rel["insertable"] or rel["updatable"]:
            out.append(f"{i2}Insert: {{")
            out += self._write(rel["oid"], i3, update=False, view=view)
            out.append(f"{i2}}}")
            out.append(f"{i2}Update: {{")
            out += self._write(rel["oid"], i3, update=True, view=view)
            out.append(f"{i2}}}")
        rels = self._relationships(rel["oid"], i3)
        if rels:
            out += [f"{i2}Relationships: ["] + rels + [f"{i2}]"]
        else:
            out.append(f"{i2}Relationships: []")
        out.append(f"{indent}}}")
        return out

    # --- functions ------------------------------------------------------------------------------
    def _function(self, fn: asyncpg.Record, indent: str) -> list[str] | None:
        names: list[str] = list(fn["argnames"] or [])
        types: list[int] = list(fn["argtypes"] or [])
        modes: list[str] = [m.decode() if isinstance(m, bytes) else str(m) for m in (fn["argmodes"] or [])]
        while len(names) < len(types):
            names.append("")
        ins = [(n, t) for n, t, m in zip(names, types, modes) if m in ("i", "b", "v")]
        table_out = [(n, t) for n, t, m in zip(names, types, modes) if m == "t"]
        n_defaults = fn["pronargdefaults"] or 0
        i2, i3 = indent + "  ", indent + "    "
        if any(not n for n, _ in ins):
            single = self.cat.types.get(ins[0][1]) if len(ins) == 1 else None
            if single is not None and single["typname"] in ("json", "jsonb", "text", "xml", "bytea"):
                args = [f'{i3}"": {self.ts_type(ins[0][1])}']
            else:
                return None  # PostgREST can only call functions with named arguments
        else:
            args = []
            for idx, (name, oid) in enumerate(ins):
                optional = idx >= len(ins) - n_defaults
                args.append(f"{i3}{_key(name)}{'?' if optional else ''}: {self.ts_type(oid)}")
        if table_out:
            ret = "{\n" + "\n".join(f"{i3}{_key(n)}: {self.ts_type(t)}" for n, t in table_out) + f"\n{i2}}}[]"
        else:
            ret = self.ts_type(fn["prorettype"], for_return=True)
            if fn["proretset"]:
                ret = f"({ret})[]" if "|" in ret else f"{ret}[]"
        out: list[str] = []
        if args:
            out += [f"{i2}Args: {{"] + args + [f"{i2}}}"]
        else:
            out.append(f"{i2}Args: never")
        out.append(f"{i2}Returns: {ret}")
        return out

    # --- document -------------------------------------------------------------------------------
    def schema_block(self, schema: str) -> list[str]:
        ind = "    "
        out = [f"  {_key(schema)}: {{"]
        tables = [r for r in self.cat.relations if r["schema"] == schema and r["relkind"] in ("r", "p", "f")]
        views = [r for r in self.cat.relations if r["schema"] == schema and r["relkind"] in ("v", "m")]
        out.append(f"{ind}Tables: {{" if tables else f"{ind}Tables: {{\n{ind}  [_ in never]: never")
        for rel in tables:
            out += self._relation_block(rel, ind + "  ", view=False)
        out.append(f"{ind}}}")
        out.append(f"{ind}Views: {{" if views else f"{ind}Views: {{\n{ind}  [_ in never]: never")
        for rel in views:
            out += self._relation_block(rel, ind + "  ", view=True)
        out.append(f"{ind}}}")
        by_name: dict[str, list[list[str]]] = defaultdict(list)
        for fn in self.cat.functions:
            if fn["schema"] != schema:
                continue
            rendered = self._function(fn, ind + "  ")
            if rendered is not None:
                by_name[fn["proname"]].append(rendered)
        out.append(f"{ind}Functions: {{" if by_name else f"{ind}Functions: {{\n{ind}  [_ in never]: never")
        for name in sorted(by_name):
            variants = by_name[name]
            if len(variants) == 1:
                out.append(f"{ind}  {_key(name)}: {{")
                out += variants[0]
                out.append(f"{ind}  }}")
            else:
                out.append(f"{ind}  {_key(name)}:")
                for variant in variants:
                    out.append(f"{ind}    | {{")
                    out += ["    " + line for line in variant]
                    out.append(f"{ind}      }}")
        out.append(f"{ind}}}")
        enums = [e for e in self.cat.enums if e["schema"] == schema]
        out.append(f"{ind}Enums: {{" if enums else f"{ind}Enums: {{\n{ind}  [_ in never]: never")
        for e in enums:
            labels = " | ".join(_str(label) for label in e["labels"]) or "never"
            out.append(f"{ind}  {_key(e['typname'])}: {labels}")
        out.append(f"{ind}}}")
        comps = [c for c in self.cat.composites if c["schema"] == schema]
        out.append(f"{ind}CompositeTypes: {{" if comps else f"{ind}CompositeTypes: {{\n{ind}  [_ in never]: never")
        for c in comps:
            out.append(f"{ind}  {_key(c['typname'])}: {{")
            for col in self._columns(c["typrelid"]):
                out.append(f"{ind}    {_key(col['attname'])}: {self.ts_type(col['atttypid'])} | null")
            out.append(f"{ind}  }}")
        out.append(f"{ind}}}")
        out.append("  }")
        return out

    def constants(self) -> list[str]:
        out = ["export const Constants = {"]
        for schema in self.cat.schemas:
            enums = [e for e in self.cat.enums if e["schema"] == schema]
            out.append(f"  {_key(schema)}: {{")
            out.append("    Enums: {")
            for e in enums:
                out.append(f"      {_key(e['typname'])}: [{', '.join(_str(label) for label in e['labels'])}],")
            out.append("    },")
            out.append("  },")
        out.append("} as const")
        return out


HEADER = """export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]
"""

HELPERS = """type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, __DEFAULT__>]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] &
        DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] &
        DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
        Row: infer R
      }
      ? R
      : never
    : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Insert: infer I
      }
      ? I
      : never
    : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Update: infer U
      }
      ? U
      : never
    : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never,
> = DefaultSchemaEnumNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
    : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never,
> = PublicCompositeTypeNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
    : never
"""

# The PostgREST API level ownbase answers like; postgrest-js uses it to enable version features.
POSTGREST_VERSION = "12"


def render(cat: Catalog) -> str:
    r = Renderer(cat)
    lines = [HEADER, "export type Database = {",
             "  // Allows to automatically instantiate createClient with right options",
             "  // instead of createClient<Database, { PostgrestVersion: 'XX' }>(URL, KEY)",
             "  __InternalSupabase: {", f"    PostgrestVersion: {_str(POSTGREST_VERSION)}", "  }"]
    for schema in cat.schemas:
        lines += r.schema_block(schema)
    lines.append("}")
    lines.append("")
    default = "public" if "public" in cat.schemas else cat.schemas[0]
    lines.append(HELPERS.replace("__DEFAULT__", _str(default)))
    lines += r.constants()
    return "\n".join(lines) + "\n"


async def generate(conn: asyncpg.Connection, schemas: list[str]) -> str:
    return render(await load_catalog(conn, schemas))


def schema_missing(found: list[str], wanted: list[str]) -> list[str]:
    return [s for s in wanted if s not in found]


async def existing_schemas(conn: asyncpg.Connection, wanted: list[str]) -> list[str]:
    rows = await conn.fetch("select nspname from pg_namespace where nspname = any($1::text[])", wanted)
    return [r["nspname"] for r in rows]
