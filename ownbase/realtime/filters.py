"""postgres_changes binding filters: ``col=op.value`` conditions, several joined by commas (AND),
each optionally negated with a ``not.`` prefix. Evaluated on the changed row's JSON values with
the column's SQL semantics where it matters (NULL never matches a comparison; ``is`` and
``isdistinct`` are NULL-aware).

Filters come from any client holding the anon key, and they run for every captured row, so none
may cost more than linear time in the row's size: the filter text and each pattern are bounded,
parsing is a single pass, and the pattern operators (``like``, ``ilike``, ``match``, ``imatch``)
run on RE2, whose matching time is linear in the text whatever the pattern (no backtracking).
Patterns are compiled once at join, so a pattern RE2 refuses is refused with the join.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import re2

from ownbase.realtime.serializer import dumps, loads

OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch",
       "isdistinct")
PATTERN_OPS = frozenset({"like", "ilike", "match", "imatch"})

MAX_FILTER_LENGTH = 4096  # characters of one binding's whole filter text
MAX_PATTERN_LENGTH = 256  # characters of one like/ilike/match/imatch pattern
PATTERN_MAX_MEM = 1 << 20  # RE2's memory budget per compiled pattern (it falls back to its NFA)

_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NEXT_CONDITION = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_$]*=")
_INTEGER = re.compile(r"-?\d+")


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: Any  # str, or list[str] for `in`
    negate: bool = False
    pattern: Any = field(default=None, compare=False, repr=False)  # compiled RE2, pattern ops only

    @property
    def expensive(self) -> bool:
        """Pattern operators: evaluated only after cheaper checks (and RLS) have passed."""
        return self.op in PATTERN_OPS

    def matches(self, record: dict[str, Any] | None) -> bool:
        if record is None or self.column not in record:
            return False
        result = _apply(self, record[self.column])
        if result is None:  # SQL NULL: neither the condition nor its negation holds
            return False
        return (not result) if self.negate else result


def parse(text: str | None) -> tuple[Condition, ...]:
    if text is None or text == "":
        return ()
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    return tuple(_parse_one(p.strip()) for p in _split_conditions(text))


def _split_conditions(text: str) -> list[str]:
    """Split on commas that start a new ``column=`` condition outside parentheses, in one pass
    (each character is looked at a bounded number of times)."""
    parts: list[str] = []
    start = depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth <= 0 and _NEXT_CONDITION.match(text, i + 1):
            parts.append(text[start:i])
            start, depth = i + 1, 0
    parts.append(text[start:])
    return parts


def _parse_one(text: str) -> Condition:
    column, eq, rest = text.partition("=")
    column = column.strip()
    if not eq or not column or not _COLUMN.fullmatch(column):
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
    value = _unquote(value)
    if op in PATTERN_OPS:
        return Condition(column, op, value, negate, _compile(op, value))
    return Condition(column, op, value, negate)


def _compile(op: str, value: str) -> Any:
    if len(value) > MAX_PATTERN_LENGTH:
        raise FilterError(f"`{op}` pattern is longer than {MAX_PATTERN_LENGTH} characters")
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False
    options.case_sensitive = op not in ("ilike", "imatch")
    if op in ("like", "ilike"):
        options.dot_nl = True
        source = "".join(".*" if ch in "%*" else "." if ch == "_" else re2.escape(ch) for ch in value)
    else:
        source = value
    try:
        return re2.compile(source, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise FilterError(f"invalid `{op}` pattern {value!r}: {reason}") from None


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
            return int(wanted) if isinstance(actual, int) and _INTEGER.fullmatch(wanted) else float(wanted)
        except ValueError:
            raise FilterError(f"invalid number {wanted!r}") from None
    if isinstance(actual, (dict, list)):
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
    return dumps(actual)


def _apply(cond: Condition, actual: Any) -> bool | None:
    op, wanted = cond.op, cond.value
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
            return cond.pattern.fullmatch(_as_text(actual)) is not None
        if op in ("match", "imatch"):
            return cond.pattern.search(_as_text(actual)) is not None
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
    except (FilterError, TypeError):
        return False
    return False


def matches(conditions: tuple[Condition, ...], record: dict[str, Any] | None) -> bool:
    return all(c.matches(record) for c in conditions)
