"""The audit through ansible-runner (the engine AWX runs jobs with) gives the same report."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import ansible_runner
import yaml
from harness import BIN, ROOT, SCENARIOS, run_playbook

ESTATE = [SCENARIOS / name for name in ("cm-not-installed.yml", "cm-not-running.yml", "port-service-stopped.yml",
                                        "cm-reboot-pending.yml", "healthy-cm1-ia.yml")]


def collection_module(name: str) -> Any:
    """A module of the collection's plugin_utils, imported from this checkout (`make install` links it)."""
    if str(ROOT / ".collections") not in sys.path:
        sys.path.insert(0, str(ROOT / ".collections"))
    return importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.plugin_utils.{name}")


def _waivers(tmp_path: Path) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(yaml.safe_dump({"windows": {"hosts": {"cm-not-installed": {"nhs_cm_waivers": [
        {"id": "CM_NOT_INSTALLED", "justification": "Kiosk", "approved_by": "IG lead", "expires": "2026-12-31"}]}}}}))
    return path


def test_runner_report_and_job_events_equal_a_direct_run(estate, tmp_path: Path) -> None:
    running = estate(ESTATE)
    waivers = _waivers(tmp_path)
    direct = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "direct", "-i", str(waivers),
                          "-e", "nhs_cm_today=2027-01-01")  # the waiver is past its date: a waiver problem too
    assert direct.report is not None, direct.output
    assert direct.rc == 2, direct.output

    env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_NOCOLOR": "1"}
    (tmp_path / "runner").mkdir()
    result = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"), project_dir=str(ROOT), playbook="playbooks/audit.yml",
        inventory=[str(running.inventory), str(waivers)], envvars=env, quiet=True,
        extravars={"nhs_cm_report_dir": str(tmp_path / "via-runner"), "nhs_cm_today": "2027-01-01",
                   "nhs_cm_store": str(tmp_path / "history.sqlite")})
    assert result.status == "failed" and result.rc == 2, result.stdout.read()
    via_runner = json.loads((tmp_path / "via-runner" / "report.json").read_text())

    merge = collection_module("_report.merge")
    assert merge.without_times(via_runner) == merge.without_times(direct.report)

    events = list(result.events)
    assert any(e["event"] == "runner_on_ok" and e["event_data"].get("task_action") == "nhs_cm.remediation.diagnose"
               for e in events)
    from_events = merge.report_from_events(events, checks=via_runner["checks"])
    assert merge.without_times(from_events) == merge.without_times(via_runner)
    assert from_events["hosts"]["cm-not-installed"]["waiver_problems"]  # the waivers task's result was read too
    assert from_events["hosts"]["cm-not-installed"]["faults"] == [1]
    assert result.stats is not None and sorted(result.stats["ok"]) == sorted(via_runner["hosts"])
