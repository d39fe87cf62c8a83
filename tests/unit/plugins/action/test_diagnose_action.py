"""The diagnose action plugin, driven with a fake connection that replays recorded runner replies
(tests/unit/fixtures/*.json).

A fixture has ``description`` and either ``raise``/``message`` (the connection raises) or
``rc``, ``stderr`` and ``stdout`` (raw) or ``reply`` (an object, sent as one ASCII line). With
``request``, the fake connection checks that the action sent exactly that request: when
``plan_reads`` changes, re-record the fixture.
"""

from __future__ import annotations

import json
import types
import typing as t
from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.shell.powershell import ShellModule as PowerShell
from ansible.plugins.shell.sh import ShellModule as Sh

from ansible_collections.nhs_cm.remediation.plugins.action.diagnose import ActionModule
from ansible_collections.nhs_cm.remediation.plugins.modules import diagnose as module_doc
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import ARGUMENT_SPEC
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.assembly import runner_for_ops
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import BOOTSTRAP, RequestError
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import split_stdin

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RAISES = {"AnsibleConnectionFailure": AnsibleConnectionFailure, "TimeoutError": TimeoutError}


def load(name: str) -> dict[str, t.Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


class FakeConnection:
    """Just enough of ansible's winrm connection for ``_low_level_execute_command``."""

    transport = "winrm"
    become = None
    allow_executable = False

    def __init__(self, fixture: dict[str, t.Any], shell: t.Any = None) -> None:
        self.fixture = fixture
        self._shell = shell or PowerShell()
        self.calls: list[tuple[str, bytes | None, bool]] = []

    def get_option(self, name: str) -> t.Any:
        return {"remote_user": "Administrator"}[name]

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        self.calls.append((cmd, in_data, sudoable))
        fixture = self.fixture
        if "raise" in fixture:
            raise RAISES[fixture["raise"]](fixture["message"])
        if "request" in fixture:
            assert in_data is not None
            assert split_stdin(in_data)[1] == fixture["request"], "the request changed: re-record this fixture"
        stdout = fixture.get("stdout")
        if stdout is None:
            stdout = json.dumps(fixture["reply"], ensure_ascii=True, separators=(",", ":")) + "\r\n"
        return fixture["rc"], stdout.encode("utf-8"), fixture.get("stderr", "").encode("utf-8")


def make_action(connection: FakeConnection, args: dict[str, t.Any] | None = None,
                check_mode: bool = False) -> ActionModule:
    task = types.SimpleNamespace(args=args or {}, async_val=0, check_mode=check_mode, diff=False,
                                 action="nhs_cm.remediation.diagnose")
    play_context = types.SimpleNamespace(remote_user="Administrator", executable=None, no_log=False)
    return ActionModule(task, connection, play_context, loader=None, templar=None)


def diagnose(fixture: str, args: dict[str, t.Any] | None = None, check_mode: bool = False,
             ) -> tuple[dict[str, t.Any], FakeConnection]:
    connection = FakeConnection(load(fixture))
    result = make_action(connection, args, check_mode).run(task_vars={})
    return result, connection


# -- good replies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("check_mode", [False, True])
def test_a_healthy_host(check_mode: bool) -> None:
    result, connection = diagnose("healthy_win10", {"return_facts": True}, check_mode=check_mode)
    assert result["changed"] is False
    assert "failed" not in result
    assert (result["findings"], result["unknown"]) == ([], [])
    facts = result["facts"]
    assert [entry["version"] for entry in facts["products"]["cm"]] == ["4.1.0.12"]
    assert facts["services"]["port_service"]["state"] == "running"
    assert facts["os"] == {"product": "Windows 10 Enterprise", "version": "10.0.19045", "build": 19045,
                           "computer_name": "DESK01", "emulated": False}
    assert facts["read_errors"] == {}
    json.dumps(result)
    assert len(connection.calls) == 1, "diagnose must send ONE runner call"


def test_the_facts_are_returned_only_when_asked() -> None:
    fixture = "port_service_stopped_cm_missing_in_session2"
    plain, _connection = diagnose(fixture, {"probe_timeout_ms": 500})
    with_facts, _connection = diagnose(fixture, {"probe_timeout_ms": 500, "return_facts": True})
    assert "facts" not in plain
    assert with_facts["facts"]["services"]["port_service"]["state"] == "stopped"
    assert plain == {name: value for name, value in with_facts.items() if name != "facts"}
    assert plain["findings"] and plain["findings"][0]["evidence"], "the findings keep their evidence"
    assert len(json.dumps(plain)) * 3 < len(json.dumps(with_facts)), "the facts are most of the result"


def _clear_diagnose_caches() -> None:
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import options as _options
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import reads as _reads
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import run as _run
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner import request as _request

    _request._packed_runner.cache_clear()
    _request._build_stdin.cache_clear()
    _reads._plan.cache_clear()
    _reads._labels.cache_clear()
    _options._validate_options.cache_clear()
    _run.request_for.cache_clear()


def test_the_default_request_is_prepared_once_before_ansible_forks_the_workers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import options as _options
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import reads as _reads
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import run as _run
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner import request as _request

    _clear_diagnose_caches()
    assert _run.prepare_before_fork() is True  # what importing the plugin did in ansible's main process
    assert _request._packed_runner.cache_info().misses == 1
    validated: list[int] = []
    monkeypatch.setattr(_request, "validate_ops", lambda ops: validated.append(len(ops)) or ops)
    # The audit playbook passes the defaults explicitly: the same as not passing them.
    _result, connection = diagnose("healthy_win10", {"cm_required": True, "cm_process_names": [],
                                                     "include_offline_profiles": False})
    assert len(connection.calls) == 1
    assert _request._packed_runner.cache_info().misses == 1, "a worker would compress the runner again"
    assert validated == [], "a worker would validate the operations again"
    assert _request._build_stdin.cache_info().misses == 1, "a worker would build stdin again"
    assert _reads._plan.cache_info().misses == 1, "a worker would plan the reads again"
    assert _options._validate_options.cache_info().misses == 1, "a worker would validate the options again"
    assert _run.request_for.cache_info().misses == 1, "a worker would plan and pack the request again"
    _clear_diagnose_caches()


def test_cached_options_reads_and_stdin_are_the_same_as_fresh_ones() -> None:
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import options as _options
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import reads as _reads
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner import request as _request

    args = {"prs_ports": [43487], "ers_report": "NHS Credential Management is running on port 55000 and is not "
            "connected", "probe_timeout_ms": 500}
    _clear_diagnose_caches()
    first, error = _options.validate_options(args)
    assert error is None and first is not None
    reads = _reads.plan_reads(first)
    stdin = _request.build_stdin(runner_text(), reads)
    first["prs_ports"].append(1)  # a caller changing what it got back changes nothing cached
    reads[0]["key"] = "HKLM\\SOFTWARE\\Elsewhere"
    again, _error = _options.validate_options(dict(args))
    assert again is not None and again["prs_ports"] == [43487]
    fresh = _reads._plan(_options.options_with_defaults(again), _reads.DECLARED)
    assert _reads.plan_reads(again) == [op for _label, op in fresh]
    assert [op["op"] for op in _reads.plan_reads(again)].count("http_get") == 1
    assert any(op.get("ports") == [43487, 55000] for op in _reads.plan_reads(again)), "the report's port"
    assert _request.build_stdin(runner_text(), _reads.plan_reads(again)) == stdin
    assert _options.validate_options({"prs_ports": [0]}) == (None, "prs_ports must hold ports from 1 to 65535, not 0")
    with pytest.raises(RequestError, match="ops\\[0\\]"):
        _request.build_stdin(runner_text(), [{"op": "reg_read", "key": "HKLM\\X", "depth": "deep"}])
    _clear_diagnose_caches()


def test_the_command_is_the_encoded_bootstrap_and_stdin_carries_the_runner() -> None:
    _result, connection = diagnose("healthy_win10")
    ((cmd, in_data, sudoable),) = connection.calls
    assert cmd == PowerShell()._encode_script(BOOTSTRAP, as_list=False, strict_mode=False, preserve_rc=False)
    assert sudoable is False
    assert in_data is not None
    runner, request = split_stdin(in_data)
    assert runner == runner_for_ops(runner_text(), frozenset(op["op"] for op in request["ops"]))
    assert "$Operations['process_list']" in runner, "what diagnose needs"
    assert "$Operations['reg_write']" not in runner, "only what diagnose needs"
    assert request == load("healthy_win10")["request"]


def test_findings_from_a_broken_host() -> None:
    result, _connection = diagnose("port_service_stopped_cm_missing_in_session2", {"probe_timeout_ms": 500})
    assert [(f["id"], f["scope"].get("session")) for f in result["findings"]] == [
        ("PORT_SERVICE_STOPPED", None), ("PORT_SERVICE_NOT_AUTOMATIC", None), ("CM_NOT_RUNNING", 2)]
    assert result["unknown"] == []
    assert result["changed"] is False


def test_reads_that_failed_are_unknown_never_healthy() -> None:
    result, _connection = diagnose("reads_denied", {"return_facts": True})
    assert "failed" not in result
    assert result["findings"] == []
    # CM is in the unreadable 32-bit view: every check that depends on it is unknown.
    assert [u["check"] for u in result["unknown"]] == ["CM_NOT_INSTALLED", "CM_LEGACY_IDENTITY_HUB",
                                                       "CM_MULTIPLE_VERSIONS", "PORT_SERVICE_MISSING",
                                                       "CM_NOT_RUNNING", "CM_REBOOT_PENDING",
                                                       # which product it is decides whether the Identity
                                                       # Agent checks apply
                                                       "IA_NOT_INSTALLED", "IA_VERSION_RETIRED", "IA_NOT_RUNNING",
                                                       "SMARTCARD_SERVICE_STOPPED", "NO_SMARTCARD_READER"]
    assert result["unknown"][0]["reason"] == (
        "cannot tell whether NHS Credential Management is installed: HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\"
        "Windows\\CurrentVersion\\Uninstall: access_denied: Requested registry access is not allowed.")
    assert result["facts"]["processes"] is None
    assert set(result["facts"]["read_errors"]) == {"uninstall_32", "processes", "sessions", "gpo",
                                                   "browser_site_settings"}
    assert result["product"] is None


# -- failures ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "message"), [
    ("not_json", "the runner's reply is not JSON (exit code 1): \"'PowerShell' is not recognized as an internal or "
                 "external command,\\r\\noperable program or batch file.\""),
    ("clixml_stderr", "the runner failed with exit code 1 and no output: Exception calling \"Create\" with \"1\" "
                      "argument(s): \"At line:412 char:5 + } Missing closing '}' in statement block or type "
                      "definition.\""),
    ("rc1_invalid_request", "the runner refused the request (invalid_request): the request is not valid JSON: "
                            "Invalid JSON primitive: ."),
])
def test_runner_failures_fail_the_task_with_one_readable_line(fixture: str, message: str) -> None:
    result, _connection = diagnose(fixture)
    assert result == {"failed": True, "msg": message}


