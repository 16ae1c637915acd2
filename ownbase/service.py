"""The small contract between app.py and each service package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.settings import Settings

Hook = Callable[["Context"], Awaitable[None]]
# Start-up database work (DDL, grants, capture triggers): gets the owner connection and settings,
# runs once per start under the start-up lock (ownbase.db.startup), before any process serves.
PrepareHook = Callable[[Any, "Settings"], Awaitable[None]]


@dataclass
class Service:
    name: str
    routes: list[BaseRoute] = field(default_factory=list)
    startup: Hook | None = None  # called after the database is ready, in mount order
    shutdown: Hook | None = None  # called in reverse order on graceful shutdown
    prepare: PrepareHook | None = None  # database work at start-up, once, under the start-up lock
