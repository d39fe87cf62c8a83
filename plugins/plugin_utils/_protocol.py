# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The runner protocol v1 (docs/runner-protocol.md): the single source of truth.

``OPERATIONS`` lists every operation with its request fields (type, required or default,
allowed values) and reply fields. ``validate_ops`` checks a request before it is sent,
``build_stdin`` makes the runner's standard input and ``parse_reply`` turns what came back into
one result per operation, raising ``RunnerError`` with a one-line, readable reason otherwise.
The PowerShell runner (``nhs_cm_runner.ps1``) and the emulator are tested against this table.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import json
import re
import typing as t
from urllib.parse import urlsplit

PROTOCOL = 1
RUNNER_NAME = "nhs_cm"
RUNNER_MARKER = "# NHS-CM-RUNNER v1"
BOOTSTRAP_MARKER = "# NHS-CM-BOOTSTRAP v1"
#: The line that separates the runner text from the request JSON on standard input.
SEPARATOR = "\0\0\0\0"
ERROR_KINDS = ("access_denied", "not_found", "invalid_request", "timeout", "failed")

#: The command-line script. It reads all of standard input the way ansible's bootstrap_wrapper
#: does (``$input``, one string per line), splits it at the first ``\0\0\0\0`` line, makes a
#: script block of part one (the runner) and invokes it with part two (the request JSON). Its
#: own failures are answered in the reply format with exit code 1. It stays small: ansible's
#: ``_encode_script`` makes it about 2.7 times longer on the command line (limit 8,191).
BOOTSTRAP = r"""# NHS-CM-BOOTSTRAP v1
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
function Exit-Bootstrap([string]$Kind, [string]$Message) {
    $reply = @{ runner = 'nhs_cm'; protocol = 1; ok = $false; error = $Kind; message = $Message; results = @() }
    $json = ConvertTo-Json -Compress -InputObject $reply
    [Console]::Out.Write([regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value }))
    exit 1
}
$mode = $ExecutionContext.SessionState.LanguageMode
if ($mode -ne 'FullLanguage') {
    Exit-Bootstrap 'failed' "PowerShell runs in $mode mode; the runner needs FullLanguage"
}
$text = @($input) -join "`n"
$at = $text.IndexOf("`n`0`0`0`0`n")
if ($at -lt 0) {
    Exit-Bootstrap 'invalid_request' 'standard input has no separator line after the runner'
}
try {
    $runner = [ScriptBlock]::Create($text.Substring(0, $at))
}
catch {
    Exit-Bootstrap 'failed' "the runner does not parse: $($_.Exception.Message)"
}
& $runner $text.Substring($at + 6)
exit $LASTEXITCODE
"""

_REG_HIVES = ("HKLM", "HKU")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _f(type_: str, description: str, *, required: bool = False, default: t.Any = None,
       choices: t.Sequence[t.Any] | None = None, minimum: int | None = None,
       maximum: int | None = None) -> dict[str, t.Any]:
    field: dict[str, t.Any] = {"type": type_, "required": required, "default": default,
                               "description": description}
    if choices is not None:
        field["choices"] = list(choices)
    if minimum is not None:
        field["min"] = minimum
    if maximum is not None:
        field["max"] = maximum
    return field


def _r(type_: str, description: str, items: dict[str, str] | None = None) -> dict[str, t.Any]:
    field: dict[str, t.Any] = {"type": type_, "description": description}
    if items is not None:
        field["items"] = items
    return field


