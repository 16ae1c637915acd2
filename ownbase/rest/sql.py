"""Rendering: plans become one SQL statement with ``$n`` parameters; JSON is built by PostgreSQL.

Identifiers come from the schema cache and are always quoted; every user value is a parameter
(sent as text and cast to the column's catalog type); type names in casts are checked against a
strict pattern first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ownbase.db.sql import quote_ident
from ownbase.rest import errors
from ownbase.rest.plan import (
    EmbedNode,
    EmbedNull,
    OutColumn,
    ReadNode,
    ResolvedCondition,
    ResolvedFilter,
    ResolvedLogic,
    ResolvedOrder,
    filters_only,
)
from ownbase.rest.plan_call import CallPlan
from ownbase.rest.plan_write import Op, WritePlan
from ownbase.rest.request import Field, Media
from ownbase.rest.schema_cache import Column, Function, Table


def qualified(table: Table) -> str:
    return f"{quote_ident(table.schema)}.{quote_ident(table.name)}"


_SIMPLE_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MULTIWORD_TYPES = {"double precision", "character varying", "timestamp with time zone",
                    "timestamp without time zone", "time with time zone", "time without time zone",
                    "bit varying"}


def cast_type(name: str) -> str:
    """A user-supplied cast target (``col::text``): a plain type name, optionally an array."""
    base, arr = (name[:-2], "[]") if name.endswith("[]") else (name, "")
    low = base.lower()
    if low in _MULTIWORD_TYPES or _SIMPLE_TYPE.match(base):
        return f"{low if ' ' in low else base}{arr}"
    raise errors.parse_error("select parameter", name, "invalid cast type")


@dataclass
class Params:
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def text(self, value: str) -> str:
        return f"{self.add(value)}::text"


class PackedParams(Params):
    """Every value travels as one element of a single ``text[]`` parameter (``$1[n]``), for
    statements run through ``ownbase.scoped_read`` (EXECUTE … USING takes a fixed argument list).
    Every placeholder the renderer emits is followed by an explicit cast, so text is enough."""

    def add(self, value: Any) -> str:
        self.values.append(_array_literal(value) if isinstance(value, list) else str(value))
        return f"$1[{len(self.values)}]"


def _array_literal(values: list[Any]) -> str:
    # PostgreSQL's array input syntax, every element quoted: data in a parameter, never SQL text.
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


# --- expressions ---------------------------------------------------------------------------------

def field_expr(alias: str, fld: Field, column: Column | None, params: Params) -> tuple[str, str | None]:
    """SQL for ``alias.col[->k->>k]`` and the PostgreSQL type of the result (None if unknown)."""
    if column is not None and column.computed:
        expr = f"{column.computed}({quote_ident(alias)})"
    else:
        expr = f"{quote_ident(alias)}.{quote_ident(fld.name)}"
    typ = column.type if column is not None else None
    if fld.json_path:
        base = column.base_type if column is not None else "jsonb"
        if base not in ("json", "jsonb"):
            # PostgREST allows arrows on json/jsonb only; treat others as jsonb via to_jsonb
            expr = f"to_jsonb({expr})"
            base = "jsonb"
        for op, key in fld.json_path:
            ref = f"{params.add(int(key))}::int" if re.fullmatch(r"-?\d{1,9}", key) else params.text(key)
            expr = f"({expr}{op}{ref})"
        typ = "text" if fld.json_path[-1][0] == "->>" else base
    return expr, typ


def _like(value: str) -> str:
    return value.replace("*", "%")


# Types whose bare name means length 1 ("character" is char(1)): cast to the unbounded variant.
_UNBOUNDED = {"character": "bpchar", "bit": "varbit", "character[]": "bpchar[]", "bit[]": "varbit[]"}


def filter_sql(alias: str, rf: ResolvedFilter, params: Params) -> str:
    f = rf.filter
    expr, typ = field_expr(alias, f.field, rf.column, params)
    t = _UNBOUNDED.get(typ or "text", typ or "text")
    op = f.op
    sql: str
    if op == "is":
        word = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE",
                "unknown": "UNKNOWN"}[str(f.value)]
        sql = f"{expr} IS {word}"
    elif op in ("eq", "neq", "gt", "gte", "lt", "lte"):
        sym = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        if f.quantifier:
            arr = _array_param(f.value, t, params)
            sql = f"{expr} {sym} {f.quantifier.upper()}({arr})"
        else:
            sql = f"{expr} {sym} {params.text(str(f.value))}::{t}"
    elif op in ("like", "ilike", "match", "imatch"):
        sym = {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}[op]
        conv = _like if op in ("like", "ilike") else (lambda v: v)
        target = expr if t in ("text", "character varying", "bpchar", "citext", "name") \
            else f"{expr}::text"
        if f.quantifier:
            values = f.value if isinstance(f.value, list) else [str(f.value)]
            sql = f"{target} {sym} {f.quantifier.upper()}({params.add([conv(v) for v in values])}::text[])"
        else:
            sql = f"{target} {sym} {params.text(conv(str(f.value)))}"
    elif op == "isdistinct":
        sql = f"{expr} IS DISTINCT FROM {params.text(str(f.value))}::{t}"
    elif op == "in":
        sql = f"{expr} = ANY({_array_param(f.value, t, params)})"
    elif op in ("cs", "cd", "ov", "sl", "sr", "nxl", "nxr", "adj"):
        # nxr "does not extend to the right of" is &<, nxl "… to the left of" is &> (PostgREST's names)
        sym = {"cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxl": "&>", "nxr": "&<",
               "adj": "-|-"}[op]
        value = str(f.value)
        if op == "ov" and value.startswith("(") and value.endswith(")") and t.endswith("[]"):
            value = "{" + value[1:-1] + "}"
        sql = f"{expr} {sym} {params.text(value)}::{t}"
    elif op in ("fts", "plfts", "phfts", "wfts"):
        fn = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
              "wfts": "websearch_to_tsquery"}[op]
        if f.config:
            cfg = f"{params.text(f.config)}::regconfig"
            vec = expr if t == "tsvector" else f"to_tsvector({cfg}, {expr})"
            sql = f"{vec} @@ {fn}({cfg}, {params.text(str(f.value))})"
        else:
            vec = expr if t == "tsvector" else f"to_tsvector({expr})"
            sql = f"{vec} @@ {fn}({params.text(str(f.value))})"
    else:  # pragma: no cover - the parser admits only known operators
        raise errors.parse_error("filter", op, "unknown operator")
    return f"NOT ({sql})" if f.negate else sql


def _array_param(value: Any, typ: str, params: Params) -> str:
    values = value if isinstance(value, list) else [str(value)]
    elem = typ.removesuffix("[]")
    return f"{params.add([str(v) for v in values])}::text[]::{elem}[]"


def condition_sql(node: ReadNode, cond: ResolvedCondition, params: Params, embed_alias: dict[int, str]) -> str:
    if isinstance(cond, ResolvedFilter):
        return filter_sql(node.alias, cond, params)
    if isinstance(cond, EmbedNull):
        ea = embed_alias[id(cond.embed)]
        if cond.embed.rel.to_one:
            check = f"{quote_ident(ea)}.pgrst_present IS {'NULL' if cond.is_null else 'NOT NULL'}"
        elif cond.embed.spread:
            check = f"{quote_ident(ea)}.pgrst_n {'=' if cond.is_null else '>'} 0"
        else:
            check = f"json_array_length({quote_ident(ea)}.body) {'=' if cond.is_null else '>'} 0"
        return check
    parts = [condition_sql(node, c, params, embed_alias) for c in cond.children]
    joined = f" {cond.op.upper()} ".join(f"({p})" for p in parts) if parts else "TRUE"
    return f"NOT ({joined})" if cond.negate else f"({joined})"


def order_sql(node: ReadNode, order: Sequence[ResolvedOrder], params: Params,
              embed_alias: dict[int, str], keys: dict[Field, int] | None = None) -> str:
    """``keys``: in a grouped select, the output position of each plain column (a GROUP BY key), so an
    order on it names the grouped value itself."""
    terms = []
    for o in order:
        if o.embed is None and keys and o.term.field in keys:
            expr = str(keys[o.term.field])
        elif o.embed is not None:
            ea = embed_alias[id(o.embed)]
            if o.embed.spread:
                expr = f"{quote_ident(ea)}.{quote_ident(o.term.field.name)}"
            else:
                expr = f"{quote_ident(ea)}.{quote_ident('pgrst_o_' + o.term.field.name)}"
        else:
            expr, _ = field_expr(node.alias, o.term.field, o.column, params)
        d = " DESC" if o.term.direction == "desc" else (" ASC" if o.term.direction == "asc" else "")
        n = " NULLS FIRST" if o.term.nulls == "first" else (" NULLS LAST" if o.term.nulls == "last" else "")
        terms.append(expr + d + n)
    return ", ".join(terms)


# --- read trees ----------------------------------------------------------------------------------

@dataclass
class Rendered:
    select: str  # the select list
    joins: str  # lateral joins
    where: list[str]
    order: str
    count_joins: str  # the joins the WHERE needs (for counting)
    group: str = ""  # GROUP BY list of an aggregated node (output positions and expressions)


def render_node(node: ReadNode, params: Params, source: str, *, join_cond: list[str] | None = None,
                extra_from: str = "") -> Rendered:
    """Render one level: select list, lateral joins of its embeds, where, order."""
    embed_alias: dict[int, str] = {}
    scalar: dict[int, str] = {}
    joins: list[str] = []
    needed: list[str] = []
    referenced = _referenced_embeds(node)
    for i, e in enumerate(node.embeds):
        ea = f"{node.alias}_e{i}"
        embed_alias[id(e)] = ea
        if e.hidden and not (e.inner or id(e) in referenced):
            continue  # an empty embed nobody filters on changes nothing
        sub = render_embed(node, e, params)
        if not (e.inner or e.spread or id(e) in referenced or node.aggregated):
            # A correlated subquery in the select list: PostgreSQL evaluates it after ORDER BY and
            # LIMIT, so only the rows of the page pay for their embeds.
            scalar[id(e)] = f"(SELECT _e.body FROM ({sub}) AS _e)"
            continue
        kind = "INNER" if e.inner else "LEFT"
        join = f" {kind} JOIN LATERAL ({sub}) AS {quote_ident(ea)} ON TRUE"
        joins.append(join)
        needed.append(join)
    cols: list[str] = []
    group: list[str] = []  # aggregated node: every plain output is a GROUP BY key
    keys: dict[Field, int] = {}
    grouped = node.aggregated

    def key(pos_expr: str | None = None) -> None:
        group.append(pos_expr or str(len(cols)))

    for kind, idx in node.layout:
        if kind == "col":
            c = node.columns[idx]
            cols.append(_out_column(node.alias, c, params, hoisted=node.hoisted))
            if grouped and not c.aggregate:
                key()
                if not c.cast:
                    keys.setdefault(c.field, len(cols))
        else:
            e = node.embeds[idx]
            ea = embed_alias[id(e)]
            if e.hidden:
                continue
            if e.spread and e.node.hoisted:
                # ...rel(col.sum()): the embed yields the raw values, aggregated here over the group
                for c in (e.node.columns[i] for k, i in e.node.layout if k == "col"):
                    ref = f"{quote_ident(ea)}.{quote_ident(c.name)}"
                    if c.aggregate:
                        cols.append(f"{_aggregate_expr(c, ref)} AS {quote_ident(c.name)}")
                    else:
                        cols.append(f"{ref} AS {quote_ident(c.name)}")
                        key()
            elif e.spread:
                for name in _output_names(e.node):
                    cols.append(f"{quote_ident(ea)}.{quote_ident(name)} AS {quote_ident(name)}")
                    if grouped:
                        key()
            elif id(e) in scalar:
                cols.append(f"{scalar[id(e)]} AS {quote_ident(e.name)}")
            elif grouped:
                # json has no equality: group on its text, which keeps the keys' order
                cols.append(f"({quote_ident(ea)}.body::text)::json AS {quote_ident(e.name)}")
                key(f"{quote_ident(ea)}.body::text")
            else:
                cols.append(f"{quote_ident(ea)}.body AS {quote_ident(e.name)}")
    where = list(join_cond or [])
    where += [condition_sql(node, c, params, embed_alias) for c in node.conditions]
    order = order_sql(node, node.order, params, embed_alias, keys if grouped else None)
    return Rendered(", ".join(cols) if cols else "", extra_from + "".join(joins), where, order,
                    extra_from + "".join(needed), ", ".join(group))


def _output_names(node: ReadNode) -> list[str]:
    if node.count_only:
        return ["count"]  # only reached for a spread: ...rel(count)
    names: list[str] = []
    for kind, idx in node.layout:
        if kind == "col":
            names.append(node.columns[idx].name)
        else:
            e = node.embeds[idx]
            if e.hidden:
                continue
            names.extend(_output_names(e.node) if e.spread else [e.name])
    return names


def _referenced_embeds(node: ReadNode) -> set[int]:
    out: set[int] = set()

    def walk(c: ResolvedCondition) -> None:
        if isinstance(c, EmbedNull):
            out.add(id(c.embed))
        elif isinstance(c, ResolvedLogic):
            for ch in c.children:
                walk(ch)

    for c in node.conditions:
        walk(c)
    for o in node.order:
        if o.embed is not None:
            out.add(id(o.embed))
    return out


def _out_column(alias: str, c: OutColumn, params: Params, *, hoisted: bool = False) -> str:
    """``hoisted``: the column of a spread to-one embed whose parent computes the aggregate, so only
    the (cast) value is selected here."""
    if c.aggregate and c.column is None:  # count()
        expr = "NULL" if hoisted else _aggregate_expr(c, "*")
        return f"{expr} AS {quote_ident(c.name)}"
    expr, _ = field_expr(alias, c.field, c.column, params)
    if c.cast:
        expr = f"CAST({expr} AS {cast_type(c.cast)})"
    if c.aggregate and not hoisted:
        expr = _aggregate_expr(c, expr)
    return f"{expr} AS {quote_ident(c.name)}"


_AGGREGATE_SQL = {"count": "count", "sum": "sum", "avg": "avg", "max": "max", "min": "min"}


def _aggregate_expr(c: OutColumn, arg: str) -> str:
    """``sum(arg)`` for an aggregated output (``count(*)`` for a bare count()), then its result cast."""
    fn = _AGGREGATE_SQL[c.aggregate or ""]
    expr = f"{fn}({'*' if c.column is None else arg})"
    if c.agg_cast:
        expr = f"CAST({expr} AS {cast_type(c.agg_cast)})"
    return expr


def _join_condition(parent: ReadNode, e: EmbedNode) -> tuple[str, list[str]]:
    """(extra FROM for m2m, conditions) tying the child rows to the parent row."""
    child = e.node
    pa, ca = quote_ident(parent.alias), quote_ident(child.alias)
    if e.rel.kind == "computed":
        return "", []  # the function's rows are the parent row's related rows
    if e.rel.kind != "m2m":
        return "", [f"{ca}.{quote_ident(c)} = {pa}.{quote_ident(p)}" for p, c in e.rel.pairs()]
    # m2m: parent <- junction -> child
    fk = e.rel.fk
    assert e.rel.junction is not None and e.rel.junction_fk_child is not None
    ja = quote_ident(child.alias + "_j")
    b = e.rel.junction_fk_child
    on = " AND ".join(f"{ja}.{quote_ident(c)} = {ca}.{quote_ident(r)}" for c, r in zip(b.columns, b.ref_columns))
    extra = f" INNER JOIN {qualified(e.rel.junction)} AS {ja} ON {on}"
    return extra, [f"{ja}.{quote_ident(c)} = {pa}.{quote_ident(r)}" for c, r in zip(fk.columns, fk.ref_columns)]


def _embed_source(parent: ReadNode, e: EmbedNode) -> str:
    """What the embedded rows are selected from: the related table, or for a computed relationship
    the function called with the parent's row."""
    if e.rel.computed is not None:
        # the parent row rebuilt as the table's type: under a write or a function result the
        # alias is a row of another (anonymous) type
        pa = quote_ident(parent.alias)
        cols = ", ".join(f"{pa}.{quote_ident(c)}" for c in parent.table.columns)
        return f"{e.rel.computed.function}(ROW({cols})::{qualified(parent.table)})"
    return qualified(e.node.table)


