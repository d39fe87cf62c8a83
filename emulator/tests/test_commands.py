"""Interpretation of WinRS commands: the runner bootstrap, raw one-liners, everything else."""

from __future__ import annotations

import base64
import gzip
import json
import typing as t
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible.plugins.shell.powershell import ShellModule
from emulated_host import collection_protocol, runner_text

from nhs_cm_emulator import commands, ops, read_ops, scenario
from nhs_cm_emulator.scenario import parse_document, parse_text
from nhs_cm_emulator.state import HostState, load_estate

BOOTSTRAP = """# NHS-CM-BOOTSTRAP v1
$ErrorActionPreference = 'Stop'
$all = [Console]::In.ReadToEnd()
$parts = $all -split "`n`0`0`0`0`n", 2
$runner = [ScriptBlock]::Create($parts[0])
& $runner $parts[1]
exit $LASTEXITCODE
"""
RUNNER = "# NHS-CM-RUNNER v1\nparam([string]$RequestJson)\n# ... the real runner's PowerShell ...\n"
REQUEST = {"protocol": 1, "ops": [{"op": "os_info"}, {"op": "reg_read", "key": "HKCU\\Software"}]}
SHELL = ShellModule()
ROOT = Path(__file__).resolve().parents[2]
RUNNER_DIR = ROOT / "plugins" / "plugin_utils" / "_runner"


@pytest.fixture(scope="module")
def host() -> HostState:
    text = "hosts:\n  - name: pc-cmd\n"
    hosts, _ = parse_document(parse_text(text, "cmd.yml"), "cmd.yml")
    return HostState(hosts[0])


def split(command_line: str) -> tuple[str, list[str]]:
    """As pywinrm sends a command: the program, then the arguments joined by spaces."""
    program, _, rest = command_line.partition(" ")
    return program, [rest] if rest else []


def run_encoded(host: HostState, script: str, stdin: bytes = b"", **encode: bool) -> tuple[bytes, bytes, int]:
    return commands.execute(host, *split(SHELL._encode_script(script, **encode)), stdin)


def runner_stdin(request: object, runner: str = RUNNER) -> bytes:
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    return runner.encode() + b"\n\0\0\0\0\n" + body


# -- the runner -------------------------------------------------------------------------------

@pytest.mark.parametrize("encode", [{}, {"strict_mode": False, "preserve_rc": False}])
def test_bootstrap_runs_the_request(host: HostState, encode: dict[str, bool]) -> None:
    out, err, code = run_encoded(host, BOOTSTRAP, runner_stdin(REQUEST), **encode)
    assert (err, code) == (b"", 0)
    assert out.endswith(b"\r\n") and out.count(b"\n") == 1 and out.isascii()
    reply = json.loads(out)
    assert reply["runner"] == "nhs_cm" and reply["protocol"] == 1 and reply["ok"] is True
    assert reply["results"][0]["computer_name"] == "pc-cmd"
    assert reply["results"][1]["error"] == "invalid_request"


def test_bootstrap_splits_at_the_first_separator(host: HostState) -> None:
    stdin = runner_stdin(json.dumps(REQUEST).encode() + b"\n\0\0\0\0\ntrailing")
    out, _, code = run_encoded(host, BOOTSTRAP, stdin)
    assert code == 1 and json.loads(out)["error"] == "invalid_request"  # part two is not JSON
    stdin = b"# NHS-CM-RUNNER v1\r\nmore\r\n" + b"\0\0\0\0\r\n" + json.dumps(REQUEST).encode() + b"\r\n"
    out, _, code = run_encoded(host, BOOTSTRAP, stdin)  # $input re-joins lines with \n, as here
    assert code == 0 and json.loads(out)["ok"] is True


def test_bootstrap_with_an_unreadable_request(host: HostState) -> None:
    out, err, code = run_encoded(host, BOOTSTRAP, runner_stdin(b"{not json"))
    assert code == 1 and err == b""
    reply = json.loads(out)
    assert reply == {"runner": "nhs_cm", "protocol": 1, "ok": False, "error": "invalid_request",
                     "message": reply["message"], "results": []}


