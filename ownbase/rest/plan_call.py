"""Planning a function call (``/rpc/<fn>``): which overload runs and how its arguments are passed,
resolved as PostgREST resolves them. No I/O, no SQL text.

PostgREST's rules: overloads are ordered by fewest parameters, then description, then parameters;
a function *matches* when the argument keys are exactly its required parameters plus any of its
optional ones; when none matches, a function with a single unnamed parameter takes the raw body
(``json``/``jsonb`` for JSON, ``text`` for text/plain, ``xml`` for text/xml, ``bytea`` for
application/octet-stream). More than one candidate is 300 ``PGRST203``; none is 404 ``PGRST202``.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ownbase.rest import errors
from ownbase.rest.request import Media, Preferences
from ownbase.rest.schema_cache import Column, Function, SchemaCache, Table

# Content-Type of a POST body → the type a single unnamed parameter must have to receive it raw
RAW_TYPES = {"application/json": ("json", "jsonb"), "text/plain": ("text",), "text/xml": ("xml",),
             "application/octet-stream": ("bytea",)}
JSON_TYPES = ("application/json", "application/vnd.pgrst.object+json", "application/vnd.pgrst.object", "*/*", "")


class Shape(enum.Enum):
    """What a function returns, which decides the statement and the answer's shape."""

    VOID = "void"  # 204
    VALUE = "value"  # a bare JSON value
    VALUES = "values"  # SETOF a scalar: an array of values
    ROW = "row"  # one composite: an object (the select tree applies)
    ROWS = "rows"  # SETOF a composite / TABLE: an array of objects (the select tree applies)


@dataclass
class CallPlan:
    function: Function
    # named arguments taken from the JSON object (in the order given), or the whole body as the
    # one parameter (``whole``), typed as that parameter
    names: list[str] = field(default_factory=list)
    whole: bool = False

    @property
    def shape(self) -> Shape:
        fn = self.function
        if fn.kind == "void":
            return Shape.VOID
        if fn.kind == "scalar":
            return Shape.VALUES if fn.returns_set else Shape.VALUE
        return Shape.ROWS if fn.returns_set else Shape.ROW

    def check_max_affected(self, prefs: Preferences) -> None:
        """``handling=strict, max-affected=n`` needs rows to count: 400 PGRST128 otherwise."""
        if prefs.max_affected is not None and prefs.handling == "strict" and not self.function.returns_set:
            raise errors.ApiError(400, "PGRST128", "Function must return SETOF or TABLE when max-affected "
                                                   "preference is used with handling=strict")

    def result_mode(self, mode: Media) -> Media:
        """The response's shape for the negotiated one: a single composite is an object; values have
        no CSV or GeoJSON form."""
        if self.shape is Shape.ROW:
            return mode.single()
        if self.shape in (Shape.VOID, Shape.VALUE, Shape.VALUES):
            return mode.json_only()
        return mode


def media_kind(content_type: str) -> str:
    """The body's kind for matching: one of RAW_TYPES' keys (JSON for the JSON family)."""
    return "application/json" if content_type in JSON_TYPES else content_type


def _order(fn: Function) -> tuple[Any, ...]:
    # PostgREST's Ord of function descriptions: fewest parameters first, then the description
    # (none before any), then the parameters (name, type, required)
    args = tuple((a.name, a.type, not a.has_default, a.mode == "v") for a in fn.in_args)
    return (len(fn.in_args), fn.comment is not None, fn.comment or "", args)


def _matches(fn: Function, keys: set[str], single_object: bool) -> bool:
    params = fn.in_args
    if single_object:
        return bool(params) and params[0].type in ("json", "jsonb")
    if not params:
        return not keys
    required = {a.name for a in params if not a.has_default}
    optional = {a.name for a in params if a.has_default}
    if not optional:
        return keys == required
    if not required:
        return keys <= optional
    return keys - optional == required