def render_embed(parent: ReadNode, e: EmbedNode, params: Params) -> str:
    child = e.node
    extra, cond = _join_condition(parent, e)
    source = _embed_source(parent, e)
    r = render_node(child, params, source, join_cond=cond, extra_from=extra)
    names = _output_names(child)
    parts = [r.select] if r.select else []
    if child.count_only:
        base = f"SELECT count(*) AS count FROM {source} AS {quote_ident(child.alias)}{r.joins}"
        if r.where:
            base += " WHERE " + " AND ".join(r.where)
        if e.spread:
            # ...rel(count): the number itself becomes the parent's "count" key
            having = " WHERE _s.count > 0" if e.inner else ""
            return f"SELECT _s.count, TRUE AS pgrst_present, _s.count AS pgrst_n FROM ({base}) AS _s{having}"
        if e.rel.to_one:
            return f"SELECT row_to_json(_s) AS body, TRUE AS pgrst_present FROM ({base}) AS _s"
        return f"SELECT json_agg(_s) AS body FROM ({base}) AS _s"
    order_names = [o.term.field.name for o in parent.order if o.embed is e]
    if e.rel.to_one:
        # to-one embeds also expose a presence flag and the raw columns the parent orders by
        parts.append("TRUE AS pgrst_present")
        parts += [f"{quote_ident(child.alias)}.{quote_ident(n)} AS {quote_ident('pgrst_o_' + n)}"
                  for n in order_names]
    select = ", ".join(parts)
    base = f"SELECT {select} FROM {source} AS {quote_ident(child.alias)}{r.joins}"
    if r.where:
        base += " WHERE " + " AND ".join(r.where)
    if r.group:
        base += " GROUP BY " + r.group  # positions count from the first column: r.select comes first
    if r.order:
        base += " ORDER BY " + r.order
    if child.limit is not None:
        base += f" LIMIT {int(child.limit)}"
    if child.offset:
        base += f" OFFSET {int(child.offset)}"
    if e.spread and e.rel.to_one:
        return base
    if e.spread:
        # PostgREST 13: spreading a to-many embed puts each of its columns into the parent as a JSON
        # array of that column's values over the related rows, in the embed's order ([] for none).
        aggs = [f"coalesce(json_agg(_s.{quote_ident(n)}), '[]') AS {quote_ident(n)}" for n in names]
        having = " HAVING count(*) > 0" if e.inner else ""
        return f"SELECT {', '.join(aggs + ['count(*) AS pgrst_n'])} FROM ({base}) AS _s{having}"
    if e.rel.to_one:
        row = (f"(SELECT row_to_json(_x) FROM (SELECT {', '.join(f'_s.{quote_ident(n)}' for n in names)}) AS _x)"
               if names else "'{}'::json")
        keep = "".join(f", _s.{quote_ident('pgrst_o_' + n)}" for n in order_names)
        return f"SELECT {row} AS body, _s.pgrst_present{keep} FROM ({base}) AS _s"
    row = "_s" if names else "'{}'::json"
    if e.inner:
        return f"SELECT json_agg({row}) AS body FROM ({base}) AS _s HAVING count(*) > 0"
    return f"SELECT coalesce(json_agg({row}), '[]') AS body FROM ({base}) AS _s"


