"""The bridge sits above the services: only app.py and the CLI know it; no service imports it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "ownbase"


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_only_app_and_cli_import_the_bridge() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if "bridge" not in p.parts and p.name not in ("app.py", "cli.py")
                 and any(n.startswith("ownbase.bridge") for n in imports(p))]
    assert offenders == []


def test_bridge_uses_only_public_service_modules() -> None:
    allowed = {"ownbase.auth.passwords", "ownbase.storage.service"}  # hashing; Storage.store / Caller
    used = {n for p in (ROOT / "bridge").rglob("*.py") for n in imports(p)
            if n.startswith(("ownbase.auth", "ownbase.storage", "ownbase.rest", "ownbase.realtime", "ownbase.tables"))}
    assert used <= allowed, used - allowed
