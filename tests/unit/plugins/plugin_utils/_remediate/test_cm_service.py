"""What cm_service changes (_remediate/cm_service.py): CM's and the Identity Agent's executables (from
install data or options only, never from a running process), the changes per finding, sessions
(the task's principal is the user's SID), nobody logged on, CM_NOT_CONNECTED's one restart and
escalation."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import Action, ServiceWant, plan
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cm_service import (
    extra_reads,
    ia_check_ops,
    listing_ops,
    needs_listing,
    plan_cm_service,
    refused_starts,
    remaining,
    resolve_cm_executable,
    resolve_ia_executable,
    started_problems,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import validate_ops

CM_DIR = "C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management\\"
CM_EXE = CM_DIR + "NHSCredentialManagement.exe"
PORT_EXE = CM_DIR + "NHSPortService.exe"
IA_EXE = "C:\\Program Files (x86)\\HSCIC\\Identity Agent\\IdentityAgent.exe"
OPTIONS = {"cm_process_names": [], "ia_process_names": ["IdentityAgent.exe"]}


def sid(n: int) -> str:
    """The SID of user ``n``, a person's account."""
    return f"S-1-5-21-1004336348-1177238915-682003330-{1000 + n}"


def session(n: int, user: str | None = None, the_sid: str | None = "") -> dict[str, t.Any]:
    return {"id": n, "user": user or f"NHS\\u{n}", "sid": sid(n) if the_sid == "" else the_sid}


def entry(version: str = "4.1.1.0", icon: str | None = None, location: str | None = CM_DIR) -> dict[str, t.Any]:
    return {"kind": "cm", "name": "NHS Credential Management", "version": version, "install_location": location,
            "display_icon": icon, "system_component": False, "key": "HKLM\\...\\{CM}", "view": "32", "values": {}}


def process(pid: int, image: str, session: int, user: str = "NHS\\a") -> dict[str, t.Any]:
    return {"pid": pid, "name": image.rsplit("\\", 1)[-1], "image": image, "session": session, "user": user,
            "version": None}


