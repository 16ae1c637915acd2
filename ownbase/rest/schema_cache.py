"""A cached picture of the exposed schemas: relations, columns, keys, relationships, functions.

Loaded with the owner pool (introspection only; no data), replaced as a whole on reload so a
request always plans against one consistent snapshot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ownbase.db.sql import quote_qualified


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type without typmod, usable in a cast (e.g. "text", "integer[]", "mood")
    nullable: bool
    default: str | None
    position: int
    comment: str | None = None
    max_length: int | None = None
    enum: tuple[str, ...] = ()
    base_type: str = ""  # domains resolved to their base type; otherwise == type
    item_type: str | None = None  # element type for arrays
    generated: bool = False
    identity: bool = False
    computed: str | None = None  # computed field: the quoted function taking the row, e.g. "s"."f"

    @property
    def is_array(self) -> bool:
        return self.item_type is not None


@dataclass(frozen=True)
class ComputedRel:
    """A computed relationship (PostgREST 12+): a function taking the table's row and returning rows
    of another relation, embedded like a foreign key (``select=*,get_profile(*)``)."""

    name: str
    function: str  # quoted "schema"."name", called with the parent row
    target: tuple[str, str]  # the relation whose rows it returns
    to_one: bool  # not SETOF, or SETOF … ROWS 1


@dataclass
class Table:
    schema: str
    name: str
    kind: str  # r table, v view, m materialized view, f foreign table, p partitioned table
    columns: dict[str, Column]
    pk: tuple[str, ...] = ()
    uniques: tuple[tuple[str, ...], ...] = ()
    insertable: bool = True
    updatable: bool = True
    deletable: bool = True
    comment: str | None = None
    computed: dict[str, Column] = field(default_factory=dict)  # functions of the row type
    computed_rels: dict[str, ComputedRel] = field(default_factory=dict)  # row → rows functions
    # request roles holding each privilege (for the OpenAPI document; the database still decides)
    grants: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def is_view(self) -> bool:
        return self.kind in ("v", "m")

    @property
    def qualified(self) -> tuple[str, str]:
        return (self.schema, self.name)


@dataclass(frozen=True)
class ForeignKey:
    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Arg:
    name: str
    type: str
    has_default: bool
    mode: str  # i, o, b, v, t


@dataclass
class Function:
    schema: str
    name: str
    args: list[Arg]
    return_type: str
    returns_set: bool
    volatility: str  # i immutable, s stable, v volatile
    kind: str  # "scalar", "composite", "void"
    return_relation: tuple[str, str] | None = None  # the table/view whose row type is returned
    out_columns: list[tuple[str, str]] = field(default_factory=list)  # RETURNS TABLE / OUT params
    comment: str | None = None
    executable_by: frozenset[str] = frozenset()

    @property
    def in_args(self) -> list[Arg]:
        return [a for a in self.args if a.mode in ("i", "b", "v")]

    def signature(self) -> str:
        return f"{self.schema}.{self.name}(" + ", ".join(
            f"{a.name} => {a.type}" for a in self.in_args) + ")"


@dataclass
class SchemaCache:
    schemas: tuple[str, ...]
    tables: dict[tuple[str, str], Table]
    foreign_keys: list[ForeignKey]
    functions: dict[tuple[str, str], list[Function]]
    fingerprint: str = ""
    # `alter role anon set statement_timeout = '3s'` (Supabase's per-role limits), in ms
    role_timeouts: dict[str, int] = field(default_factory=dict)
    # every enum type of the exposed schemas, used by columns or not (for `gen types`)
    enums: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    postgis: str | None = None  # the schema PostGIS is installed in, if it is
    # derived lookups computed on first use by the planner (the snapshot itself never changes)
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def table(self, schema: str, name: str) -> Table | None:
        return self.tables.get((schema, name))

    def __post_init__(self) -> None:
        # Indexes for planning: relationship lookups run on every embedding request.
        self._from: dict[tuple[str, str], list[ForeignKey]] = {}
        self._to: dict[tuple[str, str], list[ForeignKey]] = {}
        for fk in self.foreign_keys:
            self._from.setdefault((fk.schema, fk.table), []).append(fk)
            self._to.setdefault((fk.ref_schema, fk.ref_table), []).append(fk)

    def fks_from(self, table: Table) -> list[ForeignKey]:
        return self._from.get(table.qualified, [])

    def fks_to(self, table: Table) -> list[ForeignKey]:
        return self._to.get(table.qualified, [])


# --- introspection -------------------------------------------------------------------------------

_TABLES = """
select n.nspname as schema, c.relname as name, c.relkind::text as kind, c.oid, c.reltype,
       obj_description(c.oid, 'pg_class') as comment,
       case when c.relkind in ('r', 'p') then 28 else pg_relation_is_updatable(c.oid, true) end as upd,
       array(select r || ':' || p from unnest(array['anon', 'authenticated', 'service_role']) r,
                    unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
             where exists (select 1 from pg_roles where rolname = r) and has_table_privilege(r, c.oid, p)) as grants
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p') and not c.relispartition
"""

_COLUMNS = """
select c.oid as relid, a.attname as name, a.attnum as position,
       format_type(a.atttypid, null) as type,
       not a.attnotnull as nullable,
       case when a.attidentity <> '' then
              format('nextval(%L::regclass)', pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname))
            when a.attgenerated <> '' then null
            else pg_get_expr(d.adbin, d.adrelid) end as default,
       col_description(c.oid, a.attnum) as comment,
       case when a.atttypid in (1043, 1042) and a.atttypmod > 4 then a.atttypmod - 4 end as max_length,
       coalesce(bt.oid, t.oid) as base_oid,
       format_type(coalesce(bt.oid, t.oid), null) as base_type,
       case when coalesce(bt.typelem, t.typelem) <> 0 and coalesce(bt.typlen, t.typlen) = -1
            then format_type(coalesce(bt.typelem, t.typelem), null) end as item_type,
       array(select e.enumlabel from pg_enum e where e.enumtypid = coalesce(bt.oid, t.oid)
             order by e.enumsortorder) as enum,
       a.attgenerated <> '' as generated,
       a.attidentity <> '' as identity
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')
  and a.attnum > 0 and not a.attisdropped
