"""Adapter to the host CLI: the target is the ownbase the usual settings describe.

Kept apart so the migrate commands depend on two small functions, whatever shape ``ownbase.cli``
takes; ``--data-dir`` and ``OWNBASE_DATABASE_URL`` mean what they mean for ``ownbase start``.
"""

from __future__ import annotations

from pathlib import Path

from ownbase.settings import Settings


def settings(data_dir: Path | None) -> Settings:
    from ownbase import cli as host

    return host._settings(data_dir=data_dir)


def database_url(s: Settings) -> str:
    from ownbase import cli as host

    return host._db_url(s)
