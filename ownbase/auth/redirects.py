"""The redirect allow-list: ``redirect_to`` must share the site URL's origin or match a glob entry."""

from __future__ import annotations

import fnmatch
from urllib.parse import urlsplit

from ownbase.settings import Settings


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def allowed(settings: Settings, url: str) -> bool:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False  # control characters never belong in a link we mail out
    try:
        parts = urlsplit(url)
        _origin(settings.site_url)
    except ValueError:  # e.g. a malformed IPv6 host
        return False
    if parts.scheme not in ("http", "https") and "://" not in url:
        return False
    if not parts.netloc:
        return False
    if _origin(url) == _origin(settings.site_url):
        return True
    for pattern in settings.auth_redirect_allow_list:
        if url == pattern or fnmatch.fnmatchcase(url, pattern):
            return True
        # An entry without wildcards also allows paths below it (http://app.example/ -> /welcome).
        if "*" not in pattern and pattern.endswith("/") and url.startswith(pattern):
            return True
    return False
