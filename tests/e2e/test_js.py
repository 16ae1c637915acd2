"""Runs each tests/js/*.test.mjs file with Node's test runner against a live ownbase.

A file `tests/js/<name>.sql` next to `<name>.test.mjs` is applied as the database owner first
(fixture schema); a file may also declare `// ownbase-env: KEY=VALUE ...` on its first line to get a
server of its own with those settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import ServerHandle, sql

JS_DIR = Path(__file__).resolve().parent.parent / "js"
FILES = sorted(JS_DIR.glob("*.test.mjs"))


def _server_env(path: Path) -> dict[str, str]:
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    if first.startswith("// ownbase-env:"):
        pairs = first.split(":", 1)[1].split()
        return dict(p.split("=", 1) for p in pairs)
    return {}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_js(path: Path, server: ServerHandle, server_factory: Callable[..., ServerHandle]) -> None:
    node = shutil.which("node")
    assert node, "node is required (scripts/test installs it)"
    assert (JS_DIR / "node_modules" / "@supabase" / "supabase-js").exists(), "run npm ci in tests/js"
    env_over = _server_env(path)
    target = server_factory(env_over) if env_over else server
    fixture = path.with_name(path.name.replace(".test.mjs", ".sql"))
    if fixture.exists():
        sql(target, fixture.read_text())
    env = {
        **os.environ,
        "OWNBASE_URL": target.url,
        "OWNBASE_ANON_KEY": target.anon_key,
        "OWNBASE_SERVICE_KEY": target.service_key,
        "OWNBASE_DB_URL": target.db_url,
        # helpers in tests/js shell out to ownbase's CLI: the interpreter running these tests has
        # ownbase and its dependencies (a bare `python3` on a fresh machine has neither)
        "PYTHON": sys.executable,
    }
    proc = subprocess.run([node, "--test", "--test-reporter=spec", str(path)], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"node tests failed:\n{output[-8000:]}\n--- server log ---\n{target.log()}"
