"""SegmentRouter picks exactly the route Starlette's Router would, for every route ownbase mounts."""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Match, Router

from ownbase.app import build_app
from ownbase.http.routing import SegmentRouter
from ownbase.settings import Settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Probe(BaseRoute):
    """Matches as the real route does; handling only records which route was chosen."""

    def __init__(self, inner: BaseRoute, seen: list[Any]) -> None:
        self.inner, self.seen = inner, seen
        self.path = getattr(inner, "path", None)

    def matches(self, scope: Any) -> tuple[Match, dict[str, Any]]:
        return self.inner.matches(scope)

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(("route", id(self.inner), scope.get("path_params")))


def _choose(router_cls: type[Router], routes: list[BaseRoute], method: str, path: str) -> Any:
    seen: list[Any] = []
    router = router_cls([Probe(r, seen) for r in routes])
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"",
             "headers": [(b"host", b"x")], "scheme": "http", "server": ("x", 80)}
    asyncio.run(router.app(scope, receive, send))
    if seen:
        return seen
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"]).get(b"location")


def _sample_paths(routes: list[BaseRoute]) -> list[str]:
    paths = {"/", "/nope", "/rest", "/rest/v1", "/rest/v1/", "/auth/v1/nope", "/storage/v1/object/"}
    todo = list(routes)
    while todo:
        route = todo.pop()
        path = getattr(route, "path", "") or ""
        for sub in getattr(route, "routes", []) or []:
            todo.append(sub)
            sub_path = getattr(sub, "path", "") or ""
            paths.add(path + sub_path)
        paths.add(path)
    out: set[str] = set()
    for p in paths:
        concrete = re.sub(r"\{[^}]+\}", "x", p) or "/"
        out |= {concrete, concrete.rstrip("/") or "/", concrete + "/", concrete + "/deeper"}
    return sorted(out)


def test_same_choice_as_starlette_for_every_mounted_route() -> None:
    routes = _app_routes()
    paths = _sample_paths(routes)
    assert len(paths) > 100
    for path in paths:
        for method in METHODS:
            assert _choose(SegmentRouter, routes, method, path) == _choose(Router, routes, method, path), \
                (method, path)


def test_app_uses_it() -> None:
    assert isinstance(build_app(Settings()).router, SegmentRouter)


SEGMENTS = ["", "rest", "v1", "auth", "storage", "realtime", "db", "graphql", "functions", "health", "ready",
            "object", "public", "sign", "rpc", "x", "{a}", "%2F", "..", "ünï", "v1/", "bucket"]


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(SEGMENTS), st.text(max_size=6)), min_size=0, max_size=6),
       method=st.sampled_from(METHODS), trailing=st.booleans())
def test_any_path_routes_as_starlette_does(parts: list[str], method: str, trailing: bool) -> None:
    path = "/" + "/".join(p.replace("\x00", "") for p in parts) + ("/" if trailing and parts else "")
    routes = _app_routes()
    assert _choose(SegmentRouter, routes, method, path) == _choose(Router, routes, method, path)


@functools.lru_cache(maxsize=1)
def _app_routes() -> list[BaseRoute]:
    return build_app(Settings()).router.routes
