"""The ansible.windows module twins, reached the way Ansible sends a module over WinRM.

Each test encodes ansible-core's own ``bootstrap_wrapper.ps1`` on the command line and builds
standard input with ansible-core's own manifest code (JSON1, the ``\\0\\0\\0\\0`` line, the
manifest), so the framing is the real one; only the module's PowerShell is replaced by a Python
twin (benchmarks/baseline.yml uses them).
"""

from __future__ import annotations

import json
import pkgutil
from typing import Any

import pytest
from ansible.executor.powershell.module_manifest import (
    _ExecManifest,
    _get_bootstrap_input,
    _ManifestAction,
    _ScriptInfo,
)
from ansible.plugins.shell.powershell import ShellModule
from emulated_host import host_from

from nhs_cm_emulator import commands, modules
from nhs_cm_emulator.state import HostState

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
OFFLINE_SID = "S-1-5-21-1004336348-1177238915-682003330-1002"
SCENARIO = rf"""
hosts:
  - name: pc-mod
    sessions:
      - {{id: 1, user: 'NHS\jsmith', sid: '{SID}', state: active}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\agray', sid: '{OFFLINE_SID}', path: 'C:\Users\agray', loaded: false}}
    registry:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 0xFFFFFFFF}}
        Icon: {{type: REG_EXPAND_SZ, data: '%SystemRoot%\system32\shell32.dll'}}
        Blob: {{type: REG_BINARY, data: '01ff'}}
        Sites: {{type: REG_MULTI_SZ, data: ['a', 'b']}}
        '': {{type: REG_SZ, data: 'default'}}
      'HKLM\SOFTWARE\Policies\Microsoft\Edge\CookiesAllowedForUrls':
        '1': {{type: REG_SZ, data: 'http://localhost'}}
      'HKU\{OFFLINE_SID}\Software\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
      'HKLM\SOFTWARE\Secret\Inner':
        X: {{type: REG_DWORD, data: 1}}
    denied: ['HKLM\SOFTWARE\Secret']
    services:
      - {{name: NHSPortService, display_name: NHS Port Service, state: running, start_mode: auto,
         image: 'C:\Program Files (x86)\NHS Digital\NHS Credential Management\PortService.exe', listens: [43487]}}
      - {{name: SCardSvr, display_name: Smart Card, state: stopped, start_mode: manual}}
    processes:
      - {{image: 'C:\Windows\explorer.exe', session: 1, user: 'NHS\jsmith'}}
"""
SHELL = ShellModule()
PREFIX = "ansible_collections.ansible.windows.plugins.modules."


@pytest.fixture(scope="module")
def host() -> HostState:
    return host_from(SCENARIO, "modules.yml")


def module_stdin(script: str, args: dict[str, Any], last_action: str = "module_wrapper.ps1") -> bytes:
    """What ansible-core 2.19 pipes into bootstrap_wrapper.ps1 for a module."""
    params = {"Script": script, "Environment": {}, "CSharpModules": [], "PowerShellModules": [], "ForModule": True,
              "Variables": [{"Name": "complex_args", "Scope": "Global",
                             "Value": {**args, "_ansible_check_mode": False, "_ansible_verbosity": 0}}]}
    manifest = _ExecManifest(scripts={script: _ScriptInfo(content=b"#!powershell\n", path=script)},
                             actions=[_ManifestAction(name=last_action, params=params)])
    return _get_bootstrap_input(manifest)


def run_module(host: HostState, name: str, args: dict[str, Any] | None = None, **stdin: Any) -> tuple[dict, int]:
    wrapper = pkgutil.get_data("ansible.executor.powershell", "bootstrap_wrapper.ps1")
    assert wrapper is not None
    program, _, arguments = SHELL._encode_script(wrapper.decode()).partition(" ")
    stdin_bytes = module_stdin(f"{PREFIX}{name}.ps1", args or {}, **stdin)
    out, err, code = commands.execute(host, program, [arguments], stdin_bytes)
    assert err == b""
    return json.loads(out), code


def test_win_ping(host: HostState) -> None:
    assert run_module(host, "win_ping") == ({"changed": False, "ping": "pong",
                                            "invocation": {"module_args": {"data": "pong"}}}, 0)
    result, code = run_module(host, "win_ping", {"data": "crash"})
    assert code == 1 and result["failed"] is True


