"""The cm_service role and rollback against emulated hosts over real WinRM, as a trust engineer
would run them: check mode first, then the fix, diagnose, a second run, and rollback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from harness import SCENARIOS, problem_ids, run_playbook

#: The finding ids cm_service fixes; diagnose must report none of them afterwards.
AUTOMATIC = {"PORT_SERVICE_STOPPED", "PORT_SERVICE_NOT_AUTOMATIC", "PORT_SERVICE_NOT_LISTENING", "CM_NOT_RUNNING",
             "SMARTCARD_SERVICE_STOPPED", "IA_NOT_RUNNING"}
FAULTY = ["port-service-stopped", "port-service-not-automatic", "port-service-not-listening", "cm-not-running",
          "smartcard-service-stopped", "ia-not-running", "rds-three-sessions-one-without-cm"]
UNCHANGED = ["healthy-no-user", "healthy-cm1-ia"]
#: A restart cannot be undone: the Port Service that did not listen listens after rollback too.
RUNTIME_SERVICE_FIELDS = ("listens", "pid")

FIX = """
- name: Fix NHS Credential Management services and processes
  hosts: windows
  gather_facts: false
  roles:
    - role: nhs_cm.remediation.cm_service
"""


def _playbook(tmp_path: Path, text: str = FIX) -> str:
    path = tmp_path / "fix.yml"
    path.write_text(text)
    return str(path)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters by host."""
    found = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return found


def configuration(state: dict[str, Any]) -> dict[str, Any]:
    """What rollback must restore, by host: the registry and each service's configuration."""
    return {host["name"]: {
        "registry": host["registry"],
        "services": [{k: v for k, v in s.items() if k not in RUNTIME_SERVICE_FIELDS} for s in host["services"]],
    } for host in state["hosts"]}


def processes(state: dict[str, Any], name: str) -> list[tuple[int, str, str | None]]:
    host = next(h for h in state["hosts"] if h["name"] == name)
    return sorted((p["session"], str(p["image"]).rsplit("\\", 1)[-1], p["user"]) for p in host["processes"]
                  if p["session"])


def writes(running: Any) -> dict[str, int]:
    return {name: stats["writes"] for name, stats in running.get("/stats")["hosts"].items()}


def test_check_fix_verify_repeat_and_roll_back(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / f"{name}.yml" for name in FAULTY + UNCHANGED])
    fix = _playbook(tmp_path)
    original = running.get("/state")

    # --check --diff on the fresh faulty hosts: reports what would change, writes nothing.
    check = run_playbook(fix, running.inventory, tmp_path / "r0", "--check", "--diff")
    assert check.rc == 0, check.output
    assert set(writes(running).values()) == {0}
    assert running.get("/state") == original
    counts = recap(check.output)
    assert {h for h, c in counts.items() if c["changed"]} == set(FAULTY)
    assert "-service NHSPortService: state stopped, start mode auto" in check.output
    assert "+service NHSPortService: state running, start mode auto" in check.output
    assert "+session 4 (NHS\\cwilliams): NHS Credential Management started" in check.output

    # The fix: every faulty host changes, the others do not.
    run = run_playbook(fix, running.inventory, tmp_path / "r1", "--diff")
    assert run.rc == 0, run.output
    counts = recap(run.output)
    assert {h for h, c in counts.items() if c["changed"]} == set(FAULTY)
    assert "Nobody is logged on: NHS Credential Management starts at the next logon" in run.output
    after_fix = running.get("/state")
    assert configuration(after_fix)["healthy-no-user"] == configuration(original)["healthy-no-user"]
    assert processes(after_fix, "healthy-no-user") == []
    # One runner call to read and one to back up, write and read back per host; a host that starts
    # a program makes one more read first, of the program's install folder (CM's and the Identity
    # Agent's paths come from the product's install data, never from a running process).
    commands = {name: stats["commands"] for name, stats in running.get("/stats")["hosts"].items()}
    starts = {"cm-not-running", "rds-three-sessions-one-without-cm"}  # CM started in a session
    assert {commands[name] for name in FAULTY if name not in starts} == {3}  # check: 1 read; real: read + write
    assert {commands[name] for name in starts} == {5}  # and the install folder read in each run
    # RDS: CM and the Identity Agent started in session 4 only, as its user; nothing else started.
    started = set(processes(after_fix, "rds-three-sessions-one-without-cm")) - set(
        processes(original, "rds-three-sessions-one-without-cm"))
    assert started == {(4, "NHSCredentialManagement.exe", "NHS\\cwilliams"), (4, "IdentityAgent.exe", "NHS\\cwilliams")}
    # A backup per changed host, saved on the host.
    backups = {h["name"]: h["backups"] for h in after_fix["hosts"]}
    assert {name for name, saved in backups.items() if saved} == set(FAULTY)

    # diagnose then reports none of the automatic ids.
    audit = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "audit")
    assert audit.rc == 0, audit.output
    assert audit.report is not None
    for name, entry in audit.report["hosts"].items():
        assert not set(problem_ids(entry)) & AUTOMATIC, (name, problem_ids(entry))

    # A second run changes nothing and writes nothing.
    before_second = writes(running)
    again = run_playbook(fix, running.inventory, tmp_path / "r2")
    assert again.rc == 0, again.output
    assert all(c["changed"] == 0 for c in recap(again.output).values())
    assert writes(running) == before_second

    # Rollback: --check writes nothing; then the registry and the services are as they were.
    rollback_check = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b0", "--check",
                                  "--diff", "-e", "backup_id=latest")
    assert rollback_check.rc == 0, rollback_check.output
    assert writes(running) == before_second
    assert "-service NHSPortService: state running, start mode auto" in rollback_check.output
    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b1", "-e", "backup_id=latest")
    assert rollback.rc == 0, rollback.output
    assert configuration(running.get("/state")) == configuration(original)
    changed = {h for h, c in recap(rollback.output).items() if c["changed"]}
    assert changed == {"port-service-stopped", "port-service-not-automatic", "smartcard-service-stopped"}


