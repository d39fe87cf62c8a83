"""The emulator's modules import one another one way: no circle, and no import inside a function or
at the bottom of a module to get round one (issue 18). The model (state.py, scenario.py,
registry.py) never imports the interpreter (commands.py, ops.py, read_ops.py, write_ops.py)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nhs_cm_emulator"
MODEL = {"state", "scenario", "registry", "contract"}
INTERPRETER = {"commands", "ops", "read_ops", "write_ops", "cmdline", "modules"}


def _imported(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package's modules an import statement names."""
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("nhs_cm_emulator.")}
    if (node.level == 0 and node.module == "nhs_cm_emulator") or (node.level == 1 and not node.module):
        return {alias.name for alias in node.names}
    if node.level == 1 and node.module:
        return {node.module.split(".")[0]}
    if node.level == 0 and node.module and node.module.startswith("nhs_cm_emulator."):
        return {node.module.split(".")[1]}
    return set()


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports at module level, including those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            found.extend(n for n in node.body if isinstance(n, ast.Import | ast.ImportFrom))
    return found


def _graph() -> dict[str, set[str]]:
    return {path.stem: set().union(*map(_imported, _top_level_imports(ast.parse(path.read_text()))))
            for path in PACKAGE.glob("*.py")}


def test_no_import_inside_a_function_or_after_the_code() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in _top_level_imports(tree)}
        late = [node.lineno for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom) and _imported(node) and id(node) not in top]
        assert late == [], f"{path.name}: imports of the package inside code at lines {late}"
        code = [node.lineno for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom | ast.If)
                and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        first_code = min(code, default=None)
        bottom = [node.lineno for node in _top_level_imports(tree) if first_code and node.lineno > first_code]
        assert bottom == [], f"{path.name}: imports after the module's code at lines {bottom}"


def test_the_import_graph_has_no_circle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "an import circle: " + " -> ".join([*path[path.index(name):], name])
        if name in done:
            return
        for imported in sorted(graph.get(name, ())):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert {"state", "ops", "read_ops", "write_ops", "contract", "commands"} <= set(graph)


def test_the_model_never_imports_the_interpreter() -> None:
    graph = _graph()
    for name in MODEL:
        assert not graph[name] & INTERPRETER, f"{name}.py imports {sorted(graph[name] & INTERPRETER)}"
    assert graph["contract"] == set(), "contract.py is the leaf every other module may read"
