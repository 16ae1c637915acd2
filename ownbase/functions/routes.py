from __future__ import annotations

from ownbase.service import Service

SERVICE = Service("functions")