order by c.oid, a.attnum
"""

_KEYS = """
select con.conname as name, con.contype::text as type,
       n.nspname as schema, c.relname as table,
       array(select a.attname from unnest(con.conkey) with ordinality k(num, ord)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.ord) as columns,
       fn.nspname as ref_schema, fc.relname as ref_table,
       array(select a.attname from unnest(con.confkey) with ordinality k(num, ord)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.ord) as ref_columns
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_class fc on fc.oid = con.confrelid
left join pg_namespace fn on fn.oid = fc.relnamespace
where con.contype in ('p', 'u', 'f')
  and (n.nspname = any($1::text[]) or fn.nspname = any($1::text[]))
  and con.conparentid = 0
order by con.conname
"""

# Unique indexes that are not constraints still make an FK one-to-one / are upsert targets.
_UNIQUE_INDEXES = """
select n.nspname as schema, c.relname as table,
       array(select a.attname from unnest(i.indkey) with ordinality k(num, ord)
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.num order by k.ord) as columns
from pg_index i
join pg_class c on c.oid = i.indrelid
join pg_namespace n on n.oid = c.relnamespace
where i.indisunique and i.indpred is null and i.indexprs is null and n.nspname = any($1::text[])
"""

# Views: columns that come straight from a base table column, so keys and relationships of the
# base table apply to the view (PostgREST infers these the same way).
_VIEW_COLUMNS = """
select vn.nspname as view_schema, v.relname as view_name, va.attname as view_column,
       bn.nspname as base_schema, b.relname as base_table, ba.attname as base_column
