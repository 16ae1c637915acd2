"""Recent requests for the logs page: a bounded ring per process, fed by the HTTP middleware.

The middleware calls ``RequestRing.add`` once per finished request (``ctx.access_sink``): a tuple
goes into a deque, and everything else (time formatting, the service name, the role the token
names) is worked out only when the logs page asks. A logging handler did the same job for ~60 µs
of CPU per request. The ring's size is OWNBASE_DASHBOARD_LOG_SIZE, so memory stays bounded
whatever the traffic.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ownbase.http.middleware import claimed_role


def service_of(path: str) -> str:
    for prefix, name in (("/auth/", "auth"), ("/rest/", "rest"), ("/storage/", "storage"),
                         ("/realtime/", "realtime"), ("/dashboard", "dashboard"), ("/db/", "tables")):
        if path.startswith(prefix):
            return name
    return "other"


# One request: (time, request id, method, path, status, duration ms, client IP, authorization, apikey)
_Entry = tuple[float, str, str, str, int, float, str, str, str]


class RequestRing:
    def __init__(self, size: int) -> None:
        self.entries: deque[_Entry] = deque(maxlen=size)

    def add(self, request_id: str, method: str, path: str, status: int, duration_ms: float,
            client_ip: str, authorization: str, apikey: str) -> None:
        # Long header values are cut: a role is read from a JWT, and no JWT ownbase accepts is
        # this long; memory per entry stays bounded.
        self.entries.append((time.time(), request_id, method, path[:500], status, duration_ms, client_ip,
                             authorization[:8192], apikey[:8192]))

    def query(self, search: str = "", service: str = "", min_status: int = 0, slow_ms: float = 0,
              limit: int = 200) -> list[dict[str, Any]]:
        out = []
        for created, request_id, method, path, status, duration_ms, ip, authorization, apikey in reversed(self.entries):
            entry_service = service_of(path)
            if service and entry_service != service:
                continue
            if min_status and int(status or 0) < min_status:
                continue
            if slow_ms and float(duration_ms or 0) < slow_ms:
                continue
            role = claimed_role(authorization, apikey)
            if search and search.lower() not in f"{method} {path} {request_id} {role}".lower():
                continue
            out.append({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)),
                "service": entry_service, "method": method, "path": path, "status": status,
                "duration_ms": duration_ms, "request_id": request_id, "client_ip": ip, "role": role,
            })
            if len(out) >= limit:
                break
        return out
