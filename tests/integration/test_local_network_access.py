"""Local Network Access (issue 22) against emulated desktops over real WinRM, as a trust engineer
would run it: the audit reports exactly each scenario's ``expect``; the third_party_cookies role
with --check --diff writes nothing; the fix adds the NHS sites to the allow list each installed
browser reads, keeping every existing entry; diagnose then reports none of the LOCALHOST_ACCESS_*
ids (the allow list overrides a user's Block kept in a browser profile, which the role never
touches); a second run changes nothing; a rollback puts every host back as the scenario had it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from harness import SCENARIOS, problem_ids, run_playbook, without_backups

LNA_IDS = {"LOCALHOST_ACCESS_BLOCKED", "LOCALHOST_ACCESS_NOT_ALLOWED", "LOCALHOST_ACCESS_POLICY_NOT_HONOURED",
           "LOCALHOST_ACCESS_USER_BLOCKED"}
FAULTY = ["localhost-access-blocked", "localhost-access-not-allowed", "localhost-access-policy-not-honoured",
          "localhost-access-user-blocked"]
HEALTHY = ["healthy-local-network-access"]
CHROME = "HKLM\\SOFTWARE\\Policies\\Google\\Chrome"
EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
SITES = {"1": {"type": "REG_SZ", "data": "https://ers.nhs.uk"},
         "2": {"type": "REG_SZ", "data": "https://am.nhsidentity.spineservices.nhs.uk"}}
FIX = """
- name: Let the NHS sites reach NHS Credential Management on localhost
  hosts: windows
  gather_facts: false
  roles:
    - role: nhs_cm.remediation.third_party_cookies
"""


def expected(names: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in names:
        found.update({host: sorted(ids) for host, ids in
                      (yaml.safe_load((SCENARIOS / f"{name}.yml").read_text())["expect"] or {}).items()})
    return found


def audit(running: Any, report_dir: Path) -> dict[str, list[str]]:
    run = run_playbook("playbooks/audit.yml", running.inventory, report_dir)
    assert run.rc == 0 and run.report is not None, run.output
    return {name: problem_ids(entry) for name, entry in run.report["hosts"].items()}


def changed_hosts(output: str) -> set[str]:
    return {host for host, changed in re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.MULTILINE)
            if int(changed)}


def writes(running: Any) -> dict[str, int]:
    return {name: host["writes"] for name, host in running.get("/stats")["hosts"].items()}




def registry_of(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(host["registry"] for host in state["hosts"] if host["name"] == name)


def files_of(state: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return next(host["files"] for host in state["hosts"] if host["name"] == name)


def test_audit_check_fix_verify_repeat_and_roll_back(estate, tmp_path: Path) -> None:
    names = [*FAULTY, *HEALTHY]
    running = estate([SCENARIOS / f"{name}.yml" for name in names])
    original = running.get("/state")

    # The audit reports exactly what each scenario expects.
    assert audit(running, tmp_path / "a0") == expected(names)

    # --check --diff: the additions are shown, nothing is written.
    fix = tmp_path / "fix.yml"
    fix.write_text(FIX)
    check = run_playbook(str(fix), running.inventory, tmp_path / "c", "--check", "--diff")
    assert check.rc == 0, check.output
    assert set(writes(running).values()) == {0}
    assert running.get("/state") == original
    assert changed_hosts(check.output) == set(FAULTY)
    assert f"+{CHROME}\\LoopbackNetworkAllowedForUrls\\1: REG_SZ 'https://ers.nhs.uk'" in check.output
    assert f"+{EDGE}\\LocalNetworkAccessAllowedForUrls\\2: REG_SZ 'https://am.nhsidentity.spineservices.nhs.uk'" \
        in check.output

    # The fix: each faulty host gets the list its browser version reads; existing entries stay.
    run = run_playbook(str(fix), running.inventory, tmp_path / "f", "--diff")
    assert run.rc == 0, run.output
    assert changed_hosts(run.output) == set(FAULTY)
    state = running.get("/state")
    assert registry_of(state, "localhost-access-blocked")[f"{CHROME}\\LoopbackNetworkAllowedForUrls"] == SITES
    assert registry_of(state, "localhost-access-blocked")[f"{CHROME}\\LocalNetworkAccessBlockedForUrls"] == {
        "1": {"type": "REG_SZ", "data": "*"}}
    assert registry_of(state, "localhost-access-not-allowed")[f"{EDGE}\\LocalNetworkAccessAllowedForUrls"] == SITES
    honoured = registry_of(state, "localhost-access-policy-not-honoured")
    assert honoured[f"{CHROME}\\LocalNetworkAccessAllowedForUrls"] == SITES
    assert honoured[f"{CHROME}\\LoopbackNetworkAllowedForUrls"] == SITES
    assert honoured[f"{EDGE}\\LocalNetworkAccessAllowedForUrls"] == SITES
    blocked = registry_of(state, "localhost-access-user-blocked")
    assert blocked[f"{EDGE}\\LocalNetworkAccessAllowedForUrls"] == SITES
    assert files_of(state, "localhost-access-user-blocked") == files_of(original, "localhost-access-user-blocked")
    assert without_backups(state)["healthy-local-network-access"] == \
        without_backups(original)["healthy-local-network-access"]

    # diagnose reports none of the Local Network Access ids afterwards.
    after = audit(running, tmp_path / "a1")
    assert all(not set(ids) & LNA_IDS for ids in after.values()), after

    # A second run changes nothing.
    before = writes(running)
    again = run_playbook(str(fix), running.inventory, tmp_path / "f2")
    assert again.rc == 0, again.output
    assert writes(running) == before
    assert changed_hosts(again.output) == set()

    # Rollback: every host is exactly as the scenario had it.
    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b", "-e", "backup_id=latest")
    assert rollback.rc == 0, rollback.output
    assert without_backups(running.get("/state")) == without_backups(original)
