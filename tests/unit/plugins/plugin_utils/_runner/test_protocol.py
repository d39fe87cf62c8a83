"""The runner protocol: the operation table, request validation, stdin and reply parsing."""

from __future__ import annotations

import ast
import base64
import gzip
import json
import re
import typing as t

import pytest
from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import RUNNER_DIR, runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.assembly import (
    assemble_runner,
    join_runner,
    runner_for_ops,
    sections_for,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import OPERATIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    BOOTSTRAP,
    BOOTSTRAP_MARKER,
    REPLY_GZIP_PREFIX,
    RUNNER_MARKER,
    RequestError,
    RunnerError,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import decode_stderr, parse_reply
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import (
    _packed_runner,
    build_request,
    build_stdin,
    split_stdin,
    validate_ops,
)

RUNNER = "# NHS-CM-RUNNER v1\nparam([string]$RequestJson)\n'hello'\n"
FULL_RUNNER = runner_text()
CMD_EXE_LIMIT = 8191

CLIXML_ERROR = (
    "#< CLIXML\r\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<S S="Error">Get-CimInstance : Access denied _x000D__x000A_</S>'
    '<S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>'
)
CLIXML_PROGRESS = (
    "#< CLIXML\r\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for '
    "first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR>"
    "</MS></Obj></Objs>"
)


def _reply(results: list[dict] | str, **top: object) -> str:
    reply = {"runner": "nhs_cm", "protocol": 1, "ok": True, "results": results}
    reply.update(top)
    return json.dumps(reply)


# -- the table --------------------------------------------------------------------------------

#: The Python modules of the runner's protocol and the ones each imports (docs/runner-protocol.md):
#: one way, from the names to the tables to what builds a request or reads a reply.
RUNNER_MODULES = {
    "protocol": set(),
    "operations": set(),
    "assembly": {"protocol", "operations"},
    "request": {"protocol", "operations", "assembly"},
    "reply": {"protocol", "operations"},
}


@pytest.mark.parametrize("name", sorted(RUNNER_MODULES))
def test_the_protocol_modules_import_one_way(name: str) -> None:
    package = "ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner"
    tree = ast.parse((RUNNER_DIR / f"{name}.py").read_text(encoding="utf-8"))
    imported = {node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"{package}.")}
    whole = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and node.module == package for alias in node.names}
    assert imported | whole == RUNNER_MODULES[name], f"_runner/{name}.py imports {sorted(imported | whole)}"
    inner = [node.lineno for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             for child in ast.walk(node) if isinstance(child, ast.ImportFrom) and child.module
             and child.module.startswith("ansible_collections.")]
    assert not inner, f"_runner/{name}.py imports the collection inside functions (lines {inner})"


def test_operations_cover_the_documented_ops() -> None:
    assert set(OPERATIONS) == {"reg_read", "process_list", "service_query", "tcp_listeners", "http_get",
                               "file_info", "session_list", "os_info", "user_hives_read", "gpo_registry_settings",
                               "browser_site_settings",
                               "reg_write", "reg_delete", "reg_delete_key", "backup_save", "backup_load",
                               "backup_list", "service_set", "task_run", "process_stop", "file_list"}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operation_specs_are_complete_and_consistent(name: str) -> None:
    spec = OPERATIONS[name]
    assert spec["description"] and spec["reply"]
    for field, field_spec in spec["request"].items():
        assert field_spec["type"] in ("str", "int", "bool", "list[str]", "list[int]", "list[path_depth]",
                                      "list[dict]", "reg_data"), field
        assert field_spec["description"]
        default = field_spec["default"]
        if field_spec["required"]:
            assert default is None
        if default is not None and "choices" in field_spec:
            assert default in field_spec["choices"]
        if default is not None and "min" in field_spec:
            assert field_spec["min"] <= default <= field_spec["max"]
        # a spec's default must itself validate
        if default is not None:
            validate_ops([{"op": name, **_required(name), field: default}])
    for field_spec in spec["reply"].values():
        assert field_spec["type"] and field_spec["description"]


def test_os_info_reports_whether_it_is_emulated() -> None:
    assert set(OPERATIONS["os_info"]["reply"]) == {"product", "version", "computer_name", "emulated"}
    assert OPERATIONS["os_info"]["reply"]["emulated"]["type"] == "bool"