def facts(*, sessions: list[dict[str, t.Any]] | None = None, procs: list[dict[str, t.Any]] | None = None,
          cm: list[dict[str, t.Any]] | None = None, generation: str = "cm3plus", port_state: str = "running",
          smartcard_state: str = "running", ia_files: list[str] | None = None,
          ia: list[dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    return {
        "products": {"cm": cm if cm is not None else [entry()], "identity_hub": [], "identity_agent": ia or []},
        "uninstall_keys": [],
        "product": {"generation": generation},
        "services": {
            "port_service": {"name": "NHSPortService", "display_name": "NHS Port Service", "state": port_state,
                             "start_mode": "auto", "image": f'"{PORT_EXE}"', "pid": 2000, "binary": PORT_EXE},
            "smartcard": {"name": "SCardSvr", "display_name": "Smart Card", "state": smartcard_state,
                          "start_mode": "manual", "image": None, "pid": 0},
        },
        "sessions": sessions if sessions is not None else [session(1, "NHS\\a")],
        "processes": procs if procs is not None else [],
        "ia_files": [{"path": path, "exists": True, "version": "2.4.10.0"} for path in ia_files or []],
        "read_errors": {},
    }


def not_running(number: int, user: str = "NHS\\a", check: str = "CM_NOT_RUNNING",
                the_sid: str | None = "") -> dict[str, t.Any]:
    return make_finding(check, user_scope(user, sid(number) if the_sid == "" else the_sid, number), [])


CM_ICON = [entry(icon=f'"{CM_EXE}",0')]


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


def test_a_running_cm_process_is_never_a_path_but_may_pick_among_the_install_folders_programs() -> None:
    f = facts(sessions=[session(1, "NHS\\a"), session(2, "NHS\\b")],
              procs=[process(5000, CM_EXE, 1), process(2000, PORT_EXE, 0)])
    assert needs_listing(f, OPTIONS)
    assert resolve_cm_executable(f, OPTIONS) == (None, "CM's install folder was not listed")
    two = listing("NHSCredentialManagement.exe", "Updater.exe", "NHSPortService.exe")
    assert resolve_cm_executable(f, OPTIONS, two) == (
        CM_EXE, "the program of CM's InstallLocation that a CM process runs in another session")
    # A "CM" process found by name that runs from a user's folder picks nothing and is never started.
    decoy = "C:\\Users\\b\\Downloads\\NHSCredentialManagement.exe"
    f["processes"] = [process(5000, decoy, 2, "NHS\\b")]
    options = {**OPTIONS, "cm_process_names": ["NHSCredentialManagement.exe"]}
    path, reason = resolve_cm_executable(f, options, two)
    assert path is None and "several programs" in reason
    assert resolve_cm_executable(f, options, listing("NHSCredentialManagement.exe"))[0] == CM_EXE


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
    sessions = [session(n) for n in (2, 3, 4)]
    procs = [process(5000, CM_EXE, 2, "NHS\\u2"), process(5004, CM_EXE, 3, "NHS\\u3")]
    result = plan_cm_service(facts(sessions=sessions, procs=procs, cm=CM_ICON), [not_running(4, "NHS\\u4")],
                             OPTIONS)
    (action,) = result.changes
    assert isinstance(action, Action)
    (op,) = action.ops
    assert (op["op"], op["user"], op["session"], op["command"]) == ("task_run", sid(4), 4, CM_EXE)
    assert op["name"].startswith("nhs_cm_cm_s4_")
    validate_ops(list(action.ops))


def test_on_cm1_the_identity_agent_starts_first() -> None:
    f = facts(generation="cm1", ia_files=[IA_EXE], cm=CM_ICON,
              sessions=[session(1, "NHS\\a"),
                        session(2, "NHS\\b")],
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
    f = facts(port_state="stopped", procs=[process(5000, CM_EXE, 2)], cm=CM_ICON,
              sessions=[session(1, "NHS\\a"),
                        session(2, "NHS\\b")])
    result = plan_cm_service(f, [not_running(1), make_finding("PORT_SERVICE_STOPPED", machine_scope(), [])], OPTIONS)
    assert [type(c).__name__ for c in result.changes] == ["ServiceWant", "Action"]
    the_plan = plan(result.changes, services=[f["services"]["port_service"]])
    assert [op["op"] for op in the_plan.write_ops] == ["service_set", "task_run"]


# -- CM_NOT_CONNECTED --------------------------------------------------------------------------------

def _connected_facts() -> dict[str, t.Any]:
    return facts(generation="cm1", procs=[process(5000, CM_EXE, 1), process(5004, IA_EXE, 1)], cm=CM_ICON,
                 ia_files=[IA_EXE])


def test_not_connected_restarts_the_identity_agent_and_cm_once() -> None:
    finding = make_finding("CM_NOT_CONNECTED", user_scope("NHS\\a", sid(1), 1), [])
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
    finding = make_finding("CM_NOT_CONNECTED", user_scope("NHS\\a", sid(1), 1), [])
    result = plan_cm_service(f, [finding], OPTIONS)
    assert result.changes == [] and "nothing was restarted" in result.notes[0]
    assert remaining([finding], result) == ([], [])


# -- after the write ----------------------------------------------------------------------------------

def test_remaining_lists_only_what_this_run_fixed() -> None:
    result = plan_cm_service(facts(port_state="stopped", procs=[process(5000, CM_EXE, 2)], cm=CM_ICON,
                                   sessions=[session(1, "NHS\\a")]),
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


# -- what is started comes from install data, never from a running process (issue 17) --------------

PF_IA_DIR = "C:\\Program Files\\NHS\\Identity Agent"
PF_IA_EXE = PF_IA_DIR + "\\IdentityAgent.exe"
DECOY = "C:\\Users\\x\\Downloads\\IdentityAgent.exe"


def ia_entry(location: str | None = PF_IA_DIR + "\\", icon: str | None = None, view: str = "64") -> dict[str, t.Any]:
    return {"kind": "identity_agent", "name": "NHS Identity Agent", "version": "2.4.10.0",
            "install_location": location, "display_icon": icon, "system_component": False,
            "key": "HKLM\\...\\{IA}", "view": view, "values": {}}


def _decoy_facts(ia: list[dict[str, t.Any]] | None) -> dict[str, t.Any]:
    """CM 1.x; user x runs a program named IdentityAgent.exe from their Downloads folder in
    session 2; session 1 (NHS\\a) runs CM without the Identity Agent."""
    return facts(generation="cm1", cm=CM_ICON, ia=ia, ia_files=[],
                 sessions=[session(1, "NHS\\a"), session(2, "NHS\\x")],
                 procs=[process(5000, CM_EXE, 1), process(6000, CM_EXE, 2, "NHS\\x"),
                        process(6001, DECOY, 2, "NHS\\x")])


def _infos(*existing: str, missing: tuple[str, ...] = ()) -> list[dict[str, t.Any]]:
    files = [{"path": path, "exists": True, "version": "2.4.10.0"} for path in existing]
    return [{"ok": True, "files": files + [{"path": path, "exists": False, "version": None} for path in missing]}]


def test_a_decoy_identity_agent_is_never_started_the_installed_one_is() -> None:
    f = _decoy_facts([ia_entry()])
    finding = not_running(1, check="IA_NOT_RUNNING")
    listing_reads, ia_reads = extra_reads(f, [finding], OPTIONS)
    assert listing_reads == [] and ia_reads == [{"op": "file_info", "paths": [PF_IA_EXE]}]
    validate_ops(ia_reads)
    result = plan_cm_service(f, [finding], OPTIONS, ia_infos=_infos(PF_IA_EXE))
    (action,) = result.changes
    (op,) = action.ops  # type: ignore[union-attr]
    assert (op["op"], op["command"], op["user"], op["session"]) == ("task_run", PF_IA_EXE, sid(1), 1)
    assert (result.ia_executable, result.ia_executable_source) == (PF_IA_EXE, "the Identity Agent's Uninstall entry")
    assert DECOY not in repr(result)


def test_without_install_data_nothing_is_started_and_the_reason_says_so() -> None:
    f = _decoy_facts(None)
    finding = not_running(1, check="IA_NOT_RUNNING")
    assert extra_reads(f, [finding], OPTIONS) == ([], [])
    result = plan_cm_service(f, [finding], OPTIONS)
    assert result.changes == [] and result.blocked is None
    (refused,) = result.not_started
    assert (refused["session"], refused["user"], refused["program"]) == (1, "NHS\\a", "the Identity Agent")
    assert "no install folder of its Uninstall entry holds it" in refused["reason"]
    assert "a running IdentityAgent.exe is never taken" in refused["reason"]
    assert "set option ia_executable" in result.notes[0] and DECOY not in repr(result)
    # The Uninstall entry names a folder that does not hold it: still nothing.
    f = _decoy_facts([ia_entry()])
    result = plan_cm_service(f, [finding], OPTIONS, ia_infos=_infos(missing=(PF_IA_EXE,)))
    assert result.changes == [] and f"{PF_IA_EXE} does not exist" in result.not_started[0]["reason"]


def test_the_identity_agents_path_comes_from_the_option_its_uninstall_entry_then_ia_paths() -> None:
    f = _decoy_facts([ia_entry(location=None, icon=f'"{PF_IA_DIR}\\Uninstall.exe",0', view="32")])
    assert resolve_ia_executable(f, {**OPTIONS, "ia_executable": "D:\\IA\\IdentityAgent.exe"}) == (
        "D:\\IA\\IdentityAgent.exe", "option ia_executable")
    assert ia_check_ops(f, {**OPTIONS, "ia_executable": "D:\\IA\\IdentityAgent.exe"}) == []
    assert ia_check_ops(f, OPTIONS) == [{"op": "file_info", "paths": [PF_IA_EXE]}]  # the DisplayIcon's folder
    assert resolve_ia_executable(f, OPTIONS, _infos(PF_IA_EXE))[0] == PF_IA_EXE
    f["ia_files"] = [{"path": IA_EXE, "exists": True, "version": "2.4.10.0"}]
    assert resolve_ia_executable(f, OPTIONS, _infos(missing=(PF_IA_EXE,))) == (IA_EXE, "option ia_paths")
    two = _decoy_facts([ia_entry(), ia_entry(location=IA_DIR_32 + "\\", view="32")])
    path, reason = resolve_ia_executable(two, OPTIONS, _infos(PF_IA_EXE, IA_EXE))
    assert path is None and "several programs" in reason


IA_DIR_32 = "C:\\Program Files (x86)\\HSCIC\\Identity Agent"


@pytest.mark.parametrize("the_sid", [None, "S-1-5-18", "NHS\\a"])
def test_a_session_whose_users_sid_is_not_known_is_not_started(the_sid: str | None) -> None:
    f = facts(cm=CM_ICON, sessions=[session(1, "NHS\\a", the_sid)])
    result = plan_cm_service(f, [not_running(1, the_sid=the_sid)], OPTIONS)
    assert result.changes == [] and result.blocked is None
    assert result.not_started == [{"session": 1, "user": "NHS\\a", "program": "NHS Credential Management",
                                   "reason": "the SID of the session's user is not known, so no task can run as "
                                             "that user"}]


def test_not_connected_restarts_from_install_data_not_from_the_running_images() -> None:
    f = _decoy_facts([ia_entry()])
    f["processes"] = [process(5000, CM_EXE, 1), process(5004, DECOY, 1)]
    finding = make_finding("CM_NOT_CONNECTED", user_scope("NHS\\a", sid(1), 1), [])
    result = plan_cm_service(f, [finding], OPTIONS, ia_infos=_infos(PF_IA_EXE))
    ops = [a.ops[0] for a in result.changes]  # type: ignore[union-attr]
    assert [(op["op"], op.get("pid"), op.get("command")) for op in ops] == [
        ("process_stop", 5004, None), ("process_stop", 5000, None), ("task_run", None, PF_IA_EXE),
        ("task_run", None, CM_EXE)]
    unknown_ia = plan_cm_service(f, [finding], OPTIONS)  # its install folder was not checked: not known
    assert unknown_ia.changes == [] and unknown_ia.reconnect_sessions == []
    assert unknown_ia.not_started[0]["program"] == "the Identity Agent and NHS Credential Management"
    assert "was not restarted" in unknown_ia.notes[0]


def test_process_owners_unknown_is_not_nobody_logged_on() -> None:
    f = facts(sessions=[])
    f["process_owners_error"] = "OpenProcessToken failed"
    result = plan_cm_service(f, [], OPTIONS)
    assert result.changes == []
    assert result.notes == ["No session was found, but the owners of the processes could not be read "
                            "(OpenProcessToken failed), so who is logged on is not known: nothing was started in a "
                            "session."]


def test_a_start_the_runner_refuses_is_reported_for_its_session() -> None:
    op = {"op": "task_run", "name": "nhs_cm_ia_s2_x", "user": sid(2), "session": 2, "command": PF_IA_EXE}
    cm_op = {**op, "name": "nhs_cm_cm_s2_x", "command": CM_EXE}
    forbidden = {"ok": False, "error": "forbidden", "message": "C:\\Program Files\\NHS\\Identity Agent is writable "
                 "by BUILTIN\\Users"}
    refused = refused_starts([(op, forbidden), (cm_op, {"ok": False, "error": "skipped", "message": "skipped"}),
                              ({"op": "service_set", "name": "x"}, {"ok": False, "error": "failed"})],
                             facts(sessions=[session(2, "NHS\\b")]))
    assert refused == [
        {"session": 2, "user": "NHS\\b", "program": PF_IA_EXE,
         "reason": "the runner did not start it (forbidden): C:\\Program Files\\NHS\\Identity Agent is writable by "
                   "BUILTIN\\Users"},
        {"session": 2, "user": "NHS\\b", "program": CM_EXE, "reason": "not run: an earlier change of this run failed"}]


def test_not_connected_without_cms_path_restarts_nothing_but_the_services_are_still_fixed() -> None:
    f = _connected_facts()
    f["products"]["cm"] = [entry()]  # no DisplayIcon: only a listing of the install folder can name CM
    f["services"]["port_service"]["state"] = "stopped"
    findings = [make_finding("CM_NOT_CONNECTED", user_scope("NHS\\a", sid(1), 1), []),
                make_finding("PORT_SERVICE_STOPPED", machine_scope(), [])]
    assert extra_reads(f, findings, OPTIONS)[0] == listing_ops(f)
    result = plan_cm_service(f, findings, OPTIONS, listing("Launcher.exe", "Updater.exe"))
    assert result.blocked is None and [type(c).__name__ for c in result.changes] == ["ServiceWant"]
    assert "CM's executable is not known" in result.not_started[0]["reason"]
    # several programs, but the CM process running there picks its own among them
    result = plan_cm_service(f, findings, OPTIONS, listing("NHSCredentialManagement.exe", "Updater.exe"))
    ops = [a.ops[0] for a in result.changes[1:]]  # type: ignore[union-attr]
    assert [op["op"] for op in ops] == ["process_stop", "process_stop", "task_run", "task_run"]
    assert ops[3]["command"] == CM_EXE
