"""What an absolute Windows path is, written once (plugins/plugin_utils/_paths.py) and used by the
runner protocol's path checks and by cm_service's executables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.nhs_cm.remediation.plugins.action import cm_service
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._paths import ABSOLUTE_PATH, DRIVE_PATH
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import ProtocolError
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import validate_ops

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"


@pytest.mark.parametrize(("path", "absolute", "on_a_drive"), [
    ("C:\\Program Files\\x.exe", True, True),
    ("c:\\", True, True),
    ("\\\\server\\share\\x.exe", True, False),
    ("\\\\server", False, False),
    ("x.exe", False, False),
    ("C:x.exe", False, False),
    ("1:\\x.exe", False, False),
])
def test_absolute_and_drive_paths(path: str, absolute: bool, on_a_drive: bool) -> None:
    assert bool(ABSOLUTE_PATH.match(path)) is absolute
    assert bool(DRIVE_PATH.match(path)) is on_a_drive


def test_the_protocol_checks_paths_with_the_shared_pattern() -> None:
    validate_ops([{"op": "file_info", "paths": ["\\\\server\\share\\IdentityAgent.exe"]}])
    with pytest.raises(ProtocolError, match="must hold absolute Windows paths"):
        validate_ops([{"op": "file_info", "paths": ["\\\\server"]}])


@pytest.mark.parametrize("value", ["IdentityAgent.exe", "1:\\IA\\IdentityAgent.exe", "\\\\server\\share\\IA.exe"])
def test_ia_executable_must_be_on_a_drive(value: str) -> None:
    own, _diagnose, error = cm_service.validate_options({"ia_executable": value})
    assert own is None and error == f"ia_executable must be a full path, not {value!r}"


def test_the_pattern_is_written_once() -> None:
    copies = sorted(str(path.relative_to(PLUGINS)) for path in PLUGINS.rglob("*.py")
                    if re.search(r"\[A-Za-z\]:", path.read_text(encoding="utf-8")))
    assert copies == ["plugin_utils/_paths.py"]