def _lit(name: str) -> str:
    # Output keys are identifiers from the select list or the catalog; rendered as SQL string literals.
    return "'" + name.replace("'", "''") + "'"


# --- statements ----------------------------------------------------------------------------------

def body_expr(mode: Media) -> str:
    """Aggregate the rows of subquery ``_t`` into the response body."""
    if mode is Media.OBJECT:
        return "CASE WHEN count(_t) = 1 THEN (json_agg(_t) -> 0)::text END"
    if mode is Media.OBJECT_STRIPPED:
        return "CASE WHEN count(_t) = 1 THEN json_strip_nulls(json_agg(_t) -> 0)::text END"
    if mode is Media.JSON_STRIPPED:
        return "coalesce(json_strip_nulls(json_agg(_t)), '[]')::text"
    return "coalesce(json_agg(_t), '[]')::text"


CSV_BODY = (
    "coalesce((SELECT string_agg(CASE WHEN _k.k ~ '[,\"\\n\\s]' THEN '\"' || replace(_k.k, '\"', '\"\"') || '\"' "
    "ELSE _k.k END, ',') FROM json_object_keys(json_agg(_t) -> 0) AS _k(k)), '') || chr(10) || "
    "coalesce(string_agg(substring(_t::text, 2, length(_t::text) - 2), chr(10)), '')"
)