def _required(name: str) -> dict:
    examples = {"key": "HKLM\\SOFTWARE\\Policies\\Google\\Chrome", "url": "http://localhost:43487/PRS/GetPortNumber",
                "paths": ["C:\\x.exe"], "name": "x", "type": "REG_DWORD", "data": 1, "id": "b1", "entries": [],
                "state": "started", "user": "S-1-5-21-1-2-3-1001", "session": 1, "command": "C:\\x.exe", "pid": 9,
                "image": "C:\\x.exe", "dir": "C:\\x", "types": ["local_network_access"]}
    if name == "task_run":
        examples["name"] = "nhs_cm_x"
    if name == "user_hives_read":
        examples["paths"] = [["Software\\Policies", 1]]
    return {field: examples[field] for field, spec in OPERATIONS[name]["request"].items() if spec["required"]}


# -- validation -------------------------------------------------------------------------------

def test_validate_fills_defaults_and_keeps_given_values() -> None:
    ops = validate_ops([{"op": "reg_read", "key": "HKLM\\SOFTWARE\\X", "depth": 2}, {"op": "os_info"}])
    assert ops == [{"op": "reg_read", "key": "HKLM\\SOFTWARE\\X", "view": "64", "depth": 2, "names": None},
                   {"op": "os_info"}]


@pytest.mark.parametrize(("ops", "index", "field", "fragment"), [
    ([{"op": "reg_read"}], 0, "key", "ops[0] (reg_read): field 'key' is required (a string)"),
    ([{"op": "os_info"}, {"op": "reg_set", "key": "HKLM\\X"}], 1, "op",
     "ops[1]: field 'op' must be one of reg_read, process_list"),
    ([{"op": "process_list", "all": True}], 0, "all", "ops[0] (process_list): unknown field 'all'; allowed: no fields"),
    ([{"op": "reg_read", "key": "HKLM\\X", "view": "16"}], 0, "view",
     "field 'view' must be one of '64', '32', not '16'"),
    ([{"op": "reg_read", "key": "HKLM\\X", "depth": 5}], 0, "depth", "field 'depth' must be an integer from 0 to 4"),
    ([{"op": "reg_read", "key": "HKLM\\X", "depth": True}], 0, "depth", "not True"),
    ([{"op": "reg_read", "key": "HKLM\\X", "names": ["a", 1]}], 0, "names", "must be a list of strings"),
    ([{"op": "reg_read", "key": "HKCU\\Software\\X"}], 0, "key", "must not be HKCU"),
    ([{"op": "reg_read", "key": "HKEY_LOCAL_MACHINE\\X"}], 0, "key", "hive abbreviation HKLM or HKU"),
    ([{"op": "reg_read", "key": "HKLM\\SOFTWARE\\"}], 0, "key", "trailing backslash"),
    ([{"op": "http_get", "url": "http://example.com:43487/"}], 0, "url", "host localhost, 127.0.0.1 or [::1]"),
    ([{"op": "http_get", "url": "http://user@localhost:43487/"}], 0, "url", "host localhost"),
    ([{"op": "http_get", "url": "ftp://localhost/x"}], 0, "url", "must be an http or https URL"),
    ([{"op": "http_get", "url": "http://localhost:43487/", "timeout_ms": 50}], 0, "timeout_ms",
     "an integer from 100 to 30000, not 50"),
    ([{"op": "file_info", "paths": ["relative\\x.exe"]}], 0, "paths", "absolute Windows paths"),
    ([{"op": "tcp_listeners", "ports": [43487, 70000]}], 0, "ports", "ports from 1 to 65535, not 70000"),
    ([{"op": "service_query", "names": "SCardSvr"}], 0, "names", "must be a list of strings, not 'SCardSvr'"),
    ([{"op": "browser_site_settings", "types": ["local_network_access", "../x"]}], 0, "types",
     "not content-setting names: ['../x']"),
    ([{"op": "browser_site_settings", "types": ["local_network_access\n"]}], 0, "types", "not content-setting"),
    ([{"op": "browser_site_settings", "types": ["cookies"], "max_bytes": 100 * 2**20}], 0, "max_bytes",
     "an integer from 1024 to 67108864"),
])
def test_validation_errors_name_index_field_and_what_is_allowed(ops: list, index: int, field: str,
                                                                fragment: str) -> None:
    with pytest.raises(RequestError) as caught:
        validate_ops(ops)
    assert fragment in str(caught.value)
    assert (caught.value.index, caught.value.field) == (index, field)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("ops", "fragment"), [
    ({"op": "os_info"}, "ops must be a list of operations, not dict"),
    ([], "ops is empty"),
    (["os_info"], "ops[0]: an operation must be a mapping, not str"),
])
def test_validation_of_the_list_itself(ops: object, fragment: str) -> None:
    with pytest.raises(RequestError, match=r".*") as caught:
        validate_ops(ops)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("url", ["http://localhost:43487/PRS/GetPortNumber", "https://127.0.0.1:1/",
                                 "http://[::1]:48853/x", "http://LOCALHOST/"])
