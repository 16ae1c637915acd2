"""Which side serves a request: the service's mode, refined per table and per bucket."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ownbase.settings import Settings

Mode = Literal["upstream", "local", "fallback"]
MODES: tuple[str, ...] = ("upstream", "local", "fallback")
PREFIXES = {"/auth/v1": "auth", "/rest/v1": "rest", "/storage/v1": "storage", "/realtime/v1": "realtime"}
# /storage/v1/object/<verb>/<bucket>/...: verbs that come before the bucket id.
_OBJECT_VERBS = {"public", "authenticated", "sign", "info", "list", "upload", "image"}


class RoutingError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    service: str  # auth | rest | storage | realtime
    resource: str  # table, bucket or "" (the service as a whole)
    mode: Mode


@dataclass
class Routes:
    services: dict[str, Mode]
    tables: dict[str, Mode] = field(default_factory=dict)  # "table" or "schema.table"
    buckets: dict[str, Mode] = field(default_factory=dict)

    def resolve(self, path: str, headers: dict[str, str]) -> Target | None:
        """The target of a path, or None for paths the bridge leaves alone (/health, /db/v1, ...)."""
        for prefix, service in PREFIXES.items():
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix):].strip("/")
                break
        else:
            return None
        mode = self.services[service]
        resource = ""
        if service == "rest":
            parts = rest.split("/")
            resource = "/".join(parts[:2]) if parts[0] == "rpc" else parts[0]
            if resource:
                schema = headers.get("accept-profile") or headers.get("content-profile") or "public"
                mode = self.tables.get(f"{schema}.{resource}", self.tables.get(resource, mode))
        elif service == "storage":
            resource = bucket_of(rest)
            if resource:
                mode = self.buckets.get(resource, mode)
        return Target(service, resource, mode)


def bucket_of(rest: str) -> str:
    parts = rest.split("/")
    if parts[0] == "bucket" and len(parts) > 1:
        return parts[1]
    if parts[0] in ("object", "render") and len(parts) > 1:
        if parts[1] in ("move", "copy"):
            return ""  # the buckets are in the body: the service's mode decides
        i = 1
        while i < len(parts) and parts[i] in _OBJECT_VERBS:
            i += 1
        if parts[0] == "render" and i == 1:
            return ""
        return parts[i] if i < len(parts) else ""
    return ""


def _pairs(items: list[str], what: str) -> dict[str, Mode]:
    out: dict[str, Mode] = {}
    for item in items:
        name, sep, mode = item.partition("=")
        name, mode = name.strip(), mode.strip().lower()
        if not sep or not name or mode not in MODES:
            raise RoutingError(f"bridge {what} override {item!r}: expected name=upstream|local|fallback")
        out[name] = mode  # type: ignore[assignment]
    return out


def _file(path: str) -> tuple[list[str], list[str]]:
    tables: list[str] = []
    buckets: list[str] = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or parts[0] not in ("table", "bucket") or parts[2].lower() not in MODES:
            raise RoutingError(f"{path}:{number}: expected 'table|bucket <name> upstream|local|fallback'")
        (tables if parts[0] == "table" else buckets).append(f"{parts[1]}={parts[2]}")
    return tables, buckets


def load_routes(settings: Settings) -> Routes:
    tables, buckets = list(settings.bridge_tables), list(settings.bridge_buckets)
    if settings.bridge_routes_file:
        extra_tables, extra_buckets = _file(settings.bridge_routes_file)
        # The settings list wins over the file: it is the quicker knob during an incident.
        tables, buckets = extra_tables + tables, extra_buckets + buckets
    services: dict[str, Mode] = {
        "auth": settings.bridge_auth, "rest": settings.bridge_rest,
        "storage": settings.bridge_storage, "realtime": settings.bridge_realtime,
    }
    return Routes(services, _pairs(tables, "table"), _pairs(buckets, "bucket"))
