"""The small contract between app.py and each service package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from ownbase.context import Context

Hook = Callable[["Context"], Awaitable[None]]


@dataclass
class Service:
    name: str
    routes: list[BaseRoute] = field(default_factory=list)
    startup: Hook | None = None  # called after the database is ready, in mount order
    shutdown: Hook | None = None  # called in reverse order on graceful shutdown