#: Every operation of protocol v1. ``request``: field -> {type, required, default, description,
#: [choices], [min], [max]}; types are ``str``, ``int``, ``bool``, ``list[str]``, ``list[int]``.
#: ``reply``: field -> {type, description, [items]}; ``items`` names the keys of each element
#: of a list field. Every result also carries ``ok: true``; an error result is
#: ``{ok: false, error: <one of ERROR_KINDS>, message}``.
OPERATIONS: dict[str, dict[str, t.Any]] = {
    "reg_read": {
        "description": "Read one registry key's values and, to depth, its subkeys.",
        "request": {
            "key": _f("str", "HKLM\\... or HKU\\... (HKCU is refused); case-insensitive; no trailing backslash",
                      required=True),
            "view": _f("str", "registry view", default="64", choices=("64", "32")),
            "depth": _f("int", "levels of subkeys to read", default=0, minimum=0, maximum=4),
            "names": _f("list[str]", "value names to return; absent or null = all values", default=None),
        },
        "reply": {
            "exists": _r("bool", "whether the key exists"),
            "values": _r("dict", "{name: {type, data}}; the default value is named \"\""),
            "subkeys": _r("dict", "{name: node or null}; a node is {values, subkeys[, error]}; null = below depth"),
        },
    },
    "process_list": {
        "description": "List the running processes.",
        "request": {},
        "reply": {
            "processes": _r("list", "one element per process", {
                "pid": "int", "name": "str", "image": "str|null", "session": "int",
                "user": "str|null", "version": "str|null",
            }),
        },
    },
    "service_query": {
        "description": "Query Windows services by name and/or display name (both absent = all).",
        "request": {
            "names": _f("list[str]", "service names (case-insensitive)", default=None),
            "display_names": _f("list[str]", "display names (case-insensitive)", default=None),
        },
        "reply": {
            "services": _r("list", "one element per matching service", {
                "name": "str", "display_name": "str", "state": "str", "start_mode": "str",
                "image": "str|null", "pid": "int",
            }),
        },
    },
    "tcp_listeners": {
        "description": "List listening TCP sockets.",
        "request": {
            "ports": _f("list[int]", "ports to report; absent = every listener", default=None),
        },
        "reply": {
            "listeners": _r("list", "one element per listening socket",
                            {"address": "str", "port": "int", "pid": "int"}),
        },
    },
    "http_get": {
        "description": "GET a loopback URL; never fails on HTTP errors.",
        "request": {
            "url": _f("str", "http(s) URL whose host is localhost, 127.0.0.1 or [::1]", required=True),
            "timeout_ms": _f("int", "timeout in milliseconds", default=2000, minimum=100, maximum=30000),
        },
        "reply": {
            "status": _r("int|null", "HTTP status, or null when nothing answered"),
            "body": _r("str|null", "at most 4096 characters of the body, or null"),
            "error": _r("str|null", "why nothing answered (e.g. connection refused, timeout), or null"),
        },
    },
    "file_info": {
        "description": "Tell whether files exist and their file versions.",
        "request": {
            "paths": _f("list[str]", "absolute paths", required=True),
        },
        "reply": {
            "files": _r("list", "one element per requested path, in request order",
                        {"path": "str", "exists": "bool", "version": "str|null"}),
        },
    },
    "session_list": {
        "description": "List interactive sessions (console and RDP) that have a user; never session 0.",
        "request": {},
        "reply": {
            "sessions": _r("list", "one element per session", {
                "id": "int", "user": "str", "sid": "str|null", "state": "str",
            }),
        },
    },
    "os_info": {
        "description": "Describe the operating system.",
        "request": {},
        "reply": {
            "product": _r("str", "e.g. Windows 10 Enterprise"),
            "version": _r("str", "e.g. 10.0.19045"),
            "computer_name": _r("str", "the computer's NetBIOS name"),
            "emulated": _r("bool", "true only when the emulator answered; the real runner says false"),
        },
    },
}

SERVICE_STATES = ("running", "stopped", "start_pending", "stop_pending", "continue_pending",
                  "pause_pending", "paused", "unknown")
SERVICE_START_MODES = ("auto", "manual", "disabled", "boot", "system")
SESSION_STATES = ("active", "disconnected", "other")


class ProtocolError(Exception):
    """Base class of the protocol's errors; ``str()`` is one readable line."""