def aggregate(mode: Media, geo: str | None = None) -> str:
    """``geo``: the PostGIS schema, for geo+json (a FeatureCollection of the rows)."""
    if mode is Media.CSV:
        return CSV_BODY
    if mode is Media.GEOJSON and geo is not None:
        return (f"json_build_object('type', 'FeatureCollection', 'features', "
                f"coalesce(json_agg({quote_ident(geo)}.ST_AsGeoJSON(_t)::json), '[]'))::text")
    return body_expr(mode)


def read_statement(root: ReadNode, params: Params, *, source: str, limit: int | None, offset: int,
                   count: str | None, mode: Media, max_rows: int, geo: str | None = None) -> str:
    r = render_node(root, params, source)
    frm = f"{source} AS {quote_ident(root.alias)}"
    where = (" WHERE " + " AND ".join(r.where)) if r.where else ""
    inner = f"SELECT {r.select} FROM {frm}{r.joins}{where}"  # an empty select list gives {} rows
    group = f" GROUP BY {r.group}" if r.group else ""
    inner += group
    if r.order:
        inner += " ORDER BY " + r.order
    if limit is not None:
        inner += f" LIMIT {int(limit)}"
    if offset:
        inner += f" OFFSET {int(offset)}"
    if root.aggregated and count is not None:
        # the number of result rows: groups (one row when nothing is grouped)
        total = f"(SELECT count(*) FROM (SELECT {r.select} FROM {frm}{r.joins}{where}{group}) AS _c)"
    elif count == "exact":
        total = f"(SELECT count(*) FROM {frm}{r.count_joins}{where})"
    elif count == "estimated":
        total = f"(SELECT count(*) FROM (SELECT 1 FROM {frm}{r.count_joins}{where} LIMIT {max_rows + 1}) _c)"
    else:
        total = "NULL::bigint"
    return (f"SELECT {total} AS total, count(_t) AS page_total, {aggregate(mode, geo)} AS body "
            f"FROM ({inner}) AS _t")


