"""What every service gets: settings, keys, database pools, limiter, optional Redis.

Built once per process in the app's lifespan and reachable as ``request.app.state.ctx``.
Services keep their own state under ``ctx.state[<service name>]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ownbase.db.pool import Database
from ownbase.http.client_ip import Network
from ownbase.keys import KeyRing
from ownbase.limits import RateLimiter
from ownbase.settings import Settings

# A component's state for /ready: {"degraded": bool, "cause": "redis" | ..., ...details}.
StatusProbe = Callable[[], dict[str, Any]]


@dataclass
class Context:
    settings: Settings
    keys: KeyRing
    db: Database
    limiter: RateLimiter
    trusted_networks: tuple[Network, ...]
    redis: Any | None = None  # redis.asyncio.Redis when OWNBASE_REDIS_URL is set
    state: dict[str, Any] = field(default_factory=dict)
    shutting_down: bool = False
    # Components that can serve in a degraded mode (e.g. without Redis) register a probe here;
    # /ready lists the degraded ones. Realtime registers its own under "realtime".
    components: dict[str, StatusProbe] = field(default_factory=dict)
    # Called by the HTTP middleware once per finished request (the dashboard's recent-requests
    # ring): a direct call, because building a log record per request for it cost ~15 % of a
    # one-row read's CPU. Arguments: request id, method, path, status, duration in ms, client IP,
    # the Authorization header, the apikey header.
    access_sink: Callable[[str, str, str, int, float, str, str, str], None] | None = None

    def __post_init__(self) -> None:
        probe = getattr(self.limiter, "status", None)
        if callable(probe):
            self.components["rate_limits"] = probe