def test_port_service_that_fails_to_start(estate, tmp_path: Path) -> None:
    """A clear failure, and the host exactly as it was: the start mode set before the failed start
    is put back and CM is not started."""
    running = estate([SCENARIOS / "port-service-start-fails.yml"])
    original = running.get("/state")
    run = run_playbook(_playbook(tmp_path), running.inventory, tmp_path / "r")
    assert run.rc != 0
    assert "service_set NHSPortService failed (failed): service NHSPortService is Stopped, not Running" in run.output
    assert "every value this run changed was put back from backup" in run.output
    state = running.get("/state")
    assert configuration(state) == configuration(original)
    assert processes(state, "port-service-start-fails") == processes(original, "port-service-start-fails")
    assert recap(run.output)["port-service-start-fails"]["failed"] == 1


def _variant(tmp_path: Path, name: str, extra_files: list[str], transport: dict[str, Any] | None = None) -> Path:
    """port-service-start-fails.yml without the fault: a single session without CM, so only
    the install folder can name CM's executable."""
    doc = yaml.safe_load((SCENARIOS / "port-service-start-fails.yml").read_text())
    host = doc["hosts"][0]
    host["name"] = name
    host.pop("behaviour")
    host["services"][0].update(state="running", start_mode="auto", listens=[43487])
    host["files"] += [{"path": path} for path in extra_files]
    if transport:
        host["transport"] = {"fail": transport}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump({"hosts": [host], "expect": {name: ["CM_NOT_RUNNING"]}}))
    return path


def test_cm_executable_from_the_install_folder_or_none(estate, tmp_path: Path) -> None:
    cm_dir = "C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management\\"
    running = estate([_variant(tmp_path, "one-program", []),
                      _variant(tmp_path, "two-programs", [cm_dir + "Updater.exe"])], "--transport", "basic")
    original = running.get("/state")
    run = run_playbook(_playbook(tmp_path), running.inventory, tmp_path / "r")
    counts = recap(run.output)
    assert counts["one-program"]["changed"] == 1 and counts["one-program"]["failed"] == 0
    assert (1, "NHSCredentialManagement.exe", "NHS\\lmitchell") in processes(running.get("/state"), "one-program")
    # The folder listing is one more read call: 3 in all.
    assert running.get("/stats")["hosts"]["one-program"]["commands"] == 3
    assert counts["two-programs"]["failed"] == 1
    assert "cannot tell NHS Credential Management's executable" in run.output
    assert "Updater.exe" in run.output and "set option cm_executable" in run.output
    assert running.get("/stats")["hosts"]["two-programs"]["writes"] == 0
    assert configuration(running.get("/state"))["two-programs"] == configuration(original)["two-programs"]
    # Naming it is enough.
    named = run_playbook(_playbook(tmp_path), running.inventory, tmp_path / "r2", "--limit", "two-programs",
                         "-e", "cm_service_cm_executable=NHSCredentialManagement.exe")
    assert named.rc == 0, named.output
    assert (1, "NHSCredentialManagement.exe", "NHS\\lmitchell") in processes(running.get("/state"), "two-programs")


