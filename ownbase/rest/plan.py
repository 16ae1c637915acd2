"""Planning: resolve a parsed request against the schema cache. No I/O, no SQL text.

The result names real tables, columns (with their types) and relationships, so rendering can
quote identifiers and type every parameter without looking anything up.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ownbase.rest import errors
from ownbase.rest.request import (
    ColumnItem,
    Condition,
    EmbedItem,
    Field,
    Filter,
    Logic,
    NodeOptions,
    OrderTerm,
    SelectItem,
)
from ownbase.rest.schema_cache import Column, ComputedRel, ForeignKey, SchemaCache, Table


@dataclass
class Relationship:
    kind: str  # "m2o" | "o2m" | "o2o" | "m2m" | "computed"
    fk: ForeignKey
    junction: Table | None = None
    junction_fk_child: ForeignKey | None = None  # m2m: junction → child
    computed: ComputedRel | None = None  # kind "computed": the function (fk is unused)
    parent_side: bool = False  # o2o seen from the referenced table (PostgREST's isParent)

    @property
    def to_one(self) -> bool:
        if self.computed is not None:
            return self.computed.to_one
        return self.kind in ("m2o", "o2o")

    @property
    def is_self(self) -> bool:
        fk = self.fk
        return self.kind != "m2m" and (fk.schema, fk.table) == (fk.ref_schema, fk.ref_table)

    def pairs(self) -> list[tuple[str, str]]:
        """(column of the embedding table, column of the embedded one) for non-m2m kinds."""
        fk = self.fk
        if self.kind == "m2o" or (self.kind == "o2o" and not self.parent_side):
            return list(zip(fk.columns, fk.ref_columns))
        return list(zip(fk.ref_columns, fk.columns))


@dataclass
class OutColumn:
    field: Field
    column: Column | None  # None for "*"-free computed outputs
    name: str
    cast: str | None = None  # on the column (before an aggregate)
    aggregate: str | None = None  # count | sum | avg | max | min
    agg_cast: str | None = None  # on the aggregate's result
    # a bare count() has column None and aggregate "count": it renders as count(*)


@dataclass
class EmbedNode:
    name: str  # output key
    rel: Relationship
    node: ReadNode
    inner: bool
    spread: bool
    hidden: bool  # empty select list: used only for filtering


@dataclass
class EmbedNull:
    """``rel=is.null`` / ``rel=not.is.null`` on an embedded resource."""

    embed: EmbedNode
    is_null: bool


@dataclass
class ResolvedFilter:
    filter: Filter
    column: Column


@dataclass
class ResolvedLogic:
    op: str
    children: list[ResolvedCondition]
    negate: bool


ResolvedCondition = ResolvedFilter | ResolvedLogic | EmbedNull


@dataclass
class ResolvedOrder:
    term: OrderTerm
    column: Column
    embed: EmbedNode | None = None


@dataclass
class ReadNode:
    table: Table
    alias: str
    columns: list[OutColumn] = field(default_factory=list)
    embeds: list[EmbedNode] = field(default_factory=list)
    conditions: list[ResolvedCondition] = field(default_factory=list)
    order: list[ResolvedOrder] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    # Output order: ("col", index) or ("embed", index), so keys follow the select list
    layout: list[tuple[str, int]] = field(default_factory=list)
    count_only: bool = False  # rel(count): the number of related rows, [{"count": n}]
    # Aggregate functions (OWNBASE_DB_AGGREGATES_ENABLED): the node's plain columns are GROUP BY keys
    aggregated: bool = False
    # a spread to-one embed whose aggregates the parent computes over its rows (...rel(col.sum()))
    hoisted: bool = False


class Planner:
    def __init__(self, cache: SchemaCache, schema: str) -> None:
        self.cache = cache
        self.schema = schema
        self._n = 0
        self.known_paths: set[tuple[str, ...]] = {()}

    def alias(self) -> str:
        name = f"t{self._n}"
        self._n += 1
        return name

    # --- tables ----------------------------------------------------------------------------------

    def table(self, name: str) -> Table:
        t = self.cache.table(self.schema, name)
        if t is None:
            names = [n for (s, n) in self.cache.tables if s == self.schema]
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
            raise errors.no_table(self.schema, name, close[0] if close else None)
        return t

    # --- read tree -------------------------------------------------------------------------------

    def read(self, table: Table, items: list[SelectItem], options: dict[tuple[str, ...], NodeOptions],
             path: tuple[str, ...] = ()) -> ReadNode:
        node = ReadNode(table, self.alias())
        for item in items:
            if isinstance(item, ColumnItem):
                if item.star:
                    for col in table.columns.values():
                        node.layout.append(("col", len(node.columns)))
                        node.columns.append(OutColumn(Field(col.name), col, col.name))
                    continue
                if item.aggregate and item.bare:
                    node.layout.append(("col", len(node.columns)))
                    node.columns.append(OutColumn(item.field, None, item.output_name, None, "count",
                                                  item.agg_cast))
                    continue
                col = self.column(table, item.field.name)
                node.layout.append(("col", len(node.columns)))
                node.columns.append(OutColumn(item.field, col, item.output_name, item.cast, item.aggregate,
                                              item.agg_cast))
            else:
                embed = self.embed(node, item, options, path)
                node.layout.append(("embed", len(node.embeds)))
                node.embeds.append(embed)
        opts = options.get(path) or NodeOptions()
        node.conditions = [self.condition(node, c) for c in opts.conditions]
        node.order = [self.order(node, o) for o in opts.order]
        node.limit = opts.limit
        node.offset = opts.offset
        _check_aggregates(node)
        return node

    def column(self, table: Table, name: str) -> Column:
        col = table.columns.get(name) or table.computed.get(name)
        if col is None:
            raise errors.undefined_column(table.name, name)
        return col

    def embed(self, parent: ReadNode, item: EmbedItem, options: dict[tuple[str, ...], NodeOptions],
              path: tuple[str, ...]) -> EmbedNode:
        rel, target = self.relationship(parent.table, item.name, item.hint)
        child_path = path + (item.output_name,)
        self.known_paths.add(child_path)
        self.known_paths.add(path + (item.name,))
        # Options may be addressed by alias or by name.
        if child_path not in options and path + (item.name,) in options:
            options[child_path] = options[path + (item.name,)]
        hidden = not item.children
        count_only = (len(item.children) == 1 and isinstance(item.children[0], ColumnItem)
                      and item.children[0].field.name == "count" and not item.children[0].field.json_path
                      and "count" not in target.columns)
        node = self.read(target, [] if count_only else item.children, options, child_path)
        node.count_only = count_only
        if item.spread and not rel.to_one and _spreads_to_many(node):
            # PostgREST 13 aggregates each spread column into an array; an array of arrays from a
            # to-many spread nested in another one is not offered.
            raise errors.not_implemented("spreading a to-many embedded resource inside another spread "
                                         "to-many embedded resource")
        return EmbedNode(item.output_name, rel, node, item.join == "inner", item.spread, hidden)

    def relationship(self, parent: Table, name: str, hint: str | None) -> tuple[Relationship, Table]:
        """Resolve ``name[!hint]`` from ``parent`` as PostgREST does: a computed relationship of that
        name wins; otherwise the foreign-key relationships whose target table, FK column or
        constraint is ``name`` and that the hint (constraint, column or junction) selects."""
        computed = parent.computed_rels.get(name)
        if computed is not None and hint is None:
            target = self.cache.table(*computed.target)
            if target is not None:
                fk = ForeignKey(name, parent.schema, parent.name, (), target.schema, target.name, ())
                return Relationship("computed", fk, computed=computed), target
        candidates = [(r, t) for r, t in relationships_of(self.cache, parent) if _matches_target(r, t, name)]
        if hint is not None:
            candidates = [c for c in candidates if _matches_hint(c[0], hint)]
            if len(candidates) > 1 and all(r.is_self for r, _ in candidates) and \
                    any(hint in r.fk.columns for r, _ in candidates):
                # a self-referencing key hinted by its column: the rows that point here (children)
                candidates = [c for c in candidates if c[0].kind == "o2m" or c[0].parent_side]
        if not candidates:
            names = [n for (s, n) in self.cache.tables if s == parent.schema]
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            raise errors.no_relationship(parent.name, name, parent.schema, hint,
                                         close[0] if close and close[0] != name else None)
        if len(candidates) > 1:
            details = [_describe(parent, c[0], c[1]) for c in candidates]
            hints = [f"{c[1].name}!{c[0].junction.name if c[0].junction else c[0].fk.name}" for c in candidates]
            raise errors.ambiguous_embed(parent.name, name, details, hints)
        return candidates[0]

    # --- filters and order -----------------------------------------------------------------------

    def condition(self, node: ReadNode, cond: Condition) -> ResolvedCondition:
        if isinstance(cond, Logic):
            return ResolvedLogic(cond.op, [self.condition(node, c) for c in cond.children], cond.negate)
        embed = next((e for e in node.embeds if e.name == cond.field.name), None) \
            if not cond.field.json_path and cond.field.name not in node.table.columns else None
        if embed is not None:
            if cond.op != "is" or cond.value not in ("null", "not_null"):
                raise errors.bad_embed_operator(embed.name)
            is_null = (cond.value == "null") != cond.negate
            return EmbedNull(embed, is_null)
        return ResolvedFilter(cond, self.column(node.table, cond.field.name))

    def order(self, node: ReadNode, term: OrderTerm) -> ResolvedOrder:
        if term.relation is not None:
            embed = next((e for e in node.embeds if e.name == term.relation), None)
            if embed is None:
                raise errors.not_embedded(term.relation)
            if not embed.rel.to_one:
                raise errors.related_order(node.table.name, embed.node.table.name)
            return ResolvedOrder(term, self.column(embed.node.table, term.field.name), embed)
        return ResolvedOrder(term, self.column(node.table, term.field.name))


def uses_aggregates(node: ReadNode) -> bool:
    return node.aggregated or any(uses_aggregates(e.node) for e in node.embeds)


def filters_only(root: ReadNode) -> ReadNode:
    """The node's filters and embeds without its select list, order or paging (for counting, and
    for the WHERE of a write)."""
    return ReadNode(root.table, root.alias, [], root.embeds, root.conditions, [], None, None, [])


def _has_aggregates(node: ReadNode) -> bool:
    return any(c.aggregate for c in node.columns)


def _check_aggregates(node: ReadNode) -> None:
    """Decide how aggregate functions in this level (and in spread to-one embeds, which PostgREST
    hoists into the parent) are computed; what would need more than one GROUP BY level → PGRST127."""
    for e in node.embeds:
        child = e.node
        if not child.aggregated:
            continue
        if e.spread and e.rel.to_one:
            if child.embeds or child.count_only:
                raise errors.not_implemented("aggregate functions in a spread embedded resource that "
                                             "embeds further resources")
            child.hoisted = True
            child.aggregated = False  # its rows are plain; the parent groups them
        elif e.spread:
            raise errors.not_implemented("aggregate functions inside a spread to-many embedded resource")
        # a to-one embed groups its own (at most one) related row, as PostgREST 12 does
    node.aggregated = _has_aggregates(node) or any(e.node.hoisted for e in node.embeds)
    if not node.aggregated:
        return
    for e in node.embeds:
        if e.hidden:
            continue  # only filters the rows that are aggregated
        if not e.rel.to_one:
            raise errors.not_implemented(f"the to-many embedded resource '{e.name}' next to aggregate "
                                         "functions; put the aggregates inside it instead")
        if e.node.embeds and any(not x.hidden for x in e.node.embeds) and e.spread:
            raise errors.not_implemented(f"grouping by the nested embedded resources of '{e.name}'")


def _spreads_to_many(node: ReadNode) -> bool:
    """Whether the columns spread into ``node`` (through chains of spreads) include a to-many spread."""
    for e in node.embeds:
        if e.spread and (not e.rel.to_one or _spreads_to_many(e.node)):
            return True
    return False


def check_options(planner: Planner, options: dict[tuple[str, ...], NodeOptions]) -> None:
    """Options addressed to an embed that is not in the select list → PGRST108."""
    for path, opts in options.items():
        if path and path not in planner.known_paths and (
                opts.conditions or opts.order or opts.limit is not None or opts.offset is not None):
            raise errors.not_embedded(path[-1])


_RANK = {"o2m": 0, "m2o": 1, "o2o": 2, "m2m": 3}


def relationships_of(cache: SchemaCache, parent: Table) -> list[tuple[Relationship, Table]]:
    """Every foreign-key relationship from ``parent``, in PostgREST's order (it sorts them: by
    target table, self-references last, one-to-many, many-to-one, one-to-one, many-to-many, then
    by constraint names and columns). Cached on the (immutable) schema cache."""
    memo = cache.memo.setdefault("relationships", {})
    found = memo.get(parent.qualified)
    if found is not None:
        return found
    out: list[tuple[Relationship, Table]] = []
    for fk in cache.fks_from(parent):
        target = cache.table(fk.ref_schema, fk.ref_table)
        if target is not None:
            one = any(set(u) == set(fk.columns) for u in parent.uniques)
            out.append((Relationship("o2o" if one else "m2o", fk), target))
    for fk in cache.fks_to(parent):
        child = cache.table(fk.schema, fk.table)
        if child is not None:
            one = any(set(u) == set(fk.columns) for u in child.uniques)
            out.append((Relationship("o2o" if one else "o2m", fk, parent_side=True), child))
    # many-to-many through a junction whose key contains both foreign keys' columns
    junctions = {(fk.schema, fk.table) for fk in cache.fks_to(parent)}
    for jkey in sorted(junctions):
        j = cache.tables.get(jkey)
        if j is None or j.qualified == parent.qualified:
            continue
        keys = [set(j.pk)] + [set(u) for u in j.uniques] if j.pk else [set(u) for u in j.uniques]
        to_parent = [fk for fk in cache.fks_from(j) if (fk.ref_schema, fk.ref_table) == parent.qualified]
        for a in to_parent:
            for b in cache.fks_from(j):
                target = cache.table(b.ref_schema, b.ref_table)
                if a is b or target is None or target.qualified == j.qualified:
                    continue
                both = set(a.columns) | set(b.columns)
                if any(both <= k for k in keys if k):
                    out.append((Relationship("m2m", a, j, b), target))
    out.sort(key=_sort_key)
    memo[parent.qualified] = out
    return out


def _sort_key(item: tuple[Relationship, Table]) -> tuple[object, ...]:
    rel, target = item
    if rel.kind == "m2m" and rel.junction is not None and rel.junction_fk_child is not None:
        detail: tuple[object, ...] = (rel.junction.schema, rel.junction.name, rel.fk.name,
                                      rel.junction_fk_child.name)
    else:
        detail = (rel.fk.name, tuple(rel.pairs()), rel.parent_side)
    return (target.schema, target.name, rel.is_self, _RANK[rel.kind], detail)


def _matches_target(rel: Relationship, target: Table, name: str) -> bool:
    if target.name == name:
        return True
    if rel.kind == "m2m":
        return name in (rel.fk.name, rel.junction_fk_child.name if rel.junction_fk_child else None)
    if rel.fk.name == name:
        return True
    # embedding through the parent's own single-column foreign key (to-one)
    return (rel.kind == "m2o" or (rel.kind == "o2o" and not rel.parent_side)) and rel.fk.columns == (name,)


def _matches_hint(rel: Relationship, hint: str) -> bool:
    fk = rel.fk
    if rel.kind == "m2m":
        child = rel.junction_fk_child
        return hint in (fk.name, child.name if child else None) or (
            rel.junction is not None and rel.junction.name == hint)
    if fk.name == hint:
        return True
    if len(fk.columns) != 1:
        return False
    # the foreign-key column (on whichever side), or the referenced column of a one-to-many
    return hint == fk.columns[0] or (rel.parent_side and hint == fk.ref_columns[0])


def _describe(parent: Table, rel: Relationship, target: Table) -> dict[str, str]:
    """One entry of PGRST201's details, worded as PostgREST words it (no schema names; columns
    from the embedding table's side first)."""
    fk = rel.fk
    card = {"m2o": "many-to-one", "o2m": "one-to-many", "o2o": "one-to-one", "m2m": "many-to-many"}[rel.kind]
    if rel.kind == "m2m" and rel.junction is not None and rel.junction_fk_child is not None:
        b = rel.junction_fk_child
        relationship = (f"{rel.junction.name} using {fk.name}({', '.join(fk.columns)}) "
                        f"and {b.name}({', '.join(b.columns)})")
    else:
        pairs = rel.pairs()
        relationship = (f"{fk.name} using {parent.name}({', '.join(p for p, _ in pairs)}) and "
                        f"{target.name}({', '.join(c for _, c in pairs)})")
    return {"cardinality": card, "embedding": f"{parent.name} with {target.name}",
            "relationship": relationship}
