"""Every runner operation of docs/runner-protocol.md: exact reply fields, semantics, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulated_host import host_from, run_op

from nhs_cm_emulator import ops
from nhs_cm_emulator.scenario import parse_document, parse_text
from nhs_cm_emulator.state import HostState

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
SID2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
CM = "C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management\\"

HOST = rf"""
hosts:
  - name: pc-ops
    os: {{product: "Windows 10 Enterprise", version: "10.0.19045"}}
    sessions:
      - {{id: 1, user: 'NHS\jsmith', sid: '{SID}', state: active}}
      - {{id: 2, user: 'NHS\akhan', sid: '{SID2}', state: disconnected}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\akhan', sid: '{SID2}', path: 'C:\Users\akhan', loaded: true}}
    registry:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
        DefaultCookiesSetting: {{type: REG_DWORD, data: 2}}
        '': {{type: REG_SZ, data: default value}}
      'HKLM\SOFTWARE\Policies\Microsoft\Edge\CookiesAllowedForUrls':
        '1': {{type: REG_SZ, data: '[*.]localhost'}}
      'HKLM\SOFTWARE\Policies\Microsoft\Edge\CookiesAllowedForUrls\Deeper\Deepest\Level4\Level5':
        x: {{type: REG_SZ, data: deep}}
      'HKLM\SOFTWARE\Policies\Microsoft\Edge\Secret':
        hidden: {{type: REG_SZ, data: 'no'}}
      'HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\{{CM}}':
        DisplayName: {{type: REG_SZ, data: NHS Credential Management}}
      'HKLM\SOFTWARE\Types':
        sz: {{type: REG_SZ, data: text}}
        expand: {{type: REG_EXPAND_SZ, data: '%SystemRoot%\x'}}
        multi: {{type: REG_MULTI_SZ, data: [a, b]}}
        dword: {{type: REG_DWORD, data: -1}}
        qword: {{type: REG_QWORD, data: 0x100000000}}
        binary: {{type: REG_BINARY, data: 'DE AD be ef'}}
        none: {{type: REG_NONE, data: ''}}
    denied: ['HKLM\SOFTWARE\Policies\Microsoft\Edge\Secret', 'HKLM\SOFTWARE\Locked']
    services:
      - {{name: NHSPortService, display_name: NHS Port Service, state: running, start_mode: auto,
         image: '{CM}NHSPortService.exe', listens: [43487]}}
      - {{name: SCardSvr, display_name: Smart Card, state: running, start_mode: manual}}
      - {{name: Stopped, display_name: Stopped One, state: stopped, start_mode: disabled,
         image: 'C:\Tools\svc.exe -run', listens: [9999]}}
    processes:
      - {{image: 'C:\Windows\explorer.exe', session: 1, user: 'NHS\jsmith'}}
      - {{image: '{CM}NHSCredentialManagement.exe', session: 1, user: 'NHS\jsmith', listens: [43485]}}
      - {{image: '{CM}NHSCredentialManagement.exe', session: 2, listens: [55000], version: 9.9.9.9}}
      - {{name: Secure System, session: 0}}
    files:
      - {{path: '{CM}NHSCredentialManagement.exe', version: 1.4.2.0}}
      - {{path: 'C:\Program Files (x86)\HSCIC\Identity Agent\IdentityAgent.exe', version: 2.4.10.0}}
"""


@pytest.fixture(scope="module")
def host() -> HostState:
    return host_from(HOST, "ops.yml")


def ok(host: HostState, **op: Any) -> dict[str, Any]:
    result = run_op(host, **op)
    assert result["ok"] is True, result
    assert set(result) == {"ok", *ops.REPLY_FIELDS[op["op"]]}
    return result


def error(host: HostState, kind: str, **op: Any) -> str:
    result = run_op(host, **op)
    assert set(result) == {"ok", "error", "message"}
    assert result["ok"] is False and result["error"] == kind, result
    return result["message"]


# -- reg_read ---------------------------------------------------------------------------------

def test_reg_read_values_and_types(host: HostState) -> None:
    result = ok(host, op="reg_read", key="HKLM\\SOFTWARE\\Types")
    assert result["exists"] is True and result["subkeys"] == {}
    assert result["values"] == {
        "sz": {"type": "REG_SZ", "data": "text"},
        "expand": {"type": "REG_EXPAND_SZ", "data": "%SystemRoot%\\x"},
        "multi": {"type": "REG_MULTI_SZ", "data": ["a", "b"]},
        "dword": {"type": "REG_DWORD", "data": 4294967295},
        "qword": {"type": "REG_QWORD", "data": 4294967296},
        "binary": {"type": "REG_BINARY", "data": "deadbeef"},
        "none": {"type": "REG_NONE", "data": ""},
    }


def test_reg_read_missing_key(host: HostState) -> None:
    assert ok(host, op="reg_read", key="HKLM\\SOFTWARE\\Nope\\More", depth=2) == {
        "ok": True, "exists": False, "values": {}, "subkeys": {}}


def test_reg_read_depth_and_names(host: HostState) -> None:
    edge = "HKLM\\software\\policies\\microsoft\\edge"
    flat = ok(host, op="reg_read", key=edge)
    assert flat["subkeys"] == {"CookiesAllowedForUrls": None, "Secret": None}
    assert flat["values"][""] == {"type": "REG_SZ", "data": "default value"}
    deep = ok(host, op="reg_read", key=edge, depth=2, names=["blockthirdpartycookies", "1"])
    assert deep["values"] == {"BlockThirdPartyCookies": {"type": "REG_DWORD", "data": 1}}
    allowed = deep["subkeys"]["CookiesAllowedForUrls"]
    assert allowed == {"values": {"1": {"type": "REG_SZ", "data": "[*.]localhost"}},
                       "subkeys": {"Deeper": {"values": {}, "subkeys": {"Deepest": None}}}}
    assert deep["subkeys"]["Secret"] == {"values": {}, "subkeys": {}, "error": "access_denied"}
    full = ok(host, op="reg_read", key=edge + "\\CookiesAllowedForUrls", depth=4)
    level4 = full["subkeys"]["Deeper"]["subkeys"]["Deepest"]["subkeys"]["Level4"]
    assert level4 == {"values": {}, "subkeys": {"Level5": {"values": {"x": {"type": "REG_SZ", "data": "deep"}},
                                                           "subkeys": {}}}}
    assert ok(host, op="reg_read", key=edge, names=[])["values"] == {}


def test_reg_read_view_32(host: HostState) -> None:
    key = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
    assert ok(host, op="reg_read", key=key)["subkeys"] == {}
    assert ok(host, op="reg_read", key=key, view="32")["subkeys"] == {"{CM}": None}
    software = ok(host, op="reg_read", key="HKLM\\SOFTWARE", view="32")
    assert "WOW6432Node" not in software["subkeys"]
    assert "WOW6432Node" in ok(host, op="reg_read", key="HKLM\\SOFTWARE")["subkeys"]
    root = ok(host, op="reg_read", key="HKLM", view="32", depth=1)
    assert "WOW6432Node" not in root["subkeys"]["SOFTWARE"]["subkeys"]


def test_reg_read_hku_lists_user_and_system_hives(host: HostState) -> None:
    assert set(ok(host, op="reg_read", key="HKU")["subkeys"]) == {
        ".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20", SID, SID + "_Classes", SID2, SID2 + "_Classes"}


def test_reg_read_denied(host: HostState) -> None:
    secret = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\Secret"
    assert "denied" in error(host, "access_denied", op="reg_read", key=secret)
    error(host, "access_denied", op="reg_read", key="HKLM\\SOFTWARE\\Locked\\Missing\\Below")
    error(host, "access_denied", op="reg_read", key="HKLM\\SECURITY")


@pytest.mark.parametrize(("op", "field"), [
    ({"op": "reg_read"}, "key"),
    ({"op": "reg_read", "key": 5}, "key"),
    ({"op": "reg_read", "key": "HKCU\\Software"}, "HKCU"),
    ({"op": "reg_read", "key": "HKEY_LOCAL_MACHINE\\SOFTWARE"}, "key"),
    ({"op": "reg_read", "key": "HKLM\\SOFTWARE\\"}, "key"),
    ({"op": "reg_read", "key": "HKLM", "view": 32}, "view"),
    ({"op": "reg_read", "key": "HKLM", "view": "16"}, "view"),
    ({"op": "reg_read", "key": "HKLM", "depth": 5}, "depth"),
    ({"op": "reg_read", "key": "HKLM", "depth": -1}, "depth"),
    ({"op": "reg_read", "key": "HKLM", "depth": True}, "depth"),
    ({"op": "reg_read", "key": "HKLM", "depth": 1.0}, "depth"),
    ({"op": "reg_read", "key": "HKLM", "names": "Release"}, "names"),
    ({"op": "reg_read", "key": "HKLM", "names": [1]}, "names"),
    ({"op": "reg_read", "key": "HKLM", "recurse": True}, "recurse"),
    ({"op": "process_list", "all": True}, "all"),
    ({"op": "service_query", "names": "NHSPortService"}, "names"),
    ({"op": "service_query", "display_names": [None]}, "display_names"),
    ({"op": "tcp_listeners", "ports": [0]}, "ports"),
    ({"op": "tcp_listeners", "ports": ["43487"]}, "ports"),
    ({"op": "http_get"}, "url"),
    ({"op": "http_get", "url": "http://example.com/"}, "url"),
    ({"op": "http_get", "url": "http://10.0.0.1:43487/"}, "url"),
    ({"op": "http_get", "url": "ftp://localhost/"}, "url"),
    ({"op": "http_get", "url": "http://localhost:99999/"}, "url"),
    ({"op": "http_get", "url": "http://user:pw@localhost/"}, "url"),
    ({"op": "http_get", "url": "http://localhost/", "timeout_ms": 50}, "timeout_ms"),
    ({"op": "http_get", "url": "http://localhost/", "timeout_ms": 30001}, "timeout_ms"),
    ({"op": "file_info"}, "paths"),
    ({"op": "file_info", "paths": "C:\\x"}, "paths"),
    ({"op": "file_info", "paths": ["relative\\x.exe"]}, "paths[0]"),
    ({"op": "file_info", "paths": ["C:\\ok", 3]}, "paths[1]"),
    ({"op": "session_list", "x": 1}, "x"),
    ({"op": "os_info", "verbose": 1}, "verbose"),
    ({"op": "reg_set", "key": "HKLM\\X"}, "op"),
    ({"op": None}, "op"),
    ({}, "op"),
])
def test_invalid_requests_name_the_field(host: HostState, op: dict[str, Any], field: str) -> None:
    message = error(host, "invalid_request", **op)
    assert field in message


def test_an_operation_that_is_not_an_object(host: HostState) -> None:
    reply, code = ops.handle_request(host, b'{"protocol": 1, "ops": ["os_info", {"op": "os_info"}]}')
    assert code == 0
    assert reply["results"][0]["error"] == "invalid_request"
    assert reply["results"][1]["ok"] is True


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[1, 2]", b'{"protocol": 2, "ops": []}', b'{"ops": []}', b'{"protocol": true, "ops": []}',
    b'{"protocol": 1}', b'{"protocol": 1, "ops": {}}', b'{"protocol": 1, "ops": [], "extra": 1}',
    b'{"protocol": 1, "ops": [NaN]}', b"\xff\xfe{}",
])
def test_unreadable_request(host: HostState, data: bytes) -> None:
    reply, code = ops.handle_request(host, data)
    assert code == 1
    assert set(reply) == {"runner", "protocol", "ok", "error", "message", "results"}
    assert reply["runner"] == "nhs_cm" and reply["protocol"] == 1 and reply["ok"] is False
    assert reply["error"] == "invalid_request" and reply["results"] == [] and reply["message"]


def test_request_with_bom_and_no_ops(host: HostState) -> None:
    reply, code = ops.handle_request(host, '\ufeff{"protocol": 1, "ops": []}'.encode())
    assert code == 0 and reply == {"runner": "nhs_cm", "protocol": 1, "ok": True, "results": []}


def test_failed_op_does_not_stop_others(host: HostState) -> None:
    reply, _ = ops.handle_request(host, json.dumps({"protocol": 1, "ops": [
        {"op": "reg_read", "key": "HKCU\\x"}, {"op": "os_info"}]}).encode())
    assert [r["ok"] for r in reply["results"]] == [False, True]


def test_encode_reply_is_one_ascii_line() -> None:
    line = ops.encode_reply({"runner": "nhs_cm", "results": [{"text": "caf\u00e9 \u2603"}]})
    assert line.endswith(b"\r\n") and line.count(b"\n") == 1
    assert line.decode("ascii") == '{"runner":"nhs_cm","results":[{"text":"caf\\u00e9 \\u2603"}]}\r\n'


# -- processes, services, listeners, http --------------------------------------------------------

def test_process_list(host: HostState) -> None:
    processes = ok(host, op="process_list")["processes"]
    assert all(set(p) == {"pid", "name", "image", "session", "user", "version"} for p in processes)
    pids = [p["pid"] for p in processes]
    assert pids == sorted(pids) and len(set(pids)) == len(pids) and all(pid % 4 == 0 for pid in pids)
    by_pid = {p["pid"]: p for p in processes}
    assert by_pid[4] == {"pid": 4, "name": "System", "image": None, "session": 0, "user": None, "version": None}
    assert by_pid[5000]["name"] == "explorer.exe" and by_pid[5000]["user"] == "NHS\\jsmith"
    assert by_pid[5004]["version"] == "1.4.2.0"  # from files
    assert by_pid[5008]["version"] == "9.9.9.9"  # its own
    assert by_pid[5008]["user"] == "NHS\\akhan"  # the session's user by default
    assert by_pid[5012] == {"pid": 5012, "name": "Secure System", "image": None, "session": 0, "user": None,
                            "version": None}
    assert by_pid[2000]["image"] == CM + "NHSPortService.exe" and by_pid[2000]["session"] == 0
    assert {p["session"] for p in processes if p["name"] == "winlogon.exe"} == {1, 2}
    assert ok(host, op="process_list") == ok(host, op="process_list")  # deterministic


def test_service_query(host: HostState) -> None:
    services = ok(host, op="service_query")["services"]
    assert [s["name"] for s in services] == ["NHSPortService", "SCardSvr", "Stopped"]
    assert all(set(s) == {"name", "display_name", "state", "start_mode", "image", "pid"} for s in services)
    port, scard, stopped = services
    assert port == {"name": "NHSPortService", "display_name": "NHS Port Service", "state": "running",
                    "start_mode": "auto", "image": f'"{CM}NHSPortService.exe"', "pid": 2000}
    assert scard["pid"] == 2004 and scard["image"].startswith("C:\\Windows\\system32\\svchost.exe -k")
    assert stopped["pid"] == 0 and stopped["image"] == "C:\\Tools\\svc.exe -run"
    by_display = ok(host, op="service_query", display_names=["nhs port service"])["services"]
    assert [s["name"] for s in by_display] == ["NHSPortService"]
    either = ok(host, op="service_query", names=["scardsvr"], display_names=["Stopped One"])["services"]
    assert [s["name"] for s in either] == ["SCardSvr", "Stopped"]
    assert ok(host, op="service_query", names=[])["services"] == []


def test_tcp_listeners(host: HostState) -> None:
    listeners = ok(host, op="tcp_listeners")["listeners"]
    assert {"address": "127.0.0.1", "port": 43487, "pid": 2000} in listeners
    assert {"address": "127.0.0.1", "port": 43485, "pid": 5004} in listeners
    assert {"address": "127.0.0.1", "port": 55000, "pid": 5008} in listeners
    assert all(entry["port"] != 9999 for entry in listeners)  # a stopped service listens nowhere
    assert all(set(entry) == {"address", "port", "pid"} for entry in listeners)
    assert ok(host, op="tcp_listeners", ports=[43487, 44213])["listeners"] == [
        {"address": "127.0.0.1", "port": 43487, "pid": 2000}]


@pytest.mark.parametrize(("url", "status", "body_part", "err"), [
    ("http://localhost:43487/PRS/GetPortNumber", 500, "PR30007", None),
    ("http://127.0.0.1:43487/prs/getportnumber?x=1", 500, "Unable to find CM process for user", None),
    ("https://[::1]:43487/PRS/GetPortNumber", 500, "PR30007", None),
    ("http://localhost:43487/PRS/ConnectPRService", 404, "", None),
    ("http://LOCALHOST:43485/", 200, "", None),
    ("http://localhost:55000/signingHub", 200, "", None),
    ("http://localhost:44213/PRS/GetPortNumber", None, None, "connection refused"),
    ("http://localhost:9999/", None, None, "connection refused"),
    ("http://localhost/", None, None, "connection refused"),
])
def test_http_get(host: HostState, url: str, status: int | None, body_part: str | None, err: str | None) -> None:
    result = ok(host, op="http_get", url=url, timeout_ms=500)
    assert result["status"] == status and result["error"] == err
    if body_part is None:
        assert result["body"] is None
    else:
        assert body_part in result["body"] and len(result["body"]) <= 4096


# -- files, sessions, os ----------------------------------------------------------------------

def test_file_info(host: HostState) -> None:
    paths = [CM + "NHSCredentialManagement.exe", "c:/program files (x86)/hscic/identity agent/identityagent.exe",
             "C:\\Windows\\explorer.exe", CM + "NHSPortService.exe", CM, "C:\\Users\\jsmith\\NTUSER.DAT",
             "C:\\Nope\\x.exe", "\\\\server\\share\\x"]
    files = ok(host, op="file_info", paths=paths)["files"]
    assert [f["path"] for f in files] == paths
    assert [f["exists"] for f in files] == [True, True, True, True, True, True, False, False]
    assert [f["version"] for f in files] == ["1.4.2.0", "2.4.10.0", None, None, None, None, None, None]
    assert ok(host, op="file_info", paths=[])["files"] == []


def test_session_list(host: HostState) -> None:
    # found from the processes' owners (explorer.exe, else a person's process): no connection state
    assert ok(host, op="session_list")["sessions"] == [
        {"id": 1, "user": "NHS\\jsmith", "sid": SID},
        {"id": 2, "user": "NHS\\akhan", "sid": SID2}]


def test_sessions_come_from_the_owners_of_the_processes() -> None:
    text = rf"""
hosts:
  - name: pc-sessions
    sessions:
      - {{id: 3, user: 'NHS\jsmith', sid: '{SID}'}}
      - {{id: 1, user: 'NHS\akhan', sid: '{SID2}'}}
      - {{id: 2, user: 'NHS\bsmith', sid: 'S-1-5-21-1004336348-1177238915-682003330-1003'}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\akhan', sid: '{SID2}', path: 'C:\Users\akhan', loaded: true}}
      - {{user: 'NHS\bsmith', sid: 'S-1-5-21-1004336348-1177238915-682003330-1003', path: 'C:\Users\bsmith'}}
    processes:
      - {{image: 'C:\Tools\helper.exe', session: 3, user: 'NHS\akhan'}}
      - {{image: 'C:\Windows\explorer.exe', session: 3}}
      - {{image: 'C:\Tools\agent.exe', session: 1, user: 'NT AUTHORITY\SYSTEM'}}
"""
    host = host_from(text, "sessions.yml")
    sessions = ok(host, op="session_list")["sessions"]
    # sorted by id; session 3: its explorer.exe's owner, though akhan's process has a lower pid;
    # sessions 1 and 2: no explorer.exe, so the person owning a process (the user's sihost.exe)
    assert sessions == [{"id": 1, "user": "NHS\\akhan", "sid": SID2},
                        {"id": 2, "user": "NHS\\bsmith", "sid": "S-1-5-21-1004336348-1177238915-682003330-1003"},
                        {"id": 3, "user": "NHS\\jsmith", "sid": SID}]
    sihost = [(p["session"], p["user"]) for p in ok(host, op="process_list")["processes"] if p["name"] == "sihost.exe"]
    assert sihost == [(1, "NHS\\akhan"), (2, "NHS\\bsmith")]  # Windows runs it in every signed-in session
    assert all(p["name"] != "sihost.exe" for p in host.state_dict()["processes"])  # the emulator's own


def test_process_owners_are_null_with_a_reason_when_they_cannot_be_read() -> None:
    assert ok(host_from(HOST, "ops.yml"), op="process_list")["user_error"] is None
    host = host_from(HOST, "ops.yml", process_owners_unreadable=True)
    result = ok(host, op="process_list")
    assert {p["user"] for p in result["processes"]} == {None}
    assert result["user_error"].startswith("Get-Process -IncludeUserName failed: The 'IncludeUserName' parameter "
                                           "requires elevated user rights.")
    # without the owners the sessions' users are unknown: never an empty list that would mean nobody
    failure = run_op(host, op="session_list")
    assert failure["ok"] is False and failure["error"] == "access_denied"
    assert "Get-Process -IncludeUserName failed" in failure["message"]


def test_a_session_state_in_an_old_scenario_is_accepted_but_never_answered() -> None:
    text = HOST.replace("state: disconnected", "state: idle")
    hosts, _ = parse_document(parse_text(text, "x.yml"), "x.yml")
    state = HostState(hosts[0])
    assert all("state" not in s for s in ok(state, op="session_list")["sessions"])
    assert state.state_dict()["sessions"][1]["state"] == "idle"  # kept in the scenario form


def test_os_info(host: HostState) -> None:
    assert ok(host, op="os_info") == {"ok": True, "product": "Windows 10 Enterprise", "version": "10.0.19045",
                                      "computer_name": "pc-ops", "emulated": True}


def test_tables_cover_every_operation() -> None:
    assert set(ops.HANDLERS) == set(ops.REQUEST_FIELDS) == set(ops.REPLY_FIELDS) == set(ops.OPERATIONS)
    assert ops.OPERATIONS[:10] == ("reg_read", "process_list", "service_query", "tcp_listeners", "http_get",
                                   "file_info", "session_list", "os_info", "user_hives_read", "gpo_registry_settings")
