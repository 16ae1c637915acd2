"""Recent requests for the logs page: a bounded ring per process, fed by the access log records.

Listening on the ``ownbase.access`` logger keeps the middleware untouched; the ring's size is
OWNBASE_DASHBOARD_LOG_SIZE, so memory stays bounded whatever the traffic.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any


def service_of(path: str) -> str:
    for prefix, name in (("/auth/", "auth"), ("/rest/", "rest"), ("/storage/", "storage"),
                         ("/realtime/", "realtime"), ("/dashboard", "dashboard"), ("/db/", "tables")):
        if path.startswith(prefix):
            return name
    return "other"


class RequestRing(logging.Handler):
    def __init__(self, size: int) -> None:
        super().__init__(level=logging.INFO)
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        path = str(getattr(record, "path", ""))
        self.entries.append({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "service": service_of(path), "method": getattr(record, "method", ""), "path": path[:500],
            "status": getattr(record, "status", 0), "duration_ms": getattr(record, "duration_ms", 0),
            "request_id": getattr(record, "request_id", ""), "client_ip": getattr(record, "client_ip", ""),
        })

    def query(self, search: str = "", service: str = "", min_status: int = 0, slow_ms: float = 0,
              limit: int = 200) -> list[dict[str, Any]]:
        out = []
        for entry in reversed(self.entries):
            if service and entry["service"] != service:
                continue
            if min_status and int(entry["status"] or 0) < min_status:
                continue
            if slow_ms and float(entry["duration_ms"] or 0) < slow_ms:
                continue
            if search and search.lower() not in f"{entry['method']} {entry['path']} {entry['request_id']}".lower():
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out


class _Forward(logging.Handler):
    """Passes on to the root handlers only what OWNBASE_LOG_LEVEL would have let through."""

    def __init__(self, min_level: int) -> None:
        super().__init__()
        self.min_level = min_level

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.min_level:
            for handler in logging.getLogger().handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)


def install(size: int) -> RequestRing:
    """Hook the ring onto the access logger. Access records are info: when the log level hides
    them, the logger still creates them for the ring but forwards only what the level allows."""
    ring = RequestRing(size)
    logger = logging.getLogger("ownbase.access")
    level = logger.getEffectiveLevel()
    if level > logging.INFO and logger.propagate:
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(_Forward(level))
    logger.addHandler(ring)
    return ring


def uninstall(ring: RequestRing) -> None:
    logging.getLogger("ownbase.access").removeHandler(ring)