def test_bootstrap_unpacks_gzip_in_base64(host: HostState) -> None:
    packed = base64.b64encode(gzip.compress(runner_stdin(REQUEST)))
    out, err, code = run_encoded(host, BOOTSTRAP, packed + b"\r\n")
    assert (err, code) == (b"", 0) and json.loads(out)["results"][0]["computer_name"] == "pc-cmd"
    out, err, code = run_encoded(host, BOOTSTRAP, base64.b64encode(b"not gzip"))
    reply = json.loads(out)
    assert (err, code, reply["ok"], reply["error"]) == (b"", 1, False, "invalid_request")
    assert reply["message"].startswith("stdin is not base64 gzip")


@pytest.mark.parametrize("stdin", [RUNNER.encode(), b"", b"\0\0\0\0\n{}"])
def test_bootstrap_without_separator_answers_invalid_request(host: HostState, stdin: bytes) -> None:
    out, err, code = run_encoded(host, BOOTSTRAP, stdin)
    assert (err, code) == (b"", 1)
    assert json.loads(out) == {"runner": "nhs_cm", "protocol": 1, "ok": False, "error": "invalid_request",
                               "message": "standard input has no separator line after the runner", "results": []}


@pytest.mark.parametrize("runner", ["", "Write-Output 'not the runner'", "# NHS-CM-RUNNER v2\n"])
def test_bootstrap_without_the_runner_marker_fails_like_powershell(host: HostState, runner: str) -> None:
    out, err, code = run_encoded(host, BOOTSTRAP, runner_stdin(REQUEST, runner=runner))
    assert out == b"" and code == 1
    assert b"# NHS-CM-RUNNER v1" in err and b"FullyQualifiedErrorId" in err


@pytest.mark.parametrize("program", ["PowerShell", "powershell", "powershell.exe", "POWERSHELL.EXE",
                                     "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell.exe",
                                     "& 'C:\\WINDOWS\\system32\\WindowsPowerShell\\v1.0\\powershell.exe'"])
def test_a_nested_powershell_call_is_found_case_insensitively(host: HostState, program: str) -> None:
    """ansible-core 2.16's winrm connection encodes the command once more: the outer PowerShell runs
    `PowerShell -NoProfile ... -EncodedCommand <bootstrap>`, which Windows finds in any case."""
    inner = SHELL._encode_script(BOOTSTRAP, strict_mode=False, preserve_rc=False)
    inner = program + inner.removeprefix("PowerShell")
    out, err, code = run_encoded(host, inner, runner_stdin(REQUEST), strict_mode=False, preserve_rc=False)
    assert (err, code) == (b"", 0) and json.loads(out)["results"][0]["computer_name"] == "pc-cmd"
    # the nested program's exit code: 1 for powershell.exe -Command when it was not 0
    out, err, code = run_encoded(host, inner, runner_stdin(b"{not json"), strict_mode=False, preserve_rc=False)
    assert code == 1 and json.loads(out)["error"] == "invalid_request"


def test_cmd_starts_powershell_in_any_case(host: HostState) -> None:
    encoded = base64.b64encode(BOOTSTRAP.encode("utf-16-le")).decode()
    out, _, code = commands.execute(host, "cmd", ["/c POWERSHELL.exe -NoProfile -EncodedCommand " + encoded],
                                runner_stdin(REQUEST))
    assert code == 0 and json.loads(out)["ok"] is True


def test_pre_encoded_command_line_is_accepted(host: HostState) -> None:
    encoded = base64.b64encode(BOOTSTRAP.encode("utf-16-le")).decode()
    command = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand " + encoded
    out, _, code = commands.execute(host, *split(command), runner_stdin(REQUEST))
    assert code == 0 and json.loads(out)["ok"] is True
    out, _, code = commands.execute(host, "powershell.exe", ["-nop", "-enc", encoded], runner_stdin(REQUEST))
    assert code == 0 and json.loads(out)["ok"] is True
    out, err, code = commands.execute(host, "PowerShell", ["-NoProfile", "-Command", "-"], BOOTSTRAP.encode())
    assert (err, code) == (b"", 1) and b"no separator line" in out  # stdin was the script, so no runner follows


