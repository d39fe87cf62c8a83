"""What cm_service changes (_cm_service.py): CM's executable, the changes per finding, sessions,
nobody logged on, CM_NOT_CONNECTED's one restart and escalation."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._catalogue import (
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._changes import Action, ServiceWant, plan
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._cm_service import (
    listing_ops,
    needs_listing,
    plan_cm_service,
    remaining,
    resolve_cm_executable,
    started_problems,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._protocol import validate_ops

CM_DIR = "C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management\\"
CM_EXE = CM_DIR + "NHSCredentialManagement.exe"
PORT_EXE = CM_DIR + "NHSPortService.exe"
IA_EXE = "C:\\Program Files (x86)\\HSCIC\\Identity Agent\\IdentityAgent.exe"
OPTIONS = {"cm_process_names": [], "ia_process_names": ["IdentityAgent.exe"]}


def entry(version: str = "4.1.1.0", icon: str | None = None, location: str | None = CM_DIR) -> dict[str, t.Any]:
    return {"kind": "cm", "name": "NHS Credential Management", "version": version, "install_location": location,
            "display_icon": icon, "system_component": False, "key": "HKLM\\...\\{CM}", "view": "32", "values": {}}


def process(pid: int, image: str, session: int, user: str = "NHS\\a") -> dict[str, t.Any]:
    return {"pid": pid, "name": image.rsplit("\\", 1)[-1], "image": image, "session": session, "user": user,
            "version": None}


def facts(*, sessions: list[dict[str, t.Any]] | None = None, procs: list[dict[str, t.Any]] | None = None,
          cm: list[dict[str, t.Any]] | None = None, generation: str = "cm3plus", port_state: str = "running",
          smartcard_state: str = "running", ia_files: list[str] | None = None) -> dict[str, t.Any]:
    return {
        "products": {"cm": cm if cm is not None else [entry()], "identity_hub": []},
        "uninstall_keys": [],
        "product": {"generation": generation},
        "services": {
            "port_service": {"name": "NHSPortService", "display_name": "NHS Port Service", "state": port_state,
                             "start_mode": "auto", "image": f'"{PORT_EXE}"', "pid": 2000, "binary": PORT_EXE},
            "smartcard": {"name": "SCardSvr", "display_name": "Smart Card", "state": smartcard_state,
                          "start_mode": "manual", "image": None, "pid": 0},
        },
        "sessions": sessions if sessions is not None else [
            {"id": 1, "user": "NHS\\a", "sid": "S-1", "state": "active"}],
        "processes": procs if procs is not None else [],
        "ia_files": [{"path": path, "exists": True, "version": "2.4.10.0"} for path in ia_files or []],
        "read_errors": {},
    }


def not_running(session: int, user: str = "NHS\\a", check: str = "CM_NOT_RUNNING") -> dict[str, t.Any]:
    return make_finding(check, user_scope(user, "S-1", session), [])


def listing(*names: str) -> list[dict[str, t.Any]]:
    return [{"ok": True, "files": [{"path": CM_DIR + name, "version": None} for name in names]}]


# -- CM's executable ---------------------------------------------------------------------------

def test_the_option_wins_as_a_path_or_a_file_name() -> None:
    f = facts()
    assert resolve_cm_executable(f, {**OPTIONS, "cm_executable": "D:\\CM\\cm.exe"})[0] == "D:\\CM\\cm.exe"
    assert resolve_cm_executable(f, {**OPTIONS, "cm_executable": "cm.exe"})[0] == CM_DIR + "cm.exe"
    path, reason = resolve_cm_executable(facts(cm=[entry(location=None)]), {**OPTIONS, "cm_executable": "cm.exe"})
    assert path is None and "install folder is not recorded" in reason


def test_then_the_display_icon_when_it_is_an_exe() -> None:
    f = facts(cm=[entry(icon=f'"{CM_DIR}Launcher.exe",0')])
    assert resolve_cm_executable(f, OPTIONS) == (CM_DIR + "Launcher.exe", "the Uninstall entry's DisplayIcon")
    msi = facts(cm=[entry(icon="C:\\Windows\\Installer\\{X}\\icon.exe")])
    assert not needs_listing(facts(cm=[entry(icon=CM_DIR + "a.exe")]), OPTIONS) and needs_listing(msi, OPTIONS)


def test_then_a_cm_process_of_another_session() -> None:
    f = facts(sessions=[{"id": 1, "user": "NHS\\a", "sid": "S-1", "state": "active"},
                        {"id": 2, "user": "NHS\\b", "sid": "S-2", "state": "active"}],
              procs=[process(5000, CM_EXE, 1), process(2000, PORT_EXE, 0)])
    assert resolve_cm_executable(f, OPTIONS) == (CM_EXE, "a CM process running in another session")


def test_then_the_only_program_in_the_install_folder_besides_the_port_service() -> None:
    f = facts()
    assert needs_listing(f, OPTIONS)
    assert listing_ops(f) == [{"op": "file_list", "dir": CM_DIR.rstrip("\\"), "pattern": "*.exe"}]
    validate_ops(listing_ops(f))
    assert resolve_cm_executable(f, OPTIONS, listing("NHSCredentialManagement.exe", "NHSPortService.exe"))[0] == CM_EXE


@pytest.mark.parametrize(("names", "reason"), [
    (("NHSCredentialManagement.exe", "Updater.exe", "NHSPortService.exe"), "several programs"),
    (("NHSPortService.exe",), "no program other than the NHS Port Service"),
])
def test_no_single_answer_blocks_every_change(names: tuple[str, ...], reason: str) -> None:
    f = facts(port_state="stopped")
    findings = [make_finding("PORT_SERVICE_STOPPED", machine_scope(), []), not_running(1)]
    result = plan_cm_service(f, findings, OPTIONS, listing(*names))
    assert result.changes == [] and result.blocked is not None
    assert reason in result.blocked and "nothing was changed" in result.blocked


# -- the changes ------------------------------------------------------------------------------------

def test_port_service_findings_make_one_service_change() -> None:
    findings = [make_finding(check, machine_scope(), []) for check in
                ("PORT_SERVICE_STOPPED", "PORT_SERVICE_NOT_AUTOMATIC")]
    result = plan_cm_service(facts(port_state="stopped"), findings, OPTIONS)
    assert result.changes == [ServiceWant("NHSPortService", "NHS Port Service", start_mode="auto",
                                          state="running", restart=False, listen_wait_ms=10000)]
    not_listening = plan_cm_service(facts(), [make_finding("PORT_SERVICE_NOT_LISTENING", machine_scope(), [])],
                                    OPTIONS)
    assert not_listening.changes == [ServiceWant("NHSPortService", "NHS Port Service", state="running", restart=True,
                                                 listen_wait_ms=10000)]


@pytest.mark.parametrize(("wait", "expected"), [
    (5000, {"listen_ports": [43487, 44213], "listen_wait_ms": 5000}),
    (0, {}),
])
def test_a_port_service_restart_waits_for_a_listener_on_a_prs_port(wait: int, expected: dict[str, t.Any]) -> None:
    options = {**OPTIONS, "prs_ports": [43487, 44213], "listen_wait_ms": wait}
    result = plan_cm_service(facts(), [make_finding("PORT_SERVICE_NOT_LISTENING", machine_scope(), [])], options)
    ops = [op for change in plan(result.changes, services=[facts()["services"]["port_service"]]).planned
           for op in change.ops]
    assert ops == [{"op": "service_set", "name": "NHSPortService", "state": "restarted", **expected}]
    validate_ops(ops)


def test_options_switch_fixes_off() -> None:
    findings = [make_finding("PORT_SERVICE_NOT_AUTOMATIC", machine_scope(), []), not_running(1)]
    result = plan_cm_service(facts(), findings, {**OPTIONS, "port_service_automatic": False, "start_cm": False})
    assert result.changes == [] and result.blocked is None


def test_smartcard_service() -> None:
    result = plan_cm_service(facts(generation="cm1", smartcard_state="stopped"),
                             [make_finding("SMARTCARD_SERVICE_STOPPED", machine_scope(), [])], OPTIONS)
    assert result.changes == [ServiceWant("SCardSvr", "Smart Card", state="running")]


def test_cm_starts_only_in_the_sessions_that_lack_it_as_their_user() -> None:
    sessions = [{"id": n, "user": f"NHS\\u{n}", "sid": f"S-{n}", "state": "active"} for n in (2, 3, 4)]
    procs = [process(5000, CM_EXE, 2, "NHS\\u2"), process(5004, CM_EXE, 3, "NHS\\u3")]
    result = plan_cm_service(facts(sessions=sessions, procs=procs), [not_running(4, "NHS\\u4")], OPTIONS)
    (action,) = result.changes
    assert isinstance(action, Action)
    (op,) = action.ops
    assert (op["op"], op["user"], op["session"], op["command"]) == ("task_run", "NHS\\u4", 4, CM_EXE)
    assert op["name"].startswith("nhs_cm_cm_s4_")
    validate_ops(list(action.ops))


def test_on_cm1_the_identity_agent_starts_first() -> None:
    f = facts(generation="cm1", ia_files=[IA_EXE],
              sessions=[{"id": 1, "user": "NHS\\a", "sid": "S-1", "state": "active"},
                        {"id": 2, "user": "NHS\\b", "sid": "S-2", "state": "active"}],
              procs=[process(5000, CM_EXE, 1), process(5004, IA_EXE, 1)])
    result = plan_cm_service(f, [not_running(2, "NHS\\b")], OPTIONS)
    assert [a.ops[0]["command"] for a in result.changes] == [IA_EXE, CM_EXE]  # type: ignore[union-attr]
    ia_only = plan_cm_service(f, [not_running(1, check="IA_NOT_RUNNING")], OPTIONS)
    assert ia_only.changes == []  # the Identity Agent runs in session 1 already
    f["processes"] = [process(5000, CM_EXE, 1)]
    ia_only = plan_cm_service(f, [not_running(1, check="IA_NOT_RUNNING")], OPTIONS)
    assert [a.ops[0]["command"] for a in ia_only.changes] == [IA_EXE]  # type: ignore[union-attr]


def test_nobody_logged_on_changes_nothing_and_says_when_cm_starts() -> None:
    result = plan_cm_service(facts(sessions=[]), [], OPTIONS)
    assert result.changes == [] and "starts at the next logon" in result.notes[0]


def test_services_before_sessions_in_the_plan() -> None:
    f = facts(port_state="stopped", procs=[process(5000, CM_EXE, 2)],
              sessions=[{"id": 1, "user": "NHS\\a", "sid": "S-1", "state": "active"},
                        {"id": 2, "user": "NHS\\b", "sid": "S-2", "state": "active"}])
    result = plan_cm_service(f, [not_running(1), make_finding("PORT_SERVICE_STOPPED", machine_scope(), [])], OPTIONS)
    assert [type(c).__name__ for c in result.changes] == ["ServiceWant", "Action"]
    the_plan = plan(result.changes, services=[f["services"]["port_service"]])
    assert [op["op"] for op in the_plan.write_ops] == ["service_set", "task_run"]


# -- CM_NOT_CONNECTED --------------------------------------------------------------------------------

def _connected_facts() -> dict[str, t.Any]:
    return facts(generation="cm1", procs=[process(5000, CM_EXE, 1), process(5004, IA_EXE, 1)])


def test_not_connected_restarts_the_identity_agent_and_cm_once() -> None:
    finding = make_finding("CM_NOT_CONNECTED", user_scope("NHS\\a", "S-1", 1), [])
    result = plan_cm_service(_connected_facts(), [finding], OPTIONS)
    ops = [a.ops[0] for a in result.changes]  # type: ignore[union-attr]
    assert [(op["op"], op.get("pid"), op.get("command")) for op in ops] == [
        ("process_stop", 5004, None), ("process_stop", 5000, None), ("task_run", None, IA_EXE),
        ("task_run", None, CM_EXE)]
    assert result.reconnect_sessions == [1]
    validate_ops(ops)
    still, escalations = remaining([finding], result)
    assert still == []
    assert escalations[0]["phone"] == "0300 303 5035" and escalations[0]["session"] == 1
    assert "do not restart again" in escalations[0]["why"]


def test_not_connected_without_both_running_restarts_nothing() -> None:
    f = facts(generation="cm1", procs=[process(5000, CM_EXE, 1)])
    finding = make_finding("CM_NOT_CONNECTED", user_scope("NHS\\a", "S-1", 1), [])
    result = plan_cm_service(f, [finding], OPTIONS)
    assert result.changes == [] and "nothing was restarted" in result.notes[0]
    assert remaining([finding], result) == ([], [])


# -- after the write ----------------------------------------------------------------------------------

def test_remaining_lists_only_what_this_run_fixed() -> None:
    result = plan_cm_service(facts(port_state="stopped", procs=[process(5000, CM_EXE, 2)],
                                   sessions=[{"id": 1, "user": "NHS\\a", "sid": "S-1", "state": "active"}]),
                             [make_finding("PORT_SERVICE_STOPPED", machine_scope(), []), not_running(1)], OPTIONS)
    after = [make_finding("PORT_SERVICE_STOPPED", machine_scope(), []), not_running(1), not_running(7),
             make_finding("DOTNET48_MISSING", machine_scope(), [])]
    still, escalations = remaining(after, result)
    assert escalations == []
    assert [(f["id"], f["scope"].get("session")) for f in still] == [("PORT_SERVICE_STOPPED", None),
                                                                     ("CM_NOT_RUNNING", 1)]


def test_started_problems() -> None:
    op = {"op": "task_run", "name": "nhs_cm_x", "command": CM_EXE, "session": 3}
    assert started_problems([(op, {"ok": True, "started": True, "deleted": True})]) == []
    problems = started_problems([(op, {"ok": True, "started": False, "last_result": 267011, "deleted": False})])
    assert "did not start in session 3 (task result 267011)" in problems[0]
    assert "nhs_cm_x could not be deleted" in problems[1]
