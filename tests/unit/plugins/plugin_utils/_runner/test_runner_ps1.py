"""The PowerShell side, checked without PowerShell: every .ps1 parses (tree-sitter-powershell),
the host code's operations read and answer exactly the fields of OPERATIONS, and the host code stays
small and reviewable (one concern per file, at most 1,000 lines with the bootstrap, nothing
compiled)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import RUNNER_DIR, runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.assembly import (
    assemble_runner,
    runner_for_ops,
    runner_regions,
    sections_for,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import (
    OPERATIONS,
    RUNNER_FILES,
    RUNNER_SECTIONS,
    WRITE_OPERATIONS,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    BOOTSTRAP,
    ERROR_KINDS,
    REPLY_GZIP_PREFIX,
    RUNNER_MARKER,
    SEPARATOR,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import build_stdin

COLLECTION_ROOT = Path(__file__).resolve().parents[5]
PARSER = Parser(Language(tree_sitter_powershell.language()))
# Every .ps1 and .psm1 of the checkout (plugins/, roles/*/files, emulator/, ...) except copies and tools:
# hidden folders (.git, .venv*, .collections: ansible-core's own scripts), build/ (the extracted
# tarball), tests/output/ (ansible-test's work tree) and caches.
SKIP_DIRS = {"build", "output", "__pycache__"}


def _skipped(relative: Path) -> bool:
    return any(part.startswith(".") or part in SKIP_DIRS for part in relative.parts[:-1])


def _ps1_files() -> list[Path]:
    found = [*COLLECTION_ROOT.rglob("*.ps1"), *COLLECTION_ROOT.rglob("*.psm1")]
    return sorted(p for p in found if not _skipped(p.relative_to(COLLECTION_ROOT)))


class Script:
    """A parsed PowerShell script with a few queries over its syntax tree."""

    def __init__(self, source: str) -> None:
        self.source = source.encode("utf-8")
        self.tree = PARSER.parse(self.source)

    def text(self, node: Node) -> str:
        return self.source[node.start_byte:node.end_byte].decode("utf-8")

    def problems(self) -> list[str]:
        return [f"line {n.start_point[0] + 1}: {'missing ' + n.type if n.is_missing else 'cannot parse'}: "
                f"{self.text(n)[:60]!r}" for n in walk(self.tree.root_node) if n.type == "ERROR" or n.is_missing]

    def operations(self) -> dict[str, Node]:
        """``$Operations['<name>'] = { ... }``: name -> the script block."""
        found = {}
        for node in walk(self.tree.root_node):
            if node.type == "assignment_expression":
                match = re.fullmatch(r"\$Operations\['([a-z_]+)'\]", self.text(node.children[0]).strip())
                if match:
                    found[match.group(1)] = first(node, "script_block_expression")
        return found

    def assigned_hash(self, variable: str) -> Node:
        for node in walk(self.tree.root_node):
            if node.type == "assignment_expression" and self.text(node.children[0]).strip().lower() == variable.lower():
                return first(node, "hash_literal_expression")
        raise AssertionError(f"no assignment of {variable}")

    def entries(self, hash_node: Node) -> dict[str, Node]:
        body = [c for c in hash_node.children if c.type == "hash_literal_body"]
        entries = [c for c in body[0].children if c.type == "hash_entry"] if body else []
        return {self.text(e.children[0]).strip("'\""): e for e in entries}

    def functions(self) -> dict[str, Node]:
        return {self.text(n.child_by_field_name("name") or n.children[1]): n
                for n in walk(self.tree.root_node) if n.type == "function_statement"}

    def commands(self, node: Node) -> list[str]:
        return [self.text(n) for n in walk(node) if n.type == "command_name"]

    def req_fields(self, node: Node) -> set[str]:
        return {self.text(n.children[-1]) for n in walk(node)
                if n.type == "member_access" and self.text(n.children[0]).lower() == "$req"}

    def returned_hashes(self, node: Node) -> list[Node]:
        hashes = []
        for statement in walk(node):
            if statement.type == "flow_control_statement" and statement.children[0].type == "return":
                hashes.append(first(statement, "hash_literal_expression"))
        return hashes

    def added_hashes(self, node: Node) -> list[Node]:
        """Hashtable literals passed to ``.Add(...)``: the elements of reply lists."""
        found = []
        for call in walk(node):
            if call.type == "invokation_expression" and any(
                    c.type == "member_name" and self.text(c) == "Add" for c in call.children):
                arguments = [c for c in call.children if c.type == "argument_list"]
                literal = first(arguments[0], "hash_literal_expression") if arguments else None
                if literal is not None:
                    found.append(literal)
        return found

    def keys(self, hash_node: Node) -> set[str]:
        return set(self.entries(hash_node))


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def first(node: Node, node_type: str) -> Node | None:
    return next((n for n in walk(node) if n.type == node_type), None)


@pytest.fixture(scope="module")
def runner() -> Script:
    return Script(runner_text())


@pytest.fixture(scope="module")
def operations(runner: Script) -> dict[str, Node]:
    return runner.operations()


# -- parsing ------------------------------------------------------------------------------------

def test_the_host_code_is_the_files_of_its_folder_in_order() -> None:
    assert sorted(path.name for path in RUNNER_DIR.glob("*.ps1")) == sorted(RUNNER_FILES)
    parsed = [path.resolve() for path in _ps1_files()]
    assert all((RUNNER_DIR / name).resolve() in parsed for name in RUNNER_FILES)
    assert RUNNER_FILES[0] == "common.ps1" and RUNNER_FILES[-1] == "dispatch.ps1"


@pytest.mark.parametrize("name", RUNNER_FILES)
def test_each_file_is_one_concern_with_a_header_saying_what_it_touches(name: str) -> None:
    lines = (RUNNER_DIR / name).read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#") or line.startswith("# region:"):
            break
        header.append(line[2:])
    text = " ".join(header)
    assert f"{name}: " in text, f"{name} has no header naming its concern"
    assert re.search(r"Writes (nothing|only)", text), f"{name}'s header does not say what it writes: {text}"


def test_the_host_code_is_at_most_1000_lines_with_the_bootstrap() -> None:
    lines = sum(len((RUNNER_DIR / name).read_text(encoding="utf-8").splitlines()) for name in RUNNER_FILES)
    assert lines + len(BOOTSTRAP.splitlines()) <= 1000


@pytest.mark.parametrize(("relative", "skipped"), [
    ("roles/remediate/files/fix.ps1", False),
    ("plugins/module_utils/Helper.psm1", False),
    ("emulator/src/x.ps1", False),
    (".venv-qa/lib/python3.11/site-packages/ansible/executor/powershell/bootstrap_wrapper.ps1", True),
    ("build/ansible_collections/nhs_cm/remediation/plugins/plugin_utils/_runner/common.ps1", True),
    ("tests/output/.tmp/x.ps1", True),
])
def test_the_parse_covers_roles_and_plugins_but_not_copies(relative: str, skipped: bool) -> None:
    assert _skipped(Path(relative)) is skipped


@pytest.mark.parametrize("path", _ps1_files(), ids=lambda p: str(p.relative_to(COLLECTION_ROOT)))
def test_every_ps1_parses_without_error_or_missing_nodes(path: Path) -> None:
    assert Script(path.read_text(encoding="utf-8-sig")).problems() == []


def test_the_bootstrap_parses() -> None:
    assert Script(BOOTSTRAP).problems() == []


def test_the_runner_is_ascii_and_marked() -> None:
    text = runner_text()
    text.encode("ascii")
    lines = text.splitlines()
    assert lines[0] == RUNNER_MARKER
    assert "param([string]$RequestJson)" in lines
    assert "Set-StrictMode -Version Latest" in lines
    assert "$ErrorActionPreference = 'Stop'" in lines
    assert "\0" not in text


# -- the contract -------------------------------------------------------------------------------

def test_the_runner_handles_exactly_the_protocol_operations(operations: dict[str, Node]) -> None:
    assert set(operations) == set(OPERATIONS)
    assert all(block is not None for block in operations.values())


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_operation_reads_exactly_its_request_fields(runner: Script, operations: dict[str, Node],
                                                         name: str) -> None:
    assert runner.req_fields(operations[name]) == set(OPERATIONS[name]["request"])


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_operation_returns_exactly_its_reply_fields(runner: Script, operations: dict[str, Node],
                                                         name: str) -> None:
    returned = runner.returned_hashes(operations[name])
    assert returned, f"{name} returns no hashtable literal"
    for literal in returned:
        assert literal is not None, f"{name} returns something that is not a hashtable literal"
        assert runner.keys(literal) == {"ok", *OPERATIONS[name]["reply"]}
        assert runner.text(runner.entries(literal)["ok"]).replace(" ", "").rstrip(";") == "ok=$true"


def _called_functions(runner: Script, node: Node, functions: dict[str, Node], seen: set[str]) -> list[Node]:
    bodies = [node]
    for command in runner.commands(node):
        if command in functions and command not in seen:
            seen.add(command)
            bodies.extend(_called_functions(runner, functions[command], functions, seen))
    return bodies


LIST_OPERATIONS = sorted(n for n, spec in OPERATIONS.items() if any("items" in f for f in spec["reply"].values()))


@pytest.mark.parametrize("name", LIST_OPERATIONS)
def test_list_elements_have_exactly_the_item_fields(runner: Script, operations: dict[str, Node], name: str) -> None:
    (items,) = [f["items"] for f in OPERATIONS[name]["reply"].values() if "items" in f]
    bodies = _called_functions(runner, operations[name], runner.functions(), set())
    literals = [literal for body in bodies for literal in runner.added_hashes(body)]
    assert literals, f"{name}: no .Add(@{{...}}) of a list element found"
    for literal in literals:
        assert runner.keys(literal) == set(items), runner.text(literal)


def test_the_controller_sends_every_field_so_the_runner_can_trust_the_request() -> None:
    # The runner reads $Req.<field> without defaults: build_stdin sends validated ops with every field.
    stdin = build_stdin(runner_text(), [{"op": "reg_read", "key": "HKLM\\SOFTWARE"}], compress=False)
    request = json.loads(stdin.decode().split(f"\n{SEPARATOR}\n", 1)[1])
    assert request["ops"] == [{"op": "reg_read", "key": "HKLM\\SOFTWARE", "view": "64", "depth": 0, "names": None}]


def test_error_results_use_the_protocol_kinds(runner: Script) -> None:
    text = runner.text(runner.tree.root_node)
    used = set(re.findall(r"-Kind '([a-z_]+)'", text)) | set(re.findall(r"error = '([a-z_]+)'", text))
    assert used
    assert used <= set(ERROR_KINDS)
    classified = set(re.findall(r"return '([a-z_]+)'", runner.text(runner.functions()["Get-ErrorKind"])))
    assert classified == {"access_denied", "not_found", "timeout", "failed"}


# -- style rules for Windows PowerShell 5.1 -----------------------------------------------------

ALLOWED_NATIVE: set[str] = set()


def test_no_aliases_only_full_command_names(runner: Script) -> None:
    for command in runner.commands(runner.tree.root_node):
        assert "-" in command or command in ALLOWED_NATIVE, f"alias or short name: {command}"


def test_nothing_is_compiled_on_the_host(runner: Script) -> None:
    # No Add-Type (csc.exe and a DLL in %TEMP% on every audit, blocked by AppLocker or WDAC).
    commands = set(runner.commands(runner.tree.root_node))
    assert not commands & {"Add-Type", "Invoke-Expression", "New-Module"}
    text = runner_text()
    assert "CSharp" not in text and "DllImport" not in text and "-EncodedCommand" not in text


def test_registry_reads_do_not_expand_environment_names() -> None:
    text = runner_text()
    assert "DoNotExpandEnvironmentNames" in text
    assert "OpenBaseKey($parts['Hive'], [Microsoft.Win32.RegistryView]\"Registry$View\")" in text


def test_a_compressed_reply_is_gzip_base64_after_the_protocol_prefix(runner: Script) -> None:
    write_reply = runner.text(runner.functions()["Write-Reply"])
    assert f"$line = '{REPLY_GZIP_PREFIX}' + [System.Convert]::ToBase64String($buffer.ToArray())" in write_reply
    assert "System.IO.Compression.GZipStream" in write_reply and "CompressionMode]::Compress" in write_reply
    text = runner_text()
    assert "$compress = $null -ne $request.PSObject.Properties['compress'] -and $request.compress -eq $true" in text
    assert text.rstrip().splitlines()[-2:] == ["Write-Reply -Reply $reply -Compress $compress", "exit $exitCode"]


def test_the_reply_is_written_as_one_ascii_line() -> None:
    text = runner_text()
    assert "ConvertTo-Json -InputObject $Reply -Compress -Depth 20" in text
    assert "[Console]::Out.Write($line)" in text
    assert "'[^\\x00-\\x7F]'" in text


# -- sections: the runner a request carries ----------------------------------------------------
# build_stdin sends the common part, the sections RUNNER_SECTIONS names and the ops' entries of
# $Operations, minified. These tests make that safe without a Windows machine.

def _sections_text(names: set[str], minify: bool) -> str:
    return assemble_runner(runner_text(), sections_for(names), minify=minify)


def test_every_operation_has_its_sections_and_its_own_entry() -> None:
    text = runner_text()
    regions = runner_regions(text)
    assert set(RUNNER_SECTIONS) == set(OPERATIONS), "add the new operation to RUNNER_SECTIONS in _runner/operations.py"
    used = {section for sections in RUNNER_SECTIONS.values() for section in sections}
    assert used <= regions, f"RUNNER_SECTIONS names regions the runner lacks: {sorted(used - regions)}"
    assert regions == used | {f"op:{name}" for name in OPERATIONS}, "a region no operation uses"
    common = Script(assemble_runner(text, set(), minify=False))
    assert common.operations() == {}, "an $Operations entry outside its region"
    for name in OPERATIONS:
        alone = Script(assemble_runner(text, {f"op:{name}"}, minify=False))
        assert set(alone.operations()) == {name}


def _top_level_assignments(script: Script) -> set[str]:
    """Variables assigned at script scope (outside functions and script blocks), lower case."""
    found = set()
    for node in walk(script.tree.root_node):
        if node.type != "assignment_expression":
            continue
        parent, nested = node.parent, False
        while parent is not None:
            nested = nested or parent.type in ("function_statement", "script_block_expression")
            parent = parent.parent
        variable = first(node.children[0], "variable")
        if not nested and variable is not None:
            found.add(script.text(variable).lower())
    return found


def _script_statements(script: Script) -> list[Node]:
    """The top-level statements that are not function definitions."""
    (statements,) = [c for c in script.tree.root_node.children if c.type == "statement_list"]
    return [c for c in statements.children if c.type != "function_statement"]


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_the_sections_of_each_operation_define_what_its_code_uses(runner: Script, name: str) -> None:
    sent = Script(_sections_text({name}, minify=False))
    assert sent.problems() == []
    defined, everywhere = sent.functions(), set(runner.functions())
    seen: set[str] = set()
    for statement in _script_statements(sent):  # the main code and the $Operations entries
        _called_functions(sent, statement, defined, seen)
    reached = seen | {command for statement in _script_statements(sent) for command in sent.commands(statement)}
    for body in [defined[name] for name in seen]:
        reached.update(sent.commands(body))
    missing = {command for command in reached if command in everywhere and command not in defined}
    assert not missing, f"{name} calls functions of sections it does not list: {sorted(missing)}"
    script_variables = _top_level_assignments(runner)
    used = {sent.text(n).lower() for n in walk(sent.tree.root_node) if n.type == "variable"}
    unset = (used & script_variables) - _top_level_assignments(sent)
    assert not unset, f"{name} uses script variables of sections it does not list: {sorted(unset)}"


READS = {op["op"] for op in plan_reads()}
#: The sets of operations the collection sends in one call: diagnose and the remediation modules'
#: reads (plan_reads), their write call (backup_save, the writes, the read-backs and listings),
#: restore's calls, and every operation alone.
OP_SETS = {
    "reads": READS,
    "reads_offline": {op["op"] for op in plan_reads({"include_offline_profiles": True})},
    "write_call": {"backup_save", "reg_write", "reg_delete", "service_set", "task_run", "process_stop",
                   "reg_read", "user_hives_read", "service_query", "tcp_listeners", "session_list",
                   "process_list", "file_list"},
    "restore_call": {"reg_write", "reg_delete", "reg_delete_key", "service_set", "reg_read", "service_query"},
    "restore_reads": {"backup_load", "backup_list", "reg_read", "service_query"},
    "every_write": set(WRITE_OPERATIONS),
    "everything": set(OPERATIONS),
    **{name: {name} for name in OPERATIONS},
}


def _shape(script: Script, node: Node) -> Iterator[tuple[str, str]]:
    """The syntax tree without comments: node types, and the text of leaves and strings."""
    if node.type == "comment":
        return
    if node.child_count == 0 or "string" in node.type:
        yield node.type, script.text(node)
    else:
        yield node.type, ""
    for child in node.children:
        yield from _shape(script, child)


@pytest.mark.parametrize("names", OP_SETS.values(), ids=OP_SETS.keys())
def test_the_minified_runner_parses_to_the_same_tree(names: set[str]) -> None:
    minified = Script(runner_for_ops(runner_text(), frozenset(names)))
    plain = Script(_sections_text(names, minify=False))
    assert minified.problems() == []
    assert list(_shape(minified, minified.tree.root_node)) == list(_shape(plain, plain.tree.root_node))
    assert minified.text(minified.tree.root_node).splitlines()[0] == RUNNER_MARKER
    assert set(minified.operations()) == names


def test_what_diagnose_sends_is_at_most_10_kb_after_gzip() -> None:
    # Issue 17's target (docs/runner-protocol.md): the runner diagnose needs and its request,
    # gzipped as build_stdin sends them (before base64).
    stdin = build_stdin(runner_text(), plan_reads())
    assert len(base64.b64decode(stdin)) <= 10 * 1024
