"""Adapter to the CLI surface: the target is the ownbase the usual settings describe.

``--data-dir`` and ``OWNBASE_DATABASE_URL`` mean what they mean for ``ownbase start``; with the
embedded default, the data dir's PostgreSQL is started for the command when no server runs there
(``ownbase.cli.database``) and stopped when the command's process exits.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from pathlib import Path

from ownbase import cli as host
from ownbase.settings import Settings

_open = ExitStack()
atexit.register(_open.close)


def settings(data_dir: Path | None) -> Settings:
    return host.settings(**({"data_dir": data_dir} if data_dir else {}))


_urls: dict[tuple[str, str], str] = {}


def database_url(s: Settings) -> str:
    # A command asks more than once; the embedded server is started (and locked) once.
    key = (str(s.data_dir), s.database_url)
    if key not in _urls:
        _urls[key] = _open.enter_context(host.database(s)).url
    return _urls[key]
