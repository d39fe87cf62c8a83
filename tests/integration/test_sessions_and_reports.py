"""The audit over real WinRM for what only sessions, offline profiles and e-RS report texts show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import SCENARIOS, run_playbook

FILES = ["cm-not-connected", "user-not-logged-in", "rds-one-session-broken", "offline-profile", "healthy-no-user"]


def _findings(report: dict[str, Any], host: str) -> list[dict[str, Any]]:
    entry = report["hosts"][host]
    assert entry["status"] == "ok", entry
    return entry["findings"]


def test_sessions_offline_profiles_and_reports(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / f"{name}.yml" for name in FILES], "--transport", "basic")
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r")
    assert run.rc == 0, run.output
    assert run.report is not None

    # fault 2 reported with port 43485: CM_NOT_CONNECTED for the session whose CM listens there, first
    (first, *_rest) = _findings(run.report, "cm-not-connected")
    assert (first["id"], first["scope"]["session"], first["scope"]["user"]) == ("CM_NOT_CONNECTED", 1, "NHS\\jsmith")
    assert first["ers_message"] == "NHS Credential Management is running on port 43485 but is not connected"
    assert first["escalation"]["to"] == "National Service Desk"

    # fault 3 reported: the info finding says the login state cannot be read remotely
    info = [f for f in _findings(run.report, "user-not-logged-in") if f["id"] == "USER_NOT_LOGGED_IN"]
    assert [(f["severity"], f["scope"]["session"]) for f in info] == [("info", 1)]

    # a Remote Desktop host: only the broken session is reported, for its own user
    broken = [(f["id"], f["scope"]["session"], f["scope"]["user"]) for f in _findings(run.report,
                                                                                      "rds-one-session-broken")]
    assert broken == [("IA_NOT_RUNNING", 3, "NHS\\bokafor")]

    # an offline profile: its hive was loaded, read and unloaded; the finding is for that person
    offline = _findings(run.report, "offline-profile")
    assert [(f["id"], f["scope"]["user"], f["scope"]["session"]) for f in offline] == [
        ("INTRANET_LOCAL_SITES_OFF", "NHS\\rmorgan", None)]
    stats = running.get("/stats")
    assert stats["hosts"]["offline-profile"]["hive_loads"] == 1
    assert stats["hosts"]["healthy-no-user"]["hive_loads"] == 0  # not asked for there
    assert stats["total"]["mounted"] == [] and stats["total"]["writes"] == 0
    state = running.get("/state/offline-profile")
    assert not [key for key in state["registry"] if key.upper().startswith("HKU\\NHS_CM_")]

    # nobody logged on: no per-session finding
    assert _findings(run.report, "healthy-no-user") == []


def test_offline_profiles_only_when_asked(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / "offline-profile.yml"], "--transport", "basic")
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", "-e",
                       '{"nhs_cm_include_offline_profiles": false}')
    assert run.rc == 0, run.output
    assert run.report is not None
    assert _findings(run.report, "offline-profile") == []
    assert running.get("/stats")["hosts"]["offline-profile"]["hive_loads"] == 0


def test_a_report_text_that_names_no_fault_is_a_warning(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / "healthy-cm1-ia.yml"], "--transport", "basic")
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", "-e",
                       '{"nhs_cm_ers_report": "e-RS will not open, please help"}')
    assert run.rc == 0, run.output
    assert "ers_report names none of the four e-RS configuration check faults" in run.output
    assert run.report is not None and _findings(run.report, "healthy-cm1-ia") == []