def _takes_raw(fn: Function, kind: str) -> bool:
    params = fn.in_args
    return len(params) == 1 and params[0].name == "" and params[0].type in RAW_TYPES.get(kind, ())


def choose(cache: SchemaCache, schema: str, name: str, keys: Sequence[str], *, kind: str, post: bool,
           single_object: bool, array: bool = False) -> CallPlan:
    """The overload to call with argument ``keys`` (a JSON object's keys or query parameters) and a
    body of ``kind`` (see ``media_kind``; for non-JSON kinds ``keys`` is empty). ``array``: the JSON
    body is an array, which only a single unnamed json/jsonb parameter (or params=single-object)
    takes whole; calling once per element (bulk RPC) is not offered."""
    overloads = sorted(cache.functions.get((schema, name), []), key=_order)
    wanted = set(keys)
    matched = [f for f in overloads if kind == "application/json" and (single_object or not array)
               and _matches(f, wanted, single_object)]
    raw = [f for f in overloads if f not in matched and _takes_raw(f, kind)]
    if len(matched) == 1:
        return CallPlan(matched[0], [] if single_object else list(keys), whole=single_object)
    if len(matched) > 1:
        raise errors.ambiguous_function([f.signature() for f in matched])
    if len(raw) == 1:
        return CallPlan(raw[0], [], whole=True)
    if len(raw) > 1:
        raise errors.ambiguous_function([f.signature() for f in raw])
    if array and overloads:
        raise errors.not_implemented("calling a function with a JSON array body (bulk RPC)")
    raise no_function(cache, schema, name, sorted(wanted), overloads, kind=kind, post=post)


def no_function(cache: SchemaCache, schema: str, name: str, keys: list[str], overloads: list[Function], *,
                kind: str, post: bool) -> errors.ApiError:
    raw_type = RAW_TYPES[kind][0] if post and kind in RAW_TYPES and kind != "application/json" else None
    return errors.no_function(schema, name, keys, raw_type=raw_type, json_post=post and kind == "application/json",
                              hint=_hint(cache, schema, name, keys, overloads))


def _hint(cache: SchemaCache, schema: str, name: str, keys: list[str], overloads: list[Function]) -> str | None:
    """Another function of the schema with a close name, or the overload whose parameter list is
    closest to the arguments given (compared as comma-joined text, as PostgREST does)."""
    if not overloads:
        names = [n for (s, n) in cache.functions if s == schema]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
        return f"{schema}.{close[0]}" if close and close[0] != name else None
    lists = list(dict.fromkeys(",".join(a.name for a in f.in_args) for f in overloads))
    best = _closest(",".join(keys), lists)
    return f"{schema}.{name}({best})" if best is not None else None


def _closest(text: str, options: list[str]) -> str | None:
    """The option most similar to ``text`` (edit distance relative to the longer string), if any
    shares a pair of characters with it at all."""
    def grams(s: str) -> set[str]:
        padded = f"-{s.lower()}-"
        return {padded[i:i + 2] for i in range(len(padded) - 1)}

    text = text[:256]  # only a hint: bound the work a huge argument list could cause
    mine = grams(text)
    scored = [(_similarity(text, o), -i, o) for i, o in enumerate(options) if grams(o) & mine]
    if not scored:
        return None
    score, _, best = max(scored)
    return best if score >= 0.33 else None


def _similarity(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca.lower() != cb.lower())))
        prev = cur
    return 1 - prev[-1] / max(len(a), len(b))


def result_table(cache: SchemaCache, fn: Function) -> Table:
    """The rows a composite-returning function gives, as a relation to select from: its table or
    view, or its OUT/TABLE columns."""
    if fn.return_relation is not None:
        t = cache.table(*fn.return_relation)
        if t is not None:
            return t
    cols = {name: Column(name, typ, True, None, i + 1, base_type=typ) for i, (name, typ) in enumerate(fn.out_columns)}
    return Table(fn.schema, fn.name, "f", cols)
