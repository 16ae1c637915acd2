"""Route matching by first path segment.

Starlette's Router tries every route's regular expression in order until one matches: with every
service mounted that is about fifty tries before a /rest/v1 request finds its route, some 15 % of
the CPU of a one-row read in a profile. This router keeps Starlette's semantics (same order, same
partial matches for 405, same slash redirects) but tries only the routes that could match: those
whose path starts with the request's first segment, and those whose first segment is a parameter
(or that have no path), which are tried everywhere. The index is rebuilt when routes are added or
the list is replaced; a route swapped in place (same count) would not be seen, and nothing does that.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send

_EVERYWHERE = "\x00"  # the bucket of routes any path may match


def _first_segment(route: BaseRoute) -> str:
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return _EVERYWHERE
    segment = path[1:].split("/", 1)[0]
    return _EVERYWHERE if "{" in segment else segment


class SegmentRouter(Router):
    _index: tuple[int, list[BaseRoute], dict[str, list[BaseRoute]]] | None = None

    def _candidates(self, path: str) -> list[BaseRoute]:
        index = self._index
        if index is None or index[0] != len(self.routes) or index[1] is not self.routes:
            # built lazily, again if routes were added later
            buckets: dict[str, list[BaseRoute]] = {}
            keys = [_first_segment(r) for r in self.routes]
            for key in set(keys):
                buckets[key] = [r for r, k in zip(self.routes, keys) if k in (key, _EVERYWHERE)]
            index = self._index = (len(self.routes), self.routes, buckets)
        buckets = index[2]
        segment = path[1:].split("/", 1)[0]
        found = buckets.get(segment)
        return found if found is not None else buckets.get(_EVERYWHERE, [])

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await super().app(scope, receive, send)  # lifespan
            return
        if "router" not in scope:
            scope["router"] = self
        route_path = scope.get("path", "")
        if scope.get("root_path") and route_path.startswith(scope["root_path"]):
            await super().app(scope, receive, send)  # mounted under a prefix: the general case
            return
        routes = self._candidates(route_path)
        partial: Any = None
        partial_scope: dict[str, Any] = {}
        for route in routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        if scope["type"] == "http" and self.redirect_slashes and route_path != "/":
            redirect_scope = dict(scope)
            redirect_scope["path"] = route_path.rstrip("/") if route_path.endswith("/") else route_path + "/"
            for route in self._candidates(redirect_scope["path"]):
                match, _ = route.matches(redirect_scope)
                if match is not Match.NONE:
                    await RedirectResponse(url=str(URL(scope=redirect_scope)))(scope, receive, send)
                    return
        await self.default(scope, receive, send)