from pg_class v
join pg_namespace vn on vn.oid = v.relnamespace
join pg_rewrite r on r.ev_class = v.oid
join pg_depend d on d.objid = r.oid and d.classid = 'pg_rewrite'::regclass
     and d.refclassid = 'pg_class'::regclass and d.deptype = 'n'
join pg_class b on b.oid = d.refobjid and b.oid <> v.oid
join pg_namespace bn on bn.oid = b.relnamespace
join pg_attribute ba on ba.attrelid = b.oid and ba.attnum = d.refobjsubid
join pg_attribute va on va.attrelid = v.oid and va.attname = ba.attname and va.atttypid = ba.atttypid
where v.relkind in ('v', 'm') and vn.nspname = any($1::text[]) and d.refobjsubid > 0
"""

_FUNCTIONS = """
select n.nspname as schema, p.proname as name, p.provolatile::text as volatility, p.proretset as retset,
       format_type(p.prorettype, null) as return_type, t.typtype::text as ret_typtype,
       rn.nspname as ret_rel_schema, rc.relname as ret_rel_name,
       coalesce(p.proargnames, '{}'::text[]) as arg_names,
       coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs::int])) as arg_modes,
       array(select format_type(x, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
             with ordinality u(x, i) order by i) as arg_types,
       p.pronargdefaults as ndefaults,
       case when p.pronargs = 1 then p.proargtypes[0] end as only_arg_type, p.prorows as prorows,
       obj_description(p.oid, 'pg_proc') as comment,
       array(select r from unnest(array['anon', 'authenticated', 'service_role']) r
             where exists (select 1 from pg_roles where rolname = r)
               and has_function_privilege(r, p.oid, 'EXECUTE')) as executable_by
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type t on t.oid = p.prorettype
left join pg_class rc on rc.oid = t.typrelid and t.typtype = 'c'
left join pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = any($1::text[]) and p.prokind = 'f'
order by p.oid
"""

_ROLE_SETTINGS = """
select r.rolname as role, s.setconfig as config
from pg_db_role_setting s
join pg_roles r on r.oid = s.setrole
where r.rolname in ('anon', 'authenticated', 'service_role')
  and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
order by s.setdatabase  -- database-specific settings (non-zero oid) come last and win
"""

_ENUMS = """
select n.nspname as schema, t.typname as name, array_agg(e.enumlabel order by e.enumsortorder) as labels
from pg_type t
join pg_namespace n on n.oid = t.typnamespace
join pg_enum e on e.enumtypid = t.oid
where n.nspname = any($1::text[])
group by n.nspname, t.typname
"""

_POSTGIS = """
select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'postgis'
"""

_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def timeout_ms(value: str) -> int | None:
    """PostgreSQL's statement_timeout syntax ('3s', '500ms', '1min', '8000') in milliseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*", value or "")
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS_MS[m.group(2) or "ms"])


# A cheap catalog fingerprint: any DDL changes a row count or some xmin in these catalogs.
FINGERPRINT = """
select concat_ws(':',
  (select count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) from pg_class
     where relnamespace = any(select oid from pg_namespace where nspname = any($1::text[]))),
  (select count(*) || '.' || coalesce(sum(a.xmin::text::bigint), 0) from pg_attribute a
     join pg_class c on c.oid = a.attrelid
     where c.relnamespace = any(select oid from pg_namespace where nspname = any($1::text[])) and a.attnum > 0),
  (select count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) from pg_proc
     where pronamespace = any(select oid from pg_namespace where nspname = any($1::text[]))),
  (select count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) from pg_constraint),
  (select count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) from pg_type
     where typnamespace = any(select oid from pg_namespace where nspname = any($1::text[]))),
  (select count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) from pg_enum),
  (select count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) from pg_namespace),
  (select count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) from pg_db_role_setting))
"""


