"""The write operations (write_ops.py): semantics, behaviour flags, the write counter, the
write_errors request field, and the allow-list - identical to the runner's and refusing every
hostile request with ``forbidden``."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from emulated_host import host_from

from nhs_cm_emulator import ops, write_ops
from nhs_cm_emulator.scenario import ScenarioError, parse_document
from nhs_cm_emulator.state import HostState

ROOT = Path(__file__).resolve().parents[2]
RUNNER_DIR = ROOT / "plugins" / "plugin_utils" / "_runner"
SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
SID2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
CM = "C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management\\"
CHROME = "HKLM\\SOFTWARE\\Policies\\Google\\Chrome"
EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
DENIED = EDGE + "\\LocalNetworkAccessAllowedForUrls"  # the scenario denies it
ZONES = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"

HOST = rf"""
hosts:
  - name: pc-write
    sessions:
      - {{id: 1, user: 'NHS\jsmith', sid: '{SID}', state: active}}
      - {{id: 2, user: 'NHS\akhan', sid: '{SID2}', state: disconnected}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\akhan', sid: '{SID2}', path: 'C:\Users\akhan', loaded: true}}
    registry:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_SZ, data: '1'}}
      'HKLM\SOFTWARE\Policies\Microsoft\Edge\CookiesAllowedForUrls':
        '1': {{type: REG_SZ, data: 'https://[*.]nhs.uk'}}
      'HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\{{CM}}':
        DisplayName: {{type: REG_SZ, data: NHS Credential Management}}
        InstallLocation: {{type: REG_SZ, data: '{CM}'}}
    denied: ['HKLM\SOFTWARE\Policies\Microsoft\Edge\LocalNetworkAccessAllowedForUrls']
    services:
      - {{name: NHSPortService, display_name: NHS Port Service, state: stopped, start_mode: manual,
         image: '{CM}NHSPortService.exe', listens: []}}
      - {{name: SCardSvr, display_name: Smart Card, state: stopped, start_mode: manual}}
      - {{name: WinRM, display_name: Windows Remote Management (WS-Management), state: running, start_mode: auto}}
    processes:
      - {{image: 'C:\Windows\explorer.exe', session: 1, user: 'NHS\jsmith'}}
      - {{image: '{CM}NHSCredentialManagement.exe', session: 1, user: 'NHS\jsmith', listens: [43485]}}
    files:
      - {{path: '{CM}NHSCredentialManagement.exe', version: 1.4.2.0}}
      - {{path: '{CM}NHSPortService.exe', version: 1.4.2.0}}
      - {{path: '{CM}Uninstall.msi'}}
