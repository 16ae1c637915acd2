"""Start and stop the storage service: the Storage of the process and its periodic sweeper."""

from __future__ import annotations

import asyncio

from ownbase.context import Context
from ownbase.storage.service import Storage
from ownbase.storage.sweeper import sweep_forever
from ownbase.tasks import cancel_and_wait


async def startup(ctx: Context) -> None:
    storage = Storage(ctx)
    await storage.start()
    ctx.state["storage"] = storage
    ctx.state["storage_sweeper"] = asyncio.create_task(sweep_forever(storage), name="storage-sweeper")


async def shutdown(ctx: Context) -> None:
    await cancel_and_wait(ctx.state.pop("storage_sweeper", None))
    storage: Storage | None = ctx.state.pop("storage", None)
    if storage is not None:
        await storage.close()
