"""Object key and bucket name rules (Supabase's character set), the only gate user paths pass.

Keys are restricted to an ASCII set, so NUL, backslashes and unicode look-alikes (which NFKC would
fold into ``.`` or ``/``) never reach a backend; ``.``/``..`` and empty segments are refused too.
The local backend re-checks containment on the resolved filesystem path as a second line.
"""

from __future__ import annotations

import re

from ownbase.storage import errors

_KEY_RE = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
_BUCKET_RE = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}$")
MAX_KEY_LENGTH = 1024
# One path segment becomes one directory or file name on the local backend (and in S3-compatible
# servers backed by a file system): 255 bytes is the common file-name limit.
MAX_SEGMENT_BYTES = 255
# A blob's key is ``<name>/<version>`` with a uuid4 version: a name whose segment after an object's
# name is a version could collide with that blob (see Storage.check_name_free).
VERSION_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_valid_key(name: str) -> bool:
    if not name or len(name.encode()) > MAX_KEY_LENGTH or not _KEY_RE.match(name):
        return False
    if name.startswith("/"):
        return False
    parts = name.split("/")
    # A trailing slash would make a folder-looking object; Supabase refuses those names too.
    return all(p not in ("", ".", "..") and len(p.encode()) <= MAX_SEGMENT_BYTES for p in parts)


def version_like_splits(name: str) -> list[tuple[str, str]]:
    """(parent name, segment) pairs where a segment looks like a blob version."""
    parts = name.split("/")
    return [("/".join(parts[:i]), parts[i]) for i in range(1, len(parts)) if VERSION_RE.match(parts[i])]


def check_key(name: str) -> str:
    if not is_valid_key(name):
        raise errors.invalid_key(name)
    return name


def check_bucket_name(name: object) -> str:
    # A leading dot is refused: the local backend keeps its own folders (``.tmp``) beside buckets.
    if not isinstance(name, str) or not _BUCKET_RE.match(name) or name.startswith("."):
        raise errors.invalid_bucket_name()
    return name


def parse_size(value: object) -> int | None:
    """``file_size_limit``: an int, null, or a ``20mb``-style string (B/KB/MB/GB, powers of 1000)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise errors.invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    if isinstance(value, (int, float)):
        if value < 0:
            raise errors.invalid_request("file_size_limit must be >= 0")
        return int(value) or None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*", value.lower())
        if m:
            unit = {"b": 1, None: 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}[m.group(2)]
            return int(float(m.group(1)) * unit) or None
    raise errors.invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")


def mime_allowed(mime: str, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    base = mime.split(";", 1)[0].strip().lower()
    for pattern in allowed:
        p = pattern.strip().lower()
        if p in ("*", "*/*") or p == base or p == mime.lower():
            return True
        if p.endswith("/*") and base.startswith(p[:-1]):
            return True
    return False
