"""A stuck shutdown step is abandoned after a bound, so the process (and uvicorn's parent, which
waits for every worker) still exits."""

from __future__ import annotations

import asyncio

import pytest

from ownbase import app, tasks


def test_a_stuck_step_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "SHUTDOWN_STEP_SECONDS", 0.2)

    async def go() -> tuple[bool, bool, bool]:
        stuck = await app._bounded(asyncio.sleep(3600), "stuck")
        failed = await app._bounded(_boom(), "failing")
        fine = await app._bounded(asyncio.sleep(0), "fine")
        return stuck, failed, fine

    async def _boom() -> None:
        raise RuntimeError("boom")

    assert asyncio.run(asyncio.wait_for(go(), 30)) == (False, False, True)


def test_a_task_that_ignores_cancellation_is_left_behind(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(tasks, "STOP_SECONDS", 0.2)
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # a clean-up that never ends

    async def go() -> bool:
        task = asyncio.create_task(stubborn(), name="stubborn")
        await asyncio.sleep(0)
        await tasks.cancel_and_wait(task)
        left = not task.done()
        release.set()
        await task
        return left

    assert asyncio.run(asyncio.wait_for(go(), 30)) is True
    assert "stubborn did not stop" in caplog.text


def test_cancel_and_wait_does_not_swallow_the_callers_cancellation() -> None:
    async def go() -> str:
        background = asyncio.create_task(asyncio.sleep(3600))

        async def stopper() -> None:
            await tasks.cancel_and_wait(background)
            await asyncio.sleep(3600)  # reached only if the cancellation below was swallowed

        outer = asyncio.create_task(stopper())
        await asyncio.sleep(0)
        outer.cancel()
        try:
            await outer
        except asyncio.CancelledError:
            return "cancelled"
        return "swallowed"

    assert asyncio.run(asyncio.wait_for(go(), 30)) == "cancelled"
