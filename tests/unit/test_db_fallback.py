"""Read-replica state and the "database unreachable" classification (ownbase/db/pool.py)."""

from __future__ import annotations

import asyncio

import asyncpg

from ownbase.db import pool
from ownbase.db.pool import ReplicaState, database_unreachable
from ownbase.embedded import free_port


def test_a_down_replica_is_tried_again_by_one_caller_at_a_time(monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(pool.time, "monotonic", lambda: now[0])
    state = ReplicaState()
    assert state.usable()
    state.failed(ConnectionRefusedError("refused"))
    assert not state.usable() and state.error.startswith("ConnectionRefusedError")
    now[0] += pool.REPLICA_RETRY_SECONDS
    assert state.usable()  # this caller tries it ...
    assert not state.usable()  # ... the others stay on the primary meanwhile
    state.answered()
    assert state.usable() and state.usable() and state.down_since is None


def test_only_database_failures_count_as_unreachable() -> None:
    async def connect_refused() -> BaseException:
        try:
            await asyncpg.connect(f"postgresql://u:p@127.0.0.1:{free_port()}/db", timeout=5)
        except BaseException as exc:  # noqa: BLE001
            return exc
        raise AssertionError("connected to nothing")

    refused = asyncio.run(connect_refused())
    assert isinstance(refused, OSError) and database_unreachable(refused)
    assert database_unreachable(asyncpg.CannotConnectNowError("starting up"))
    # A disk error (the local storage backend) is not the database.
    try:
        open("/nonexistent-dir/x", "rb")
    except OSError as exc:
        assert not database_unreachable(exc)
    assert not database_unreachable(asyncpg.UniqueViolationError("dup"))
