"""The tree passes ruff: pyflakes (undefined/unused names) and imports at module top (PLC0415)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _ruff() -> list[str]:
    # Prefer the ruff binary installed next to this interpreter (the venv's); fall back to PATH.
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ruff")
    assert found, "ruff is not installed: pip install -e '.[test]'"
    return [found]


def test_ruff_check_is_clean() -> None:
    proc = subprocess.run(
        [*_ruff(), "check", "--no-cache", "ownbase", "bench", "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}\n{proc.stderr}"
