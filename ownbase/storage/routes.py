"""storage routes (foundation stub)."""

from __future__ import annotations

from ownbase.service import Service

SERVICE = Service(name="storage")
