"""Command modules use the CLI's public surface (docs/cli.md): no private helpers of other modules,
no database connections of their own (they would skip TLS settings and the embedded server)."""

from __future__ import annotations

import ast
from pathlib import Path

from ownbase import cli

PKG = Path(__file__).resolve().parents[2] / "ownbase"


def _command_modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("cli.py") if p.parent != PKG)


def test_every_command_module_is_registered() -> None:
    registered = {name.split(".")[-2] for name in cli.COMMAND_MODULES}
    assert {p.parent.name for p in _command_modules()} == registered


def test_command_modules_use_only_the_public_surface() -> None:
    offenders = []
    for path in _command_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ownbase"):
                offenders += [f"{path.relative_to(PKG)} imports {node.module}.{a.name}"
                              for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "asyncpg" and node.attr in ("connect", "create_pool"):
                    offenders.append(f"{path.relative_to(PKG)} calls asyncpg.{node.attr}")
                if node.value.id == "cli" and node.attr.startswith("_"):
                    offenders.append(f"{path.relative_to(PKG)} uses cli.{node.attr}")
    assert offenders == []


def test_the_command_tree() -> None:
    app = cli.register_commands()
    groups = {g.name for g in app.registered_groups}
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert {"db", "gen", "mail", "auth", "storage"} <= groups
    assert {"start", "keys"} <= commands
