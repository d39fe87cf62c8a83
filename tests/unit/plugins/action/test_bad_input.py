"""Bad input, module by module and role by role: each is refused with one message that names the
field and says what is allowed, before anything is sent to a host or written on the controller."""

from __future__ import annotations

import importlib
import types
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.shell.powershell import ShellModule as PowerShell

ROOT = Path(__file__).resolve().parents[4]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


class RecordingConnection:
    """A winrm connection that records every command and sends none."""

    transport = "winrm"
    become = None
    allow_executable = False

    def __init__(self) -> None:
        self._shell = PowerShell()
        self.calls: list[tuple[t.Any, ...]] = []

    def get_option(self, name: str) -> t.Any:
        return {"remote_user": "Administrator"}[name]

    def exec_command(self, *args: t.Any, **kwargs: t.Any) -> tuple[int, bytes, bytes]:
        self.calls.append((args, kwargs))
        return 1, b"", b"not expected: bad input must be refused before the host is contacted"

    def put_file(self, *args: t.Any) -> None:
        self.calls.append(args)


def run_module(module: str, args: dict[str, t.Any], host_vars: dict[str, t.Any] | None = None,
               ) -> tuple[str, RecordingConnection]:
    """The message the action plugin fails with, and the connection it was given."""
    plugin = importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.action.{module}")
    task = types.SimpleNamespace(args=args, async_val=0, check_mode=False, diff=False,
                                 action=f"nhs_cm.remediation.{module}")
    play_context = types.SimpleNamespace(remote_user="Administrator", executable=None, no_log=False)
    connection = RecordingConnection()
    action = plugin.ActionModule(task, connection, play_context, loader=None, templar=None, shared_loader_obj=None)
    task_vars = {"inventory_hostname": "pc-1", "ansible_play_hosts_all": ["pc-1"],
                 "hostvars": {"pc-1": host_vars or {}}}
    try:
        result = action.run(task_vars=task_vars)
    except AnsibleActionFail as exc:  # ansible's own validate_argument_spec raises
        return str(exc), connection
    assert result.get("failed"), f"{module} accepted {args}: {result}"
    return str(result["msg"]), connection