def test_win_reg_stat_key(host: HostState) -> None:
    result, code = run_module(host, "win_reg_stat", {"path": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Edge"})
    assert code == 0 and result["exists"] is True and result["changed"] is False
    assert result["sub_keys"] == ["CookiesAllowedForUrls"]
    assert result["properties"] == {
        "BlockThirdPartyCookies": {"type": "REG_DWORD", "value": 4294967295, "raw_value": 4294967295},
        "Icon": {"type": "REG_EXPAND_SZ", "value": "C:\\Windows\\system32\\shell32.dll",
                 "raw_value": "%SystemRoot%\\system32\\shell32.dll"},
        "Blob": {"type": "REG_BINARY", "value": [1, 255], "raw_value": ["0x01", "0xff"]},
        "Sites": {"type": "REG_MULTI_SZ", "value": ["a", "b"], "raw_value": ["a", "b"]},
        "": {"type": "REG_SZ", "value": "default", "raw_value": "default"},
    }


def test_win_reg_stat_value(host: HostState) -> None:
    key = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Edge\\CookiesAllowedForUrls"
    assert run_module(host, "win_reg_stat", {"path": key, "name": "1"}) == (
        {"changed": False, "exists": True, "type": "REG_SZ", "value": "http://localhost",
         "raw_value": "http://localhost"}, 0)
    assert run_module(host, "win_reg_stat", {"key": key, "value": "2"}) == ({"changed": False, "exists": False}, 0)
    assert run_module(host, "win_reg_stat", {"path": "HKLM:\\SOFTWARE\\Nope", "name": "1"})[0]["exists"] is False


def test_win_reg_stat_sees_only_loaded_user_hives(host: HostState) -> None:
    result, _ = run_module(host, "win_reg_stat", {"path": "HKU:\\"})
    assert SID in result["sub_keys"] and OFFLINE_SID not in result["sub_keys"]
    assert f"{SID}_Classes" in result["sub_keys"]
    offline = f"HKU:\\{OFFLINE_SID}\\Software\\Policies\\Microsoft\\Edge"
    assert run_module(host, "win_reg_stat", {"path": offline})[0] == {"changed": False, "exists": False}


@pytest.mark.parametrize(("args", "message"), [
    ({"path": "HKLM\\SOFTWARE"}, "path: HKLM\\SOFTWARE is not a valid registry path"),
    ({}, "Missing required argument: path"),
    ({"path": "HKLM:\\SOFTWARE", "recurse": True}, "Unsupported parameters for (ansible.windows.win_reg_stat)"),
    ({"path": "HKLM:\\SOFTWARE\\Secret\\Inner"}, "Requested registry access is not allowed"),
])
def test_win_reg_stat_failures(host: HostState, args: dict[str, Any], message: str) -> None:
    result, code = run_module(host, "win_reg_stat", args)
    assert code == 1 and result["failed"] is True and message in result["msg"]


def test_win_service_info(host: HostState) -> None:
    result, code = run_module(host, "win_service_info", {"name": "NHS Port Service"})
    assert code == 0 and result["exists"] is True
    (service,) = result["services"]
    assert (service["name"], service["state"], service["start_mode"], service["process_id"]) == (
        "NHSPortService", "started", "auto", 2000)
    assert service["path"] == '"C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management\\PortService.exe"'
    (smartcard,) = run_module(host, "win_service_info", {"name": "scardsvr"})[0]["services"]
    assert (smartcard["display_name"], smartcard["state"], smartcard["process_id"]) == ("Smart Card", "stopped", 0)
    assert [s["name"] for s in run_module(host, "win_service_info", {"name": "NHS*"})[0]["services"]] == [
        "NHSPortService"]
    assert [s["name"] for s in run_module(host, "win_service_info")[0]["services"]] == ["NHSPortService", "SCardSvr"]
    assert run_module(host, "win_service_info", {"name": "Nope"})[0]["services"] == []


def test_win_shell_answers_the_baseline_process_listing(host: HostState) -> None:
    command = ("Get-Process -IncludeUserName |\nSelect-Object -Property Id,ProcessName, Path, SessionId, UserName |"
               "\nConvertTo-Json -Compress")
    result, code = run_module(host, "win_shell", {"_raw_params": command})
    assert code == 0 and result["rc"] == 0 and result["changed"] is True
    processes = json.loads(result["stdout"])
    assert {"Id": 4, "ProcessName": "System", "Path": None, "SessionId": 0, "UserName": None} in processes
    explorer = [p for p in processes if p["ProcessName"] == "explorer"]
    assert explorer == [{"Id": 5000, "ProcessName": "explorer", "Path": "C:\\Windows\\explorer.exe", "SessionId": 1,
                         "UserName": "NHS\\jsmith"}]


def test_win_shell_refuses_anything_else(host: HostState) -> None:
    result, code = run_module(host, "win_shell", {"_raw_params": "Get-ChildItem C:\\"})
    assert code == 1 and result["failed"] is True and result["rc"] == 1
    assert "can only answer the process listing" in result["stderr"]


def test_modules_without_a_twin_fail_clearly(host: HostState) -> None:
    result, code = run_module(host, "win_file", {"path": "C:\\x", "state": "absent"})
    assert code == 1 and "ansible.windows.win_file is not emulated" in result["msg"]
    assert "ansible.windows.win_reg_stat" in result["msg"]
    result, code = run_module(host, "win_ping", last_action="powershell_mkdtemp.ps1")
    assert code == 1 and "'powershell_mkdtemp.ps1' is not emulated" in result["msg"]
    assert modules.run_exec_wrapper(host, b"{}")[2] == 1