async def fingerprint(conn: Any, schemas: Sequence[str]) -> str:
    raw = await conn.fetchval(FINGERPRINT, list(schemas))
    return hashlib.sha1(str(raw).encode()).hexdigest()


async def load(conn: Any, schemas: Iterable[str]) -> SchemaCache:
    names = list(dict.fromkeys(schemas))
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        fp = await fingerprint(conn, names)
        table_rows = await conn.fetch(_TABLES, names)
        column_rows = await conn.fetch(_COLUMNS, names)
        key_rows = await conn.fetch(_KEYS, names)
        uidx_rows = await conn.fetch(_UNIQUE_INDEXES, names)
        view_rows = await conn.fetch(_VIEW_COLUMNS, names)
        fn_rows = await conn.fetch(_FUNCTIONS, names)
        role_rows = await conn.fetch(_ROLE_SETTINGS)
        enum_rows = await conn.fetch(_ENUMS, names)
        postgis = await conn.fetchval(_POSTGIS)

    by_oid: dict[int, Table] = {}
    by_type: dict[int, Table] = {}
    tables: dict[tuple[str, str], Table] = {}
    for r in table_rows:
        upd = int(r["upd"] or 0)
        t = Table(r["schema"], r["name"], r["kind"], {}, comment=r["comment"],
                  insertable=bool(upd & 8), updatable=bool(upd & 4), deletable=bool(upd & 16))
        grants: dict[str, set[str]] = {}
        for g in r["grants"] or []:
            role, _, priv = g.partition(":")
            grants.setdefault(priv, set()).add(role)
        t.grants = {k: frozenset(v) for k, v in grants.items()}
        by_oid[r["oid"]] = t
        by_type[r["reltype"]] = t
        tables[t.qualified] = t
    for r in column_rows:
        owner_table = by_oid.get(r["relid"])
        if owner_table is None:
            continue
        owner_table.columns[r["name"]] = Column(
            name=r["name"], type=r["type"], nullable=r["nullable"], default=r["default"],
            position=r["position"], comment=r["comment"], max_length=r["max_length"],
            enum=tuple(r["enum"] or ()), base_type=r["base_type"], item_type=r["item_type"],
            generated=r["generated"], identity=r["identity"])

    fks: list[ForeignKey] = []
    uniques: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    for r in key_rows:
        key = (r["schema"], r["table"])
        cols = tuple(r["columns"])
        if r["type"] == "p" and key in tables:
            tables[key].pk = cols
            uniques.setdefault(key, []).append(cols)
        elif r["type"] == "u":
            uniques.setdefault(key, []).append(cols)
        elif r["type"] == "f":
            fks.append(ForeignKey(r["name"], r["schema"], r["table"], cols, r["ref_schema"],
                                  r["ref_table"], tuple(r["ref_columns"])))
    for r in uidx_rows:
        key = (r["schema"], r["table"])
        cols = tuple(r["columns"])
        if cols not in uniques.setdefault(key, []):
            uniques[key].append(cols)
    for key, us in uniques.items():
        if key in tables:
            tables[key].uniques = tuple(us)

    fks.extend(_view_relationships(tables, fks, view_rows))

    functions: dict[tuple[str, str], list[Function]] = {}
    for r in fn_rows:
        names_ = list(r["arg_names"])
        modes = list(r["arg_modes"])
        types = list(r["arg_types"])
        args: list[Arg] = []
        n_in = sum(1 for m in modes if m in ("i", "b", "v"))
        seen_in = 0
        for i, mode in enumerate(modes):
            name = names_[i] if i < len(names_) else ""
            has_default = False
            if mode in ("i", "b", "v"):
                has_default = seen_in >= n_in - int(r["ndefaults"] or 0)
                seen_in += 1
            args.append(Arg(name, types[i] if i < len(types) else "unknown", has_default, mode))
        outs = [(a.name, a.type) for a in args if a.mode in ("o", "b", "t")]
        if r["return_type"] == "void":
            kind = "void"
        elif r["ret_typtype"] == "c" or (r["return_type"] == "record" and outs):
            kind = "composite"
        else:
            kind = "scalar"
        rel = (r["ret_rel_schema"], r["ret_rel_name"]) if r["ret_rel_name"] else None
        if kind == "composite" and rel is None and not outs:
            kind = "scalar"  # anonymous record: rendered as a value
        if rel is not None and not outs:
            rel_table = tables.get(rel)
            if rel_table is not None:
                outs = [(c.name, c.type) for c in rel_table.columns.values()]
        fn = Function(r["schema"], r["name"], args, r["return_type"], r["retset"], r["volatility"], kind,
                      rel, outs, r["comment"], frozenset(r["executable_by"] or ()))
        functions.setdefault((fn.schema, fn.name), []).append(fn)
        row_table = by_type.get(r["only_arg_type"]) if r["only_arg_type"] is not None else None
        qfn = quote_qualified(fn.schema, fn.name)
        if row_table is not None and len(fn.in_args) == 1 and rel is not None and rel in tables \
                and r["ret_typtype"] == "c":
            row_table.computed_rels[fn.name] = ComputedRel(
                fn.name, qfn, rel, not r["retset"] or float(r["prorows"] or 0) == 1.0)
        if row_table is not None and not r["retset"] and kind == "scalar" and fn.name not in row_table.columns:
            qname = quote_qualified(fn.schema, fn.name)
            row_table.computed[fn.name] = Column(fn.name, fn.return_type, True, None, 0, fn.comment,
                                                 base_type=fn.return_type, computed=qname)
    timeouts: dict[str, int] = {}
    for r in role_rows:
        for item in r["config"] or []:
            key, _, value = item.partition("=")
            if key == "statement_timeout":
                ms = timeout_ms(value)
                if ms is not None:
                    timeouts[r["role"]] = ms
    enums = {(r["schema"], r["name"]): tuple(r["labels"]) for r in enum_rows}
    return SchemaCache(tuple(names), tables, fks, functions, fp, timeouts, enums, postgis=postgis)


