"""Issue 17: the backup folder and its files as the runner sees them on Windows - the folder's
owner, reparse point and ACL, each file's owner, reparse point, content and last-write time, and
backup_save / backup_load / backup_list answering from them (the controller picks 'latest' from
backup_list, by the files' times, never by what a file says)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from emulated_host import collection_protocol, host_from, run_runner

from nhs_cm_emulator import ops
from nhs_cm_emulator.scenario import ScenarioError, parse_document
from nhs_cm_emulator.state import HostState

FOLDER = "C:\\ProgramData\\nhs_cm\\backups"
PROTECTED = {"owner": "BUILTIN\\Administrators", "reparse_point": False,
             "acl": ["NT AUTHORITY\\SYSTEM", "BUILTIN\\Administrators"], "inherit": False}
ENTRY = {"kind": "service", "name": "SCardSvr", "state": "stopped", "start_mode": "manual"}
HOST = """
hosts:
  - name: pc-backups
"""
PLANTED = """    backups:
      - {id: old, saved_at: '2026-03-01T10:00:00.000Z', entries: [{kind: service, name: SCardSvr}], missing_keys: []}
      # says it is the newest, but its file was written first
      - {id: liar, saved_at: '2099-01-01T00:00:00.000Z', modified: '2026-02-01T09:00:00Z', entries: [],
         missing_keys: []}
      - {id: broken, content: '{"id": "broken", "entries": [', modified: '2026-03-02T10:00:00.000Z'}
      - {id: notabackup, content: '[1, 2]', modified: '2026-03-02T11:00:00.000Z'}
      - {id: linked, saved_at: '2026-03-03T10:00:00.000Z', entries: [], missing_keys: [], reparse_point: true}
      - {id: planted, saved_at: '2026-03-04T10:00:00.000Z', entries: [], missing_keys: [], owner: 'NHS\\jsmith'}
      - {id: by-system, content: '{"id": "by-system", "saved_at": "x", "entries": [{}], "missing_keys": []}',
         modified: '2026-03-05T10:00:00.123Z', owner: S-1-5-18}