def test_a_write_call_dropped_before_its_input_arrived_changes_nothing(estate, tmp_path: Path) -> None:
    """The connection drops while the write call's input is sent: the controller cannot know whether
    it ran, so the host fails with "changed: unknown"; and nothing was written (Windows, and the
    emulator, run a command only once its input is complete)."""
    # Basic auth, one shell per task: Create, then Command, Send, Receive, Signal per runner call:
    # requests 0-4 are the read call, so request 6 is the write call's Send.
    path = tmp_path / "drop.yml"
    doc = yaml.safe_load((SCENARIOS / "port-service-stopped.yml").read_text())
    doc["hosts"][0]["transport"] = {"fail": {"kind": "drop", "after_requests": 6, "times": 50}}
    path.write_text(yaml.safe_dump(doc))
    running = estate([path], "--transport", "basic")
    original = running.get("/state")
    run = run_playbook(_playbook(tmp_path), running.inventory, tmp_path / "r")
    assert run.rc != 0
    assert recap(run.output)["port-service-stopped"]["failed"] == 1
    assert "changed: unknown" in run.output and "rollback.yml -e backup_id=" in run.output
    stats = running.get("/stats")["hosts"]["port-service-stopped"]
    assert stats["writes"] == 0
    assert configuration(running.get("/state")) == configuration(original)


def test_a_write_whose_answer_is_lost_is_changed_unknown_with_the_backup_id(estate, tmp_path: Path) -> None:
    """The write call ran on the host, but its answer never came back: the host fails with
    "changed: unknown" and the backup id to roll back with, and the rollback puts it back."""
    path = tmp_path / "lost.yml"
    doc = yaml.safe_load((SCENARIOS / "port-service-stopped.yml").read_text())
    doc["hosts"][0].setdefault("behaviour", {})["lose_write_answers"] = 1
    path.write_text(yaml.safe_dump(doc))
    running = estate([path], "--transport", "basic")
    original = running.get("/state")
    run = run_playbook(_playbook(tmp_path), running.inventory, tmp_path / "r", "-v")
    assert run.rc != 0
    assert recap(run.output)["port-service-stopped"]["failed"] == 1
    assert "changed: unknown" in run.output
    (backup,) = running.get("/state/port-service-stopped")["backups"]
    assert backup["id"] in run.output, "the message names the backup to roll back with"
    assert running.get("/stats")["hosts"]["port-service-stopped"]["writes"] > 0, "the write did happen"
    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b", "-e",
                            f"backup_id={backup['id']}")
    assert rollback.rc == 0, rollback.output
    assert configuration(running.get("/state")) == configuration(original)


def test_cm_not_connected_restarts_once_then_escalates(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / "cm-not-connected.yml"])
    before = processes(running.get("/state"), "cm-not-connected")
    pids_before = _pids(running.get("/state"))
    assert len(pids_before) == 2
    run = run_playbook(_playbook(tmp_path), running.inventory, tmp_path / "r", "-v")
    assert run.rc == 0, run.output
    assert "National Service Desk (0300 303 5035)" in run.output
    after = processes(running.get("/state"), "cm-not-connected")
    # the same programs run again in session 1 (restarted: new processes, as the same user)
    assert [p[:2] for p in after] == [p[:2] for p in before]
    assert _pids(running.get("/state")).isdisjoint(pids_before)


def _pids(state: dict[str, Any]) -> set[int]:
    """Pids of CM and the Identity Agent on the cm-not-connected host."""
    host = next(h for h in state["hosts"] if h["name"] == "cm-not-connected")
    return {p["pid"] for p in host["processes"] if str(p["image"]).endswith(("IdentityAgent.exe",
                                                                              "NHSCredentialManagement.exe"))}
