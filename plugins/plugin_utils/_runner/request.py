# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A request to the runner (docs/runner-protocol.md): checked, then sent on standard input.

``validate_ops`` checks a list of operations against ``OPERATIONS`` before anything is sent,
naming the op index and the field (``RequestError``); ``build_request`` makes the request JSON
and ``build_stdin`` the runner's standard input: the host code the operations need
(``assembly.runner_for_ops``), the separator line and the request, gzipped. ``split_stdin`` is
its inverse, for the emulator and tests.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
import typing as t
import zlib
from urllib.parse import urlsplit

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._memo import memo, same
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._paths import ABSOLUTE_PATH
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.assembly import runner_for_ops
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import OPERATIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    BACKUP_ID_RE,
    PROTOCOL,
    SEPARATOR,
    USER_SID_PATTERN,
    WRITE_ERRORS,
    RequestError,
)

_REG_HIVES = ("HKLM", "HKU")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


# ---------------------------------------------------------------------------------------------
# Validation

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
    if type_ == "list[path_depth]":
        return isinstance(value, list) and all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and _is_int(v[1]) for v in value)
    if type_ == "list[dict]":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if type_ == "reg_data":
        return isinstance(value, str) or _is_int(value) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value))
    raise AssertionError(f"unknown field type {type_}")


def _allowed(spec: dict[str, t.Any]) -> str:
    if "choices" in spec:
        return "one of " + ", ".join(repr(c) for c in spec["choices"])
    if "min" in spec:
        return f"an integer from {spec['min']} to {spec['max']}"
    return {"str": "a string", "int": "an integer", "bool": "true or false",
            "list[str]": "a list of strings", "list[int]": "a list of integers",
            "list[path_depth]": "a list of [key path, depth] pairs", "list[dict]": "a list of mappings",
            "reg_data": "a string, an integer or a list of strings"}[spec["type"]]


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
    match = _KEY_RE.fullmatch(value)
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


def _check_paths(value: list[str]) -> str | None:
    for path in value:
        if not ABSOLUTE_PATH.match(path):
            return f"must hold absolute Windows paths (C:\\... or \\\\server\\share\\...), not {path!r}"
    return None


def _check_ports(value: list[int]) -> str | None:
    for port in value:
        if not 1 <= port <= 65535:
            return f"must hold ports from 1 to 65535, not {port!r}"
    return None


_HIVE_NAMES = ("HKLM", "HKU", "HKCU", "HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CURRENT_USER")


def _check_relative_key(path: str) -> str | None:
    if not re.fullmatch(r"[^\\]+(?:\\[^\\]+)*", path):
        return f"must hold key paths without empty parts or a leading or trailing backslash, not {path!r}"
    if path.split("\\", 1)[0].upper() in _HIVE_NAMES:
        return f"must hold key paths relative to the hive root (no hive name), not {path!r}"
    return None


def _check_path_depths(value: list[list[t.Any]]) -> str | None:
    for path, depth in value:
        problem = _check_relative_key(path)
        if problem:
            return problem
        if not 0 <= depth <= 4:
            return f"must hold depths from 0 to 4, not {depth!r} (for {path!r})"
    return None


def _check_key_prefixes(value: list[str]) -> str | None:
    for path in value:
        problem = _check_relative_key(path)
        if problem:
            return problem
    return None


_TASK_NAME_RE = re.compile(r"^nhs_cm_[A-Za-z0-9_-]{1,64}$")


def _check_setting_types(value: list[str]) -> str | None:
    bad = [item for item in value if not re.fullmatch(r"[a-z_]{1,64}", item)]
    return f"has names that are not content-setting names: {bad!r}" if bad else None


def _check_backup_id(value: str) -> str | None:
    if BACKUP_ID_RE.fullmatch(value):
        return None
    return f"must be 1 to 80 letters, digits, '_' or '-', not {value!r}"


def _check_user_sid(value: str) -> str | None:
    if re.fullmatch(USER_SID_PATTERN, value):
        return None
    return f"must be the SID of a person's account (S-1-5-21-... or S-1-12-1-...), not {value!r}"


def _check_task_name(value: str) -> str | None:
    if _TASK_NAME_RE.fullmatch(value):
        return None
    return f"must be 'nhs_cm_' followed by 1 to 64 letters, digits, '_' or '-', not {value!r}"


def _check_file_pattern(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9 _.*?-]{1,64}", value):
        return None
    return f"must be a file-name wildcard of letters, digits, space, '_', '.', '-', '*' and '?', not {value!r}"


def _check_abs_path(value: str) -> str | None:
    if ABSOLUTE_PATH.match(value):
        return None
    return f"must be an absolute Windows path (C:\\...), not {value!r}"


def _check_reg_data(op: dict[str, t.Any]) -> str | None:
    """The data of a reg_write against its type (the registry conventions above)."""
    vtype, data = op.get("type"), op.get("data")
    if vtype in ("REG_SZ", "REG_EXPAND_SZ") and not isinstance(data, str):
        return f"must be a string for {vtype}, not {data!r}"
    if vtype == "REG_MULTI_SZ" and not isinstance(data, list):
        return f"must be a list of strings for REG_MULTI_SZ, not {data!r}"
    if vtype in ("REG_DWORD", "REG_QWORD"):
        top = 2**32 if vtype == "REG_DWORD" else 2**64
        if not _is_int(data) or not 0 <= data < top:
            return f"must be an unsigned integer below {top} for {vtype}, not {data!r}"
    if vtype == "REG_BINARY" and not (isinstance(data, str) and re.fullmatch(r"(?:[0-9a-f]{2})*", data)):
        return f"must be lowercase hex, two digits per byte, for REG_BINARY, not {data!r}"
    return None


