"""The runner's default profile hive (HKU\\.DEFAULT_PROFILE), checked without PowerShell on the
parsed script (tree-sitter-powershell): the file comes from ProfileList 'Default', never from the
controller; the hive is mounted under HKU\\nhs_cm_<12 hex> on first use by any registry
operation and unloaded at the end of the request in a ``finally``; the allow-list accepts it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._protocol import OPERATIONS, RUNNER_SECTIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner_action import RUNNER_PATH

PARSER = Parser(Language(tree_sitter_powershell.language()))
SOURCE = RUNNER_PATH.read_text(encoding="utf-8").encode("utf-8")
TREE = PARSER.parse(SOURCE)
REGISTRY_OPS = ("reg_read", "reg_write", "reg_delete", "reg_delete_key", "backup_save")


def _text(node: Node) -> str:
    return SOURCE[node.start_byte:node.end_byte].decode("utf-8")


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _functions() -> dict[str, str]:
    return {_text(n.child_by_field_name("name") or n.children[1]): _text(n)
            for n in _walk(TREE.root_node) if n.type == "function_statement"}


def _commands(text: str) -> list[str]:
    tree = PARSER.parse(text.encode("utf-8"))
    return [text.encode("utf-8")[n.start_byte:n.end_byte].decode("utf-8")
            for n in _walk(tree.root_node) if n.type == "command_name"]


def _patterns(variable: str) -> list[str]:
    text = SOURCE.decode("utf-8")
    block = re.search(rf"^\${variable} = @\((.*?)^\)", text, re.MULTILINE | re.DOTALL)
    assert block is not None, variable
    return re.findall(r"'((?:[^']|'')*)'", block.group(1))


FUNCTIONS = _functions()


def test_every_registry_key_goes_through_the_mapping_of_the_pseudo_hive() -> None:
    split = FUNCTIONS["Split-RegistryKey"]
    assert "Resolve-DefaultProfilePath" in _commands(split)
    assert re.search(r"if \(\$hive -eq 'HKU'\) \{\s*#[^\n]*\n\s*\$subPath = Resolve-DefaultProfilePath", split)
    # every registry operation opens keys through Split-RegistryKey (Open-RegistryKey, Open-KeyForWrite)
    for name in ("Open-RegistryKey", "Open-KeyForWrite"):
        assert "Split-RegistryKey" in _commands(FUNCTIONS[name])
    for name in REGISTRY_OPS:
        assert "user_hives" in RUNNER_SECTIONS[name], f"{name} needs the section of the default profile helpers"


def test_the_file_is_profile_list_default_never_a_controller_path() -> None:
    resolve = FUNCTIONS["Get-DefaultProfileFile"]
    assert "$ProfileListKey" in resolve and "GetValue('Default'" in resolve
    assert "ExpandEnvironmentVariables" in resolve and "'NTUSER.DAT'" in resolve
    helpers = "".join(FUNCTIONS[name] for name in (
        "Get-DefaultProfileFile", "Mount-DefaultProfile", "Resolve-DefaultProfilePath", "Dismount-DefaultProfile"))
    assert not re.search(r"\$Req\b", helpers, re.IGNORECASE)
    for name in REGISTRY_OPS:
        assert not {"path", "file", "hive"} & set(OPERATIONS[name]["request"]), name


def test_the_mount_point_is_unique_and_inside_the_allow_list() -> None:
    mount = FUNCTIONS["Mount-DefaultProfile"]
    assert "'nhs_cm_{0}' -f [System.Guid]::NewGuid().ToString('N').Substring(0, 12)" in mount
    assert "Invoke-RegExe -Arguments @('load'" in mount
    write = _patterns("WriteKeyPatterns")
    zonemap = "\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap"
    assert any(re.search(p, "HKU\\nhs_cm_0123456789ab" + zonemap, re.IGNORECASE) for p in write)


@pytest.mark.parametrize(("key", "allowed"), [
    ("HKU\\.DEFAULT_PROFILE\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap", True),
    ("HKU\\.default_profile\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1", True),
    ("HKU\\.DEFAULT_PROFILE\\Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap",
     True),
    ("HKU\\.DEFAULT_PROFILE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", False),
    ("HKU\\.DEFAULT\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap", False),
    ("HKU\\.DEFAULT_PROFILEX\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap", False),
])
def test_the_write_allow_list_names_the_default_profile(key: str, allowed: bool) -> None:
    assert any(re.search(p, key, re.IGNORECASE) for p in _patterns("WriteKeyPatterns")) is allowed


def test_an_empty_zones_key_a_write_created_may_be_deleted_again() -> None:
    zones = "\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones"
    delete = _patterns("DeleteKeyPatterns")
    for root in ("HKU\\.DEFAULT_PROFILE", "HKU\\S-1-5-21-1-2-3-1001"):
        assert any(re.search(p, root + zones, re.IGNORECASE) for p in delete)
        assert not any(re.search(p, root + zones.rsplit("\\", 1)[0], re.IGNORECASE) for p in delete)


def test_the_hive_is_unloaded_at_the_end_of_the_request_in_a_finally() -> None:
    resolve = FUNCTIONS["Resolve-DefaultProfilePath"]
    assert "$RequestCleanup.Add({ Dismount-DefaultProfile })" in resolve
    assert "Dismount-UserHive" in _commands(FUNCTIONS["Dismount-DefaultProfile"])  # GC and retries
    main = [n for n in TREE.root_node.children[-1].children if n.type == "try_statement"]
    assert len(main) == 1, "one try around the request"
    finally_clauses = [c for c in main[0].children if c.type == "finally_clause"]
    assert finally_clauses and "Invoke-RequestCleanup" in _commands(_text(finally_clauses[0]))
    text = SOURCE.decode("utf-8")
    after = text[main[0].end_byte:]
    assert after.index("$cleanupProblem") < after.index("Write-Reply"), "an unload that failed is reported"


def test_a_load_that_failed_fails_every_later_use_in_the_request() -> None:
    resolve = FUNCTIONS["Resolve-DefaultProfilePath"]
    assert resolve.index("$DefaultProfileState['Error']") < resolve.index("Mount-DefaultProfile")
    assert "OrdinalIgnoreCase" in resolve