def test_a_timeout_makes_the_host_unreachable_with_one_line() -> None:
    with pytest.raises(AnsibleConnectionFailure) as caught:
        diagnose("timeout")
    assert str(caught.value) == "no answer in 30 s"  # "Read timed out. (read timeout=30)": _connection_errors


def test_a_refused_connection_is_unreachable_not_a_timeout() -> None:
    fixture = {"raise": "AnsibleConnectionFailure", "message": "winrm connection error: [Errno 111] Connection refused"}
    with pytest.raises(AnsibleConnectionFailure) as caught:
        make_action(FakeConnection(fixture)).run(task_vars={})
    assert str(caught.value) == "connection refused"  # no port in pywinrm's text here


def test_a_non_windows_shell_is_refused_before_anything_is_sent() -> None:
    connection = FakeConnection(load("healthy_win10"), shell=Sh())
    connection.transport = "ssh"
    result = make_action(connection).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"] == ("this module needs a Windows host with the powershell shell, but the host uses the sh "
                             "shell over the ssh connection; use ansible_connection=winrm (or psrp, or ssh with "
                             "ansible_shell_type=powershell)")
    assert connection.calls == []


# -- arguments --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    ({"colour": "red"}, "unsupported parameter(s): colour. Supported parameters include: cm_process_names, "
                        "cm_required, ers_report, ia_min_version, ia_paths, ia_process_names, "
                        "include_offline_profiles, port_service_display_name, probe_timeout_ms, prs_ports, "
                        "return_facts, smartcard_reader_required."),
    ({"probe_timeout_ms": 50}, "probe_timeout_ms must be from 100 to 30000, not 50"),
    ({"probe_timeout_ms": "soon"}, "argument 'probe_timeout_ms' is of type str and we were unable to convert to int"),
    ({"prs_ports": [43487, 0]}, "prs_ports must hold ports from 1 to 65535, not 0"),
    ({"prs_ports": []}, "prs_ports must list at least one port"),
    ({"cm_required": "perhaps"}, "argument 'cm_required' is of type str and we were unable to convert to bool"),
    ({"port_service_display_name": " "}, "port_service_display_name must not be empty"),
])
def test_bad_arguments_name_the_field_and_what_is_allowed(args: dict[str, t.Any], message: str) -> None:
    connection = FakeConnection(load("healthy_win10"))
    result = make_action(connection, args).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("nhs_cm.remediation.diagnose: ")
    assert message in result["msg"]
    assert connection.calls == []