class RequestError(ProtocolError, ValueError):
    """An operation that must not be sent, naming the op index and the field."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class RunnerError(ProtocolError):
    """The runner could not be run or its reply is unusable."""


# ---------------------------------------------------------------------------------------------
# Request validation

def _is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_ok(type_: str, value: t.Any) -> bool:
    if type_ == "str":
        return isinstance(value, str)
    if type_ == "int":
        return _is_int(value)
    if type_ == "bool":
        return isinstance(value, bool)
    if type_ == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if type_ == "list[int]":
        return isinstance(value, list) and all(_is_int(v) for v in value)
    raise AssertionError(f"unknown field type {type_}")


def _allowed(spec: dict[str, t.Any]) -> str:
    if "choices" in spec:
        return "one of " + ", ".join(repr(c) for c in spec["choices"])
    if "min" in spec:
        return f"an integer from {spec['min']} to {spec['max']}"
    return {"str": "a string", "int": "an integer", "bool": "true or false",
            "list[str]": "a list of strings", "list[int]": "a list of integers"}[spec["type"]]


def _check_field(where: str, name: str, spec: dict[str, t.Any], value: t.Any) -> str | None:
    if value is None:
        if spec["required"]:
            return f"{where}: field '{name}' is required ({_allowed(spec)})"
        return None
    if not _type_ok(spec["type"], value):
        return f"{where}: field '{name}' must be {_allowed(spec)}, not {value!r}"
    if "choices" in spec and value not in spec["choices"]:
        return f"{where}: field '{name}' must be {_allowed(spec)}, not {value!r}"
    if "min" in spec and not spec["min"] <= value <= spec["max"]:
        return f"{where}: field '{name}' must be {_allowed(spec)}, not {value!r}"
    return None


_KEY_RE = re.compile(r"^(?P<hive>[^\\]+)(?:\\[^\\]+)*$")


def _check_reg_key(value: str) -> str | None:
    match = _KEY_RE.match(value)
    if not match:
        return "must be HKLM\\<path> or HKU\\<path> without empty parts or a trailing backslash"
    hive = match.group("hive").upper()
    if hive in ("HKCU", "HKEY_CURRENT_USER"):
        return ("must not be HKCU: over WinRM that is the connecting account, not the desktop user; "
                "read HKU\\<SID> instead")
    if hive not in _REG_HIVES:
        return "must start with the hive abbreviation HKLM or HKU"
    return None


def _check_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    host = parts.netloc.rsplit("@", 1)[-1]
    host = re.sub(r":\d*$", "", host) if not host.endswith("]") else host
    if "@" in parts.netloc or host.lower() not in _LOOPBACK_HOSTS:
        return "must have the host localhost, 127.0.0.1 or [::1]"
    return None


_ABS_PATH_RE = re.compile(r"^(?:[A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)")


def _check_paths(value: list[str]) -> str | None:
    for path in value:
        if not _ABS_PATH_RE.match(path):
            return f"must hold absolute Windows paths (C:\\... or \\\\server\\share\\...), not {path!r}"
    return None


def _check_ports(value: list[int]) -> str | None:
    for port in value:
        if not 1 <= port <= 65535:
            return f"must hold ports from 1 to 65535, not {port!r}"
    return None


#: Checks beyond type and range: (op, field) -> function returning a reason or None.
_VALUE_CHECKS: dict[tuple[str, str], t.Callable[[t.Any], str | None]] = {
    ("reg_read", "key"): _check_reg_key,
    ("http_get", "url"): _check_url,
    ("file_info", "paths"): _check_paths,
    ("tcp_listeners", "ports"): _check_ports,
}


def _validate_op(index: int, op: t.Any) -> dict[str, t.Any]:
    where = f"ops[{index}]"
    if not isinstance(op, dict):
        raise RequestError(f"{where}: an operation must be a mapping, not {type(op).__name__}", index)
    name = op.get("op")
    if name not in OPERATIONS:
        raise RequestError(f"{where}: field 'op' must be one of {', '.join(OPERATIONS)}, not {name!r}",
                           index, "op")
    where = f"{where} ({name})"
    spec = OPERATIONS[name]["request"]
    for field in op:
        if field != "op" and field not in spec:
            allowed = ", ".join(spec) or "no fields"
            raise RequestError(f"{where}: unknown field '{field}'; allowed: {allowed}", index, field)
    normalised: dict[str, t.Any] = {"op": name}
    for field, field_spec in spec.items():
        value = op.get(field)
        reason = _check_field(where, field, field_spec, value)
        if reason is None and value is not None and (name, field) in _VALUE_CHECKS:
            problem = _VALUE_CHECKS[(name, field)](value)
            reason = f"{where}: field '{field}' {problem}" if problem else None
        if reason:
            raise RequestError(reason, index, field)
        normalised[field] = field_spec["default"] if value is None else value
    return normalised


def validate_ops(ops: t.Any) -> list[dict[str, t.Any]]:
    """Check a list of operations; return copies with defaults filled in.

    Raises ``RequestError`` naming the op index, the field and what is allowed.
    """
    if not isinstance(ops, list):
        raise RequestError(f"ops must be a list of operations, not {type(ops).__name__}")
    if not ops:
        raise RequestError("ops is empty; give at least one operation")
    return [_validate_op(index, op) for index, op in enumerate(ops)]


# ---------------------------------------------------------------------------------------------
# Standard input

def build_request(ops: list[dict[str, t.Any]]) -> str:
    """The request JSON (ASCII only) for already validated operations."""
    return json.dumps({"protocol": PROTOCOL, "ops": ops}, ensure_ascii=True, separators=(",", ":"))


def build_stdin(runner_text: str, ops: list[dict[str, t.Any]]) -> bytes:
    """Validate ``ops`` and return the runner's standard input: runner, separator line, request."""
    validate_ops(ops)
    runner = runner_text.replace("\r\n", "\n").rstrip("\n")
    if not runner.startswith(RUNNER_MARKER):
        raise RunnerError(f"the runner text does not start with the marker line {RUNNER_MARKER!r}")
    if f"\n{SEPARATOR}\n" in f"\n{runner}\n":
        raise RunnerError("the runner text contains the separator line")
    return f"{runner}\n{SEPARATOR}\n{build_request(ops)}".encode()


def split_stdin(stdin: bytes) -> tuple[str, dict[str, t.Any]]:
    """The inverse of ``build_stdin`` (for the emulator and tests): (runner text, request)."""
    text = stdin.decode("utf-8").replace("\r\n", "\n")
    runner, sep, request = text.partition(f"\n{SEPARATOR}\n")
    if not sep:
        raise RequestError("standard input has no separator line after the runner")
    return runner, json.loads(request)