#: Checks that need several fields of one op: op -> (field, function returning a reason or None).
_OP_CHECKS: dict[str, tuple[str, t.Callable[[dict[str, t.Any]], str | None]]] = {
    "reg_write": ("data", _check_reg_data),
}

#: Checks beyond type and range: (op, field) -> function returning a reason or None.
_VALUE_CHECKS: dict[tuple[str, str], t.Callable[[t.Any], str | None]] = {
    ("reg_write", "key"): _check_reg_key,
    ("reg_delete", "key"): _check_reg_key,
    ("reg_delete_key", "key"): _check_reg_key,
    ("backup_save", "id"): _check_backup_id,
    ("backup_load", "id"): _check_backup_id,
    ("task_run", "user"): _check_user_sid,
    ("task_run", "name"): _check_task_name,
    ("task_run", "command"): _check_abs_path,
    ("file_list", "dir"): _check_abs_path,
    ("file_list", "pattern"): _check_file_pattern,
    ("reg_read", "key"): _check_reg_key,
    ("http_get", "url"): _check_url,
    ("file_info", "paths"): _check_paths,
    ("tcp_listeners", "ports"): _check_ports,
    ("service_set", "listen_ports"): _check_ports,
    ("user_hives_read", "paths"): _check_path_depths,
    ("gpo_registry_settings", "key_prefixes"): _check_key_prefixes,
    ("browser_site_settings", "types"): _check_setting_types,
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
    if name in _OP_CHECKS:
        field, check = _OP_CHECKS[name]
        problem = check(normalised)
        if problem:
            raise RequestError(f"{where}: field '{field}' {problem}", index, field)
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

def build_request(ops: list[dict[str, t.Any]], write_errors: str = "continue", compress_reply: bool = True) -> str:
    """The request JSON (ASCII only) for already validated operations.

    ``write_errors="stop"`` asks the runner to skip every write operation after a failed one;
    the field is sent only then, so read-only requests stay as they were. ``compress_reply``
    sends ``compress: true``: the runner then answers gzip + base64 (``REPLY_GZIP_PREFIX``).
    """
    if write_errors not in WRITE_ERRORS:
        raise RequestError(f"write_errors must be one of {', '.join(WRITE_ERRORS)}, not {write_errors!r}")
    request: dict[str, t.Any] = {"protocol": PROTOCOL, "ops": ops}
    if write_errors != "continue":
        request["write_errors"] = write_errors
    if compress_reply:
        request["compress"] = True
    return json.dumps(request, ensure_ascii=True, separators=(",", ":"))


@functools.lru_cache(maxsize=64)
def _packed_runner(runner_text: str, names: frozenset[str]) -> tuple[bytes, t.Any]:
    """The gzip stream so far and its compressor, after the runner and the separator line."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format; level 9, paid once
    head = packer.compress(f"{runner_for_ops(runner_text, names)}\n{SEPARATOR}\n".encode())
    return head, packer


def build_stdin(runner_text: str, ops: list[dict[str, t.Any]], compress: bool = True,
                write_errors: str = "continue", compress_reply: bool = True) -> bytes:
    """Validate ``ops`` and return the runner's standard input: runner, separator line, request.

    The runner is only what the operations need, minified (``runner_for_ops``). With
    ``compress`` (the default) that text is sent gzipped, in base64 on one line, which the
    bootstrap unpacks (docs/runner-protocol.md). The compressed runner is cached per set of
    operations; each call only compresses its request. The whole result is also kept for the
    last few requests (``_memo.memo``: by types and values, so a tuple where a list belongs is
    still refused), and the same request again (diagnose's, on every host, prepared before the
    forks) is neither validated nor compressed again.
    """
    return _build_stdin(runner_text, ops, compress, write_errors, compress_reply)


@memo(16, fresh=same)
def _build_stdin(runner_text: str, ops: list[dict[str, t.Any]], compress: bool, write_errors: str,
                 compress_reply: bool) -> bytes:
    ops = validate_ops(ops)  # the runner trusts the request: every field is present and checked
    names = frozenset(op["op"] for op in ops)
    request = build_request(ops, write_errors, compress_reply)
    if not compress:
        return f"{runner_for_ops(runner_text, names)}\n{SEPARATOR}\n{request}".encode()
    head, packer = _packed_runner(runner_text, names)
    packer = packer.copy()
    return base64.b64encode(head + packer.compress(request.encode()) + packer.flush())


def split_stdin(stdin: bytes) -> tuple[str, dict[str, t.Any]]:
    """The inverse of ``build_stdin`` (for the emulator and tests): (runner text, request)."""
    if re.fullmatch(rb"[A-Za-z0-9+/=]+", stdin.strip()):
        stdin = gzip.decompress(base64.b64decode(stdin))
    text = stdin.decode("utf-8").replace("\r\n", "\n")
    runner, sep, request = text.partition(f"\n{SEPARATOR}\n")
    if not sep:
        raise RequestError("standard input has no separator line after the runner")
    return runner, json.loads(request)