"""


def make_host(**behaviour: Any) -> HostState:
    return host_from(HOST, "write.yml", **behaviour)


@pytest.fixture
def host() -> HostState:
    return make_host()


def run(host: HostState, *op_list: dict[str, Any], write_errors: str | None = None) -> list[dict[str, Any]]:
    request: dict[str, Any] = {"protocol": 1, "ops": list(op_list)}
    if write_errors:
        request["write_errors"] = write_errors
    reply, code = ops.handle_request(host, json.dumps(request))
    assert code == 0, reply
    return reply["results"]


def one(host: HostState, **op: Any) -> dict[str, Any]:
    (result,) = run(host, op)
    return result


def reg(host: HostState, key: str) -> dict[str, Any]:
    return one(host, op="reg_read", key=key)


# -- tables -----------------------------------------------------------------------------------

def test_write_ops_are_registered() -> None:
    assert set(write_ops.HANDLERS) <= set(ops.HANDLERS)
    assert ops.OPERATIONS[-len(write_ops.HANDLERS):] == tuple(write_ops.HANDLERS)
    assert set(write_ops.WRITE_OPERATIONS) < set(write_ops.HANDLERS)
    assert {"forbidden", "skipped"} <= set(ops.ERROR_KINDS)


# -- registry ---------------------------------------------------------------------------------

def test_reg_write_is_type_aware_and_reports_what_it_replaced(host: HostState) -> None:
    result = one(host, op="reg_write", key=EDGE, name="BlockThirdPartyCookies", type="REG_DWORD", data=0)
    assert result == {"ok": True, "previous": {"type": "REG_SZ", "data": "1"}, "created_key": False}
    assert reg(host, EDGE)["values"]["BlockThirdPartyCookies"] == {"type": "REG_DWORD", "data": 0}
    assert host.writes == 1


def test_reg_write_creates_missing_keys_that_then_show_in_the_state(host: HostState) -> None:
    key = CHROME + "\\CookiesAllowedForUrls"
    result = one(host, op="reg_write", key=key, name="1", type="REG_SZ", data="[*.]localhost")
    assert result == {"ok": True, "previous": None, "created_key": True}
    registry = host.state_dict()["registry"]
    assert registry[key] == {"1": {"type": "REG_SZ", "data": "[*.]localhost"}}
    assert registry["HKLM\\SOFTWARE\\Policies\\Google"] == {}  # a created parent is visible: rollback must go


@pytest.mark.parametrize(("vtype", "data"), [("REG_DWORD", "1"), ("REG_DWORD", 2**32), ("REG_SZ", 1),
                                             ("REG_MULTI_SZ", "a"), ("REG_BINARY", "ZZ"), ("REG_NONE", "")])
def test_reg_write_refuses_data_of_the_wrong_type(host: HostState, vtype: str, data: Any) -> None:
    result = one(host, op="reg_write", key=EDGE, name="BlockThirdPartyCookies", type=vtype, data=data)
    assert result["error"] == "invalid_request"
    assert host.writes == 0


def test_reg_write_under_a_denied_key_is_access_denied(host: HostState) -> None:
    result = one(host, op="reg_write", key=DENIED, name="1", type="REG_SZ", data="x")
    assert result["error"] == "access_denied"


def test_reg_delete_deletes_a_value_never_a_key(host: HostState) -> None:
    key = EDGE + "\\CookiesAllowedForUrls"
    assert one(host, op="reg_delete", key=key, name="1") == {"ok": True, "existed": True}
    assert one(host, op="reg_delete", key=key, name="1") == {"ok": True, "existed": False}
    assert reg(host, key) == {"ok": True, "exists": True, "values": {}, "subkeys": {}}


def test_reg_delete_key_deletes_only_empty_keys(host: HostState) -> None:
    assert one(host, op="reg_delete_key", key=EDGE) == {"ok": True, "deleted": False, "reason": "not empty"}
    assert one(host, op="reg_delete_key", key=CHROME) == {"ok": True, "deleted": False, "reason": "does not exist"}
    one(host, op="reg_write", key=CHROME, name="BlockThirdPartyCookies", type="REG_DWORD", data=1)
    one(host, op="reg_delete", key=CHROME, name="BlockThirdPartyCookies")
    assert one(host, op="reg_delete_key", key=CHROME) == {"ok": True, "deleted": True, "reason": None}
    assert one(host, op="reg_delete_key", key="HKLM\\SOFTWARE\\Policies\\Google")["deleted"] is True
    assert "HKLM\\SOFTWARE\\Policies\\Google" not in host.state_dict()["registry"]


# -- backups ------------------------------------------------------------------------------------

def test_backup_save_records_missing_keys_and_shows_in_the_state(host: HostState) -> None:
    entries = [{"kind": "reg", "key": CHROME + "\\CookiesAllowedForUrls", "view": "64", "name": "1",
                "existed": False, "type": None, "data": None},
               {"kind": "service", "name": "NHSPortService", "state": "stopped", "start_mode": "manual"}]
    result = one(host, op="backup_save", id="b1", entries=entries)
    assert result["ok"] and result["path"] == "C:\\ProgramData\\nhs_cm\\backups\\b1.json"
    assert [k["key"] for k in result["missing_keys"]] == [
        "HKLM\\SOFTWARE\\Policies\\Google", CHROME, CHROME + "\\CookiesAllowedForUrls"]
    saved = host.state_dict()["backups"]
    assert [b["id"] for b in saved] == ["b1"] and saved[0]["entries"] == entries
    assert one(host, op="backup_save", id="b1", entries=[])["error"] == "invalid_request"  # ids are unique


def test_backup_load_by_id_and_list(host: HostState) -> None:
    run(host, {"op": "backup_save", "id": "first", "entries": []},
        {"op": "backup_save", "id": "second", "entries": [{"kind": "service", "name": "SCardSvr"}]})
    assert one(host, op="backup_load", id="second")["backup"]["id"] == "second"
    assert one(host, op="backup_load", id="first")["backup"]["entries"] == []
    assert one(host, op="backup_load", id="third")["error"] == "not_found"
    assert one(host, op="backup_load", id="latest")["error"] == "not_found"  # an id like any other now
    listed = one(host, op="backup_list")["backups"]
    assert [(b["id"], b["entries"], b["error"]) for b in listed] == [("first", 0, None), ("second", 1, None)]
    assert listed[0]["saved_at"] < listed[1]["saved_at"]


def test_a_dumped_state_with_backups_loads_again(host: HostState) -> None:
    one(host, op="backup_save", id="b1", entries=[{"kind": "service", "name": "SCardSvr", "state": "stopped"}])
    dumped = host.state_dict()
    assert HostState(parse_document({"hosts": [dumped]}, "dump.yml")[0][0]).state_dict() == dumped


# -- services -----------------------------------------------------------------------------------

def test_service_set_starts_the_port_service_which_then_listens(host: HostState) -> None:
    result = one(host, op="service_set", name="NHSPortService", start_mode="auto", state="started")
    assert result == {"ok": True, "name": "NHSPortService", "display_name": "NHS Port Service", "state": "running",
                      "start_mode": "auto", "previous_state": "stopped", "previous_start_mode": "manual"}
    assert 43487 in host.listeners()
    assert one(host, op="service_set", name="NHSPortService", state="stopped")["state"] == "stopped"
    assert 43487 not in host.listeners()
    assert not [p for p in host.processes if p.name == "NHSPortService.exe"]


def test_port_service_start_fails_when_the_scenario_says_so() -> None:
    host = make_host(port_service_start_fails=True)
    result = one(host, op="service_set", name="NHSPortService", start_mode="auto", state="started")
    assert result["error"] == "failed" and "is Stopped, not Running" in result["message"]
    assert host.services[0].state == "stopped"


def test_restart_uses_the_behaviour_ports() -> None:
    host = make_host(port_service_ports=[44213])
    one(host, op="service_set", name="NHSPortService", state="started")
    one(host, op="service_set", name="NHSPortService", state="restarted")
    assert host.services[0].listens == [44213] and 44213 in host.listeners()


def test_service_set_with_a_listen_wait_listens_at_once(host: HostState) -> None:
    result = one(host, op="service_set", name="NHSPortService", state="started",
                 listen_ports=[43487, 44213], listen_wait_ms=10000)
    assert result["state"] == "running" and 43487 in host.listeners()


@pytest.mark.parametrize(("field", "value"), [("listen_ports", [0]), ("listen_ports", "43487"),
                                              ("listen_ports", [True]), ("listen_wait_ms", -1),
                                              ("listen_wait_ms", 120001)])
def test_service_set_refuses_a_bad_listen_field(host: HostState, field: str, value: Any) -> None:
    result = one(host, op="service_set", name="NHSPortService", state="started", **{field: value})
    assert result["error"] == "invalid_request" and field in result["message"]
    assert host.services[0].state == "stopped"


def test_service_set_unknown_service_is_not_found(host: HostState) -> None:
    assert one(host, op="service_set", name="NoSuchService", state="started")["error"] == "not_found"


def test_a_service_that_does_not_settle_in_time_is_a_timeout_not_a_failure() -> None:
    host = make_host(hung_services=["nhsportservice"])
    started = time.monotonic()
    result = one(host, op="service_set", name="NHSPortService", state="started", timeout_ms=1000)
    assert time.monotonic() - started >= 1.0  # the runner waits timeout_ms for the state
    assert result == {"ok": False, "error": "timeout", "message": "service NHSPortService did not become Running "
                                                                 "within 1000 ms (it is StartPending)"}
    query = one(host, op="service_query", names=["NHSPortService"])["services"][0]
    assert query["state"] == "start_pending" and query["pid"] > 0 and 43487 not in host.listeners()
    result = one(host, op="service_set", name="NHSPortService", state="stopped", timeout_ms=1000)
    assert result["error"] == "timeout" and "did not become Stopped" in result["message"]
    assert host.services[0].state == "stop_pending"
    assert len([p for p in host.processes if p.name == "NHSPortService.exe"]) == 1
    assert host.state_dict()["behaviour"]["hung_services"] == ["NHSPortService"]


def test_hung_services_must_be_services_of_the_host() -> None:
    with pytest.raises(ScenarioError, match=r"behaviour\.hung_services\[0\]: 'Nope' is not the name of a service"):
        make_host(hung_services=["Nope"])


# -- tasks and processes ------------------------------------------------------------------------

def task(**extra: Any) -> dict[str, Any]:
    op = {"op": "task_run", "name": "nhs_cm_start_cm_s2_1234", "user": SID2, "session": 2,
          "command": CM + "NHSCredentialManagement.exe", "wait_ms": 1000}
    op.update(extra)
    return op


def test_task_run_starts_cm_in_the_users_session_on_a_free_port(host: HostState) -> None:
    (result,) = run(host, task())
    assert result["ok"] and result["started"] and result["deleted"]
    started = next(p for p in host.processes if p.pid == result["pid"])
    assert (started.session, started.user, started.version) == (2, "NHS\\akhan", "1.4.2.0")
    assert started.listens == [43486]  # 43485 is taken by session 1's CM
    assert host.writes == 1


def test_task_run_does_nothing_when_tasks_do_not_start_programs() -> None:
    host = make_host(starts_on_logon_task=False)
    (result,) = run(host, task())
    assert (result["started"], result["pid"], result["last_result"]) == (False, None, 0x41303)


def test_task_run_for_a_user_not_in_that_session_starts_nothing(host: HostState) -> None:
    (result,) = run(host, task(user=SID))
    assert result["started"] is False


def test_task_run_of_a_program_the_host_lacks_is_not_found(host: HostState) -> None:
    (result,) = run(host, task(command=CM + "Missing.exe"))
    assert result["error"] == "not_found"


def test_process_stop_only_the_named_process(host: HostState) -> None:
    cm = next(p for p in host.processes if p.name == "NHSCredentialManagement.exe")
    assert one(host, op="process_stop", pid=cm.pid, image=CM + "Other.exe") == {"ok": True, "found": False,
                                                                               "stopped": False}
    assert one(host, op="process_stop", pid=cm.pid, image=cm.image) == {"ok": True, "found": True, "stopped": True}
    assert cm not in host.processes


def test_file_list(host: HostState) -> None:
    files = one(host, op="file_list", dir=CM.rstrip("\\"))["files"]
    assert [f["path"].rsplit("\\", 1)[1] for f in files] == ["NHSCredentialManagement.exe", "NHSPortService.exe"]
    assert files[0]["version"] == "1.4.2.0"
    assert one(host, op="file_list", dir="C:\\Nowhere")["files"] == []
    assert [f["path"] for f in one(host, op="file_list", dir=CM, pattern="*.msi")["files"]] == [CM + "Uninstall.msi"]


# -- write_errors ---------------------------------------------------------------------------------

def test_write_errors_stop_skips_later_writes_but_not_reads(host: HostState) -> None:
    results = run(host,
                  {"op": "reg_write", "key": EDGE, "name": "BlockThirdPartyCookies", "type": "REG_DWORD", "data": 1},
                  {"op": "reg_write", "key": DENIED, "name": "1", "type": "REG_SZ", "data": "b"},
                  {"op": "reg_write", "key": EDGE, "name": "AuthServerAllowlist", "type": "REG_SZ", "data": "c"},
                  {"op": "reg_read", "key": EDGE},
                  write_errors="stop")
    assert [r["ok"] for r in results] == [True, False, False, True]
    assert results[1]["error"] == "access_denied"
    assert results[2]["error"] == "skipped" and "ops[1] (reg_write)" in results[2]["message"]
    assert set(results[3]["values"]) == {"BlockThirdPartyCookies"}
    assert host.writes == 1


def test_without_write_errors_every_op_runs(host: HostState) -> None:
    results = run(host,
                  {"op": "reg_write", "key": DENIED, "name": "1", "type": "REG_SZ", "data": "b"},
                  {"op": "reg_write", "key": EDGE, "name": "AuthServerAllowlist", "type": "REG_SZ", "data": "c"})
    assert [r["ok"] for r in results] == [False, True]


def test_write_errors_must_be_known(host: HostState) -> None:
    reply, code = ops.handle_request(host, json.dumps({"protocol": 1, "ops": [], "write_errors": "maybe"}))
    assert code == 1 and "write_errors" in reply["message"]


# -- the allow-list ---------------------------------------------------------------------------------

def _ps_text(name: str) -> str:
    return (RUNNER_DIR / name).read_text(encoding="utf-8")


def _ps_statements(text: str) -> list[str]:
    """The statements of PowerShell text (outside quotes, a newline at bracket depth 0 ends one)."""
    statements, current, depth, quoted = [], "", 0, False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([{":
            depth += 1
        elif not quoted and char in ")]}":
            depth -= 1
        if char == "\n" and depth == 0 and not quoted:
            statements.append(current.strip())
            current = ""
        else:
            current += char
    return [statement for statement in [*statements, current.strip()] if statement]


def _ps_allow_list() -> dict[str, Any]:
    """The assignments of writes.ps1's allow-list, evaluated: strings joined by '+', TrimEnd, arrays."""
    text = _ps_text("writes.ps1").split("# region: write_allow", 1)[1].split("function ", 1)[0]
    env: dict[str, Any] = {}
    for statement in _ps_statements(text):
        if statement.startswith("#"):
            statement = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("#"))
        match = re.fullmatch(r"\$(\w+) = (.*)", statement, re.DOTALL)
        if not match:
            continue
        expression = re.sub(r"'([^']*)'", lambda m: "r" + repr(m.group(1)).replace("\\\\", "\\"), match.group(2))
        expression = re.sub(r"\$(\w+)\.TrimEnd\(", r"env['\1'].rstrip(", expression)
        expression = re.sub(r"\$(\w+)", r"env['\1']", expression).replace("@(", "(")
        env[match.group(1)] = eval(expression, {"env": env})  # the repository's own PowerShell
    return env


