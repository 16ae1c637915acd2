"""Background tasks owned by a service: stopped the same way everywhere."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("ownbase")


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel a background task and wait until it has ended; its own failure is only logged."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down either way
        log.debug("background task %s ended", task.get_name(), exc_info=True)
