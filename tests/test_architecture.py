"""The import graph: no cycles, no arrow up the layers (docs/architecture.md draws the map).

Every import counts, also one inside a function: a lazy import hides a cycle, it does
not remove it. Only imports under `if TYPE_CHECKING:` are left out (they never run).

    .venv/bin/python -m pytest -q tests/test_architecture.py
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("p2pbot", "bot", "config", "strategies", "state", "simulator")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        if names and _type_checking_only(node, parents):
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's __init__ counts as the package);
    read once per run (the tests only read it)."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    modules = set(files)
    return {m: _imports(p, modules) - {m} for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# (importer prefix, imported prefix): arrows that point up the layers
FORBIDDEN = [
    ("bot", "simulator"),
    ("bot", "p2pbot"),
    ("simulator", "p2pbot"),
    ("config", "bot.capabilities.registry"),
    ("config", "bot.app"),
    ("strategies", "bot"),
    ("strategies", "config"),
    ("strategies", "state"),
    ("state", "bot"),
    ("state", "config"),
    ("bot.binance", "bot.capabilities"),
    ("bot.binance", "bot.pricing"),
    ("bot.binance", "bot.orders"),
    ("bot.binance", "bot.chat"),
    ("bot.binance", "bot.ops"),
    ("bot.binance", "bot.app"),
    ("bot.binance", "config"),
    ("bot.clock", "bot.binance"),
    ("bot.capabilities", "bot.pricing"),
    ("bot.capabilities", "bot.orders"),
    ("bot.capabilities", "bot.ops"),
    ("bot.pricing", "bot.orders"),
    ("bot.pricing", "bot.ops"),
    ("bot.pricing", "bot.app"),
    ("bot.orders", "bot.pricing"),
    ("bot.orders", "bot.ops"),
    ("bot.orders", "bot.app"),
    ("bot.chat", "bot.ops"),
    ("bot.chat", "bot.app"),
    ("bot.chat", "bot.pricing"),
    ("bot.chat", "bot.orders.desk"),
    ("bot.chat", "bot.orders.outbox"),
    ("bot.chat", "bot.orders.poller"),
    ("bot.orders.poller", "bot.orders.desk"),
]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        for low, high in FORBIDDEN
        if _under(a, low) and _under(b, high)
    )


@pytest.mark.slow
def test_the_import_graph_has_no_cycles() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.slow
def test_no_import_points_up_the_layers() -> None:
    assert upward_arrows(import_graph()) == []


@pytest.mark.slow  # the three checks share one parse of every file (0.7 s)
def test_the_graph_sees_the_project() -> None:
    graph = import_graph()
    assert "bot.pricing.engine" in graph and "bot.app" in graph
    assert "bot.pricing.engine" in graph["bot.app"]