def test_loopback_urls_are_accepted(url: str) -> None:
    validate_ops([{"op": "http_get", "url": url}])


@pytest.mark.parametrize("key", ["HKLM", "HKU", "hklm\\software\\x", "HKU\\S-1-5-21-1-2-3-1001\\Software"])
def test_registry_keys_are_accepted(key: str) -> None:
    validate_ops([{"op": "reg_read", "key": key}])


# -- bootstrap and stdin ----------------------------------------------------------------------

def _command() -> str:
    return ShellModule()._encode_script(BOOTSTRAP, as_list=False, strict_mode=False, preserve_rc=False)


def test_bootstrap_command_line_is_far_below_the_cmd_exe_limit() -> None:
    command = _command()
    assert len(command) < CMD_EXE_LIMIT
    assert len(command) < 4096, "keep the bootstrap small: the runner belongs on stdin"


def test_the_protocol_doc_gives_the_command_lines_length() -> None:
    doc = RUNNER_DIR.parents[2].joinpath("docs", "runner-protocol.md").read_text(encoding="utf-8")
    assert f"{len(_command()):,} characters once encoded" in doc


def test_bootstrap_command_is_not_encoded_again_by_the_winrm_connection() -> None:
    prefix = ShellModule()._encode_script("", as_list=False, strict_mode=False, preserve_rc=False)
    command = _command()
    assert command.startswith(prefix)
    script = base64.b64decode(command.split(" ")[-1]).decode("utf-16-le")
    assert script.splitlines()[0] == BOOTSTRAP_MARKER


def test_bootstrap_checks_the_language_mode_before_it_calls_dotnet() -> None:
    # In ConstrainedLanguage mode any static .NET call fails (the reply could not be written
    # either): the check must come first and throw, so that stderr says why.
    check = BOOTSTRAP.index("if ($m -ne 'FullLanguage') { throw ")
    assert check < BOOTSTRAP.index("::")
    assert check < BOOTSTRAP.index("try {")


def test_bootstrap_is_ascii_and_starts_with_its_marker() -> None:
    assert BOOTSTRAP.splitlines()[0] == "# NHS-CM-BOOTSTRAP v1"
    BOOTSTRAP.encode("ascii")


def test_stdin_is_runner_separator_request() -> None:
    ops = [{"op": "reg_read", "key": "HKLM\\SOFTWARE\\Caf\u00e9"}, {"op": "session_list"}]
    stdin = build_stdin(RUNNER.replace("\n", "\r\n"), ops, compress=False)
    text = stdin.decode("ascii")
    runner, separator, request = text.partition("\n\0\0\0\0\n")
    assert separator and runner == RUNNER.rstrip("\n")
    assert "\r" not in runner
    assert "\n" not in request
    assert json.loads(request) == {"protocol": 1, "ops": validate_ops(ops), "compress": True}
    assert "\\u00e9" in request
    assert split_stdin(stdin) == (runner, {"protocol": 1, "ops": validate_ops(ops), "compress": True})


def test_the_reply_is_asked_compressed_unless_told_otherwise() -> None:
    ops = [{"op": "os_info"}]
    assert json.loads(build_request(ops)) == {"protocol": 1, "ops": ops, "compress": True}
    assert json.loads(build_request(ops, compress_reply=False)) == {"protocol": 1, "ops": ops}
    assert split_stdin(build_stdin(RUNNER, ops, compress_reply=False))[1] == {"protocol": 1, "ops": ops}