@pytest.mark.parametrize("program", ["PowerShell", "powershell.exe", "POWERSHELL",
                                     "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"])
def test_an_encoded_command_encoded_again_runs_as_on_windows(host: HostState, program: str) -> None:
    """ansible-core 2.16 to 2.18: the winrm connection encodes the runner's already encoded command
    line once more; the outer PowerShell runs the inner one, found whatever its case or path."""
    encoded = base64.b64encode(BOOTSTRAP.encode("utf-16-le")).decode()
    inner = f"{program} -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {encoded}"
    out, err, code = run_encoded(host, inner, runner_stdin(REQUEST), strict_mode=False, preserve_rc=False)
    assert (err, code) == (b"", 0) and json.loads(out)["ok"] is True
    out, err, code = run_encoded(host, "Frobnicate -EncodedCommand " + encoded, strict_mode=False, preserve_rc=False)
    assert code == 1 and b"The term 'Frobnicate' is not recognized" in err


# -- raw one-liners ---------------------------------------------------------------------------

@pytest.mark.parametrize(("script", "stdout", "code"), [
    ("echo hello-raw", b"hello-raw\r\n", 0),
    ("echo hello world", b"hello\r\nworld\r\n", 0),
    ("Write-Output 'a b'", b"a b\r\n", 0),
    ("Write-Output -InputObject x", b"x\r\n", 0),
    ("'it''s literal'", b"it's literal\r\n", 0),
    ('"double"', b"double\r\n", 0),
    ("hostname", b"pc-cmd\r\n", 0),
    ("exit 3", b"", 3),
    ("exit", b"", 0),
    ("echo a; exit 7; echo never", b"a\r\n", 7),
    ("echo one\necho two", b"one\r\ntwo\r\n", 0),
    ("# a comment\necho x", b"x\r\n", 0),
    ("", b"", 0),
])
def test_raw_one_liners(host: HostState, script: str, stdout: bytes, code: int) -> None:
    for encode in ({"strict_mode": False, "preserve_rc": False}, {}):
        out, err, rc = run_encoded(host, script, **encode)
        assert (out, err, rc) == (stdout, b"", code), encode


def test_console_encoding_prefix_is_ignored(host: HostState) -> None:
    script = "try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding } catch {}; echo ok"
    assert run_encoded(host, script) == (b"ok\r\n", b"", 0)


def test_unknown_term(host: HostState) -> None:
    out, err, code = run_encoded(host, "frobnicate --now", strict_mode=False, preserve_rc=False)
    assert out == b"" and code == 1
    text = err.decode()
    assert text.startswith("frobnicate : The term 'frobnicate' is not recognized as the name of a cmdlet, "
                           "function, script file, or operable program.")
    assert "CommandNotFoundException" in text and "\r\n" in text


def test_output_before_an_error_is_kept(host: HostState) -> None:
    out, err, code = run_encoded(host, "echo before; nope; echo after")
    assert out == b"before\r\nafter\r\n" and b"'nope'" in err and code == 1


@pytest.mark.parametrize("script", ["Get-Service WinRM", "$x = 1", "if ($true) { 1 }", "[Environment]::MachineName"])
def test_powershell_the_emulator_cannot_run(host: HostState, script: str) -> None:
    out, err, code = run_encoded(host, script)
    assert out == b"" and code == 1 and b"does not run PowerShell" in err


def test_ansible_module_wrapper_is_refused_as_json(host: HostState) -> None:
    script = "$codeJson = foreach ($in in $input) {\n$in\n}"
    out, _, code = run_encoded(host, script, b"{}\n\0\0\0\0\n{}")
    assert code == 1 and json.loads(out)["failed"] is True


