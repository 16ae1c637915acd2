"""postgres_changes binding filters: ``col=op.value`` conditions, several joined by commas (AND),
each optionally negated with a ``not.`` prefix. Evaluated on the changed row's JSON values with
the column's SQL semantics where it matters (NULL never matches a comparison; ``is`` and
``isdistinct`` are NULL-aware)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch",
       "isdistinct")


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: Any  # str, or list[str] for `in`
    negate: bool = False

    def matches(self, record: dict[str, Any] | None) -> bool:
        if record is None or self.column not in record:
            return False
        result = _apply(self.op, record[self.column], self.value)
        if result is None:  # SQL NULL: neither the condition nor its negation holds
            return False
        return (not result) if self.negate else result


_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_$]*=)")


def parse(text: str | None) -> tuple[Condition, ...]:
    if text is None or text == "":
        return ()
    parts: list[str] = []
    depth = 0
    start = 0
    # Split on commas that start a new `column=` condition and are outside parentheses.
    for m in _SPLIT.finditer(text):
        depth = text.count("(", start, m.start()) - text.count(")", start, m.start())
        if depth <= 0:
            parts.append(text[start:m.start()])
            start = m.end()
    parts.append(text[start:])
    return tuple(_parse_one(p.strip()) for p in parts)


def _parse_one(text: str) -> Condition:
    column, eq, rest = text.partition("=")
    column = column.strip()
    if not eq or not column or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", column):
        raise FilterError(f"invalid filter {text!r}")
    negate = False
    if rest.startswith("not."):
        negate, rest = True, rest[4:]
    op, dot, value = rest.partition(".")
    if not dot or op not in OPS:
        raise FilterError(f"invalid filter operator in {text!r}")
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterError(f"`in` needs a list like (1,2,3): {text!r}")
        items = [v.strip() for v in _split_list(value[1:-1])]
        return Condition(column, op, [_unquote(v) for v in items], negate)
    if op == "is" and value.lower() not in ("null", "true", "false", "unknown", "not_null"):
        raise FilterError(f"`is` takes null, true, false or unknown: {text!r}")
    return Condition(column, op, _unquote(value), negate)


def _split_list(text: str) -> list[str]:
    items, cur, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif ch == "," and not quoted:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur or items:
        items.append("".join(cur))
    return items


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _coerce(actual: Any, wanted: str) -> Any:
    """The filter text as a value comparable with the row's JSON value."""
    if isinstance(actual, bool):
        low = wanted.lower()
        if low in ("true", "t", "1", "yes", "on"):
            return True
        if low in ("false", "f", "0", "no", "off"):
            return False
        raise FilterError(f"invalid boolean {wanted!r}")
    if isinstance(actual, (int, float)):
        try:
            return int(wanted) if isinstance(actual, int) and re.fullmatch(r"-?\d+", wanted) \
                else float(wanted)
        except ValueError:
            raise FilterError(f"invalid number {wanted!r}") from None
    if isinstance(actual, (dict, list)):
        from ownbase.realtime.serializer import loads

        try:
            return loads(wanted)
        except ValueError:
            return wanted
    return wanted


def _as_text(actual: Any) -> str:
    if isinstance(actual, bool):
        return "true" if actual else "false"
    if isinstance(actual, str):
        return actual
    from ownbase.realtime.serializer import dumps

    return dumps(actual)


def _like(pattern: str, flags: int = 0) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch in "%*":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), flags | re.DOTALL)


def _apply(op: str, actual: Any, wanted: Any) -> bool | None:
    if op == "is":
        low = str(wanted).lower()
        if low == "null":
            return actual is None
        if low == "not_null":
            return actual is not None
        if low == "unknown":
            return actual is None
        return actual is (low == "true")
    if op == "isdistinct":
        if actual is None:
            return str(wanted).lower() != "null"
        try:
            return actual != _coerce(actual, wanted)
        except FilterError:
            return True
    if actual is None:
        return None
    try:
        if op == "in":
            return any(actual == _coerce(actual, w) for w in wanted)
        if op in ("like", "ilike"):
            flags = re.IGNORECASE if op == "ilike" else 0
            return _like(wanted, flags).fullmatch(_as_text(actual)) is not None
        if op in ("match", "imatch"):
            flags = re.IGNORECASE if op == "imatch" else 0
            return re.search(wanted, _as_text(actual), flags) is not None
        value = _coerce(actual, wanted)
        if op == "eq":
            return actual == value
        if op == "neq":
            return actual != value
        if op == "lt":
            return actual < value
        if op == "lte":
            return actual <= value
        if op == "gt":
            return actual > value
        if op == "gte":
            return actual >= value
    except (FilterError, TypeError, re.error):
        return False
    return False


def matches(conditions: tuple[Condition, ...], record: dict[str, Any] | None) -> bool:
    return all(c.matches(record) for c in conditions)
