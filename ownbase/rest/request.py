"""Pure parsing of a PostgREST request (query string and headers) into typed values. No SQL here.

Grammar (what postgrest-js / postgrest-py emit):
  select   = item ("," item)*
  item     = "*" | [alias ":"] field ["::" type] | [alias ":"] ["..."] name ["!" hint]* "(" select ")"
  field    = name (("->" | "->>") key)*
  filter   = [path "."] field "=" ["not."] op ["(" any|all ")" | "(" config ")"] "." value
  logic    = [path "."] ["not."] ("or"|"and") "=(" cond ("," cond)* ")"
  order    = term ("," term)*,  term = field ["(" field ")"] ["." asc|desc] ["." nullsfirst|nullslast]
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ownbase.rest import errors

OPERATORS = {
    "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "is", "isdistinct",
    "in", "cs", "cd", "ov", "sl", "sr", "nxl", "nxr", "adj", "fts", "plfts", "phfts", "wfts",
}
QUANTIFIABLE = {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"}
FTS = {"fts", "plfts", "phfts", "wfts"}
RESERVED = {"select", "order", "limit", "offset", "on_conflict", "columns", "or", "and"}
_IDENT_RE = re.compile(r"^[^\s,.():!\"'*\->]+$")
_TYPE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*( [A-Za-z_][A-Za-z0-9_]*)*(\[\])?$")


@dataclass(frozen=True)
class Field:
    name: str
    json_path: tuple[tuple[str, str], ...] = ()  # (("->", "a"), ("->>", "b"))

    @property
    def default_alias(self) -> str:
        if self.json_path:
            key = self.json_path[-1][1]
            return key
        return self.name


@dataclass(frozen=True)  # parsed selects are cached and shared between requests: never changed
class ColumnItem:
    field: Field
    alias: str | None = None
    cast: str | None = None  # on the column (before an aggregate)
    star: bool = False
    aggregate: str | None = None  # count | sum | avg | max | min (db_aggregates_enabled)
    agg_cast: str | None = None  # on the aggregate's result: amount.sum()::text
    bare: bool = False  # count() without a column

    @property
    def output_name(self) -> str:
        return self.alias or self.aggregate or self.field.default_alias


@dataclass(frozen=True)
class EmbedItem:
    name: str
    alias: str | None = None
    hint: str | None = None
    join: str | None = None  # "inner" | "left" | None
    spread: bool = False
    children: list[SelectItem] = field(default_factory=list)

    @property
    def output_name(self) -> str:
        return self.alias or self.name


SelectItem = ColumnItem | EmbedItem


@dataclass
class Filter:
    field: Field
    op: str
    value: str | list[str]
    negate: bool = False
    quantifier: str | None = None  # "any" | "all"
    config: str | None = None  # full-text search configuration


@dataclass
class Logic:
    op: str  # "and" | "or"
    children: list[Condition]
    negate: bool = False


Condition = Filter | Logic


@dataclass
class OrderTerm:
    field: Field
    relation: str | None = None  # order=author(name).desc: order by a to-one embed's column
    direction: str | None = None  # "asc" | "desc"
    nulls: str | None = None  # "first" | "last"


@dataclass
class NodeOptions:
    """Filters, order and paging for one level of the select tree (root = path ())."""

    conditions: list[Condition] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


@dataclass
class Preferences:
    return_: str | None = None  # minimal | representation | headers-only
    count: str | None = None  # exact | planned | estimated
    resolution: str | None = None  # merge-duplicates | ignore-duplicates
    missing: str | None = None  # default | null
    params: str | None = None  # single-object
    handling: str | None = None  # strict | lenient
    timezone: str | None = None
    max_affected: int | None = None
    tx: str | None = None
    invalid: list[str] = field(default_factory=list)


@dataclass
class ApiRequest:
    select: list[SelectItem]
    options: dict[tuple[str, ...], NodeOptions]
    prefs: Preferences
    range_offset: int = 0
    range_limit: int | None = None  # from the Range header
    on_conflict: list[str] | None = None
    columns: list[str] | None = None
    rpc_args: dict[str, Any] = field(default_factory=dict)  # GET rpc: arguments (str, or list if repeated)
    select_given: bool = False
    on_conflict_applied: bool = False  # set by planning an insert: resolution applies


# --- low-level tokenising ------------------------------------------------------------------------

def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses, braces and double quotes."""
    parts: list[str] = []
    depth = 0
    brace = 0
    quoted = False
    buf: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            buf.append(ch)
        elif ch == "(":
            depth += 1
            buf.append(ch)
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unexpected \")\"")
            buf.append(ch)
        elif ch == "{":
            brace += 1
            buf.append(ch)
        elif ch == "}":
            brace = max(0, brace - 1)
            buf.append(ch)
        elif ch == sep and depth == 0 and brace == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    if quoted:
        raise ValueError("unexpected end of input expecting closing quote")
    if depth != 0:
        raise ValueError("unexpected end of input expecting \")\"")
    parts.append("".join(buf))
    return parts


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return value