def test_the_allow_list_is_the_host_codes_pattern_for_pattern() -> None:
    allow = _ps_allow_list()
    assert tuple(tuple(pair) for pair in allow["WriteTargets"]) == write_ops.WRITE_TARGETS
    assert tuple(allow["ParentKeys"]) == write_ops.PARENT_KEYS
    services = _ps_text("services.ps1")
    assert all(f"-eq '{name}'" in services for name in (*write_ops.SERVICE_NAMES, *write_ops.SERVICE_DISPLAY_NAMES))
    dispatch = re.search(r"\$writeOps = @\(([^)]*)\)", _ps_text("dispatch.ps1"))
    assert dispatch and tuple(re.findall(r"'([^']*)'", dispatch.group(1))) == write_ops.WRITE_OPERATIONS
    assert f"-cmatch '{write_ops.TASK_NAME_PATTERN}'" in _ps_text("programs.ps1")
    assert _ps_text("backup.ps1").count(f"-cmatch '{write_ops.BACKUP_ID_PATTERN}'") == 2  # save and load


ALLOWED_TARGETS = [
    (CHROME + "\\CookiesAllowedForUrls", "1"), (EDGE + "\\CookiesAllowedForUrls", "12"),
    ("hklm\\software\\policies\\google\\chrome", "BlockThirdPartyCookies"),  # case does not matter
    (CHROME, "AuthServerAllowlist"), (EDGE + "\\LocalNetworkAccessAllowedForUrls", "3"),
    ("HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Cookies\\Allow", "2"),
    ("HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap", "AutoDetect"),
    ("HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMapKey", "http://localhost"),
    ("HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1", "1A00"),
    (f"HKU\\{SID}\\Software\\Policies\\Microsoft\\Edge", "AuthServerAllowlist"),
    (f"HKU\\{SID}\\{ZONES}\\ZoneMap\\Domains\\localhost", "http"),
    (f"HKU\\{SID}\\{ZONES}\\Zones\\1", "1A00"),
    ("HKU\\nhs_cm_0123456789ab\\Software\\Policies\\Google\\Chrome\\CookiesAllowedForUrls", "4"),
]
VENDOR_PARENTS = ("HKLM\\SOFTWARE\\Policies\\Google",
                  "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings")
