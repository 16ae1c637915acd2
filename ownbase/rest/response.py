"""Response shaping: status codes, Content-Range, Preference-Applied, media types."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from starlette.responses import Response

from ownbase.rest import errors
from ownbase.rest.request import CSV, OBJECT, STRIPPED, Preferences

CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "object": "application/vnd.pgrst.object+json; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json_stripped": "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
    "object_stripped": "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
}


def mode_for(media: str) -> str:
    if media.endswith(STRIPPED):
        return "object_stripped" if media.startswith(OBJECT) else "json_stripped"
    return "object" if media == OBJECT else ("csv" if media == CSV else "json")


def singular_mode(mode: str) -> bool:
    return mode in ("object", "object_stripped")


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
            count: bool = True) -> str | None:
    out: list[str] = []
    if resolution and prefs.resolution:
        out.append(f"resolution={prefs.resolution}")
    if missing and prefs.missing:
        out.append(f"missing={prefs.missing}")
    if ret and prefs.return_:
        out.append(f"return={prefs.return_}")
    if count and prefs.count:
        out.append(f"count={prefs.count}")
    if prefs.handling:
        out.append(f"handling={prefs.handling}")
    if prefs.timezone:
        out.append(f"timezone={prefs.timezone}")
    return ", ".join(out) or None


def build(status: int, body: str | bytes | None, mode: str, *, content_range_: str | None = None,
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
        resp = Response(b"", status_code=status, headers=headers, media_type=CONTENT_TYPES[mode])
        resp.headers["content-length"] = str(len(payload))
        return resp
    return Response(payload, status_code=status, headers=headers, media_type=CONTENT_TYPES[mode])


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