def count_source(root: ReadNode, params: Params, *, source: str) -> str:
    """The bare filtered relation (for EXPLAIN-based counts)."""
    r = render_node(root, params, source)
    where = (" WHERE " + " AND ".join(r.where)) if r.where else ""
    return f"SELECT 1 FROM {source} AS {quote_ident(root.alias)}{r.count_joins}{where}"


def explain(statement: str, fmt: str = "json", options: Sequence[str] = ()) -> str:
    """EXPLAIN of a rendered statement; ``options`` are from a fixed list (analyze, verbose, …)."""
    allowed = ("ANALYZE", "VERBOSE", "SETTINGS", "BUFFERS", "WAL")
    opts = [f"FORMAT {'JSON' if fmt == 'json' else 'TEXT'}"] + [o.upper() for o in options if o.upper() in allowed]
    return f"EXPLAIN ({', '.join(opts)}) {statement}"


# --- mutations -----------------------------------------------------------------------------------

def insert_sql(table: Table, alias: str, columns: Sequence[Column], params: Params, body_param: str, *,
               missing_default: bool, on_conflict: Sequence[str] | None, resolution: str | None,
               returning: bool) -> str:
    target = f"{qualified(table)} AS {quote_ident(alias)}"
    col_list = ", ".join(quote_ident(c.name) for c in columns)
    exprs = []
    for c in columns:
        value = f"_r.{quote_ident(c.name)}"
        if missing_default:
            fallback = c.default if c.default is not None else "NULL"
            # a present key (even with a JSON null) is SQL non-NULL under ->; a missing one is NULL
            value = f"CASE WHEN (_j.doc -> {params.text(c.name)}) IS NOT NULL THEN {value} ELSE {fallback} END"
        exprs.append(value)
    # the body is parsed once (_b), then each element becomes a row of the table's type
    source = (f"FROM (SELECT {body_param} AS j) AS _b "
              f"CROSS JOIN LATERAL json_array_elements(CASE WHEN json_typeof(_b.j) = 'array' THEN _b.j "
              f"ELSE json_build_array(_b.j) END) WITH ORDINALITY AS _j(doc, ord) "
              f"CROSS JOIN LATERAL json_populate_record(NULL::{qualified(table)}, _j.doc) AS _r")
    sql = f"INSERT INTO {target} ({col_list}) " if columns else f"INSERT INTO {target} "
    sql += f"SELECT {', '.join(exprs)} {source} ORDER BY _j.ord"
    if resolution and on_conflict:
        keys = ", ".join(quote_ident(k) for k in on_conflict)
        if resolution == "ignore-duplicates":
            sql += f" ON CONFLICT ({keys}) DO NOTHING"
        else:
            sets = [c for c in columns if c.name not in on_conflict] or list(columns)
            if sets:
                sql += f" ON CONFLICT ({keys}) DO UPDATE SET " + ", ".join(
                    f"{quote_ident(c.name)} = EXCLUDED.{quote_ident(c.name)}" for c in sets)
            else:
                sql += f" ON CONFLICT ({keys}) DO NOTHING"
    if returning:
        sql += f" RETURNING {quote_ident(alias)}.*"
        if table.kind in ("r", "p"):
            sql += f", ({quote_ident(alias)}.xmax = 0) AS pgrst_inserted"
    return sql


