"""Response shaping: status codes, Content-Range, Preference-Applied, media types, and the
``response.headers`` / ``response.status`` GUCs functions and triggers may set."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.responses import Response

from ownbase.rest import errors
from ownbase.rest.plan_write import Op, Return, WritePlan
from ownbase.rest.request import Media, Preferences

def content_range(offset: int, rows: int, total: int | None) -> str:
    tail = "*" if total is None else str(total)
    if rows <= 0:
        return f"*/{tail}"
    return f"{offset}-{offset + rows - 1}/{tail}"


def read_status(offset: int, rows: int, total: int | None) -> int:
    """200, 206 when a known total is larger than the page, 416 past the end."""
    if total is None:
        return 200
    if offset > total:
        raise errors.bad_range(f"An offset of {offset} was requested, but there are only {total} rows.",
                               total)
    return 206 if rows < total else 200


def applied(prefs: Preferences, *, resolution: bool = False, missing: bool = False, ret: bool = False,
            count: bool = True, tx: str | None = None, timezone: str | None = None,
            max_affected: bool = False) -> str | None:
    """Preference-Applied in PostgREST's order; ``tx``/``timezone``: the values that applied."""
    out: list[str] = []
    if resolution and prefs.resolution:
        out.append(f"resolution={prefs.resolution}")
    if missing and prefs.missing:
        out.append(f"missing={prefs.missing}")
    if ret and prefs.return_:
        out.append(f"return={prefs.return_}")
    if count and prefs.count:
        out.append(f"count={prefs.count}")
    if tx:
        out.append(f"tx={tx}")
    if prefs.handling:
        out.append(f"handling={prefs.handling}")
    if timezone:
        out.append(f"timezone={timezone}")
    if max_affected and prefs.handling == "strict" and prefs.max_affected is not None:
        out.append(f"max-affected={prefs.max_affected}")
    return ", ".join(out) or None


def build(status: int, body: str | bytes | None, mode: Media, *, content_range_: str | None = None,
          pref_applied: str | None = None, extra: dict[str, str] | None = None, head: bool = False,
          profile: str | None = None) -> Response:
    headers: dict[str, str] = {}
    if content_range_ is not None:
        headers["Content-Range"] = content_range_
    if pref_applied:
        headers["Preference-Applied"] = pref_applied
    if profile:
        headers["Content-Profile"] = profile
    if extra:
        headers.update(extra)
    if body is None or status == 204:
        return Response(b"", status_code=status, headers=headers)
    payload = body.encode() if isinstance(body, str) else body
    if head:
        resp = Response(b"", status_code=status, headers=headers, media_type=mode.content_type)
        resp.headers["content-length"] = str(len(payload))
        return resp
    return Response(payload, status_code=status, headers=headers, media_type=mode.content_type)


def nothing_written(plan: WritePlan, mode: Media) -> Response:
    """An empty insert or patch: answered like PostgREST without touching the table."""
    representation = plan.ret is Return.REPRESENTATION
    if plan.op is Op.INSERT:
        if mode.singular:
            raise errors.singular(0)
        return build(201, "[]" if representation else None, mode, content_range_="*/*",
                     pref_applied=applied(plan.prefs, ret=True))
    return build(200 if representation else 204, "[]" if representation else None, mode, content_range_="*/*")


def written(plan: WritePlan, mode: Media, row: Any, affected: int | None, *, relation: str, profile: str | None,
            tx: str | None, timezone: str | None) -> Response:
    """The answer to a write: ``row`` is the shaped result (None when the statement ran bare, then
    ``affected`` counts its rows)."""
    prefs = plan.prefs
    representation = plan.ret is Return.REPRESENTATION
    if plan.op is Op.PUT:
        if representation:
            return build(201 if (row["inserted"] or 0) > 0 else 200, row["body"], mode, profile=profile)
        return build(204, None, mode, profile=profile)
    rows = affected if affected is not None else int(row["page_total"])
    total = rows if prefs.count in ("exact", "estimated") else None
    extra: dict[str, str] = {}
    if plan.op is Op.INSERT:
        status = 201
        inserted = None if row is None else row["inserted"]
        if prefs.resolution == "merge-duplicates" and inserted is not None and (rows == 0 or inserted == 0) \
                and plan.resolution:
            status = 200
        crange = f"*/{total if total is not None else '*'}"
        loc = None if row is None else row["location"]
        if plan.ret is Return.HEADERS_ONLY and loc:
            pks = json.loads(loc)
            if len(pks) == 1 and plan.table.pk:
                extra["Location"] = location(relation, plan.table.pk, pks[0])
    else:
        status = 200 if representation else 204
        # PostgREST: a minimal DELETE reports no range (`*/*`), a PATCH the rows it touched
        crange = f"*/{total if total is not None else '*'}" if plan.op is Op.DELETE and not representation \
            else content_range(0, rows, total)
    pref = applied(prefs, resolution=plan.reports_resolution, missing=plan.op in (Op.INSERT, Op.UPDATE), ret=True,
                   tx=tx, timezone=timezone, max_affected=plan.op in (Op.UPDATE, Op.DELETE))
    body = None
    if representation:
        body = row["body"] if row["body"] is not None else "[]"
    return build(status, body, mode, content_range_=crange, pref_applied=pref, extra=extra, profile=profile)