def test_options_change_the_request() -> None:
    fixture = load("port_service_stopped_cm_missing_in_session2")
    bad = FakeConnection(fixture)
    result = make_action(bad, {"probe_timeout_ms": 900}).run(task_vars={})
    # The fake connection's own check fails (the request differs from the recorded one); the
    # action plugin reports that, as any unexpected exception, in one line.
    assert result["failed"] is True and "unexpected error (AssertionError): the request changed: re-record" in \
        result["msg"]


def test_the_documentation_matches_the_argument_spec() -> None:
    import yaml

    options = yaml.safe_load(module_doc.DOCUMENTATION)["options"]
    assert set(options) == set(ARGUMENT_SPEC)
    for name, spec in ARGUMENT_SPEC.items():
        assert options[name]["type"] == spec["type"], name
        assert options[name].get("default") == spec["default"], name
        assert options[name].get("elements") == spec.get("elements"), name
    returned = yaml.safe_load(module_doc.RETURN)
    assert {"changed", "findings", "unknown", "facts", "msg"} <= set(returned)
    assert set(returned["findings"]["contains"]) == {"id", "fault", "ers_message", "severity", "scope", "browser",
                                                     "summary", "evidence", "remedy", "escalation"}
    facts = load("healthy_win10")
    result = make_action(FakeConnection(facts), {"return_facts": True}).run(task_vars={})
    assert set(returned["facts"]["contains"]) == set(result["facts"])