HOSTILE_KEYS = [
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
    "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\..\\..\\..\\Microsoft\\Windows\\CurrentVersion\\Run",
    "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\.\\x",
    "HKLM\\SOFTWARE\\Policies\\Google\\ChromeX",
    "HKLM\\SOFTWARE\\Policies\\Google\\Chrome/..",
    "HKLM\\SOFTWARE\\Policies\\Google",  # a parent: only an empty one recorded in a backup may go
    "HKLM\\SOFTWARE\\Policies",
    "HKLM\\SYSTEM\\CurrentControlSet\\Services\\NHSPortService",
    "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\3",
    "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings",
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap",  # machine, not policy
    "HKCU\\Software\\Policies\\Google\\Chrome",
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Google\\Chrome",
    "HKCR\\exefile\\shell\\open\\command",
    "HKU\\.DEFAULT\\Software\\Policies\\Google\\Chrome",
    "HKU\\S-1-5-18\\Software\\Policies\\Google\\Chrome",
    f"HKU\\{SID}_Classes\\Software\\Policies\\Google\\Chrome",
    f"HKU\\{SID}\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
    "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\" + "x" * 600,  # too long
    "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\\x00hidden",
    "HKLM\\SOFTWARE\\Policies\\Google\\Chr\u043eme",  # Cyrillic o
    "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\",
    "HKLM\\SOFTWARE\\Policies\\Google\\\\Chrome",
    " HKLM\\SOFTWARE\\Policies\\Google\\Chrome",
]
#: Keys the roles write, with values they never write: a planted backup or a controller bug.
HOSTILE_VALUES = [
    (CHROME, "ExtensionInstallForcelist"), (CHROME + "\\ExtensionInstallForcelist", "1"),
    (CHROME + "\\URLAllowlist", "1"), (EDGE, "DefaultCookiesSetting"), (CHROME + "\\CookiesAllowedForUrls", "x"),
    ("HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox", "DisableAppUpdate"),
    ("HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1", "1200"),
    (f"HKU\\{SID}\\{ZONES}\\ZoneMap", "ProxyEnable"),
]