BOOLS = "Valid booleans include"
# (module, bad arguments, what the message must say: the field, then what is allowed)
MODULE_CASES: list[tuple[str, dict[str, t.Any], list[str]]] = [
    ("diagnose", {"cm_required": "maybe"}, ["cm_required", BOOLS]),
    ("diagnose", {"probe_timeout_ms": "soon"}, ["probe_timeout_ms", "int"]),
    ("diagnose", {"probe_timeout_ms": 0}, ["probe_timeout_ms must be from"]),
    ("diagnose", {"prs_ports": [0, 70000]}, ["prs_ports", "from 1 to 65535", "0, 70000"]),
    ("diagnose", {"prs_ports": []}, ["prs_ports must list at least one port"]),
    ("diagnose", {"port_service_display_name": "  "}, ["port_service_display_name must not be empty"]),
    ("diagnose", {"ia_paths": ["IdentityAgent.exe"]}, ["ia_paths must hold absolute Windows paths"]),
    ("diagnose", {"ia_min_version": "two"}, ["ia_min_version must be a version such as"]),
    ("diagnose", {"ers_report": "x" * 100_000}, ["ers_report must be at most"]),
    ("diagnose", {"colour": "red"}, ["colour", "Supported parameters include", "cm_required"]),
    ("cm_service", {"wait_ms": -1}, ["wait_ms must be from 0 to 120000", "-1"]),
    ("cm_service", {"wait_ms": "long"}, ["wait_ms", "int"]),
    ("cm_service", {"start_cm": "perhaps"}, ["start_cm", BOOLS]),
    ("cm_service", {"cm_executable": "cm.bat"}, ["cm_executable must name a .exe"]),
    ("cm_service", {"cm_executable": ""}, ["cm_executable must be a full path"]),
    ("cm_service", {"ia_executable": "IdentityAgent.exe"}, ["ia_executable must be a full path"]),
    ("cm_service", {"prs_ports": [99999]}, ["prs_ports", "from 1 to 65535"]),
    ("cm_service", {"restart_everything": True}, ["restart_everything", "Supported parameters include"]),
    ("third_party_cookies", {"browsers": ["safari"]}, ["browsers", "chrome, edge, firefox", "safari"]),
    ("third_party_cookies", {"browsers": []}, ["browsers must list at least one of"]),
    ("third_party_cookies", {"scope": "domain"}, ["scope", "machine, user"]),
    ("third_party_cookies", {"override_gpo": "sometimes"}, ["override_gpo", BOOLS]),
    ("third_party_cookies", {"block": True}, ["block", "Supported parameters include"]),
    ("intranet_zone", {"scope": "domain"}, ["scope", "machine, user"]),
    ("intranet_zone", {"logon_action": 7}, ["logon_action must be", "131072", "not 7"]),
    ("intranet_zone", {"logon_action": "auto"}, ["logon_action", "int"]),
    ("intranet_zone", {"zones": [1]}, ["zones", "Supported parameters include"]),
    ("restore", {}, ["backup_id"]),
    ("restore", {"backup_id": ""}, ["backup_id must be 'latest' or a backup id", "letters, digits"]),
    ("restore", {"backup_id": "..\\..\\Windows"}, ["backup_id must be 'latest' or a backup id", "Windows"]),
    ("restore", {"backup_id": "x" * 81}, ["backup_id must be 'latest' or a backup id", "1 to 80"]),
    ("restore", {"backup_id": "latest", "force": True}, ["force", "Supported parameters include"]),
    ("history", {}, ["missing required arguments: store"]),
    ("history", {"query": "everything", "store": "history.sqlite"}, ["query", "report", "everything"]),
    ("waivers", {"today": "2025-13-40"}, ["today must be a real date written YYYY-MM-DD", "2025-13-40"]),
    ("waivers", {"today": "25/11/2026"}, ["today must be a date written YYYY-MM-DD", "25/11/2026"]),
    ("waivers", {"expired": "ignore"}, ["expired", "error, lapse", "ignore"]),
    ("waivers", {"hosts": "pc-1", "until": "never"}, ["until", "Supported parameters include"]),
    ("report", {"formats": ["pdf"]}, ["formats", "json, csv, junit, html", "pdf"]),
    ("report", {"include_facts": "all"}, ["include_facts", BOOLS]),
    ("report", {"style": "dark"}, ["style", "Supported parameters include"]),
    ("report_merge", {}, ["missing required arguments: src"]),
    ("report_merge", {"src": ["a"], "formats": ["xml"]}, ["formats", "json, csv, junit, html", "xml"]),
    ("report_merge", {"src": ["a"], "into": "b"}, ["into", "Supported parameters include"]),
]


def test_every_module_has_a_bad_input_case() -> None:
    assert set(MODULES) == {case[0] for case in MODULE_CASES}


@pytest.mark.parametrize(("module", "args", "says"), MODULE_CASES,
                         ids=[f"{case[0]}-{'-'.join(case[1]) or 'none'}" for case in MODULE_CASES])