def test_stdin_is_sent_gzipped_in_base64_by_default() -> None:
    ops = [{"op": "os_info"}, {"op": "process_list"}]
    runner = FULL_RUNNER
    plain = build_stdin(runner, ops, compress=False)
    stdin = build_stdin(runner, ops)
    assert re.fullmatch(rb"[A-Za-z0-9+/]+=*", stdin), "one line of base64, as the bootstrap expects"
    assert gzip.decompress(base64.b64decode(stdin)) == plain
    assert len(stdin) < len(plain) / 2, "the runner travels compressed"
    sent = runner_for_ops(runner, frozenset({"os_info", "process_list"}))
    request = {"protocol": 1, "ops": validate_ops(ops), "compress": True}
    assert split_stdin(stdin) == split_stdin(plain) == (sent, request)


def test_each_call_compresses_only_its_request() -> None:
    first = [{"op": "reg_read", "key": "HKLM\\SOFTWARE\\A"}]
    second = [{"op": "reg_read", "key": "HKLM\\SOFTWARE\\B", "depth": 2}]
    runner = FULL_RUNNER + "\n"  # a text of its own: a fresh cache entry
    hits = _packed_runner.cache_info().hits
    assert split_stdin(build_stdin(runner, first))[1]["ops"] == validate_ops(first)
    assert split_stdin(build_stdin(runner, second))[1]["ops"] == validate_ops(second)
    assert _packed_runner.cache_info().hits == hits + 1, "the compressed runner is built once per op set"


def _runner_of(names: set[str]) -> str:
    return runner_for_ops(FULL_RUNNER, frozenset(names))


def test_a_read_request_carries_no_write_code() -> None:
    reads = _runner_of({"reg_read", "process_list", "os_info", "user_hives_read"})
    assert reads.splitlines()[0] == RUNNER_MARKER
    for absent in ("function Assert-WriteTarget", "$WriteTargets", "$Operations['reg_write']",
                   "function Get-MissingKeys", "Register-ScheduledTask", "$Operations['session_list']",
                   "Get-NetTCPConnection"):
        assert absent not in reads
    for present in ("$Operations['reg_read']", "$Operations['user_hives_read']", "function Read-RegistryNode",
                    "function Read-OfflineHive", "function Get-ProcessImages", "function Write-Reply"):
        assert present in reads
    writes = _runner_of({"reg_write", "backup_save"})
    assert "function Assert-WriteTarget" in writes and "function Get-MissingKeys" in writes
    assert "$Operations['process_list']" not in writes


def test_the_runner_is_minified_but_here_strings_are_kept_exactly() -> None:
    sent = _runner_of({"session_list"})
    assert all(line == line.strip() and line for line in sent.splitlines())
    assert not any(line.startswith("#") for line in sent.splitlines()[1:])
    here = "# NHS-CM-RUNNER v1\n$x = @'\n    kept  \n# kept too\n'@\n    $y = 1  \n"
    assert assemble_runner(here, set()) == "# NHS-CM-RUNNER v1\n$x = @'\n    kept  \n# kept too\n'@\n$y = 1"
    assert len(_runner_of(set(OPERATIONS))) < len(FULL_RUNNER) * 0.8


def test_a_region_runs_to_the_next_region_or_the_end_of_its_file() -> None:
    first = "# NHS-CM-RUNNER v1\n$common = 1\n# region: one\n$one = 1\n# region: two\n$two = 2"
    text = join_runner([("a.ps1", first), ("b.ps1", "# b.ps1: header\n$tail = 3")])
    head = ["# NHS-CM-RUNNER v1", "$common = 1"]
    assert assemble_runner(text, {"one"}).splitlines() == [*head, "$one = 1", "$tail = 3"]
    assert assemble_runner(text, {"two"}).splitlines() == [*head, "$two = 2", "$tail = 3"]


@pytest.mark.parametrize(("text", "message"), [
    ("# NHS-CM-RUNNER v1\n# endregion\n", "without"),
    ("# NHS-CM-RUNNER v1\n$x = @'\n# region: a\n", "ends inside a here-string"),
])
def test_bad_regions_are_refused(text: str, message: str) -> None:
    with pytest.raises(RunnerError, match=message):
        assemble_runner(text, set())


def test_an_operation_without_sections_is_refused() -> None:
    with pytest.raises(RequestError, match="RUNNER_SECTIONS"):
        sections_for(["nope"])


def test_stdin_refuses_invalid_ops_and_a_foreign_runner() -> None:
    with pytest.raises(RequestError):
        build_stdin(RUNNER, [{"op": "nope"}])
    with pytest.raises(RunnerError, match="marker line"):
        build_stdin("param($x)\n", [{"op": "os_info"}])
    with pytest.raises(RunnerError, match="separator"):
        build_stdin(RUNNER + "\0\0\0\0\n", [{"op": "os_info"}])


