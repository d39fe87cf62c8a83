"""diagnose with an e-RS report and the new options, driven by a fake connection whose runner
replies come from a hostsim desktop (one runner call per host, as always)."""

from __future__ import annotations

import json
import types
import typing as t

import pytest
from ansible.plugins.shell.powershell import ShellModule as PowerShell
from nhs_cm_hostsim import answer, healthy_host, sz, with_identity_agent

from ansible_collections.nhs_cm.remediation.plugins.action import diagnose as diagnose_action
from ansible_collections.nhs_cm.remediation.plugins.action.diagnose import ActionModule
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import split_stdin

FAULT2 = "NHS Identity Hub/Credential Management (v1.4.2.0) is running on port 43485 but is not connected"
FAULT4 = "A Windows Security box keeps popping up in e-RS"


class HostConnection:
    """Answers the runner's request from a hostsim host."""

    transport = "winrm"
    become = None
    allow_executable = False

    def __init__(self, host: dict[str, t.Any]) -> None:
        self.host = host
        self._shell = PowerShell()
        self.requests: list[dict[str, t.Any]] = []

    def get_option(self, name: str) -> t.Any:
        return {"remote_user": "Administrator"}[name]

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        assert in_data is not None
        request = split_stdin(in_data)[1]
        self.requests.append(request)
        reply = {"runner": "nhs_cm", "protocol": 1, "ok": True,
                 "results": [answer(self.host, op) for op in request["ops"]]}
        return 0, (json.dumps(reply) + "\r\n").encode(), b""


@pytest.fixture(autouse=True)
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The warnings diagnose shows (they are not returned: see the action plugin)."""
    warnings: list[str] = []
    monkeypatch.setattr(diagnose_action.display, "warning", lambda msg, *a, **k: warnings.append(msg))
    return warnings


def diagnose(host: dict[str, t.Any], **args: t.Any) -> tuple[dict[str, t.Any], HostConnection]:
    connection = HostConnection(host)
    task = types.SimpleNamespace(args=args, async_val=0, check_mode=False, diff=False,
                                 action="nhs_cm.remediation.diagnose")
    play_context = types.SimpleNamespace(remote_user="Administrator", executable=None, no_log=False)
    action = ActionModule(task, connection, play_context, loader=None, templar=None)
    return action.run(task_vars={"inventory_hostname": "desk01"}), connection


def legacy_host() -> dict[str, t.Any]:
    host = healthy_host()
    host["products"][1]["values"]["DisplayVersion"] = sz("1.4.2.0")
    return with_identity_agent(host)


def test_a_report_names_the_fault_and_port_and_its_findings_come_first(shown: list[str]) -> None:
    host = legacy_host()
    host["user_keys"] = {}  # the users' Local intranet zone is not as NHS wants it: fault 4 findings
    result, connection = diagnose(host, ers_report=FAULT2, return_facts=True)
    assert len(connection.requests) == 1
    assert (result["reported_fault"], result["reported_port"], result["product"]) == (2, 43485, "cm1")
    faults = [f["fault"] for f in result["findings"]]
    assert faults[:2] == [2, 2] and 4 in faults[2:]
    assert [f["id"] for f in result["findings"][:2]] == ["CM_NOT_CONNECTED", "CM_NOT_CONNECTED"]
    assert shown == [] and "warnings" not in result
    assert result["facts"]["ers_report"]["version"] == "1.4.2.0"


def test_without_a_report_the_findings_are_in_catalogue_order() -> None:
    host = legacy_host()
    host["user_keys"] = {}
    host["services"][0]["state"] = "stopped"
    result, _connection = diagnose(host)
    assert (result["reported_fault"], result["reported_port"]) == (None, None)
    faults = [f["fault"] for f in result["findings"]]
    assert faults == sorted(faults) and faults[0] == 1
    result, _connection = diagnose(host, ers_report=FAULT4)
    assert result["reported_fault"] == 4 and result["findings"][0]["fault"] == 4
    assert result["findings"][-1]["id"] == "PORT_SERVICE_STOPPED"


def test_text_that_names_no_fault_is_a_warning_not_a_failure(shown: list[str]) -> None:
    result, _connection = diagnose(legacy_host(), ers_report="e-RS does not work, please help")
    assert "failed" not in result
    assert (result["reported_fault"], result["reported_port"]) == (None, None)
    (warning,) = shown
    assert warning.startswith("desk01: ers_report names none of the four e-RS configuration check faults ('e-RS "
                              "does not work, please help')")
    assert "NHS Credential Management cannot be found" in warning


def test_an_empty_report_is_no_report(shown: list[str]) -> None:
    result, _connection = diagnose(legacy_host(), ers_report="  ")
    assert result["reported_fault"] is None and shown == []


def test_a_fault_2_report_from_a_cm4_host_is_questioned(shown: list[str]) -> None:
    result, _connection = diagnose(healthy_host(), ers_report=FAULT2)
    assert result["product"] == "cm3plus" and result["reported_fault"] == 2
    assert result["findings"] == []
    assert shown == [
        "desk01: ers_report names e-RS fault 2 ('NHS Credential Management is running on port 43485 but is not "
        "connected'), which concerns the legacy NHS Identity Agent, but this host has NHS Credential Management "
        "3.x or later (NHS Smartcard Connect): was the report made on another computer?"]


def test_the_reported_port_is_asked_for_in_the_same_call() -> None:
    _result, connection = diagnose(legacy_host(), ers_report=FAULT2)
    (request,) = connection.requests
    listeners = next(op for op in request["ops"] if op["op"] == "tcp_listeners")
    assert 43485 in listeners["ports"]


@pytest.mark.parametrize(("args", "message"), [
    ({"ers_report": "x" * 20001}, "ers_report must be at most 20000 characters (the text of the e-RS configuration "
                                  "check), not 20001"),
    ({"ia_paths": ["IdentityAgent.exe"]}, "ia_paths must hold absolute Windows paths (C:\\...\\IdentityAgent.exe), "
                                          "not 'IdentityAgent.exe'"),
    ({"ia_min_version": "newest"}, "ia_min_version must be a version such as 2.4.10.0, not 'newest'"),
    ({"include_offline_profiles": "sometimes"}, "argument 'include_offline_profiles' is of type str"),
])
def test_bad_options_name_the_field(args: dict[str, t.Any], message: str) -> None:
    result, connection = diagnose(legacy_host(), **args)
    assert result["failed"] is True and message in result["msg"]
    assert connection.requests == []


def test_offline_profiles_are_asked_for_in_the_same_call() -> None:
    _result, connection = diagnose(legacy_host(), include_offline_profiles=True)
    (request,) = connection.requests
    hives = next(op for op in request["ops"] if op["op"] == "user_hives_read")
    assert hives["include_offline"] is True