def test_a_module_refuses_bad_input_before_contacting_the_host(module: str, args: dict[str, t.Any], says: list[str],
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # report and report_merge would write under ./reports
    message, connection = run_module(module, args)
    for fragment in says:
        assert fragment in message, (fragment, message)
    assert "\n" not in message
    assert connection.calls == []
    assert list(tmp_path.iterdir()) == []


WAIVER = {"id": "CM_NOT_RUNNING", "justification": "kiosk", "approved_by": "IG lead", "expires": "2027-01-31"}
WAIVER_CASES: list[tuple[dict[str, t.Any], list[str]]] = [
    ({"expires": "31/01/2027"}, ["nhs_cm_waivers[0].expires must be a date written YYYY-MM-DD", "31/01/2027"]),
    ({"expires": "2027-02-30"}, ["nhs_cm_waivers[0].expires must be a real date written YYYY-MM-DD"]),
    ({"expires": None}, ["nhs_cm_waivers[0].expires"]),
    ({"justification": " "}, ["nhs_cm_waivers[0].justification must be a non-empty text"]),
]


@pytest.mark.parametrize(("change", "says"), WAIVER_CASES,
                         ids=[next(iter(case[0])) + str(i) for i, case in enumerate(WAIVER_CASES)])
def test_a_bad_waiver_is_refused_naming_the_entry_and_the_field(change: dict[str, t.Any], says: list[str]) -> None:
    message, connection = run_module("waivers", {"today": "2026-11-25"}, {"nhs_cm_waivers": [{**WAIVER, **change}]})
    for fragment in says:
        assert fragment in message, (fragment, message)
    assert connection.calls == []


def test_a_good_waiver_passes() -> None:
    plugin = importlib.import_module("ansible_collections.nhs_cm.remediation.plugins.action.waivers")
    task = types.SimpleNamespace(args={"today": "2026-11-25"}, async_val=0, check_mode=False, diff=False,
                                 action="nhs_cm.remediation.waivers")
    action = plugin.ActionModule(task, RecordingConnection(), types.SimpleNamespace(no_log=False), loader=None,
                                 templar=None, shared_loader_obj=None)
    host_vars = {"pc-1": {"nhs_cm_waivers": [WAIVER]}}
    result = action.run(task_vars={"ansible_play_hosts_all": ["pc-1"], "hostvars": host_vars})
    assert not result.get("failed"), result


def role_spec(role: str) -> dict[str, t.Any]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def role_errors(role: str, values: dict[str, t.Any]) -> str:
    """What ansible's role argument validation says about ``values`` (as at the start of the role)."""
    result = ArgumentSpecValidator(role_spec(role)).validate(values)
    return "; ".join(str(error) for error in result.errors)


# (role, bad variables, what the message must say)
ROLE_CASES: list[tuple[str, dict[str, t.Any], list[str]]] = [
    ("cm_service", {"cm_service_start_cm": "perhaps"}, ["cm_service_start_cm", BOOLS]),
    ("cm_service", {"cm_service_wait_ms": "long"}, ["cm_service_wait_ms", "int"]),
    ("cm_service", {"cm_service_prs_ports": ["http"]}, ["cm_service_prs_ports", "int"]),
    ("cm_service", {"cm_service_cm_process_names": {"a": 1}}, ["cm_service_cm_process_names", "list"]),
    ("third_party_cookies", {"third_party_cookies_browsers": ["safari"]},
     ["third_party_cookies_browsers", "chrome, edge, firefox", "safari"]),
    ("third_party_cookies", {"third_party_cookies_scope": "domain"}, ["third_party_cookies_scope", "machine, user"]),
    ("third_party_cookies", {"third_party_cookies_override_gpo": "sometimes"},
     ["third_party_cookies_override_gpo", BOOLS]),
    ("intranet_zone", {"intranet_zone_scope": "domain"}, ["intranet_zone_scope", "machine, user"]),
    ("intranet_zone", {"intranet_zone_logon_action": 7}, ["intranet_zone_logon_action", "0, 131072"]),
    ("intranet_zone", {"intranet_zone_skip_ids": "ALL"}, []),  # a string is a one-item list: accepted
]


def test_every_role_has_a_bad_input_case() -> None:
    assert set(ROLES) == {case[0] for case in ROLE_CASES}


@pytest.mark.parametrize(("role", "values", "says"), ROLE_CASES,
                         ids=[f"{case[0]}-{'-'.join(case[1])}" for case in ROLE_CASES])
def test_a_role_refuses_bad_variables(role: str, values: dict[str, t.Any], says: list[str]) -> None:
    message = role_errors(role, values)
    if not says:
        assert message == ""
        return
    for fragment in says:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("role", ROLES)
def test_a_role_accepts_its_defaults(role: str) -> None:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    assert role_errors(role, defaults) == ""