def called(void: bool, body: str | None, mode: Media, *, counted: bool, profile: str | None,
           pref_applied: str | None) -> Response:
    """A function's single value (or a single composite that was NULL): the bare JSON value; 204
    for a void function."""
    if void:
        return build(204, None, Media.JSON, profile=profile, pref_applied=pref_applied)
    return build(200, body if body is not None else "null", mode, content_range_=f"0-0/{'1' if counted else '*'}",
                 profile=profile, pref_applied=pref_applied)


def location(relation: str, pk: Sequence[str], row: dict[str, object]) -> str:
    parts = []
    for k in pk:
        v = row.get(k)
        if v is None:
            parts.append(f"{quote(k)}=is.null")
        else:
            text = v if isinstance(v, str) else (str(v).lower() if isinstance(v, bool) else str(v))
            parts.append(f"{quote(k)}=eq.{quote(text, safe='')}")
    return f"/{relation}?" + "&".join(parts)


# --- response GUCs ---------------------------------------------------------------------------------
# A function or trigger may call set_config('response.headers', '[{"X-Foo": "bar"}]', true) and
# set_config('response.status', '202', true); PostgREST then sends those headers and that status.
# ownbase reads both with this query in the request's transaction, after the request's statement
# (so AFTER triggers, which fire at the end of that statement, are seen too) and before COMMIT.

GUC_QUERY = "select current_setting('response.headers', true), current_setting('response.status', true)"

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True)
class Gucs:
    headers: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None


def gucs_headers_error() -> errors.ApiError:
    return errors.ApiError(500, "PGRST111", "response.headers guc must be a JSON array composed of objects "
                                            "with a single key and a string value")


def gucs_status_error() -> errors.ApiError:
    return errors.ApiError(500, "PGRST112", "response.status guc must be a valid status code")


def parse_gucs(headers: str | None, status: str | None) -> Gucs:
    """The GUCs' text as read from the database (NULL when never set, '' when set earlier in the
    pooled session and reset at its transaction's end: both mean "not set")."""
    out: list[tuple[str, str]] = []
    if headers:
        try:
            items = json.loads(headers)
        except (ValueError, RecursionError):
            raise gucs_headers_error() from None
        if not isinstance(items, list):
            raise gucs_headers_error()
        for item in items:
            if not isinstance(item, dict) or len(item) != 1:
                raise gucs_headers_error()
            ((name, value),) = item.items()
            # a name or value HTTP cannot carry (or latin-1 cannot encode) is a malformed GUC too
            if not isinstance(value, str) or not _TOKEN.match(name) or _BAD_VALUE.search(value):
                raise gucs_headers_error()
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise gucs_headers_error() from None
            out.append((name, value))
    code: int | None = None
    if status:
        text = status.strip()
        if not text.isascii() or not text.isdigit() or not 100 <= int(text) <= 599:
            raise gucs_status_error()
        code = int(text)
    return Gucs(out, code)


def apply_gucs(resp: Response, gucs: Gucs) -> Response:
    """Headers from the GUC replace ownbase's own headers of the same name (any number of them, e.g.
    several Set-Cookie, are kept); the status replaces the status."""
    if not gucs.headers and gucs.status is None:
        return resp
    raw = resp.raw_headers
    if gucs.headers:
        names = {n.lower().encode("latin-1") for n, _ in gucs.headers}
        raw = [(k, v) for k, v in raw if k not in names]
        raw += [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in gucs.headers]
    if gucs.status is not None:
        resp.status_code = gucs.status
        if gucs.status < 200 or gucs.status in (204, 304):
            # these statuses carry no body (HTTP servers refuse to send one)
            resp.body = b""
            raw = [(k, v) for k, v in raw if k != b"content-length"]
        elif not any(k == b"content-length" for k, _ in raw):
            raw.append((b"content-length", str(len(resp.body)).encode()))
    resp.raw_headers = raw
    return resp
