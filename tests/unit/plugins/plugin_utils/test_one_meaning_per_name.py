"""Each public top-level name of ``plugins/plugin_utils`` has one meaning (issue 18).

A class, a function or a constant assigned at module level whose name does not start with ``_``
is defined in one module only: a copy is imported from where it belongs, and two different things
get two names (``restorable.BackupEntry`` beside ``catalogue.Entry``, ``build.finding_outcome``
beside ``changes.outcome``, ...).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
PLUGIN_UTILS = ROOT / "plugins" / "plugin_utils"

#: Names that several modules define on purpose. Each planner of ``_remediate`` (cm_service, cookies,
#: intranet_zone, localhost_access) has its role's ``DEFAULTS`` (its options' defaults) and ``HANDLED``
#: (the finding ids it fixes): the same meaning, one table per role. Each role's action plugin takes
#: both from its planner and the shared action code reads them by that one name (``self.HANDLED``),
#: so a per-role name would only hide that they are the same kind of table.
ALLOWED = {"DEFAULTS", "HANDLED"}


def _targets(node: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def _imported(body: list[ast.stmt]) -> set[str]:
    """The names a module body binds by ``import`` (also inside a top-level ``if``/``try``)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.If):
            names |= _imported(node.body) | _imported(node.orelse)
        elif isinstance(node, ast.Try):
            names |= _imported(node.body) | _imported(node.orelse) | _imported(node.finalbody)
            for handler in node.handlers:
                names |= _imported(handler.body)
    return names


def _top_level(body: list[ast.stmt]) -> list[str]:
    """The names a module body binds by ``class``, ``def`` or assignment, also inside a top-level
    ``if``/``try`` (never inside a function or class)."""
    names: list[str] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [name for target in node.targets for name in _targets(target)]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            names += _targets(node.target)
        elif isinstance(node, ast.If):
            names += _top_level(node.body) + _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            names += _top_level(node.body) + _top_level(node.orelse) + _top_level(node.finalbody)
            for handler in node.handlers:
                names += _top_level(handler.body)
    return names


def public_definitions(root: Path) -> dict[str, list[str]]:
    """Each public top-level name below ``root`` -> the modules (paths relative to ``root``)
    that define it. A name the module imports is not its own even when it assigns it too (the
    ``sa = None`` of an optional ``import sqlalchemy as sa`` that failed)."""
    where: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        body = ast.parse(path.read_text(encoding="utf-8"), str(path)).body
        imported = _imported(body)
        for name in _top_level(body):
            if not name.startswith("_") and name not in imported:
                where[name].add(path.relative_to(root).as_posix())
    return {name: sorted(paths) for name, paths in where.items()}


def duplicates(root: Path, allowed: set[str]) -> dict[str, list[str]]:
    return {name: paths for name, paths in public_definitions(root).items()
            if len(paths) > 1 and name not in allowed}


def test_each_public_name_is_defined_in_one_module() -> None:
    found = duplicates(PLUGIN_UTILS, ALLOWED)
    assert found == {}, "names defined in more than one module of plugins/plugin_utils: " + "; ".join(
        f"{name} in {', '.join(paths)}" for name, paths in sorted(found.items()))


def test_the_allowed_names_are_the_planners_tables() -> None:
    """The allow-list holds only what needs it: each name is defined in every planner and nowhere
    else (a planner's table that left, or one that spread outside ``_remediate``, shows here)."""
    planners = ["_remediate/cm_service.py", "_remediate/cookies.py", "_remediate/intranet_zone.py",
                "_remediate/localhost_access.py"]
    definitions = public_definitions(PLUGIN_UTILS)
    assert {name: definitions.get(name) for name in ALLOWED} == {name: planners for name in ALLOWED}


def test_a_second_definition_is_found(tmp_path: Path) -> None:
    """The scan sees classes, functions, plain and annotated constants, also under ``if``/``try``,
    and leaves module-private names, names inside functions and imported names alone."""
    (tmp_path / "room_a").mkdir()
    (tmp_path / "room_b").mkdir()
    (tmp_path / "room_a" / "one.py").write_text(
        "import typing as t\n"
        "class Entry:\n    pass\n"
        "def describe(x):\n    inner = 1\n    return inner\n"
        "LIMIT: int = 3\n"
        "Node = dict[str, t.Any]\n"
        "_private = 1\n"
        "try:\n    FAST = True\nexcept ImportError:\n    FAST = False\n"
        "try:\n    import json as sa\nexcept ImportError:\n    sa = None\n",
        encoding="utf-8")
    (tmp_path / "room_b" / "two.py").write_text(
        "Entry = dict\n"
        "describe = print\n"
        "if True:\n    LIMIT = 4\n"
        "class Node:\n    pass\n"
        "_private = 2\n"
        "def other():\n    FAST = 1\n    inner = 2\n    return FAST + inner\n"
        "DEFAULTS = {}\n"
        "try:\n    import json as sa\nexcept ImportError:\n    sa = None\n",
        encoding="utf-8")
    (tmp_path / "room_a" / "three.py").write_text("DEFAULTS = {}\n", encoding="utf-8")
    found = duplicates(tmp_path, {"DEFAULTS"})
    assert found == {name: ["room_a/one.py", "room_b/two.py"] for name in ("Entry", "LIMIT", "Node", "describe")}