def test_bad_encoded_command(host: HostState) -> None:
    out, err, code = commands.execute(host, "PowerShell", ["-EncodedCommand", "%%%"], b"")
    assert (out, code) == (b"", 1) and b"Base64" in err


def test_file_parameter(host: HostState) -> None:
    out, err, code = commands.execute(host, "PowerShell", ["-File", "C:\\x.ps1"], b"")
    assert out == b"" and code == 1 and b"-File" in err


def test_command_parameter(host: HostState) -> None:
    assert commands.execute(host, "PowerShell", ["-NoProfile -Command echo hi"], b"") == (b"hi\r\n", b"", 0)
    assert commands.execute(host, "powershell", ["hostname"], b"") == (b"pc-cmd\r\n", b"", 0)


# -- cmd.exe ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "arguments", "result"), [
    ("echo", ["hello there"], (b"hello there\r\n", b"", 0)),
    ("echo", [], (b"ECHO is on.\r\n", b"", 0)),
    ("hostname", [], (b"pc-cmd\r\n", b"", 0)),
    ("exit", ["/b", "4"], (b"", b"", 4)),
    ("cmd", ["/c", "echo x"], (b"x\r\n", b"", 0)),
    ("", [], (b"", b"", 0)),
])
def test_cmd_lines(host: HostState, command: str, arguments: list[str], result: tuple[bytes, bytes, int]) -> None:
    assert commands.execute(host, command, arguments, b"") == result


def test_cmd_unknown(host: HostState) -> None:
    out, err, code = commands.execute(host, "ipconfig", ["/all"], b"")
    assert out == b"" and code == 9009
    assert err == (b"'ipconfig' is not recognized as an internal or external command,\r\n"
                   b"operable program or batch file.\r\n")


def test_strip_ansible_wrapping() -> None:
    wrapped = SHELL._encode_script("echo x")
    script = base64.b64decode(wrapped.split()[-1]).decode("utf-16-le")
    lines = [line.strip() for line in script.splitlines()]
    assert commands.strip_ansible_wrapping(lines) == ["echo x"]


# -- the contract with the collection (plugins/plugin_utils/_runner/*.py) -------------------------------

def _protocol() -> SimpleNamespace:
    """The collection's runner protocol (``emulated_host.collection_protocol``)."""
    return collection_protocol()


def _runner_text() -> str:
    """The collection's host code, joined as the controller sends it (RUNNER_FILES)."""
    return runner_text(_protocol())


def needs_collection(test: t.Callable[..., None]) -> t.Callable[..., None]:
    """The contract tests run against the collection in this repository: never skipped."""
    return test


@needs_collection
def test_field_tables_match_the_collection() -> None:
    protocol = _protocol()
    assert tuple(protocol.OPERATIONS) == ops.OPERATIONS
    for name, spec in protocol.OPERATIONS.items():
        assert tuple(spec["request"]) == ops.REQUEST_FIELDS[name], name
        assert tuple(spec["reply"]) == ops.REPLY_FIELDS[name], name
    assert protocol.PROTOCOL == ops.PROTOCOL and protocol.RUNNER_NAME == ops.RUNNER
    assert protocol.ERROR_KINDS == ops.ERROR_KINDS
    assert (protocol.RUNNER_MARKER, protocol.BOOTSTRAP_MARKER) == (commands.RUNNER_MARKER, commands.BOOTSTRAP_MARKER)
    assert protocol.SERVICE_STATES == scenario.SERVICE_STATES
    assert protocol.SERVICE_START_MODES == scenario.START_MODES
    assert read_ops.USER_SID.pattern == protocol.USER_SID_PATTERN
    assert protocol.REPLY_GZIP_PREFIX.encode("ascii") == ops.REPLY_GZIP_PREFIX


