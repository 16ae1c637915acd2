"""Prometheus metrics of one process: requests, latencies, pools, realtime, mail, storage.

Counters and histograms are recorded by ``MetricsMiddleware``; the rest is read when scraped:
pool sizes and realtime sockets from this process, mail and storage totals from the database
(two grouped queries per scrape; concurrent scrapes share one run, bounded by DB_QUERY_SECONDS).
Each process reports its own requests (``--workers N``: scrape each, or run one worker per task).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ownbase.context import Context

log = logging.getLogger("ownbase.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DB_QUERY_SECONDS = 2.0
SERVICES = {"auth": "auth", "rest": "rest", "storage": "storage", "realtime": "realtime",
            "db": "tables", "graphql": "graphql", "functions": "functions"}

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def service_of(path: str) -> str:
    parts = path.split("/", 3)
    if len(parts) > 2 and parts[2] == "v1":
        return SERVICES.get(parts[1], "other")
    return "other"


def route_of(scope: Scope) -> str:
    """The matched route's template (bounded label set); unmatched paths share one label."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return str(scope.get("root_path") or "") + path  # a Mount's routes are relative to it


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("ownbase_http_requests", "HTTP requests by service, route and status",
                                ["service", "route", "method", "status"], registry=self.registry)
        self.latency = Histogram("ownbase_http_request_duration_seconds",
                                 "HTTP request latency (until the response ends)",
                                 ["service", "route"], registry=self.registry)
        self.ctx: Context | None = None
        self._db: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self.registry.register(_StateCollector(self))

    def observe(self, path: str, route: str, method: str, status: int, seconds: float) -> None:
        service = service_of(path)
        self.requests.labels(service, route, method, str(status)).inc()
        self.latency.labels(service, route).observe(seconds)

    async def refresh(self) -> None:
        """Database-derived totals; a slow or unreachable database keeps the previous ones."""
        ctx = self.ctx
        if ctx is None:
            return
        if self._lock.locked():  # a scrape is already reading them: share its result
            async with self._lock:
                return
        async with self._lock:
            try:
                async with asyncio.timeout(DB_QUERY_SECONDS):
                    async with ctx.db.owner.acquire() as conn:
                        mail = await conn.fetch(
                            "select backend, status, count(*) as n from ownbase.mail_outbox "
                            "group by 1, 2")
                        storage = await conn.fetch(
                            "select bucket_id, count(*) as n, coalesce(sum(case when "
                            "jsonb_typeof(metadata->'size') = 'number' then (metadata->>'size')::numeric "
                            "end), 0) as bytes from storage.objects group by 1")
                self._db = {"mail": [tuple(r) for r in mail], "storage": [tuple(r) for r in storage]}
            except Exception as exc:  # noqa: BLE001 - metrics must not fail the scrape
                log.warning("metrics: database totals unavailable: %s", type(exc).__name__)

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        ctx = self.metrics.ctx
        if ctx is None:
            return
        size = GaugeMetricFamily("ownbase_db_pool_connections", "Open connections per pool and state",
                                 labels=["pool", "state"])
        cap = GaugeMetricFamily("ownbase_db_pool_max_connections", "Pool size limit", labels=["pool"])
        for name in ("owner", "api", "read"):
            pool = getattr(ctx.db, name, None)
            if pool is None:
                continue
            total, idle = pool.get_size(), pool.get_idle_size()
            size.add_metric([name, "busy"], total - idle)
            size.add_metric([name, "idle"], idle)
            cap.add_metric([name], pool.get_max_size())
        yield size
        yield cap
        hub = ctx.state.get("realtime")
        sockets = GaugeMetricFamily("ownbase_realtime_sockets", "Open realtime websockets")
        channels = GaugeMetricFamily("ownbase_realtime_channels", "Distinct joined realtime topics")
        joins = GaugeMetricFamily("ownbase_realtime_channel_joins", "Joined channels over all sockets")
        sockets.add_metric([], len(getattr(hub, "connections", ()) or ()))
        topics = getattr(hub, "topics", None) or {}
        channels.add_metric([], len(topics))
        joins.add_metric([], sum(len(subs) for subs in topics.values()))
        yield sockets
        yield channels
        yield joins
        db = self.metrics._db
        mail = CounterMetricFamily("ownbase_mail", "Mails in the outbox by backend and status (sent, failed)",
                                   labels=["backend", "status"])
        for backend, status, count in db.get("mail", []):
            mail.add_metric([backend, status], count)
        yield mail
        objects = GaugeMetricFamily("ownbase_storage_objects", "Stored objects per bucket", labels=["bucket"])
        size_b = GaugeMetricFamily("ownbase_storage_bytes", "Stored object bytes per bucket", labels=["bucket"])
        for bucket, count, total in db.get("storage", []):
            objects.add_metric([str(bucket)], count)
            size_b.add_metric([str(bucket)], float(total))
        yield objects
        yield size_b


class MetricsMiddleware:
    """Records every HTTP request (status and time until the response's last byte)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                self.metrics.requests.labels(service_of(scope.get("path", "")), "websocket", "GET",
                                             "101").inc()
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = scope.get("path", "")
            if path != "/metrics":
                self.metrics.observe(path, route_of(scope), scope.get("method", ""), status["code"],
                                     time.perf_counter() - start)
