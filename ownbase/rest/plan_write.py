"""Planning writes (POST insert/upsert, PATCH, DELETE, PUT): the columns, the conflict target, the
rows the statement may touch and the representation it returns. No I/O, no SQL text."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ownbase.rest import errors
from ownbase.rest.plan import Planner, ReadNode, check_options, uses_aggregates
from ownbase.rest.request import ApiRequest, Filter, Preferences
from ownbase.rest.schema_cache import Column, Table


class Op(enum.Enum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    PUT = "put"  # insert-or-replace one row named by its primary key


class Return(enum.Enum):
    MINIMAL = "minimal"
    REPRESENTATION = "representation"
    HEADERS_ONLY = "headers-only"


@dataclass
class WritePlan:
    op: Op
    table: Table
    returned: ReadNode  # the representation: select list and embeds over the written rows
    prefs: Preferences
    ret: Return
    columns: list[Column] = field(default_factory=list)
    body: str = ""  # JSON text of the rows (or the one object)
    filters: ReadNode | None = None  # PATCH/DELETE: where, order, limit, offset
    on_conflict: list[str] | None = None
    resolution: str | None = None  # the upsert resolution that applies (None: plain insert)
    missing_default: bool = False
    nothing: bool = False  # an empty insert or patch: answered without a statement

    @property
    def reports_resolution(self) -> bool:
        return self.op in (Op.INSERT, Op.PUT) and self.resolution is not None

    @property
    def counts_inserted(self) -> bool:
        return self.op in (Op.INSERT, Op.PUT) and self.table.kind in ("r", "p")


def _columns(table: Table, names: Sequence[str]) -> list[Column]:
    cols = []
    for n in names:
        c = table.columns.get(n)
        if c is None:
            raise errors.no_column(n, table.name)
        cols.append(c)
    return cols


def _returning(planner: Planner, table: Table, req: ApiRequest, *, filters: bool) -> tuple[ReadNode, ReadNode]:
    """(node carrying the request's filters/order for the statement, node of the representation)."""
    options = req.options if filters else {}
    root = planner.read(table, req.select, options)
    check_options(planner, options)
    if uses_aggregates(root):
        raise errors.not_implemented("aggregate functions in the select of an insert, update or delete")
    ret = ReadNode(table, root.alias, root.columns, root.embeds, [], [], None, None, root.layout)
    return root, ret


def _return(prefs: Preferences) -> Return:
    return Return(prefs.return_ or "minimal")


def insert(planner: Planner, table: Table, req: ApiRequest, payload: Any, body: str) -> WritePlan:
    objs = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(o, dict) for o in objs):
        raise errors.bad_body()
    if req.columns is not None:
        names = req.columns
    else:
        names = list(objs[0].keys()) if objs else []
        keyset = set(names)
        if any(set(o.keys()) != keyset for o in objs[1:]):
            raise errors.bad_body("All object keys must match")
    cols = _columns(table, names)
    on_conflict = req.on_conflict or (list(table.pk) if table.pk else None)
    resolution = req.prefs.resolution if on_conflict else None
    if on_conflict:
        _columns(table, on_conflict)
    _root, ret = _returning(planner, table, req, filters=False)
    return WritePlan(Op.INSERT, table, ret, req.prefs, _return(req.prefs), cols, body, None, on_conflict,
                     resolution, req.prefs.missing == "default", nothing=not objs)


def update(planner: Planner, table: Table, req: ApiRequest, payload: Any, body: str) -> WritePlan:
    if not isinstance(payload, dict):
        raise errors.bad_body()
    cols = _columns(table, list(payload.keys()))
    root, ret = _returning(planner, table, req, filters=True)
    return WritePlan(Op.UPDATE, table, ret, req.prefs, _return(req.prefs), cols, body, root, nothing=not cols)


def delete(planner: Planner, table: Table, req: ApiRequest) -> WritePlan:
    root, ret = _returning(planner, table, req, filters=True)
    return WritePlan(Op.DELETE, table, ret, req.prefs, _return(req.prefs), filters=root)


def put_filters(table: Table, req: ApiRequest) -> dict[str, str]:
    """PUT names its row by ``pk=eq.value`` filters on exactly the primary key, without paging."""
    opts = req.options.get(())
    if opts is not None and (opts.limit is not None or opts.offset is not None):
        raise errors.put_limit()
    eqs: dict[str, str] = {}
    for c in opts.conditions if opts else []:
        if not isinstance(c, Filter) or c.op != "eq" or c.negate or c.field.json_path:
            raise errors.put_filters()
        eqs[c.field.name] = str(c.value)
    if not table.pk or sorted(eqs) != sorted(table.pk):
        raise errors.put_filters()
    return eqs


def put(planner: Planner, table: Table, req: ApiRequest, payload: Any, eqs: dict[str, str],
        dumps: Any) -> WritePlan:
    obj = payload[0] if isinstance(payload, list) and len(payload) == 1 else payload
    if not isinstance(obj, dict):
        raise errors.bad_body()
    for k in table.pk:
        if k not in obj or str(obj[k]) != eqs[k]:
            raise errors.put_mismatch()
    cols = _columns(table, list(obj.keys()))
    # the filters only name the row; the representation is the plain select list
    _root, ret = _returning(planner, table, req, filters=False)
    return WritePlan(Op.PUT, table, ret, req.prefs, _return(req.prefs), cols, dumps(obj), None,
                     list(table.pk), "merge-duplicates")