# -- reply parsing ----------------------------------------------------------------------------

OPS = [{"op": "os_info"}, {"op": "tcp_listeners", "ports": [43487]}]
OS = {"ok": True, "product": "Windows 11 Pro", "version": "10.0.22631", "computer_name": "DESK", "emulated": False}
LISTENERS = {"ok": True, "listeners": [{"address": "127.0.0.1", "port": 43487, "pid": 2100}]}


def test_a_good_reply_gives_one_result_per_op() -> None:
    assert parse_reply(_reply([OS, LISTENERS]) + "\r\n", "", 0, OPS) == [OS, LISTENERS]
    assert parse_reply(_reply([OS, LISTENERS]).encode(), b"", None, OPS) == [OS, LISTENERS]


def test_an_error_result_is_returned_not_raised() -> None:
    denied = {"ok": False, "error": "access_denied", "message": "Requested registry access is not allowed."}
    assert parse_reply(_reply([OS, denied]), "", 0, OPS)[1] == denied


def _packed(text: str) -> str:
    return REPLY_GZIP_PREFIX + base64.b64encode(gzip.compress(text.encode("ascii"))).decode("ascii")


def test_a_compressed_reply_is_unpacked() -> None:
    packed = _packed(_reply([OS, LISTENERS]))
    assert parse_reply(packed + "\r\n", "", 0, OPS) == [OS, LISTENERS]
    assert parse_reply(("WARNING: something\r\n" + packed).encode(), b"", None, OPS) == [OS, LISTENERS]
    refused = _packed(_reply([], ok=False, error="invalid_request", message="unknown op"))
    with pytest.raises(RunnerError, match="refused the request \\(invalid_request\\): unknown op"):
        parse_reply(refused, "", 1, OPS)


@pytest.mark.parametrize("garbage", [
    "NHS-CM-GZIP:not base64!",
    "NHS-CM-GZIP:" + base64.b64encode(b"not gzip at all").decode(),
    "NHS-CM-GZIP:" + base64.b64encode(gzip.compress(b"{not json", mtime=0)).decode(),
    "NHS-CM-GZIP:" + base64.b64encode(gzip.compress(_reply([OS]).encode(), mtime=0)[:-12]).decode(),
], ids=["not-base64", "not-gzip", "not-json", "truncated-gzip"])
def test_a_garbled_compressed_reply_is_a_readable_runner_error(garbage: str) -> None:
    with pytest.raises(RunnerError) as caught:
        parse_reply(garbage + "\r\n", "", 0, OPS)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert "compressed reply cannot be unpacked" in message or "not JSON" in message


def test_stray_lines_before_the_reply_are_tolerated() -> None:
    assert parse_reply("WARNING: something\r\n" + _reply([OS, LISTENERS]), "", 0, OPS) == [OS, LISTENERS]


def test_the_last_reply_line_decides_whether_it_is_compressed() -> None:
    # A banner that happens to start with the prefix does not hide the plain reply after it ...
    assert parse_reply("NHS-CM-GZIP:\n" + _reply([OS, LISTENERS]), "", 0, OPS) == [OS, LISTENERS]
    # ... nor a stray JSON-looking line the compressed reply after it.
    assert parse_reply('{"banner": 1}\r\n' + _packed(_reply([OS, LISTENERS])), "", 0, OPS) == [OS, LISTENERS]


def test_a_constrained_session_says_why_in_the_module_message() -> None:
    # What Windows PowerShell 5.1 prints on stderr (CLIXML over WinRS) when the bootstrap throws.
    lines = ["PowerShell runs in ConstrainedLanguage mode; the runner needs FullLanguage", "At line:4 char:30",
             "+ if ($m -ne 'FullLanguage') { throw \"PowerShell runs in $m mode; the r ...",
             "    + CategoryInfo          : OperationStopped: (PowerShell runs...eds FullLanguage:String) [], "
             "RuntimeException"]
    stderr = ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
              + "".join(f'<S S="Error">{line}_x000D__x000A_</S>' for line in lines) + "</Objs>")
    with pytest.raises(RunnerError) as caught:
        parse_reply("", stderr, 1, [{"op": "os_info"}])
    assert str(caught.value).startswith("the runner failed with exit code 1 and no output: PowerShell runs in "
                                        "ConstrainedLanguage mode; the runner needs FullLanguage At line:4")