def limited(table: Table, root: ReadNode, where: list[str], order: str, limit: int | None,
            offset: int | None) -> list[str]:
    """PATCH/DELETE with limit/offset: restrict to the first rows by ctid."""
    if limit is None and not offset:
        return where
    a = quote_ident(root.alias)
    sub = f"SELECT {a}.ctid FROM {qualified(table)} AS {a}"
    if where:
        sub += " WHERE " + " AND ".join(where)
    if order:
        sub += " ORDER BY " + order
    if limit is not None:
        sub += f" LIMIT {int(limit)}"
    if offset:
        sub += f" OFFSET {int(offset)}"
    return [f"{a}.ctid = ANY(ARRAY({sub}))"]


def update_sql(table: Table, root: ReadNode, columns: Sequence[Column], params: Params, body_param: str,
               where: list[str], returning: bool) -> str:
    a = quote_ident(root.alias)
    sets = ", ".join(f"{quote_ident(c.name)} = _r.{quote_ident(c.name)}" for c in columns)
    sql = (f"UPDATE {qualified(table)} AS {a} SET {sets} "
           f"FROM (SELECT * FROM json_populate_record(NULL::{qualified(table)}, {body_param})) AS _r")
    if where:
        sql += " WHERE " + " AND ".join(where)
    if returning:
        sql += f" RETURNING {a}.*"
    return sql


