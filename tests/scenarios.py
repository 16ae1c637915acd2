"""Scenario tables for an endpoint's error cases (PocketBase's style): one row per case, naming the
request (method, url, headers, body) and what must come back (status, error code, a fragment of
the error text, response headers, the exact set of body keys). Adding a case is adding a row.

``url``, header values and ``fragment`` may hold ``{placeholders}`` filled from the test's values (a database
id, a row id, a token), so the table stays a constant at module level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

POSTGREST_KEYS = frozenset({"code", "message", "details", "hint"})
STORAGE_KEYS = frozenset({"statusCode", "error", "message"})  # Storage adds `code` and may add more


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    url: str
    status: int
    code: str | None = None
    fragment: str | None = None  # must appear in one of the error body's text fields
    body: Any = None  # sent as JSON; bytes are sent as they are
    headers: Mapping[str, str] = field(default_factory=dict)
    response_headers: Mapping[str, str] = field(default_factory=dict)
    keys: frozenset[str] | None = POSTGREST_KEYS  # the error body has exactly these keys
    min_keys: frozenset[str] = frozenset()  # ... or at least these


def params(scenarios: Iterable[Scenario]) -> list[Any]:
    return [pytest.param(s, id=s.name) for s in scenarios]


def check(client: httpx.Client, s: Scenario, **values: str) -> httpx.Response:
    """Send the scenario's request and assert every expectation it names."""
    kwargs: dict[str, Any] = {"headers": {k: v.format(**values) for k, v in s.headers.items()}}
    if isinstance(s.body, bytes):
        kwargs["content"] = s.body
    elif s.body is not None:
        kwargs["json"] = s.body
    r = client.request(s.method, s.url.format(**values), **kwargs)
    assert r.status_code == s.status, (s.name, r.status_code, r.text)
    body = r.json()
    if s.keys is not None:
        assert set(body) == s.keys, (s.name, body)
    assert set(body) >= s.min_keys, (s.name, body)
    if s.code is not None:
        assert body["code"] == s.code, (s.name, body)
    if s.fragment is not None:
        text = " ".join(str(v) for v in body.values() if isinstance(v, str))
        assert s.fragment.format(**values) in text, (s.name, body)
    for name, value in s.response_headers.items():
        assert r.headers.get(name) == value.format(**values), (s.name, name, dict(r.headers))
    return r
