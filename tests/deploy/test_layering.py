"""ownbase/aws is glue at the edge: services never import it, and it uses only the app and the
foundation (settings, logs), never a service's internals."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "ownbase"
SERVICES = ("auth", "rest", "tables", "storage", "realtime", "mail", "db", "http")


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # "from ownbase import logs" is ownbase.logs
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_services_do_not_import_aws_glue() -> None:
    offenders = [f"{p.relative_to(ROOT)}: {n}" for pkg in SERVICES for p in (ROOT / pkg).rglob("*.py")
                 for n in imports(p) if n.startswith("ownbase.aws")]
    assert offenders == []


def test_aws_glue_uses_only_app_and_foundation() -> None:
    allowed = ("ownbase.aws", "ownbase.app", "ownbase.settings", "ownbase.logs")
    offenders = [f"{p.name}: {n}" for p in (ROOT / "aws").rglob("*.py") for n in imports(p)
                 if n.startswith("ownbase") and not n.startswith(allowed)]
    assert offenders == []