def test_the_kept_request_is_the_one_a_fresh_plan_would_send() -> None:
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import run as _run
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import validate_options
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner import request as _request

    _clear_diagnose_caches()
    for args in ({}, {"prs_ports": [43487], "probe_timeout_ms": 500}):
        options, _error = validate_options(args)
        assert options is not None
        ops, stdin = _run.request_for(options)
        assert ops == plan_reads(options)
        _request._build_stdin.cache_clear()
        _request._packed_runner.cache_clear()
        assert stdin == _request.build_stdin(runner_text(), plan_reads(options))
    assert _run.request_for(validate_options({})[0])[0] is _run.request_for(validate_options({})[0])[0]
    _clear_diagnose_caches()


# -- options from the host's variables (the playbooks' nhs_cm_* variables) -------------------------

def test_options_the_task_does_not_give_come_from_the_hosts_variables() -> None:
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import args_with_variables

    rendered: list[t.Any] = []

    def template(value: t.Any) -> t.Any:
        rendered.append(value)
        return "NHS Credential Management is running on port 55000 and is not connected"

    variables = {"nhs_cm_cm_required": False, "nhs_cm_cm_process_names": ["CM.exe"],
                 "nhs_cm_include_offline_profiles": None, "nhs_cm_ers_report": "{{ reported_text }}",
                 "nhs_cm_probe_timeout_ms": 1}
    args = args_with_variables({"cm_process_names": []}, variables, template)
    assert args == {"cm_process_names": [], "cm_required": False,
                    "ers_report": "NHS Credential Management is running on port 55000 and is not connected"}
    assert rendered == ["{{ reported_text }}"], "only a value that holds a template is rendered"
    assert args_with_variables({}, {}, template) == {}


def test_the_action_reads_the_report_from_the_hosts_variable() -> None:
    connection = FakeConnection(load("healthy_win10"))
    variables = {"inventory_hostname": "pc-1",
                 "nhs_cm_ers_report": "NHS Credential Management is running on port 43487 and is not connected"}
    result = make_action(connection).run(task_vars=variables)
    assert not result.get("failed"), result.get("msg")
    assert (result["reported_fault"], result["reported_port"]) == (2, 43487)
    given = make_action(FakeConnection(load("healthy_win10")), {"ers_report": "no fault named here"}).run(
        task_vars=variables)
    assert given["reported_fault"] is None, "what the task gives wins over the variable"


def test_a_bad_value_in_a_variable_is_refused_naming_the_option() -> None:
    result = make_action(FakeConnection(load("healthy_win10"))).run(
        task_vars={"nhs_cm_cm_required": "sometimes"})
    assert result["failed"] and "cm_required" in result["msg"]
