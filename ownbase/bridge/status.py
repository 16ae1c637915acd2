"""`ownbase bridge status`: the last hour of bridge counters and the mirror queue, from PostgreSQL."""

from __future__ import annotations

from typing import Any

from ownbase.bridge.stats import KINDS

_COUNTS = """
select service, resource, kind, sum(n)::bigint as n from ownbase_bridge.counters
where minute >= date_trunc('minute', now()) - make_interval(mins => $1)
group by service, resource, kind
"""
_QUEUE = """
select service, resource, count(*) filter (where state = 'pending')::bigint as pending,
  count(*) filter (where state = 'rejected')::bigint as rejected, min(created_at) as oldest
from ownbase_bridge.mirror_queue group by service, resource
"""


async def collect(conn: Any, minutes: int = 60) -> dict[str, Any]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(service: str, resource: str) -> dict[str, Any]:
        return rows.setdefault((service, resource), {"service": service, "resource": resource or "*",
                                                     **{k: 0 for k in KINDS}, "mirror_pending": 0,
                                                     "mirror_rejected": 0})

    for r in await conn.fetch(_COUNTS, minutes):
        row(r["service"], r["resource"])[r["kind"]] = int(r["n"])
    for r in await conn.fetch(_QUEUE):
        entry = row(r["service"], r["resource"])
        entry["mirror_pending"], entry["mirror_rejected"] = int(r["pending"]), int(r["rejected"])
    for entry in rows.values():
        sent = entry["upstream"] + entry["mirrored"]
        entry["upstream_error_rate"] = round(entry["upstream_error"] / sent, 4) if sent else 0.0
    pending = sum(e["mirror_pending"] for e in rows.values())
    rejected = sum(e["mirror_rejected"] for e in rows.values())
    return {"window_minutes": minutes, "mirror_queue": {"pending": pending, "rejected": rejected},
            "routes": sorted(rows.values(), key=lambda e: (e["service"], e["resource"]))}


def render(report: dict[str, Any]) -> str:
    head = ("service", "resource", "local", "upstream", "fallback", "lazy_copy", "errors", "err_rate",
            "mirrored", "queued", "rejected")
    lines = [f"bridge, last {report['window_minutes']} minutes; mirror queue: "
             f"{report['mirror_queue']['pending']} pending, {report['mirror_queue']['rejected']} rejected", ""]
    table = [head] + [tuple(str(x) for x in (e["service"], e["resource"], e["local"], e["upstream"], e["fallback"],
                                              e["lazy_copy"], e["upstream_error"], e["upstream_error_rate"],
                                              e["mirrored"], e["mirror_pending"], e["mirror_rejected"]))
                      for e in report["routes"]]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines)