@pytest.mark.parametrize(("stdout", "stderr", "rc", "message"), [
    ("", "", 0, "the runner returned no output (exit code 0)"),
    ("  \r\n", "", 0, "the runner returned no output (exit code 0)"),
    ("", CLIXML_ERROR, 1, "the runner failed with exit code 1 and no output: Get-CimInstance : Access denied "
                          "At line:1 char:1 (connect with an account in the host's local Administrators group)"),
    ("", "The term 'PowerShell' is not recognized", 9009,
     "the runner failed with exit code 9009 and no output: The term 'PowerShell' is not recognized"),
    ("<html>" + "x" * 300, "", 0, "the runner's reply is not JSON (exit code 0): '<html>" + "x" * 194 + "'"),
    ("Get-Foo : oops\r\n", CLIXML_ERROR, 1, "the runner's reply is not JSON (exit code 1): 'Get-Foo : oops'; stderr: "
                                            "Get-CimInstance : Access denied At line:1 char:1"),
    ('{"hello": 1}', "", 0, "the reply is not from the nhs_cm runner: '{\"hello\": 1}'"),
    (_reply([], protocol=2), "", 0, "the runner speaks protocol 2, this collection 1"),
    (_reply([OS, LISTENERS]), "boom", 3, "the runner failed with exit code 3: boom"),
    (_reply([OS]), "", 0, "the runner answered 1 results for 2 operations"),
    (_reply([OS, {"ok": True}]), "", 0, "results[1] (tcp_listeners) lacks field 'listeners'"),
    (_reply([OS, {"ok": True, "listeners": [{"port": 1}]}]), "", 0,
     "results[1] (tcp_listeners) listeners[0] lacks address, pid"),
    (_reply([OS, {"ok": False, "error": "exploded"}]), "", 0, "results[1] (tcp_listeners) has unknown error kind"),
    (_reply([OS, "x"]), "", 0, "results[1] (tcp_listeners) is not a result with 'ok'"),
    (_reply("x"), "", 0, "'results' is not a list"),
])
def test_unusable_replies_raise_one_readable_line(stdout: str, stderr: str, rc: int, message: str) -> None:
    with pytest.raises(RunnerError) as caught:
        parse_reply(stdout, stderr, rc, OPS)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_refused_request_gives_the_runner_message() -> None:
    refused = _reply([], ok=False, error="invalid_request", message="the request must have protocol 1")
    with pytest.raises(RunnerError, match=r"^the runner refused the request \(invalid_request\): the request "
                                          r"must have protocol 1$"):
        parse_reply(refused, "", 1, OPS)


def test_access_denied_for_the_whole_request_says_what_to_do() -> None:
    denied = _reply([], ok=False, error="access_denied", message="Access is denied.")
    with pytest.raises(RunnerError, match=r"^access denied on the host: Access is denied\. \(connect with an account "
                                          r"in the host's local Administrators group\)$"):
        parse_reply(denied, "", 1, OPS)


def test_clixml_progress_records_are_not_errors() -> None:
    assert decode_stderr(CLIXML_PROGRESS) == ""
    assert parse_reply(_reply([OS, LISTENERS]), CLIXML_PROGRESS, 0, OPS) == [OS, LISTENERS]


def test_clixml_errors_are_decoded_to_one_line() -> None:
    assert decode_stderr(CLIXML_ERROR) == "Get-CimInstance : Access denied At line:1 char:1"
    assert decode_stderr(CLIXML_ERROR.encode()) == "Get-CimInstance : Access denied At line:1 char:1"
    assert decode_stderr("#< CLIXML\r\n<Objs broken") == "#< CLIXML <Objs broken"


def test_without_ops_only_the_shape_is_checked() -> None:
    assert parse_reply(_reply([{"ok": True}]), "", 0) == [{"ok": True}]


@pytest.mark.parametrize("op", [
    {"op": "backup_load", "id": "abc\n"},
    {"op": "task_run", "name": "nhs_cm_x\n", "user": "S-1-5-21-1-2-3-1001", "session": 1, "command": "C:\\x.exe"},
    {"op": "task_run", "name": "nhs_cm_x", "user": "S-1-5-21-1-2-3-1001\n", "session": 1, "command": "C:\\x.exe"},
])
def test_a_trailing_newline_never_passes_a_pattern(op: dict[str, t.Any]) -> None:
    with pytest.raises(RequestError):
        validate_ops([op])
