"""Issue 17, task_run: the task's principal is the session user's SID, and the runner refuses to
start a program from a folder that non-administrators can write (a decoy IdentityAgent.exe in a
user's Downloads, or in a folder whose ACL lets users write); folder ACLs come from the scenario
(``user_writable_folders``; every other folder is administrators-only, as Program Files)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulated_host import collection_protocol, host_from, run_runner

from nhs_cm_emulator import ops
from nhs_cm_emulator.scenario import ScenarioError
from nhs_cm_emulator.state import HostState

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
SID2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
IA_FOLDER = "C:\\Program Files (x86)\\HSCIC\\Identity Agent"
IA = IA_FOLDER + "\\IdentityAgent.exe"
DECOYS = {
    "downloads": "C:\\Users\\jsmith\\Downloads\\IdentityAgent.exe",
    "public": "C:\\Users\\Public\\IdentityAgent.exe",
    "programdata": "C:\\ProgramData\\HSCIC\\IdentityAgent.exe",
    "elsewhere": "D:\\Profiles\\akhan\\IdentityAgent.exe",
    "tools": "C:\\Tools\\IA\\IdentityAgent.exe",
}
HOST = rf"""
hosts:
  - name: pc-tasks
    sessions:
      - {{id: 1, user: 'NHS\jsmith', sid: '{SID}'}}
      - {{id: 2, user: 'NHS\akhan', sid: '{SID2}'}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\akhan', sid: '{SID2}', path: 'D:\Profiles\akhan', loaded: true}}
    processes:
      - {{image: 'C:\Windows\explorer.exe', session: 1}}
      - {{image: 'C:\Windows\explorer.exe', session: 2}}
    files:
      - {{path: '{IA}', version: 2.4.10.0}}
""" + "".join(f"      - {{path: '{path}', version: 6.6.6.6}}\n" for path in DECOYS.values())


def make_host(extra: str = "") -> HostState:
    return host_from(HOST + extra, "tasks.yml")


def task(command: str = IA, user: str = SID, session: int = 1) -> dict[str, Any]:
    return {"op": "task_run", "name": "nhs_cm_start_ia_1", "user": user, "session": session, "command": command,
            "wait_ms": 1000}


def run(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    reply, code = ops.handle_request(host, json.dumps({"protocol": 1, "ops": [op]}))
    assert code == 0, reply
    return reply["results"][0]


def test_the_task_runs_as_the_session_user_named_by_sid() -> None:
    host = make_host()
    result = run(host, task())
    assert result["ok"] and result["started"] is True
    started = next(p for p in host.processes if p.pid == result["pid"])
    assert (started.session, started.user, started.image) == (1, "NHS\\jsmith", IA)


def test_the_sid_must_be_the_users_of_that_session() -> None:
    host = make_host()
    assert run(host, task(user=SID2))["started"] is False  # akhan is in session 2
    assert run(host, task(user=SID.lower()))["started"] is True  # SIDs ignore case


@pytest.mark.parametrize("user", ["NHS\\jsmith", "S-1-5-18", "jsmith", "S-1-5-21-1-2-3"])
def test_a_user_that_is_not_a_persons_sid_is_an_invalid_request(user: str) -> None:
    host = make_host()
    result = run(host, task(user=user))
    assert result["error"] == "invalid_request" and result["message"].startswith("task_run: user: must be the SID")
    assert host.writes == 0


@pytest.mark.parametrize(("decoy", "reason"), [
    ("downloads", "lies under the user profile folder (C:\\Users)"),
    ("public", "lies under the user profile folder (C:\\Users)"),
    ("programdata", "lies under %ProgramData% (C:\\ProgramData)"),
    ("elsewhere", "lies under the profile folder of NHS\\akhan (D:\\Profiles\\akhan)"),
])
def test_a_decoy_in_a_folder_users_can_write_is_refused(decoy: str, reason: str) -> None:
    host = make_host()
    result = run(host, task(DECOYS[decoy]))
    assert result["error"] == "forbidden", result
    assert result["message"] == (f"command '{DECOYS[decoy]}' {reason}, which non-administrators can write: only a "
                                 "program in a folder that only administrators can write is started")
    assert host.writes == 0 and not any(p.version == "6.6.6.6" for p in host.processes)


def test_the_profiles_directory_is_read_from_profile_list() -> None:
    host = make_host(r"""    registry:
      'HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList':
        ProfilesDirectory: {type: REG_EXPAND_SZ, data: 'D:\Profiles'}
""")
    assert run(host, task("D:\\Profiles\\Shared\\IdentityAgent.exe"))["message"].startswith(
        "command 'D:\\Profiles\\Shared\\IdentityAgent.exe' lies under the user profile folder (D:\\Profiles)")


@pytest.mark.parametrize(("folders", "command", "group"), [
    (f"['{IA_FOLDER}']", IA, "BUILTIN\\Users"),
    ("[{path: 'C:\\Tools', group: Everyone}]", DECOYS["tools"], "Everyone"),  # a folder above it
    ("[{path: 'C:\\Tools\\IA\\', group: authenticated users}]", DECOYS["tools"], "NT AUTHORITY\\Authenticated Users"),
])
def test_a_program_in_a_folder_whose_acl_lets_users_write_is_refused(folders: str, command: str, group: str) -> None:
    host = make_host(f"    user_writable_folders: {folders}\n")
    result = run(host, task(command))
    assert result["error"] == "forbidden" and f"whose ACL lets {group} write" in result["message"], result
    assert host.writes == 0


def test_program_files_and_other_folders_are_administrators_only_by_default() -> None:
    host = make_host("    user_writable_folders: ['C:\\Program Files (x86)\\HSCIC\\Other']\n")
    assert run(host, task(IA))["started"] is True
    assert run(host, task(DECOYS["tools"]))["started"] is True  # not listed: as Windows' Program Files


def test_the_refusal_over_the_collections_protocol() -> None:
    protocol = collection_protocol()
    host = make_host()
    op_list = [task(DECOYS["downloads"])]
    reply, code = run_runner(host, protocol, op_list)
    (result,) = protocol.parse_reply(json.dumps(reply), "", code, op_list)
    assert result["ok"] is False and result["error"] == "forbidden"


def test_user_writable_folders_round_trip_and_are_checked() -> None:
    host = make_host("    user_writable_folders: ['C:\\Tools\\', {path: 'C:\\', group: Everyone}]\n")
    assert host.state_dict()["user_writable_folders"] == [{"path": "C:\\Tools", "group": "BUILTIN\\Users"},
                                                          {"path": "C:\\", "group": "Everyone"}]
    with pytest.raises(ScenarioError, match=r"user_writable_folders\[0\]\.group: 'Guests' is not one of"):
        make_host("    user_writable_folders: [{path: 'C:\\Tools', group: Guests}]\n")
    with pytest.raises(ScenarioError, match=r"user_writable_folders\[0\]\.path"):
        make_host("    user_writable_folders: ['Tools']\n")
