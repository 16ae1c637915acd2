"""A stuck shutdown step is abandoned after a bound, so the process (and uvicorn's parent, which
waits for every worker) still exits."""

from __future__ import annotations

import asyncio

import pytest

from ownbase import app


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
