"""The dependency rule: settings/db/keys/http <- services <- app. Services never import each
other's internals; the only allowed edges are public interfaces named here."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "ownbase"
SERVICES = ("auth", "rest", "tables", "storage", "realtime", "mail", "sms", "functions", "ops")
ALLOWED = {
    ("tables", "ownbase.rest.engine"),  # dynamic tables are built on the /rest/v1 engine
    ("tables", "ownbase.rest"),  # `from ownbase.rest import engine`
    ("tables", "ownbase.rest.errors"),  # /db/v1 answers with /rest/v1's error type (PostgREST's shape)
    ("auth", "ownbase.mail"),  # mail is the auth service's outgoing adapter
    ("ops", "ownbase.storage.backends"),  # backup/restore copy blobs through the backend interface
    ("ops", "ownbase.storage.service"),  # blob_key only: where an object version's bytes live
    ("auth", "ownbase.sms"),  # so is SMS (phone sign-in)
}
FOUNDATION = ("ownbase.settings", "ownbase.db", "ownbase.keys", "ownbase.http", "ownbase.limits", "ownbase.tasks",
              "ownbase.context", "ownbase.service", "ownbase.logs", "ownbase.embedded")


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ownbase" and node.level == 0:
            found.extend(f"ownbase.{alias.name}" for alias in node.names)  # from ownbase import cli
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.startswith("ownbase")]


def test_services_do_not_import_each_other() -> None:
    violations = []
    for service in SERVICES:
        for path in (PKG / service).rglob("*.py"):
            for name in imports(path):
                if name.startswith(f"ownbase.{service}") or name.startswith(FOUNDATION):
                    continue
                if name == "ownbase.cli" and path.name == "cli.py":
                    continue  # command modules use the CLI's public surface (docs/cli.md)
                if any(service == s and (name == m or name.startswith(m + ".")) for s, m in ALLOWED):
                    continue
                violations.append(f"{path.relative_to(PKG)} imports {name}")
    assert violations == []


def test_foundation_does_not_import_services() -> None:
    violations = []
    for path in PKG.glob("*.py"):
        if path.name in ("app.py", "cli.py", "__main__.py"):
            continue
        for name in imports(path):
            if name.startswith(tuple(f"ownbase.{s}" for s in SERVICES)):
                violations.append(f"{path.name} imports {name}")
    for sub in ("db", "http"):
        for path in (PKG / sub).rglob("*.py"):
            for name in imports(path):
                if name.startswith(tuple(f"ownbase.{s}" for s in SERVICES)):
                    violations.append(f"{path.relative_to(PKG)} imports {name}")
    assert violations == []
