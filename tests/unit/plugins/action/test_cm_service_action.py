"""cm_service's action plugin against a fake CM 1.x desktop where a user runs a decoy
``IdentityAgent.exe`` from their Downloads folder: what is started comes from the Identity Agent's
HKLM Uninstall entry (checked to exist in one extra read call), as the session user's SID, and
never from the running decoy; without install data nothing is started and the result says why; a start
the runner refuses is reported for its session."""

from __future__ import annotations

import typing as t

from fake_runner import FakeHost, run
from nhs_cm_hostsim import IA_EXE, IA_GUID, answer, healthy_host, process, sz, with_identity_agent

from ansible_collections.nhs_cm.remediation.plugins.action import cm_service

PF_IA_DIR = "C:\\Program Files\\NHS\\Identity Agent"
PF_IA_EXE = PF_IA_DIR + "\\IdentityAgent.exe"
DECOY = "C:\\Users\\x\\Downloads\\IdentityAgent.exe"
SID1 = "S-1-5-21-1004336348-1177238915-682003330-1001"


class LegacyDesktop:
    """CM 1.4 with the Identity Agent installed in ``C:\\Program Files\\NHS\\Identity Agent`` (its
    Uninstall entry says so; not one of the default ia_paths); session 1 (NHS\\jsmith) runs CM but
    not the Identity Agent; session 2 (NHS\\akhan) runs a decoy IdentityAgent.exe from a user's
    Downloads folder. ``task_run`` starts the program in its session, or gets ``refuse``."""

    def __init__(self, install_data: bool = True, refuse: dict[str, t.Any] | None = None) -> None:
        host = with_identity_agent(healthy_host())
        host["products"][1]["values"]["DisplayVersion"] = sz("1.4.2.0")
        host["files"].pop(IA_EXE)
        ia = next(p for p in host["products"] if p["subkey"] == IA_GUID)
        if install_data:
            ia["values"]["InstallLocation"] = sz(PF_IA_DIR + "\\")
            host["files"][PF_IA_EXE] = "2.4.10.0"
        else:
            host["products"].remove(ia)
        host["processes"] = [p for p in host["processes"] if p["name"] != "IdentityAgent.exe"]
        host["processes"].append(process(9002, "IdentityAgent.exe", DECOY, 2, "NHS\\akhan", "2.4.10.0"))
        self.host, self.refuse = host, refuse
        self.started: list[dict[str, t.Any]] = []

    def answer(self, op: dict[str, t.Any]) -> dict[str, t.Any]:
        if op["op"] == "backup_save":
            return {"ok": True, "id": op["id"], "path": f"C:\\ProgramData\\nhs_cm\\backups\\{op['id']}.json",
                    "missing_keys": []}
        if op["op"] == "task_run":
            if self.refuse is not None:
                return dict(self.refuse)
            self.started.append(op)
            pid = 9100 + len(self.started)
            self.host["processes"].append(process(pid, op["command"].rsplit("\\", 1)[-1], op["command"],
                                                  op["session"], "NHS\\jsmith", "2.4.10.0"))
            return {"ok": True, "started": True, "pid": pid, "last_result": 267009, "deleted": True}
        return answer(self.host, op)


def test_the_installed_identity_agent_is_started_as_the_sessions_sid_never_the_decoy() -> None:
    desktop = LegacyDesktop()
    connection = FakeHost(desktop.answer)
    result = run(cm_service, connection, {})
    assert "failed" not in result, result
    assert result["findings_before"] == ["IA_NOT_RUNNING"] and result["findings_after"] == []
    assert connection.requests[1]["ops"] == [{"op": "file_info", "paths": [PF_IA_EXE]}]  # the one extra read
    (started,) = desktop.started
    assert (started["command"], started["user"], started["session"]) == (PF_IA_EXE, SID1, 1)
    assert result["ia_executable"] == PF_IA_EXE and result["ia_executable_source"] == "the Identity Agent's " \
                                                                                      "Uninstall entry"
    assert DECOY not in repr(connection.requests) and result["not_started"] == []


def test_without_install_data_nothing_is_started_and_the_result_says_why() -> None:
    desktop = LegacyDesktop(install_data=False)
    connection = FakeHost(desktop.answer)
    result = run(cm_service, connection, {})
    assert "failed" not in result, result
    assert result["changed"] is False and desktop.started == [] and len(connection.requests) == 1
    (refused,) = result["not_started"]
    assert (refused["session"], refused["user"], refused["program"]) == (1, "NHS\\jsmith", "the Identity Agent")
    assert refused["reason"].startswith("the Identity Agent's executable is not known")
    assert any("the Identity Agent was not started" in note for note in result["notes"])


def test_a_start_the_runner_refuses_is_reported_for_its_session() -> None:
    why = f"{PF_IA_DIR} can be written by BUILTIN\\Users, so a program there is not started as another user"
    desktop = LegacyDesktop(refuse={"ok": False, "error": "forbidden", "message": why})
    connection = FakeHost(desktop.answer)
    result = run(cm_service, connection, {})
    assert result["failed"] is True and result["restored"] is True
    assert result["not_started"] == [{"session": 1, "user": "NHS\\jsmith", "program": PF_IA_EXE,
                                      "reason": f"the runner did not start it (forbidden): {why}"}]
    assert result["msg"].startswith(f"start {PF_IA_EXE} in session 1 failed (forbidden): {why}")
