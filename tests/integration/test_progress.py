"""The progress callback (plugins/callback/progress.py) on a run that waits for a switched-off
desktop: while the other desktops are done it says how many are pending and names the one it
waits for, then how long the task took; the summary names the host with "no answer in N s"."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from harness import SCENARIOS, run_playbook

OFF_SECONDS = 8  # long enough that the other four finish first, even on a busy machine


def _estate_file(tmp_path: Path) -> Path:
    source = yaml.safe_load((SCENARIOS / "healthy-cm1-ia.yml").read_text())["hosts"][0]
    hosts = [dict(source, name=f"pc-{n:02d}") for n in range(1, 5)]
    hosts.append(dict(source, name="off-01", transport={"fail": {"kind": "timeout", "times": 1000, "seconds": 60}}))
    path = tmp_path / "estate.yml"
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


def test_progress_names_the_host_the_run_waits_for(estate, tmp_path: Path) -> None:
    running = estate([_estate_file(tmp_path)], "--transport", "basic")
    inventory = yaml.safe_load(running.inventory.read_text())
    inventory["windows"]["hosts"]["off-01"].update(ansible_winrm_read_timeout_sec=OFF_SECONDS,
                                                   ansible_winrm_operation_timeout_sec=OFF_SECONDS - 1)
    running.inventory.write_text(yaml.safe_dump(inventory))
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r",
                       env={"ANSIBLE_CALLBACKS_ENABLED": "nhs_cm.remediation.progress",
                            "NHS_CM_PROGRESS_INTERVAL": "1"})
    assert run.rc == 2, run.output
    progress = [line for line in run.output.splitlines() if line.startswith("[progress] Diagnose")]
    waiting = [line for line in progress if re.search(r": 4/5 done, 1 pending after \d+ s, the last 1 running "
                                                      r"for up to \d+ s: off-01$", line)]
    assert waiting, run.output
    assert progress[-1].startswith("[progress] Diagnose NHS Credential Management: 5 host(s) done in "), progress
    assert progress[-1].endswith(", 1 failed")
    # Short tasks print nothing; the audit's other tasks take well under a second.
    assert {line.split(":")[0] for line in run.output.splitlines() if line.startswith("[progress]")} == {
        "[progress] Diagnose NHS Credential Management"}
    assert re.search(rf"off-01: FAILED - .*no answer in {OFF_SECONDS} s", run.output), run.output
