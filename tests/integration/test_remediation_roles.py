"""The third_party_cookies and intranet_zone roles against emulated hosts over real WinRM, as a
trust engineer would run them: --check --diff first, the fix, diagnose, a second run, rollback;
and a value owned by domain Group Policy, left alone unless overridden. One estate for all."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness import SCENARIOS, problem_ids, run_playbook, without_backups

COOKIE_IDS = {"THIRD_PARTY_COOKIES_BLOCKED", "COOKIES_BLOCKED_BY_DEFAULT", "LOCALHOST_COOKIES_BLOCKED"}
ZONE_IDS = {"INTRANET_AUTODETECT_ON", "INTRANET_LOCAL_SITES_OFF", "INTRANET_PROXY_BYPASS_OFF", "INTRANET_UNC_OFF",
            "INTRANET_LOGON_NOT_AUTOMATIC", "LOCALHOST_MAPPED_OUTSIDE_INTRANET", "AUTH_ALLOWLIST_EXCLUDES_LOCALHOST"}
AUTOMATIC = COOKIE_IDS | ZONE_IDS
GPO_HOST = "third-party-cookies-blocked"  # Edge's list is set by a domain GPO
FAULTY = ["cookies-blocked-by-default", "localhost-cookies-blocked", "intranet-autodetect-on",
          "intranet-local-sites-off", "intranet-logon-not-automatic", "intranet-proxy-bypass-off", "intranet-unc-off",
          "localhost-mapped-outside-intranet", "auth-allowlist-excludes-localhost"]
HEALTHY = ["healthy-cm4-scc"]
EDGE_ALLOW = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\CookiesAllowedForUrls"

FIX = """
- name: Fix browser cookies and the Local intranet zone
  hosts: windows
  gather_facts: false
  roles:
    - role: nhs_cm.remediation.third_party_cookies
      vars:
        third_party_cookies_remove_localhost_block: true
    - role: nhs_cm.remediation.intranet_zone