@pytest.mark.parametrize(("key", "name"), ALLOWED_TARGETS)
def test_allowed_targets(key: str, name: str) -> None:
    write_ops.check_write_target(key, name)


@pytest.mark.parametrize(("key", "name"), HOSTILE_VALUES)
def test_values_the_roles_never_write_are_forbidden(host: HostState, key: str, name: str) -> None:
    before = host.state_dict()
    result = one(host, op="reg_write", key=key, name=name, type="REG_SZ", data="evil")
    assert result.get("error") == "forbidden" and "write allow-list" in result["message"], result
    assert host.state_dict() == before


@pytest.mark.parametrize("key", HOSTILE_KEYS)
@pytest.mark.parametrize("op", ["reg_write", "reg_delete", "reg_delete_key"])
def test_hostile_keys_are_forbidden_whatever_the_op(host: HostState, key: str, op: str) -> None:
    before = host.state_dict()
    request = {"op": op, "key": key}
    if op != "reg_delete_key":
        request["name"] = "x"
    if op == "reg_write":
        request.update(type="REG_SZ", data="evil")
    result = one(host, **request)
    if op == "reg_delete_key" and key in VENDOR_PARENTS:  # may go when empty (a backup recorded it missing)
        assert result == {"ok": True, "deleted": False, "reason": "does not exist"}
    else:
        assert result.get("error") == "forbidden", result
    assert host.state_dict() == before