"""


def make_host(extra: str = "", **behaviour: Any) -> HostState:
    return host_from(HOST + extra, "backups.yml", **behaviour)


def one(host: HostState, **op: Any) -> dict[str, Any]:
    reply, code = ops.handle_request(host, json.dumps({"protocol": 1, "ops": [op]}))
    assert code == 0, reply
    return reply["results"][0]


def test_backup_save_creates_the_folder_with_a_protected_acl() -> None:
    host = make_host()
    assert host.state_dict()["backup_folder"] is None  # not there yet
    result = one(host, op="backup_save", id="b1", entries=[ENTRY])
    assert result == {"ok": True, "id": "b1", "path": f"{FOLDER}\\b1.json", "missing_keys": []}
    state = host.state_dict()
    assert state["backup_folder"] == PROTECTED
    (saved,) = state["backups"]
    assert saved["owner"] == "BUILTIN\\Administrators" and saved["reparse_point"] is False
    assert saved["modified"] == saved["saved_at"]


def test_backup_times_come_from_the_hosts_clock() -> None:
    host = make_host()
    host.now = lambda: datetime.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)  # type: ignore[method-assign]
    one(host, op="backup_save", id="b1", entries=[])
    one(host, op="backup_save", id="b2", entries=[])  # the same millisecond: the file times stay in order
    assert [(b["saved_at"], b["modified"]) for b in host.state_dict()["backups"]] == [
        ("2026-05-06T07:08:09.123Z", "2026-05-06T07:08:09.123Z"),
        ("2026-05-06T07:08:09.124Z", "2026-05-06T07:08:09.124Z")]
    assert [b["saved_at"] for b in one(host, op="backup_list")["backups"]] == ["2026-05-06T07:08:09.123Z",
                                                                              "2026-05-06T07:08:09.124Z"]


@pytest.mark.parametrize(("folder", "reason"), [
    ("{reparse_point: true}", "is a reparse point (a link to another folder)"),
    ("{owner: 'NHS\\jsmith'}", "is owned by NHS\\jsmith, not by SYSTEM or BUILTIN\\Administrators"),
])
def test_backup_save_refuses_a_folder_someone_else_could_control(folder: str, reason: str) -> None:
    host = make_host(f"    backup_folder: {folder}\n")
    before = host.state_dict()
    result = one(host, op="backup_save", id="b1", entries=[ENTRY])
    assert result["error"] == "forbidden"
    assert result["message"].startswith(f"the backup folder {FOLDER} {reason}")
    assert result["message"].endswith("; refusing to save backups there")
    assert host.state_dict() == before and host.writes == 0


def test_backup_save_makes_an_existing_folders_acl_protected_again() -> None:
    host = make_host("    backup_folder: {owner: SYSTEM, acl: [SYSTEM, Administrators, BUILTIN\\Users], "
                     "inherit: true}\n")
    assert one(host, op="backup_save", id="b1", entries=[])["ok"] is True
    assert host.state_dict()["backup_folder"] == {**PROTECTED, "owner": "NT AUTHORITY\\SYSTEM"}


def test_backup_list_has_one_element_per_file_by_the_files_time() -> None:
    host = make_host(PLANTED)
    listed = one(host, op="backup_list")["backups"]
    assert [(b["id"], b["saved_at"], b["entries"]) for b in listed] == [
        ("liar", "2026-02-01T09:00:00.000Z", 0),  # the file's time, not the 2099 the file says
        ("old", "2026-03-01T10:00:00.000Z", 1),
        ("broken", "2026-03-02T10:00:00.000Z", None),
        ("notabackup", "2026-03-02T11:00:00.000Z", None),
        ("linked", "2026-03-03T10:00:00.000Z", None),
        ("planted", "2026-03-04T10:00:00.000Z", None),
        ("by-system", "2026-03-05T10:00:00.123Z", 1)]
    errors = {b["id"]: b["error"] for b in listed}
    assert errors["old"] is None and errors["liar"] is None and errors["by-system"] is None
    assert errors["broken"].startswith("is not valid JSON: ")
    assert errors["notabackup"] == "is not a backup: no list of entries"
    assert errors["linked"].startswith("is a reparse point")
    assert errors["planted"].startswith("is owned by NHS\\jsmith, not by SYSTEM or BUILTIN\\Administrators")
    assert all(b["path"] == f"{FOLDER}\\{b['id']}.json" for b in listed)
    assert set(listed[0]) == {"id", "saved_at", "entries", "path", "error"}


def test_the_controller_picks_latest_from_backup_list_with_the_collections_protocol() -> None:
    protocol = collection_protocol()
    host = make_host(PLANTED)
    reply, code = run_runner(host, protocol, [{"op": "backup_list"}])
    (result,) = protocol.parse_reply(json.dumps(reply), "", code, [{"op": "backup_list"}])
    usable = [b for b in result["backups"] if b["error"] is None]
    assert usable[-1]["id"] == "by-system"
    loaded = run_runner(host, protocol, [{"op": "backup_load", "id": usable[-1]["id"]}])[0]["results"][0]
    assert loaded["backup"]["entries"] == [{}]


@pytest.mark.parametrize(("backup_id", "kind", "message"), [
    ("linked", "forbidden", f"the backup file {FOLDER}\\linked.json is a reparse point"),
    ("planted", "forbidden", f"the backup file {FOLDER}\\planted.json is owned by NHS\\jsmith, not by SYSTEM"),
    ("broken", "failed", f"the backup file {FOLDER}\\broken.json is not valid JSON"),
    ("notabackup", "failed", f"the backup file {FOLDER}\\notabackup.json is not a backup"),
    ("latest", "not_found", f"no backup 'latest' on this host ({FOLDER}\\latest.json)"),
])
def test_backup_load_refuses_a_file_it_cannot_trust(backup_id: str, kind: str, message: str) -> None:
    result = one(make_host(PLANTED), op="backup_load", id=backup_id)
    assert result["error"] == kind and result["message"].startswith(message), result


def test_backup_load_answers_what_the_file_holds() -> None:
    host = make_host(PLANTED)
    assert one(host, op="backup_load", id="OLD")["backup"] == {
        "id": "old", "saved_at": "2026-03-01T10:00:00.000Z", "entries": [{"kind": "service", "name": "SCardSvr"}],
        "missing_keys": []}
    assert one(host, op="backup_load", id="liar")["backup"]["saved_at"] == "2099-01-01T00:00:00.000Z"


def test_a_scenario_with_backups_has_the_folder_and_round_trips() -> None:
    host = make_host(PLANTED)
    dumped = host.state_dict()
    assert dumped["backup_folder"] == PROTECTED
    assert HostState(parse_document({"hosts": [dumped]}, "dump.yml")[0][0]).state_dict() == dumped
    with_save = make_host(PLANTED)
    assert one(with_save, op="backup_save", id="new", entries=[])["ok"] is True
    dumped = with_save.state_dict()
    assert HostState(parse_document({"hosts": [dumped]}, "dump.yml")[0][0]).state_dict() == dumped


def test_an_id_differing_only_in_case_is_the_same_file() -> None:
    host = make_host(PLANTED)
    assert one(host, op="backup_save", id="OLD", entries=[])["error"] == "invalid_request"


@pytest.mark.parametrize(("backups", "field", "message"), [
    ("[{id: a, content: x}]", r"backups\[0\]\.modified", "required with content"),
    ("[{id: a, content: x, saved_at: '2026-01-01T00:00:00Z', modified: '2026-01-01T00:00:00Z'}]",
     r"backups\[0\]", "give the file's content or saved_at, not both"),
    ("[{id: a, saved_at: yesterday, entries: []}]", r"backups\[0\]\.modified", "saved_at is not a time"),
    ("[{id: a, saved_at: '2026-01-01T00:00:00Z', modified: '2026-01-01 00:00'}]", r"backups\[0\]\.modified",
     "not a UTC time"),
    ("[{id: a, saved_at: '2026-01-01T00:00:00Z', reparse_point: 'yes'}]", r"backups\[0\]\.reparse_point",
     "true or false"),
    ("[{id: a, saved_at: '2026-01-01T00:00:00Z'}, {id: A, saved_at: '2026-01-01T00:00:00Z'}]", r"backups\[1\]\.id",
     "ignore case"),
    ("[{id: a, content: 3, modified: '2026-01-01T00:00:00Z'}]", r"backups\[0\]\.content", "the file's text"),
])
def test_bad_planted_backups_name_the_field(backups: str, field: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=f"{field}: .*{message}"):
        make_host(f"    backups: {backups}\n")


@pytest.mark.parametrize(("folder", "field"), [
    ("{reparse_point: 1}", r"backup_folder\.reparse_point"),
    ("{acl: Users}", r"backup_folder\.acl"),
    ("{owner: ''}", r"backup_folder\.owner"),
    ("{mode: 700}", r"backup_folder: unknown field 'mode'"),
])
def test_a_bad_backup_folder_names_the_field(folder: str, field: str) -> None:
    with pytest.raises(ScenarioError, match=field):
        make_host(f"    backup_folder: {folder}\n")