"""


def recap(output: str) -> dict[str, dict[str, int]]:
    found = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return found


def changed_hosts(output: str) -> set[str]:
    return {host for host, counts in recap(output).items() if counts["changed"]}


def stats(running: Any, field: str) -> dict[str, int]:
    return {name: host[field] for name, host in running.get("/stats")["hosts"].items()}




def registry_of(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(host["registry"] for host in state["hosts"] if host["name"] == name)


def audit_ids(running: Any, report_dir: Path) -> dict[str, set[str]]:
    audit = run_playbook("playbooks/audit.yml", running.inventory, report_dir)
    assert audit.report is not None, audit.output
    return {name: set(problem_ids(entry)) for name, entry in audit.report["hosts"].items()}


def test_check_fix_verify_repeat_roll_back_and_gpo(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / f"{name}.yml" for name in [*FAULTY, GPO_HOST, *HEALTHY]])
    fix = tmp_path / "fix.yml"
    fix.write_text(FIX)
    original = running.get("/state")

    # --check --diff: what would change, nothing written.
    check = run_playbook(str(fix), running.inventory, tmp_path / "r0", "--check", "--diff")
    assert check.rc == 0, check.output
    assert set(stats(running, "writes").values()) == {0}
    assert running.get("/state") == original
    assert changed_hosts(check.output) == set(FAULTY)
    assert "-HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\CookiesAllowedForUrls\\2: (absent)" in check.output
    assert "+HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\CookiesAllowedForUrls\\2: REG_SZ '[*.]localhost'" in check.output
    assert "ZoneMap\\Domains\\localhost\\http: REG_DWORD 3" in check.output
    assert "+HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\AuthServerAllowlist: REG_SZ '*.nhs.uk,localhost'" \
        in check.output

    # The fix: every faulty host changes; the GPO-owned value and the healthy host do not.
    run = run_playbook(str(fix), running.inventory, tmp_path / "r1", "--diff")
    assert run.rc == 0, run.output
    assert changed_hosts(run.output) == set(FAULTY)
    assert "is set by Group Policy (Emulated domain policy): left alone; change Computer Configuration" \
        in " ".join(run.output.split())
    after_fix = running.get("/state")
    assert without_backups(after_fix)[GPO_HOST] == without_backups(original)[GPO_HOST]
    assert without_backups(after_fix)["healthy-cm4-scc"] == without_backups(original)["healthy-cm4-scc"]
    # One read call per role, one write call per role that changes something.
    commands = stats(running, "commands")
    assert commands["cookies-blocked-by-default"] == 2 + 3  # check: 2 reads; fix: 2 reads + 1 write
    assert {h["name"] for h in after_fix["hosts"] if h["backups"]} == set(FAULTY)

    # diagnose then reports none of the automatic ids, except the one Group Policy owns.
    found = audit_ids(running, tmp_path / "a1")
    for name in FAULTY + HEALTHY:
        assert not found[name] & AUTOMATIC, (name, found[name])
    assert found[GPO_HOST] == {"THIRD_PARTY_COOKIES_BLOCKED"}

    # A second run: changed false everywhere, nothing written.
    writes_before = stats(running, "writes")
    again = run_playbook(str(fix), running.inventory, tmp_path / "r2")
    assert again.rc == 0, again.output
    assert changed_hosts(again.output) == set()
    assert stats(running, "writes") == writes_before

    # Rollback: --check writes nothing; then every host is exactly as the scenario had it.
    rollback_check = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b0", "--check",
                                  "-e", "backup_id=latest")
    assert rollback_check.rc == 0, rollback_check.output
    assert stats(running, "writes") == writes_before
    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b1", "-e", "backup_id=latest")
    assert rollback.rc == 0, rollback.output
    assert without_backups(running.get("/state")) == without_backups(original)

    # The GPO-owned list, overridden by name: written, with the warning that GPO will revert it.
    override = run_playbook(str(fix), running.inventory, tmp_path / "r3", "--limit", GPO_HOST,
                            "-e", "third_party_cookies_override_gpo=true")
    assert override.rc == 0, override.output
    assert "will be reverted at the next Group Policy refresh" in " ".join(override.output.split())
    assert registry_of(running.get("/state"), GPO_HOST)[EDGE_ALLOW] == {
        "1": {"type": "REG_SZ", "data": "[*.]nhs.uk"}, "2": {"type": "REG_SZ", "data": "[*.]localhost"}}


def test_remediate_playbook_dry_run_tags_fixes_waivers_and_report(estate, tmp_path: Path) -> None:
    names = ["cookies-blocked-by-default", "intranet-unc-off", "intranet-autodetect-on", "port-service-stopped"]
    broken = "port-service-start-fails"  # cm_service fails there and puts back what it changed
    running = estate([SCENARIOS / f"{name}.yml" for name in [*names, broken]])
    original = running.get("/state")

    # The dry run: reports what would change on every faulty host, writes nothing.
    dry = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "d", "--check", "--diff")
    assert dry.rc == 0, dry.output
    assert changed_hosts(dry.output) == {*names, broken}
    assert set(stats(running, "writes").values()) == {0}
    assert running.get("/state") == original

    # A tag runs one role only.
    tagged = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "t", "--tags", "nhs_cm_cookies")
    assert tagged.rc == 0, tagged.output
    assert changed_hosts(tagged.output) == {"cookies-blocked-by-default"}

    # The fixes chosen as AWX passes them, in batches; a waived finding is not fixed.
    waiver = ('{"nhs_cm_waivers": [{"id": "INTRANET_UNC_OFF", "justification": "test", "approved_by": "QA", '
              '"expires": "2099-12-31"}]}')
    fixes = '{"nhs_cm_fixes": "third_party_cookies\\nintranet_zone"}'  # a multiselect answer, one string
    run = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "r", "-e", fixes,
                       "-e", "nhs_cm_serial=2", "-e", waiver, "--limit", ",".join(names))
    assert run.rc == 0, run.output
    assert changed_hosts(run.output) == {"intranet-autodetect-on"}
    state = without_backups(running.get("/state"))
    for name in ("intranet-unc-off", "port-service-stopped"):
        assert state[name] == without_backups(original)[name]
    assert run.report is not None
    hosts = run.report["hosts"]
    assert set(hosts) == set(names)  # the last batch's report covers every batch
    assert problem_ids(hosts["intranet-autodetect-on"]) == []
    assert problem_ids(hosts["port-service-stopped"]) == ["PORT_SERVICE_STOPPED"]
    assert [b.split("-")[1] for b in hosts["intranet-autodetect-on"]["backups"]] == ["intranet_zone"]
    assert "ZoneMap\\AutoDetect: (absent) -> " in hosts["intranet-autodetect-on"]["changes"][0]
    # cm_service was not among the fixes: the Port Service is left to do by hand.
    assert "fix by hand: PORT_SERVICE_STOPPED (error) - Start the NHS Port Service" in " ".join(run.output.split())

    # A role that fails: its values are put back, the host is reported, then failed at the end.
    failing = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "f", "--limit", broken,
                           "-e", "nhs_cm_fixes=cm_service")
    assert failing.rc != 0
    assert recap(failing.output)[broken]["failed"] == 1
    assert "every value this run changed was put back from backup" in " ".join(failing.output.split())
    assert failing.report is not None and "PORT_SERVICE_STOPPED" in problem_ids(failing.report["hosts"][broken])
    assert without_backups(running.get("/state"))[broken] == without_backups(original)[broken]

    # A fix that is not a role is refused before any host is touched.
    bad = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "b", "-e", "nhs_cm_fixes=reboot")
    assert bad.rc != 0
    assert "nhs_cm_fixes must list some of cm_service, third_party_cookies, intranet_zone" in bad.output
