"""The realtime package's import graph (issue 18 item 4): no cycles except the natural
socket/channel pair, and the bus messages are built in one place."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "ownbase" / "realtime"
ALLOWED_PAIRS = {frozenset({"socket", "channel"})}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PKG.glob("*.py"):
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):  # TYPE_CHECKING imports count too
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("ownbase.realtime."):
                    edges.add(node.module.split(".")[2])
                elif node.module == "ownbase.realtime":
                    edges.update(alias.name for alias in node.names)
        graph[path.stem] = edges - {path.stem}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                found.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest module
                walk(nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_no_import_cycles_but_the_connection_channel_pair():
    cycles = [c for c in _cycles(_graph()) if not (len(c) == 3 and frozenset(c) in ALLOWED_PAIRS)]
    assert cycles == []


def test_the_dispatcher_does_not_know_the_hub():
    graph = _graph()
    assert "hub" not in graph["dispatch"] and "hub" not in graph["capture"]
    assert not {"channel", "socket"} & graph["hub"]


def test_bus_messages_are_defined_once():
    # the wire form's one-letter kinds appear only in bus.py
    offenders = [p.name for p in PKG.glob("*.py") if p.name != "bus.py" and '"k":' in p.read_text()]
    assert offenders == []