def delete_sql(table: Table, root: ReadNode, where: list[str], returning: bool) -> str:
    a = quote_ident(root.alias)
    sql = f"DELETE FROM {qualified(table)} AS {a}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if returning:
        sql += f" RETURNING {a}.*"
    return sql


def mutation_statement(cte: str, root: ReadNode, params: Params, mode: Media, *, inserted: bool,
                       pk: Sequence[str], geo: str | None = None) -> str:
    """Wrap a DML ... RETURNING in a CTE and shape its rows like a read."""
    r = render_node(root, params, "pgrst_source")
    inner = f"SELECT {r.select} FROM pgrst_source AS {quote_ident(root.alias)}{r.joins}"
    ins = "(SELECT count(*) FROM pgrst_source WHERE pgrst_inserted)" if inserted else "NULL::bigint"
    loc = "NULL::text"
    if pk:
        loc = ("(SELECT json_agg(json_build_object(" +
               ", ".join(f"{_lit(k)}, _p.{quote_ident(k)}" for k in pk) +
               "))::text FROM pgrst_source AS _p)")
    return (f"WITH pgrst_source AS ({cte}) SELECT NULL::bigint AS total, count(_t) AS page_total, "
            f"{aggregate(mode, geo)} AS body, {ins} AS inserted, {loc} AS location FROM ({inner}) AS _t")


def write_statement(plan: WritePlan, params: Params, *, returning: bool, mode: Media, geo: str | None = None) -> str:
    """The planned write as one statement. With ``returning`` it is wrapped to give the
    representation like a read (plus the inserted count and primary keys); without, it is the bare
    statement, whose status tag counts the rows."""
    table = plan.table
    if plan.op in (Op.INSERT, Op.PUT):
        body = f"{params.text(plan.body)}::json"
        dml = insert_sql(table, plan.returned.alias, plan.columns, params, body,
                         missing_default=plan.missing_default, on_conflict=plan.on_conflict,
                         resolution=plan.resolution, returning=returning)
    else:
        root = plan.filters
        assert root is not None
        r = render_node(filters_only(root), params, qualified(table))
        where = limited(table, root, r.where, r.order, root.limit, root.offset)
        if plan.op is Op.UPDATE:
            dml = update_sql(table, root, plan.columns, params, f"{params.text(plan.body)}::json", where, returning)
        else:
            dml = delete_sql(table, root, where, returning)
    if not returning:
        return dml
    return mutation_statement(dml, plan.returned, params, mode, inserted=plan.counts_inserted, pk=table.pk, geo=geo)