# ---------------------------------------------------------------------------------------------
# Reply parsing

def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def decode_stderr(stderr: str | bytes | None) -> str:
    """stderr as one readable line; ``#< CLIXML`` error records are decoded like ansible does."""
    text = _text(stderr)
    if "#< CLIXML" in text and "</Objs>" in text:
        from ansible.plugins.shell.powershell import _parse_clixml

        try:
            decoded = _parse_clixml(text.encode("utf-8")).decode("utf-8", errors="replace")
        except Exception:  # malformed CLIXML: fall back to the raw text
            decoded = text
        else:
            if not decoded.strip():  # only progress or other streams: nothing worth reporting
                decoded = ""
        text = decoded
    return _one_line(text)


_ACCESS_DENIED_RE = re.compile(r"access (is )?denied|UnauthorizedAccess|requires elevat", re.IGNORECASE)
_ADMIN_HINT = "connect with an account in the host's local Administrators group"


def _load_reply(stdout: str) -> t.Any:
    stripped = stdout.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for line in reversed(stripped.splitlines()):  # tolerate stray lines before the reply
        line = line.strip()
        if line.startswith('{"'):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError(stripped)


def _reply_failure(reply: dict[str, t.Any]) -> RunnerError:
    kind = reply.get("error") or "failed"
    message = _one_line(str(reply.get("message") or "no message"))
    if kind == "access_denied":
        return RunnerError(f"access denied on the host: {message} ({_ADMIN_HINT})")
    return RunnerError(f"the runner refused the request ({kind}): {message}")


def _check_result(index: int, op: dict[str, t.Any] | None, result: t.Any) -> None:
    where = f"results[{index}]" + (f" ({op.get('op')})" if op else "")
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        raise RunnerError(f"the runner's reply is malformed: {where} is not a result with 'ok'")
    if not result["ok"]:
        if result.get("error") not in ERROR_KINDS:
            raise RunnerError(f"the runner's reply is malformed: {where} has unknown error kind "
                              f"{result.get('error')!r}")
        return
    if not op or op.get("op") not in OPERATIONS:
        return
    for field, spec in OPERATIONS[op["op"]]["reply"].items():
        if field not in result:
            raise RunnerError(f"the runner's reply is malformed: {where} lacks field '{field}'")
        items = spec.get("items")
        if items and isinstance(result[field], list):
            for number, item in enumerate(result[field]):
                missing = [key for key in items if not isinstance(item, dict) or key not in item]
                if missing:
                    raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}] "
                                      f"lacks {', '.join(missing)}")


def parse_reply(
    stdout: str | bytes | None,
    stderr: str | bytes | None,
    rc: int | None,
    ops: list[dict[str, t.Any]] | None = None,
) -> list[dict[str, t.Any]]:
    """Return ``results`` of a runner reply, one per operation, or raise ``RunnerError``.

    With ``ops`` (the request), the number of results and each ok result's reply fields are
    checked too.
    """
    out = _text(stdout)
    err = decode_stderr(stderr)
    rc = 0 if rc is None else rc
    if not out.strip():
        detail = f": {err}" if err else ""
        if rc != 0:
            hint = f" ({_ADMIN_HINT})" if _ACCESS_DENIED_RE.search(err) else ""
            return _raise(f"the runner failed with exit code {rc} and no output{detail}{hint}")
        return _raise(f"the runner returned no output (exit code 0){detail}")
    try:
        reply = _load_reply(out)
    except ValueError:
        detail = f"; stderr: {err}" if err else ""
        return _raise(f"the runner's reply is not JSON (exit code {rc}): {out.strip()[:200]!r}{detail}")
    if not isinstance(reply, dict) or reply.get("runner") != RUNNER_NAME:
        return _raise(f"the reply is not from the nhs_cm runner: {out.strip()[:200]!r}")
    if reply.get("protocol") != PROTOCOL:
        return _raise(f"the runner speaks protocol {reply.get('protocol')!r}, this collection {PROTOCOL}")
    if reply.get("ok") is not True:
        raise _reply_failure(reply)
    if rc != 0:
        detail = f": {err}" if err else ""
        return _raise(f"the runner failed with exit code {rc}{detail}")
    results = reply.get("results")
    if not isinstance(results, list):
        return _raise("the runner's reply is malformed: 'results' is not a list")
    if ops is not None and len(results) != len(ops):
        return _raise(f"the runner answered {len(results)} results for {len(ops)} operations")
    for index, result in enumerate(results):
        _check_result(index, ops[index] if ops is not None else None, result)
    return results


def _raise(message: str) -> t.NoReturn:
    raise RunnerError(message)