def parse_field(text: str) -> Field:
    text = text.strip()
    if not text:
        raise ValueError("unexpected end of input expecting field name")
    pos = text.find("->")
    head, rest = (text, "") if pos < 0 else (text[:pos], text[pos:])
    name = _name(head)
    path: list[tuple[str, str]] = []
    while rest:
        if rest.startswith("->>"):
            op, rest = "->>", rest[3:]
        elif rest.startswith("->"):
            op, rest = "->", rest[2:]
        else:
            raise ValueError(f"unexpected \"{rest[:1]}\" expecting \"->\"")
        nxt = rest.find("->")
        key, rest = (rest, "") if nxt < 0 else (rest[:nxt], rest[nxt:])
        key = unquote(key)
        if key == "":
            raise ValueError("unexpected end of input expecting json key")
        path.append((op, key))
    return Field(name, tuple(path))


def _name(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return unquote(text)
    if not text or not _IDENT_RE.match(text):
        raise ValueError(f"unexpected \"{text[:1] or ' '}\" expecting field name (* or [a..z0..9_$])")
    return text


# --- select --------------------------------------------------------------------------------------

_AGGREGATES = ("count", "sum", "avg", "max", "min")


# [alias:]count()[::type]  |  [alias:]field[::type].agg()[::type]   (PostgREST 12 aggregates)
_AGG_RE = re.compile(
    r'^(?:(?P<alias>"(?:[^"\\]|\\.)*"|[^:"().]+):(?!:))?'
    r'(?:(?P<field>"(?:[^"\\]|\\.)*"|[^"():.]+?)(?:::(?P<cast>[^"():.]+))?\.)?'
    r'(?P<fn>count|sum|avg|max|min)\(\)'
    r'(?:::(?P<rcast>[^"():.]+))?$')


SELECT_CACHE = 256  # parsed `select` strings kept (an app uses a handful; bounded whatever clients send)


def parse_select(text: str, aggregates: bool = False) -> list[SelectItem]:
    """``aggregates``: OWNBASE_DB_AGGREGATES_ENABLED; when false, aggregate functions answer PGRST123.
    Parses are cached per string (an embed's select was a third of its parse-and-plan time); the
    items are frozen, and each caller gets its own list."""
    try:
        return list(_cached_select(text, aggregates))
    except ValueError as exc:
        raise errors.parse_error("select parameter", text, str(exc)) from None


@functools.lru_cache(maxsize=SELECT_CACHE)
def _cached_select(text: str, aggregates: bool) -> tuple[SelectItem, ...]:
    return tuple(_select_items(text, aggregates))


def _aggregate_item(raw: str) -> ColumnItem | None:
    m = _AGG_RE.match(raw)
    if not m:
        return None
    alias = _name(m.group("alias")) if m.group("alias") else None
    fn = m.group("fn")
    casts = []
    for key in ("cast", "rcast"):
        c = m.group(key)
        if c is not None:
            c = c.strip()
            if not _TYPE_RE.match(c):
                raise ValueError(f"unexpected \"{c[:1] or ' '}\" expecting type name")
        casts.append(c)
    if m.group("field") is None:
        if fn != "count":
            raise ValueError(f"{fn}() needs a column: use column.{fn}()")
        return ColumnItem(Field("*"), alias, None, aggregate="count", agg_cast=casts[1], bare=True)
    fld = parse_field(m.group("field"))
    if fld.name == "*":
        raise ValueError(f"unexpected \"*\" before .{fn}(): use count()")
    return ColumnItem(fld, alias, casts[0], aggregate=fn, agg_cast=casts[1])


def _select_items(text: str, aggregates: bool = False) -> list[SelectItem]:
    items: list[SelectItem] = []
    for raw in split_top(text):
        raw = raw.strip()
        if not raw:
            if text.strip() == "":
                continue
            raise ValueError("unexpected \",\" expecting field name")
        items.append(_select_item(raw, aggregates))
    return items


def _select_item(raw: str, aggregates: bool = False) -> SelectItem:
    if raw == "*":
        return ColumnItem(Field("*"), star=True)
    if aggregates and "()" in raw:
        agg = _aggregate_item(raw)
        if agg is not None:
            return agg
    if raw in ("count()", "count"):
        return ColumnItem(Field("count"))
    if raw.endswith(")") and "(" in raw:
        head, _, inner = raw.partition("(")
        inner = inner[:-1]
        spread = False
        alias = None
        if head.startswith("..."):
            spread = True
            head = head[3:]
        if ":" in head and not head.startswith('"'):
            alias, _, head = head.partition(":")
            alias = _name(alias)
        name_part, *marks = head.split("!")
        name_part = name_part.strip()
        if (name_part in _AGGREGATES and inner.strip() == "" and name_part != "count") or "." in name_part and \
                name_part.rsplit(".", 1)[1] in _AGGREGATES:
            if aggregates:
                raise ValueError(f"unexpected \"{name_part}()\": an aggregate is column.{name_part.rsplit('.', 1)[-1]}()"
                                 f" with an optional alias and casts")
            raise errors.aggregates_disabled()
        name = _name(name_part)
        hint = None
        join = None
        for mark in marks:
            mark = mark.strip()
            if mark in ("inner", "left"):
                join = mark
            elif mark:
                hint = _name(mark)
            else:
                raise ValueError("unexpected \"!\" expecting hint")
        children = _select_items(inner, aggregates) if inner.strip() else []
        return EmbedItem(name, alias, hint, join, spread, children)
    if raw.startswith("..."):
        raise ValueError("unexpected \"...\" without an embedded resource")
    alias = None
    body = raw
    # alias:field  (a "::" cast is not an alias separator)
    m = re.match(r'^("(?:[^"\\]|\\.)*"|[^:"]+):(?!:)(.*)$', raw)
    if m:
        alias = _name(m.group(1))
        body = m.group(2)
    cast = None
    if "::" in body:
        body, _, cast = body.partition("::")
        cast = cast.strip()
        if not _TYPE_RE.match(cast):
            raise ValueError(f"unexpected \"{cast[:1]}\" expecting type name")
    if body.strip() == "*":
        raise ValueError("unexpected \"*\" with alias or cast")
    return ColumnItem(parse_field(body), alias, cast)


# --- filters -------------------------------------------------------------------------------------

def parse_filter_value(fld: Field, text: str, source: str) -> Filter:
    """``text`` is the part after ``col=``: ``[not.]op[(mod)].value``."""
    negate = False
    rest = text
    if rest.startswith("not."):
        negate = True
        rest = rest[4:]
    op, dot, value = rest.partition(".")
    quant = None
    config = None
    m = re.match(r"^([a-z]+)\((.*)\)$", op)
    if m:
        op, modifier = m.group(1), m.group(2)
        if op in FTS:
            config = modifier
        elif op in QUANTIFIABLE and modifier in ("any", "all"):
            quant = modifier
        else:
            raise errors.parse_error("filter", source, f"unexpected \"(\" after operator {op}")
    if not dot or op not in OPERATORS:
        raise errors.parse_error(
            "filter", source,
            f"unexpected \"{op[:1] or ' '}\" expecting \"not\" or operator (eq, gt, ...)")
    if op == "is":
        if value.lower() not in ("null", "true", "false", "unknown", "not_null"):
            raise errors.parse_error("filter", source,
                                     "unexpected \"" + (value[:1] or " ") + "\" expecting null or trilean value (unknown, true, false)")
        return Filter(fld, op, value.lower(), negate)
    if op == "in" or quant is not None:
        if not (value.startswith("(") and value.endswith(")")) and not (
                quant and value.startswith("{") and value.endswith("}")):
            raise errors.parse_error("filter", source, "unexpected \"" + (value[:1] or " ") + "\" expecting \"(\"")
        inner = value[1:-1]
        try:
            items = [unquote(v.strip()) if v.strip().startswith('"') else v for v in split_top(inner)] \
                if inner != "" else []
        except ValueError as exc:
            raise errors.parse_error("filter", source, str(exc)) from None
        return Filter(fld, op, items, negate, quant, config)
    return Filter(fld, op, value, negate, quant, config)


def parse_logic(op: str, negate: bool, text: str, source: str) -> Logic:
    try:
        if not (text.startswith("(") and text.endswith(")")):
            raise ValueError("unexpected \"" + (text[:1] or " ") + "\" expecting \"(\"")
        parts = split_top(text[1:-1])
        children: list[Condition] = []
        for part in parts:
            part = part.strip()
            if not part:
                raise ValueError("unexpected \",\" expecting logic operand")
            children.append(_logic_operand(part, source))
        return Logic(op, children, negate)
    except ValueError as exc:
        raise errors.parse_error("logic tree", text, str(exc)) from None


def _logic_operand(part: str, source: str) -> Condition:
    neg = False
    body = part
    if body.startswith("not.") and (body[4:].startswith("or(") or body[4:].startswith("and(")):
        neg = True
        body = body[4:]
    for lop in ("or", "and"):
        if body.startswith(lop + "("):
            return parse_logic(lop, neg, body[len(lop):], source)
    # col.op.value — the column may carry a json path containing dots only inside quotes
    m = re.match(r'^("(?:[^"\\]|\\.)*"|[^.]+)\.(.*)$', part)
    if not m:
        raise ValueError(f"unexpected end of input in \"{part}\" expecting operator")
    fld = parse_field(m.group(1))
    rest = m.group(2)
    flt = parse_filter_value(fld, rest, source)
    if isinstance(flt.value, str) and flt.op != "is":
        flt.value = unquote(flt.value)
    return flt


# --- order ---------------------------------------------------------------------------------------

def parse_order(text: str) -> list[OrderTerm]:
    terms: list[OrderTerm] = []
    try:
        for raw in split_top(text):
            raw = raw.strip()
            if not raw:
                raise ValueError("unexpected \",\" expecting field name")
            relation = None
            m = re.match(r"^([^()]+)\(([^()]+)\)(.*)$", raw)
            if m:
                relation = _name(m.group(1))
                target, rest = m.group(2), m.group(3)
                mods = [p for p in rest.split(".") if p]
            else:
                pieces = raw.split(".")
                target = pieces[0]
                mods = pieces[1:]
            direction = None
            nulls = None
            for mod in mods:
                if mod in ("asc", "desc") and direction is None and nulls is None:
                    direction = mod
                elif mod in ("nullsfirst", "nullslast") and nulls is None:
                    nulls = mod[5:]
                else:
                    raise ValueError(f"unexpected \"{mod[:1] or ' '}\" expecting \"asc\", \"desc\", "
                                     f"\"nullsfirst\" or \"nullslast\"")
            terms.append(OrderTerm(parse_field(target), relation, direction, nulls))
    except ValueError as exc:
        raise errors.parse_error("order", text, str(exc)) from None
    return terms


# --- headers -------------------------------------------------------------------------------------

def parse_prefer(values: Sequence[str]) -> Preferences:
    prefs = Preferences()
    for value in values:
        for token in value.split(","):
            token = token.strip()
            if not token:
                continue
            key, _, val = token.partition("=")
            key, val = key.strip().lower(), val.strip()
            known = True
            if key == "return" and val in ("minimal", "representation", "headers-only"):
                prefs.return_ = val
            elif key == "count" and val in ("exact", "planned", "estimated"):
                prefs.count = val
            elif key == "resolution" and val in ("merge-duplicates", "ignore-duplicates"):
                prefs.resolution = val
            elif key == "missing" and val in ("default", "null"):
                prefs.missing = val
            elif key == "params" and val == "single-object":
                prefs.params = val
            elif key == "handling" and val in ("strict", "lenient"):
                prefs.handling = val
            elif key == "timezone" and val:
                prefs.timezone = val
            elif key == "tx" and val in ("commit", "rollback"):
                prefs.tx = val
            elif key == "max-affected" and val.isdigit():
                prefs.max_affected = int(val)
            else:
                known = False
            if not known:
                prefs.invalid.append(token)
    if prefs.handling == "strict" and prefs.invalid:
        raise errors.strict_prefs(prefs.invalid)
    return prefs


def parse_range(value: str | None) -> tuple[int, int | None]:
    """``Range: 0-9`` → (offset 0, limit 10). Malformed headers are ignored like PostgREST does."""
    if not value:
        return 0, None
    m = re.match(r"^\s*(?:items=)?(\d+)-(\d*)\s*$", value)
    if not m:
        return 0, None
    lower = int(m.group(1))
    if m.group(2) == "":
        return lower, None
    upper = int(m.group(2))
    if upper < lower:
        raise errors.bad_range(
            "The lower boundary must be lower than or equal to the upper boundary in the Range header.")
    return lower, upper - lower + 1


def _nonneg_int(name: str, value: str) -> int:
    if not re.fullmatch(r"-?\d{1,18}", value.strip()):
        raise errors.parse_error(name, value, f"unexpected \"{value[:1] or ' '}\" expecting digit")
    n = int(value)
    if n < 0:
        if name == "limit":
            raise errors.bad_range("Limit should be greater than or equal to zero.")
        raise errors.parse_error(name, value, "offset must be a non-negative integer")
    return n


def _path_key(key: str) -> tuple[tuple[str, ...], str]:
    """``author.posts.limit`` → (("author", "posts"), "limit"). Json-path keys keep their dots."""
    arrow = key.find("->")
    head, tail = (key, "") if arrow < 0 else (key[:arrow], key[arrow:])
    pieces = head.split(".")
    last = pieces[-1] + tail
    return tuple(p for p in pieces[:-1]), last


def parse_query(query: Sequence[tuple[str, str]], headers: Mapping[str, str], *, method: str,
                rpc_arg_names: set[str] | None = None, is_rpc: bool = False,
                aggregates: bool = False) -> ApiRequest:
    """Turn the query string and headers into an ``ApiRequest``; raises ``ApiError`` (4xx)."""
    select: list[SelectItem] = [ColumnItem(Field("*"), star=True)]
    select_given = False
    options: dict[tuple[str, ...], NodeOptions] = {(): NodeOptions()}
    on_conflict = None
    columns = None
    rpc_args: dict[str, Any] = {}

    def opts(path: tuple[str, ...]) -> NodeOptions:
        return options.setdefault(path, NodeOptions())

    for key, value in query:
        if key == "select":
            select = parse_select(value, aggregates)
            select_given = True
            continue
        if key == "on_conflict":
            try:
                on_conflict = [_name(c) for c in split_top(value)]
            except ValueError as exc:
                raise errors.parse_error("on_conflict parameter", value, str(exc)) from None
            continue
        if key == "columns":
            try:
                columns = [_name(c) for c in split_top(value)]
            except ValueError as exc:
                raise errors.parse_error("columns parameter", value, str(exc)) from None
            continue
        if is_rpc and method in ("GET", "HEAD") and rpc_arg_names is not None and key in rpc_arg_names:
            # a repeated parameter (?xs=1&xs=2) is an array argument, as in PostgREST
            prev = rpc_args.get(key)
            if prev is None:
                rpc_args[key] = value
            else:
                rpc_args[key] = (prev if isinstance(prev, list) else [prev]) + [value]
            continue
        path, last = _path_key(key)
        negate = False
        if last in ("or", "and") or (path and path[-1] == "not" and last in ("or", "and")):
            if path and path[-1] == "not":
                negate = True
                path = path[:-1]
            opts(path).conditions.append(parse_logic(last, negate, value, value))
            continue
        if last == "order":
            opts(path).order = parse_order(value)
            continue
        if last == "limit":
            opts(path).limit = _nonneg_int("limit", value)
            continue
        if last == "offset":
            opts(path).offset = _nonneg_int("offset", value)
            continue
        if is_rpc and method in ("GET", "HEAD") and rpc_arg_names is not None and not path \
                and "->" not in last and last not in rpc_arg_names and not _looks_like_filter(value):
            # An unknown argument: kept so the function lookup can report it (PGRST202).
            rpc_args[key] = value
            continue
        try:
            fld = parse_field(last)
        except ValueError as exc:
            raise errors.parse_error("filter", key, str(exc)) from None
        opts(path).conditions.append(parse_filter_value(fld, value, value))

    prefs = parse_prefer([v for v in _all(headers, "prefer")])
    range_offset, range_limit = (0, None)
    if method in ("GET", "HEAD"):
        range_offset, range_limit = parse_range(headers.get("range"))
    return ApiRequest(select, options, prefs, range_offset, range_limit, on_conflict, columns, rpc_args,
                      select_given)


def _looks_like_filter(value: str) -> bool:
    v = value.removeprefix("not.")
    op = re.split(r"[.(]", v, maxsplit=1)[0]
    return op in OPERATORS and ("." in v)


def _all(headers: Mapping[str, str], name: str) -> list[str]:
    value = headers.get(name)
    return [value] if value else []


# --- media types ---------------------------------------------------------------------------------

JSON = "application/json"
OBJECT = "application/vnd.pgrst.object+json"
CSV = "text/csv"
OPENAPI = "application/openapi+json"
ARRAY = "application/vnd.pgrst.array+json"
STRIPPED = ";nulls=stripped"

GEOJSON = "application/geo+json"
PLAN = "application/vnd.pgrst.plan"
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")


@dataclass(frozen=True)
class PlanMedia:
    """``Accept: application/vnd.pgrst.plan[+json|+text]; for="<media>"; options=analyze|verbose``."""

    format: str  # "json" | "text"
    for_media: str
    options: tuple[str, ...]


def plan_media(accept: str | None) -> PlanMedia | None:
    """The EXPLAIN media type when it is the first one asked for (PostgREST's db-plan-enabled)."""
    if not accept:
        return None
    first = accept.split(",")[0]
    pieces = [p.strip() for p in first.split(";")]
    mtype = pieces[0].lower()
    if mtype not in (PLAN, PLAN + "+json", PLAN + "+text"):
        return None
    for_media = JSON
    options: tuple[str, ...] = ()
    for p in pieces[1:]:
        key, _, value = p.partition("=")
        value = value.strip().strip('"')
        if key.strip().lower() == "for" and re.fullmatch(r"[\w.+*/-]{1,100}", value):
            for_media = value.lower()  # echoed in the answer's Content-Type: a plain media type only
        elif key.strip().lower() == "options":
            options = tuple(o for o in dict.fromkeys(value.lower().split("|")) if o in PLAN_OPTIONS)
    return PlanMedia("json" if mtype.endswith("+json") else "text", for_media, options)


class Media(enum.Enum):
    """The shape of a response body (PostgREST's MediaType): what negotiation chose."""

    JSON = "application/json; charset=utf-8"
    OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"
    CSV = "text/csv; charset=utf-8"
    JSON_STRIPPED = "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
    OBJECT_STRIPPED = "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
    GEOJSON = "application/geo+json; charset=utf-8"

    @property
    def content_type(self) -> str:
        return self.value

    @property
    def singular(self) -> bool:
        """One object, not an array (``.single()``): anything but one row is 406 PGRST116."""
        return self in (Media.OBJECT, Media.OBJECT_STRIPPED)

    @property
    def stripped(self) -> bool:
        return self in (Media.JSON_STRIPPED, Media.OBJECT_STRIPPED)

    def json_only(self) -> Media:
        """For answers CSV (or GeoJSON) cannot carry: plain JSON instead."""
        return Media.JSON if self in (Media.CSV, Media.GEOJSON) else self

    def single(self) -> Media:
        """For a function returning one composite: the array forms become the object forms."""
        return {Media.JSON: Media.OBJECT, Media.JSON_STRIPPED: Media.OBJECT_STRIPPED}.get(self, self)

    @classmethod
    def of(cls, negotiated: str) -> Media:
        """The body shape for a media type ``negotiate`` returned (the module's media-type names)."""
        if negotiated == GEOJSON:
            return cls.GEOJSON
        if negotiated.endswith(STRIPPED):
            return cls.OBJECT_STRIPPED if negotiated.startswith(OBJECT) else cls.JSON_STRIPPED
        return {OBJECT: cls.OBJECT, CSV: cls.CSV}.get(negotiated, cls.JSON)


def negotiate(accept: str | None, *, allow_openapi: bool = False, geo: bool = False) -> str:
    """Pick the response media type: json (array), object (single), csv; geo+json when ``geo``
    (PostGIS is installed)."""
    if not accept:
        return JSON
    wanted: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        mtype = pieces[0].lower()
        q = 1.0
        for p in pieces[1:]:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if mtype:
            wanted.append((-q, i, mtype))
    wanted.sort()
    params_of = {}
    for part in accept.split(","):
        pieces = [p.strip().lower() for p in part.split(";")]
        params_of[pieces[0]] = pieces[1:]
    for _q, _i, mtype in wanted:
        if _q == 0:
            continue
        stripped = "nulls=stripped" in params_of.get(mtype, [])
        if stripped and mtype in (OBJECT, "application/vnd.pgrst.array+json") and not allow_openapi:
            return (OBJECT if mtype == OBJECT else ARRAY) + STRIPPED
        if mtype in ("*/*", "application/*", JSON, "application/vnd.pgrst.array+json"):
            return OPENAPI if allow_openapi else JSON
        if mtype == OBJECT or mtype.startswith(OBJECT):
            return OBJECT
        if mtype in (CSV, "text/*") and not allow_openapi:
            return CSV
        if mtype == OPENAPI and allow_openapi:
            return OPENAPI
        if mtype == GEOJSON and geo and not allow_openapi:
            return GEOJSON
    raise errors.not_acceptable([w[2] for w in sorted(wanted, key=lambda w: w[1])])


# --- CSV request bodies --------------------------------------------------------------------------

# One field and what ends it: a quoted field ("" escapes a quote; commas and line breaks allowed
# inside) or a run of characters without comma, quote or line break; then a comma, a line break or
# the end of the body.
_CSV_FIELD = re.compile(r'(?:"([^"]*(?:""[^"]*)*)"|([^,"\r\n]*))(,|\r\n|\n|\r|\Z)')
_CSV_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')


def parse_csv_body(body: bytes) -> list[dict[str, str | None]]:
    """A ``text/csv`` body (RFC 4180) as a list of objects keyed by the header line.

    An empty unquoted field and the unquoted word ``NULL`` become None (SQL NULL); a quoted field is
    always a string (``""`` is the empty string, ``"NULL"`` the word). Lines that are completely
    empty are skipped. Any malformation raises PGRST102 naming the line."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.bad_body("Invalid CSV: the body is not UTF-8") from None
    records = _csv_records(text)
    if not records:
        raise errors.bad_body("Invalid CSV: the body is empty, expected a header line with column names")
    header_line, header = records[0]
    names: list[str] = []
    for value in header:
        if value is None or value == "":
            raise errors.bad_body(f"Invalid CSV: empty column name in the header (line {header_line})")
        if value in names:
            raise errors.bad_body(f"Invalid CSV: column '{value}' appears twice in the header (line {header_line})")
        names.append(value)
    width = len(names)
    rows: list[dict[str, str | None]] = []
    for line, fields in records[1:]:
        if len(fields) != width:
            raise errors.bad_body(f"Invalid CSV: line {line} has {len(fields)} field(s), the header has {width}")
        rows.append(dict(zip(names, fields)))
    return rows


def _csv_records(text: str) -> list[tuple[int, list[str | None]]]:
    """(line number, fields) of each record, completely empty lines left out. A field is None for an
    empty unquoted field or the unquoted word NULL, else its text (quotes removed)."""
    records: list[tuple[int, list[str | None]]] = []
    line, line_pos = 1, 0  # line number at line_pos, advanced incrementally

    def line_at(p: int) -> int:
        nonlocal line, line_pos
        line += text.count("\n", line_pos, p)
        line_pos = p
        return line

    scan = _CSV_FIELD.scanner(text).match  # each match starts where the previous one ended
    fields: list[str | None] = []
    start = pos = 0
    blank = True  # the record so far is one empty unquoted field
    while True:
        m = scan()
        if m is None:
            # a double quote where none may be
            if text[pos] != '"':
                reason = "a double quote inside an unquoted field (quote the whole field and double the quote)"
            elif _CSV_QUOTED.match(text, pos):
                reason = "unexpected character after a closing quote"
            else:
                reason = "a quoted field without its closing quote"
            raise errors.bad_body(f"Invalid CSV: {reason} (line {line_at(pos)})")
        quoted, plain, end = m.groups()
        if quoted is not None:
            fields.append(quoted.replace('""', '"') if '"' in quoted else quoted)
            blank = False
        else:
            fields.append(None if plain == "" or plain == "NULL" else plain)
            blank = blank and plain == ""
        pos = m.end()
        if end == ",":
            blank = False
            continue
        if not blank:
            records.append((line_at(start), fields))
        if not end:
            return records
        fields = []
        start = pos
        blank = True
