"""The collection's Python imports one way (docs/architecture.md, issue 18).

- no import circle among the modules of ``plugins/``;
- no module of ``plugin_utils`` imports an action plugin, and no action plugin imports another;
- no import of the collection inside a function or after a module's code (the usual ways to hide
  a circle);
- the rooms depend one way: ``_runner`` needs no other room, ``_diagnose`` only ``_runner``,
  ``_report`` and ``_history`` neither ``_runner`` nor ``_remediate``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGINS = ROOT / "plugins"
PREFIX = "ansible_collections.nhs_cm.remediation."

#: The rooms of plugin_utils and the rooms each may import (besides itself and the shared helpers).
ROOMS: dict[str, set[str]] = {
    "_runner": set(),
    "_diagnose": {"_runner"},
    "_remediate": {"_runner", "_diagnose"},
    "_report": {"_diagnose"},
    "_history": {"_diagnose", "_report"},
}
SHARED = {"_memo", "_controller_action", "_paths", "_text"}


def _name(path: Path) -> str:
    """The dotted name of a module below ``plugins/`` (``plugins.plugin_utils._runner.reply``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(path): path for path in sorted(PLUGINS.rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The collection's modules an import statement loads (a name imported from a package is a
    module when one of that name exists)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level or not node.module:
            return {"<relative import>"}
        names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    for name in names:
        if name.startswith(PREFIX):
            short = name[len(PREFIX):]
            if short in MODULES:
                found.add(short)
    return found


def _top_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            found.extend(child for child in ast.walk(node) if isinstance(child, (ast.Import, ast.ImportFrom)))
    return found


def _graph() -> dict[str, set[str]]:
    return {name: set().union(set(), *map(_targets, _top_level(ast.parse(path.read_text(encoding="utf-8")))))
            - {name} for name, path in MODULES.items()}


def test_the_graph_sees_the_collections_modules() -> None:
    graph = _graph()
    assert "plugins.plugin_utils._runner.reply" in graph["plugins.plugin_utils._runner.action"]
    assert len(graph) > 40


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_of_the_collection_inside_code(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    top = {id(node) for node in _top_level(tree)}
    inner = [node.lineno for node in ast.walk(tree)
             if isinstance(node, (ast.Import, ast.ImportFrom)) and _targets(node) and id(node) not in top]
    assert inner == [], f"{name} imports the collection inside a function (lines {inner})"
    first_code = min((node.lineno for node in tree.body
                      if not isinstance(node, (ast.Import, ast.ImportFrom, ast.If, ast.Try))
                      and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))), default=None)
    late = [node.lineno for node in _top_level(tree) if _targets(node) and first_code and node.lineno > first_code]
    assert late == [], f"{name} imports the collection after its code (lines {late})"


def test_no_circle() -> None:
    graph = _graph()
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                cycle = [*path[path.index(target):], target] if target in path else [name, target]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_actions_are_imported_by_nobody() -> None:
    graph = _graph()
    wrong = sorted(f"{name} imports {target}" for name, targets in graph.items() for target in targets
                   if target.startswith("plugins.action."))
    assert wrong == []


def test_the_rooms_depend_one_way() -> None:
    graph = _graph()
    wrong = []
    for name, targets in graph.items():
        if not name.startswith("plugins.plugin_utils."):
            continue
        room = name.split(".")[2]
        for target in targets:
            other = target.split(".")[2] if target.startswith("plugins.plugin_utils.") else None
            if other is None or other == room or other in SHARED:
                continue
            if room in ROOMS and other not in ROOMS[room]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []
