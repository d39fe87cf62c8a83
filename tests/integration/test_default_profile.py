"""intranet_zone with include_default_profile against an emulated host over real WinRM: the default
profile's hive (C:\\Users\\Default\\NTUSER.DAT) is read, fixed and rolled back through the write
path; and, without Ansible, a write that fails after the default profile was written puts it back."""

from __future__ import annotations

import re
import sys
import typing as t
from pathlib import Path

from ansible.plugins.shell.powershell import ShellModule
from harness import ROOT, SCENARIOS, problem_ids, run_playbook, without_backups

from nhs_cm_emulator import commands
from nhs_cm_emulator.scenario import parse_document, parse_text
from nhs_cm_emulator.state import HostState

sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate import changes
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import BOOTSTRAP
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import parse_reply
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import build_stdin

HOST = "intranet-default-profile"
ZONE_IDS = {"INTRANET_AUTODETECT_ON", "INTRANET_LOCAL_SITES_OFF", "INTRANET_PROXY_BYPASS_OFF", "INTRANET_UNC_OFF",
            "INTRANET_LOGON_NOT_AUTOMATIC", "LOCALHOST_MAPPED_OUTSIDE_INTRANET", "AUTH_ALLOWLIST_EXCLUDES_LOCALHOST"}
IS = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"
DP = "HKU\\.DEFAULT_PROFILE"
FIX = """
- name: Fix the Local intranet zone, for users who sign in later too
  hosts: windows
  gather_facts: false
  roles:
    - role: nhs_cm.remediation.intranet_zone
      vars:
        intranet_zone_include_default_profile: true
"""


def changed_hosts(output: str) -> set[str]:
    return {host for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE)
            if int(re.search(r"changed=(\d+)", counters).group(1))}  # type: ignore[union-attr]


def host_state(running: t.Any) -> dict[str, t.Any]:
    return running.get(f"/state/{HOST}")




def test_check_fix_verify_repeat_and_roll_back_the_default_profile(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / f"{HOST}.yml"])
    fix = tmp_path / "fix.yml"
    fix.write_text(FIX)
    original = host_state(running)
    assert original["default_profile"]["registry"][f"{IS}\\ZoneMap"]["AutoDetect"] == {"type": "REG_DWORD",
                                                                                       "data": 1}

    # --check --diff: the default profile's values before and after, nothing written, hive unloaded.
    check = run_playbook(str(fix), running.inventory, tmp_path / "r0", "--check", "--diff")
    assert check.rc == 0, check.output
    stats = running.get("/stats")["hosts"][HOST]
    # one runner call, which loaded the default profile once and unloaded it
    assert (stats["commands"], stats["writes"], stats["hive_loads"], stats["mounted"]) == (1, 0, 1, [])
    assert host_state(running) == original
    assert changed_hosts(check.output) == {HOST}
    assert f"-{DP}\\{IS}\\ZoneMap\\AutoDetect: REG_DWORD 1" in check.output
    assert f"+{DP}\\{IS}\\ZoneMap\\AutoDetect: REG_DWORD 0" in check.output
    assert f"-{DP}\\{IS}\\ZoneMap\\ProxyBypass: (absent)" in check.output
    assert f"+{DP}\\{IS}\\Zones\\1\\1A00: REG_DWORD 131072" in check.output
    assert f"+{DP}\\{IS}\\ZoneMap\\Domains\\localhost\\http: REG_DWORD 1" in check.output
    assert not re.search(r"nhs_cm_[0-9a-f]{12}", check.output), "a mount point leaked into the diff"

    # The fix: machine policy for the signed-in user, the default profile's own settings for later users.
    run = run_playbook(str(fix), running.inventory, tmp_path / "r1", "--diff")
    assert run.rc == 0, run.output
    assert changed_hosts(run.output) == {HOST}
    after = host_state(running)
    stats = running.get("/stats")["hosts"][HOST]
    # one call to read, one to back up, write and read back: each loads the hive once
    assert (stats["commands"], stats["hive_loads"], stats["mounted"]) == (3, 3, [])
    profile = after["default_profile"]["registry"]
    assert profile[f"{IS}\\ZoneMap"] == {name: {"type": "REG_DWORD", "data": data} for name, data in (
        ("AutoDetect", 0), ("IntranetName", 1), ("UNCAsIntranet", 1), ("ProxyBypass", 1))}
    assert profile[f"{IS}\\Zones\\1"]["1A00"] == {"type": "REG_DWORD", "data": 0x20000}
    assert profile[f"{IS}\\ZoneMap\\Domains\\localhost"] == {"http": {"type": "REG_DWORD", "data": 1},
                                                              "https": {"type": "REG_DWORD", "data": 3}}
    (backup,) = after["backups"]
    keys = {entry["key"] for entry in backup["entries"]}
    assert f"{DP}\\{IS}\\ZoneMap" in keys and not any("nhs_cm_" in key for key in keys)
    assert not any(".default_profile" in key.lower() or "nhs_cm_" in key for key in after["registry"])

    # diagnose reports none of the fault 4 ids afterwards.
    audit = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "a1")
    assert audit.report is not None, audit.output
    assert not set(problem_ids(audit.report["hosts"][HOST])) & ZONE_IDS

    # A second run: changed false, nothing written.
    writes = running.get("/stats")["hosts"][HOST]["writes"]
    again = run_playbook(str(fix), running.inventory, tmp_path / "r2")
    assert again.rc == 0, again.output
    assert changed_hosts(again.output) == set()
    assert running.get("/stats")["hosts"][HOST]["writes"] == writes

    # Rollback: the default profile (loaded afresh) and the machine policy exactly as before.
    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b1", "-e", "backup_id=latest",
                            "--diff")
    assert rollback.rc == 0, rollback.output
    assert f"+{DP}\\{IS}\\ZoneMap\\ProxyBypass: (absent)" in rollback.output
    restored = host_state(running)
    assert without_backups(restored) == without_backups(original)
    assert restored["default_profile"] == original["default_profile"]
    assert running.get("/stats")["hosts"][HOST]["mounted"] == []


# -- all or nothing across the mount, without Ansible -------------------------------------------

RUNNER = runner_text()
EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
SCENARIO = rf"""
hosts:
  - name: pc-default-profile
    registry:
      '{EDGE}':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
    denied: ['{EDGE}\LocalNetworkAccessAllowedForUrls']
    default_profile:
      registry:
        '{IS}\ZoneMap':
          AutoDetect: {{type: REG_DWORD, data: 1}}
"""


def _runner(host: HostState) -> t.Callable[..., list[dict[str, t.Any]]]:
    encoded = ShellModule()._encode_script(BOOTSTRAP, as_list=False, strict_mode=False, preserve_rc=False)
    command, *arguments = encoded.split()

    def run(ops: list[dict[str, t.Any]], write_errors: str = "continue") -> list[dict[str, t.Any]]:
        out, err, code = commands.execute(host, command, arguments, build_stdin(RUNNER, ops, write_errors=write_errors))
        return parse_reply(out, err, code, ops)
    return run


def test_a_failure_after_the_default_profile_was_written_puts_it_back() -> None:
    host = HostState(parse_document(parse_text(SCENARIO, "dp.yml"), "dp.yml")[0][0])
    run = _runner(host)
    original = host.state_dict()
    zone1 = f"{DP}\\{IS}\\Zones\\1"
    keys = [f"{DP}\\{IS}\\ZoneMap", zone1, f"{EDGE}\\LocalNetworkAccessAllowedForUrls"]
    reads = run([{"op": "reg_read", "key": key} for key in keys[:2]])
    current = changes.reg_current([(key, "64", result) for key, result in zip(keys, reads, strict=False)])
    current[(changes.normalise_key(keys[2]), "64")] = {}  # say it looked readable and empty
    wanted = [changes.RegWrite(keys[0], "AutoDetect", "REG_DWORD", 0),
              changes.RegWrite(zone1, "1A00", "REG_DWORD", 0x20000),  # creates Zones and Zones\1
              changes.RegWrite(keys[2], "1", "REG_SZ", "https://ers.nhs.uk")]  # access denied
    the_plan = changes.plan(wanted, current)
    done = changes.outcome(the_plan, run(changes.write_request(the_plan, "b-dp"), write_errors="stop"))
    assert not done.ok and "access_denied" in str(done.failure)
    assert [item.change for item in done.attempted] == wanted[:2]
    written = host.state_dict()["default_profile"]["registry"]
    assert written[f"{IS}\\Zones\\1"] == {"1A00": {"type": "REG_DWORD", "data": 0x20000}}
    assert [k["key"] for k in done.backup["missing_keys"]][:2] == [f"{DP}\\{IS}\\Zones", zone1]
    put_back = run(done.restore_ops)  # the controller's second call loads the hive afresh
    assert changes.restore_failures(done.restore_ops, put_back) == []
    assert host.state_dict()["default_profile"] == original["default_profile"]
    assert without_backups(host.state_dict()) == without_backups(original)
    assert host.mounted() == [] and host.hive_loads == host.hive_unloads == 3