# --- RPC -----------------------------------------------------------------------------------------

def call_args(fn: Function, names: Sequence[str], params: Params, body_param: str) -> tuple[str, str]:
    """(FROM clause producing the typed arguments, the argument list of the call)."""
    if not names:
        return "", ""
    by_name = {a.name: a for a in fn.in_args}
    defs = ", ".join(f"{quote_ident(n)} {_UNBOUNDED.get(by_name[n].type, by_name[n].type)}" for n in names)
    frm = f"json_to_record({body_param}) AS _a({defs})"
    call = ", ".join(f"{quote_ident(n)} := _a.{quote_ident(n)}" for n in names)
    return frm, call


def function_name(fn: Function) -> str:
    return f"{quote_ident(fn.schema)}.{quote_ident(fn.name)}"


def invocation(plan: CallPlan, params: Params, argument: str | bytes) -> tuple[str, str]:
    """(FROM clause of the arguments or "", the function call). ``argument``: the JSON text of the
    arguments, or for a single unnamed parameter the raw body (bytes for bytea)."""
    fn = plan.function
    if plan.whole:
        param = fn.in_args[0]
        value = f"{params.add(argument)}::bytea" if isinstance(argument, bytes) \
            else f"{params.text(argument)}::{param.type}"
        if param.name:
            value = f"{quote_ident(param.name)} := {value}"
        return "", f"{function_name(fn)}({value})"
    if not plan.names:
        return "", f"{function_name(fn)}()"
    text = argument.decode() if isinstance(argument, bytes) else argument
    frm, args = call_args(fn, plan.names, params, f"{params.text(text)}::json")
    return frm, f"{function_name(fn)}({args})"


def call_statement(plan: CallPlan, params: Params, argument: str | bytes, *, mode: Media, count: bool,
                   limit: int | None = None, offset: int = 0, root: ReadNode | None = None,
                   max_rows: int = 1000, geo: str | None = None) -> str:
    """The call as one statement shaped like a read. ``root``: the read tree over a composite
    result's rows (select, filters, order, embeds). The function runs once (a CTE), also when its
    rows are counted."""
    fn = plan.function
    frm, invoke = invocation(plan, params, argument)
    lateral = f"{frm} CROSS JOIN LATERAL " if frm else ""
    if fn.kind == "void":
        return f"SELECT {invoke} FROM {frm}" if frm else f"SELECT {invoke}"
    if fn.kind == "scalar" and not fn.returns_set:
        return (f"SELECT {'1' if count else 'NULL'}::bigint AS total, 1 AS page_total, "
                f"to_json({invoke})::text AS body" + (f" FROM {frm}" if frm else ""))
    if fn.kind == "scalar":
        page = "SELECT _c.v FROM pgrst_call AS _c"
        if limit is not None:
            page += f" LIMIT {int(limit)}"
        if offset:
            page += f" OFFSET {int(offset)}"
        agg = "CASE WHEN count(*) = 1 THEN (json_agg(_t.v) -> 0)::text END" if mode.singular \
            else "coalesce(json_agg(_t.v), '[]')::text"
        total = "(SELECT count(*) FROM pgrst_call)" if count else "NULL::bigint"
        return (f"WITH pgrst_call AS (SELECT _f.v FROM {lateral}{invoke} AS _f(v)) "
                f"SELECT {total} AS total, count(*) AS page_total, {agg} AS body FROM ({page}) AS _t")
    assert root is not None
    return (f"WITH pgrst_call AS (SELECT _f.* FROM {lateral}{invoke} AS _f) " +
            read_statement(root, params, source="pgrst_call", limit=limit, offset=offset,
                           count="exact" if count else None, mode=mode, max_rows=max_rows, geo=geo))
