"""Fault injection over 120 emulated hosts (tools/fault_injection.py): audited and remediated with
connection refused, a wrong password, HTTP 500, a timeout, a connection dropped during the write
command, a reply that is not JSON, access denied on a key, a service that will not start and a
Group Policy refresh during the run. Every host without a fault finishes, each faulty host fails
alone with a one-line reason, none is left half-written, and run 2 completes the hosts whose
fault is over. About 100 s (two audits and two fixes of the estate, forks 50)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, next_base_address

pytestmark = pytest.mark.slow


def load_tool() -> Any:
    spec = importlib.util.spec_from_file_location("fault_injection", ROOT / "tools" / "fault_injection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_injection"] = module
    spec.loader.exec_module(module)
    return module


def test_faults_stay_on_their_hosts_and_nothing_is_half_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                ) -> None:
    tool = load_tool()
    _doc, faults, _templates = tool.build_estate(120, 1)
    figures = tool.run(120, 1, 50, tmp_path, next_base_address())
    with capsys.disabled():
        tool.print_figures(figures)

    assert figures["hosts"] >= 100
    injected = set(figures["faults_injected"].values())
    assert {fault.name for fault in tool.FAULTS} <= injected  # every kind of fault was injected
    faulty = set(faults)
    first, second = figures["run1"], figures["run2"]

    # Run 1: the faulty hosts fail, each with a one-line reason; every other host finishes.
    assert set(first["failed"]) == faulty
    assert first["completed"] == figures["hosts"] - len(faulty)
    for host, reason in first["failed"].items():
        assert reason.strip() and "\n" not in reason, (host, reason)
    assert figures["half_written_run1"] == []

    # Run 2: the hosts whose fault is over finish; the others fail again, alone.
    cleared = {name for name, fault in faults.items() if fault.clears}
    assert set(figures["cleared_after_run1"]) == cleared
    assert len(cleared) >= 5
    assert set(second["failed"]) == faulty - cleared
    assert second["completed"] == figures["hosts"] - len(faulty - cleared)
    assert figures["half_written_run2"] == []

    # The reasons say what happened.
    reason_of = {faults[host].name: reason for host, reason in first["failed"].items()}
    assert reason_of["wrong password in the inventory"].endswith("credentials rejected")
    assert reason_of["connection refused"].endswith("connection refused on 5985")
    assert "500" in reason_of["HTTP 500, twice"]
    assert reason_of["timeout, twice"].endswith("no answer in 10 s")  # that host's ansible_winrm_read_timeout_sec
    assert "not JSON" in reason_of["reply not JSON"]
    assert "access_denied" in reason_of["access denied on a key"]
    assert "NHSPortService" in reason_of["service will not start"]
    assert "read back" in reason_of["Group Policy refresh during the run"]


def test_the_half_written_check_sees_a_host_between_before_and_after() -> None:
    tool = load_tool()
    fault = tool.FAULTS[0]

    def host(name: str, **registry: int) -> dict[str, Any]:
        values = {k: {"type": "REG_DWORD", "data": v} for k, v in registry.items()}
        return {"name": name, "registry": {"HKLM\\SOFTWARE\\Policies\\X": values}, "services": [], "processes": []}

    before = {"pc-1": host("pc-1", A=0, B=0), "pc-2": host("pc-2", A=0, B=0)}
    templates = {"pc-1": "t", "pc-2": "t"}
    clean_after = host("pc-2", A=1, B=1)
    for state, half in [(host("pc-1", A=0, B=0), []), (host("pc-1", A=1, B=1), []), (host("pc-1", A=1, B=0), ["pc-1"])]:
        assert tool.half_written(before, {"pc-1": state, "pc-2": clean_after}, {"pc-1": fault}, templates) == half