@pytest.mark.parametrize("request_fields", [
    {"op": "reg_write", "key": EDGE, "name": "x" * 256, "type": "REG_SZ", "data": "1"},
    {"op": "reg_write", "key": EDGE, "name": "a\nb", "type": "REG_SZ", "data": "1"},
    {"op": "service_set", "name": "WinRM", "state": "stopped"},
    {"op": "task_run", "name": "evil", "user": SID2, "session": 2,
     "command": CM + "NHSCredentialManagement.exe"},
    {"op": "task_run", "name": "nhs_cm_x", "user": SID2, "session": 2,
     "command": "C:\\Windows\\System32\\cmd.exe"},
    {"op": "task_run", "name": "nhs_cm_x", "user": SID2, "session": 2,
     "command": CM + "..\\..\\..\\Windows\\System32\\cmd.exe"},
    {"op": "task_run", "name": "nhs_cm_x", "user": SID2, "session": 2, "command": "\\\\server\\share\\x.exe"},
    {"op": "task_run", "name": "nhs_cm_x", "user": SID2, "session": 2, "command": CM + "script.ps1"},
    {"op": "task_run", "name": "nhs_cm_x", "user": SID2, "session": 2,
     "command": CM + "NHSCredentialManagement.exe", "arguments": "a\r\nb"},
    {"op": "process_stop", "pid": 104, "image": "C:\\Windows\\System32\\smss.exe"},
    {"op": "backup_save", "id": "..\\..\\Windows\\evil", "entries": []},
    {"op": "backup_load", "id": "../x"},
])
def test_other_hostile_requests_are_forbidden(host: HostState, request_fields: dict[str, Any]) -> None:
    before = host.state_dict()
    result = one(host, **request_fields)
    assert result["error"] == "forbidden", result
    assert host.state_dict() == before and host.writes == 0


def test_a_session_0_process_cannot_be_stopped(host: HostState) -> None:
    port = one(host, op="service_set", name="NHSPortService", state="started")
    assert port["ok"]
    service_process = next(p for p in host.processes if p.name == "NHSPortService.exe")
    result = one(host, op="process_stop", pid=service_process.pid, image=service_process.image)
    assert result["error"] == "forbidden" and "session 0" in result["message"]
