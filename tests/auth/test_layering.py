"""Auth and mail import only the foundation (and each other), never another service's internals."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "ownbase"
OTHER_SERVICES = ("ownbase.rest", "ownbase.tables", "ownbase.storage", "ownbase.realtime")


def test_auth_and_mail_do_not_import_other_services() -> None:
    offenders = []
    for package in ("auth", "mail"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path.name}: {n}" for n in names if n.startswith(OTHER_SERVICES)]
    assert offenders == []
    # mail is a port: it knows nothing about auth.
    for path in (ROOT / "mail").rglob("*.py"):
        assert "ownbase.auth" not in path.read_text(), path