def _view_relationships(tables: dict[tuple[str, str], Table], fks: list[ForeignKey],
                        view_rows: Sequence[Any]) -> list[ForeignKey]:
    """Copy keys and FKs of base tables onto views whose columns expose them unchanged."""
    # (view) -> {(base_schema, base_table, base_col): view_col}
    mapping: dict[tuple[str, str], dict[tuple[str, str, str], str]] = {}
    for r in view_rows:
        mapping.setdefault((r["view_schema"], r["view_name"]), {})[
            (r["base_schema"], r["base_table"], r["base_column"])] = r["view_column"]
    extra: list[ForeignKey] = []
    for view_key, cols in mapping.items():
        view = tables.get(view_key)
        if view is None:
            continue
        bases = {(s, t) for (s, t, _c) in cols}
        for base_key in bases:
            base = tables.get(base_key)
            if base is None:
                continue

            def through(names: Sequence[str], bk: tuple[str, str] = base_key,
                        cols: dict[tuple[str, str, str], str] = cols) -> tuple[str, ...] | None:
                out = []
                for n in names:
                    v = cols.get((bk[0], bk[1], n))
                    if v is None:
                        return None
                    out.append(v)
                return tuple(out)

            if not view.pk and base.pk:
                pk = through(base.pk)
                if pk:
                    view.pk = pk
            for fk in fks:
                if (fk.schema, fk.table) == base_key:
                    mine = through(fk.columns)
                    if mine:
                        extra.append(ForeignKey(fk.name, view.schema, view.name, mine, fk.ref_schema,
                                                fk.ref_table, fk.ref_columns))
                if (fk.ref_schema, fk.ref_table) == base_key:
                    theirs = through(fk.ref_columns)
                    if theirs:
                        extra.append(ForeignKey(fk.name, fk.schema, fk.table, fk.columns, view.schema,
                                                view.name, theirs))
    return extra