@needs_collection
@pytest.mark.parametrize("compress_reply", [True, False])
def test_the_reply_is_compressed_when_the_collection_asks(host: HostState, compress_reply: bool) -> None:
    protocol = _protocol()
    request = [{"op": "os_info"}, {"op": "reg_read", "key": "HKLM\\SOFTWARE\\Nope"}]
    stdin = protocol.build_stdin(_runner_text(), request, compress_reply=compress_reply)
    out, err, code = commands.execute(host, *split(SHELL._encode_script(protocol.BOOTSTRAP)), stdin)
    assert (err, code) == (b"", 0) and out.endswith(b"\r\n") and out.count(b"\n") == 1
    assert out.startswith(ops.REPLY_GZIP_PREFIX) is compress_reply
    if compress_reply:
        packed = base64.b64decode(out[len(ops.REPLY_GZIP_PREFIX):].rstrip(), validate=True)
        assert json.loads(gzip.decompress(packed))["ok"] is True
    results = protocol.parse_reply(out, err, code, request)
    assert results[0]["computer_name"] == "pc-cmd" and results[1] == {"ok": True, "exists": False, "values": {},
                                                                       "subkeys": {}}


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_request_with_a_bad_compress_field_is_refused(host: HostState, value: object) -> None:
    out, _, code = run_encoded(host, BOOTSTRAP, runner_stdin({**REQUEST, "compress": value}))
    assert code == 1 and not out.startswith(ops.REPLY_GZIP_PREFIX)
    assert json.loads(out)["message"] == "the request field 'compress' must be true or false"


def test_a_refused_request_is_answered_in_plain_json_even_with_compress(host: HostState) -> None:
    out, _, code = run_encoded(host, BOOTSTRAP, runner_stdin({**REQUEST, "compress": True, "write_errors": "maybe"}))
    assert code == 1 and json.loads(out)["error"] == "invalid_request"


@needs_collection
def test_every_runner_the_collection_sends_is_recognised(host: HostState) -> None:
    protocol = _protocol()
    for name in protocol.OPERATIONS:
        runner = protocol.runner_for_ops(_runner_text(), frozenset({name}))
        assert len(runner) < len(_runner_text()) / 2
        stdin = runner.encode() + b"\n\0\0\0\0\n" + json.dumps({"protocol": 1, "ops": [], "compress": True}).encode()
        out, err, code = commands.execute(host, *split(SHELL._encode_script(protocol.BOOTSTRAP)), stdin)
        assert (err, code) == (b"", 0) and protocol.parse_reply(out, err, code, []) == [], name


@needs_collection
def test_the_collection_talks_to_every_library_host() -> None:
    protocol = _protocol()
    every_op = [
        {"op": "reg_read", "key": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall", "view": "32",
         "depth": 1, "names": ["DisplayName"]},
        {"op": "reg_read", "key": "HKU", "depth": 2},
        {"op": "process_list"}, {"op": "service_query", "display_names": ["NHS Port Service"]},
        {"op": "tcp_listeners", "ports": [43487, 44213, 45031, 46478, 48853]},
        {"op": "http_get", "url": "http://localhost:43487/PRS/GetPortNumber", "timeout_ms": 1000},
        {"op": "file_info", "paths": ["C:\\Program Files (x86)\\HSCIC\\Identity Agent\\IdentityAgent.exe"]},
        {"op": "session_list"},
        {"op": "user_hives_read", "paths": [["Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings", 2]],
         "include_offline": True},
        {"op": "gpo_registry_settings", "key_prefixes": ["SOFTWARE\\Policies"]},
        {"op": "os_info"},
    ]
    stdin = protocol.build_stdin(_runner_text(), every_op)
    command = SHELL._encode_script(protocol.BOOTSTRAP)
    for host in load_estate([str(ROOT / "scenarios")]).hosts:
        out, err, code = commands.execute(host, *split(command), stdin)
        results = protocol.parse_reply(out, err, code, every_op)
        for op, result in zip(every_op, results, strict=True):
            reply = protocol.OPERATIONS[op["op"]]["reply"]
            assert set(result) == {"ok", *reply}, (host.name, op["op"])
            for field, spec in reply.items():
                for item in result[field] if spec.get("items") else []:
                    assert set(item) == set(spec["items"]), (host.name, op["op"], field)
        assert results[-1]["emulated"] is True and results[-1]["computer_name"] == host.name
