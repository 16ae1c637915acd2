"""Background tasks owned by a service: stopped the same way everywhere."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("ownbase")

STOP_SECONDS = 5.0  # a cancelled task still running after this is left behind, with a warning


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel a background task and wait until it has ended; its own failure is only logged.

    The wait is bounded and does not swallow the caller's own cancellation: a task stuck in its
    clean-up (a connection that never answers) must not keep shutdown waiting forever."""
    if task is None:
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=STOP_SECONDS)
    if not done:
        log.warning("background task %s did not stop %g s after it was cancelled; leaving it",
                    task.get_name(), STOP_SECONDS)
        return
    if not task.cancelled() and task.exception() is not None:
        log.debug("background task %s ended", task.get_name(), exc_info=task.exception())
