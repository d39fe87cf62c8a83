# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A reply of the runner (docs/runner-protocol.md): unpacked, loaded and checked.

A reply is data from a machine that a standard user may control: it must never hurt the
controller or the other hosts' results. Whatever it holds, ``parse_reply`` returns checked
results (each field of the type ``OPERATIONS`` declares) or raises ``RunnerError`` with one
line, and that host fails alone. ``decode_stderr`` makes the runner's stderr one readable line
and ``replace_surrogates`` makes JSON data fit for a UTF-8 file.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import base64
import functools
import json
import re
import typing as t
import zlib

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import OPERATIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    ERROR_KINDS,
    PROTOCOL,
    REPLY_GZIP_PREFIX,
    RUNNER_NAME,
    CleanupError,
    RunnerError,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._text import fix_text, replace_surrogates

#: The most a reply may be, as it comes back and once a compressed reply is unpacked: beyond it
#: the host fails ("refused"); a diagnose reply is about 40 KB.
REPLY_MAX_BYTES = 64 * 1024 * 1024
_REPLY_MAX_TEXT = "64 MiB"
_INFLATE_PIECE = 1024 * 1024
#: How much of stderr is looked at (only one line of it is ever shown).
_STDERR_MAX_CHARS = 1024 * 1024
#: What ``data`` is for each registry value type (docs/runner-protocol.md, "Registry conventions").
REG_DATA_TYPES: dict[str, str] = {
    "REG_SZ": "str", "REG_EXPAND_SZ": "str", "REG_MULTI_SZ": "list[str]", "REG_DWORD": "int",
    "REG_QWORD": "int", "REG_BINARY": "str|null", "REG_NONE": "str|null",
}
#: The JSON types a reply field may be declared as (``_r``), joined with ``|``.
REPLY_TYPES: dict[str, t.Callable[[t.Any], bool]] = {
    "str": lambda value: isinstance(value, str),
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "bool": lambda value: isinstance(value, bool),
    "dict": lambda value: isinstance(value, dict),
    "list": lambda value: isinstance(value, list),
    "list[str]": lambda value: isinstance(value, list) and all(isinstance(item, str) for item in value),
    "null": lambda value: value is None,
}
#: How deep the registry nodes of a reply may go: the most ``depth`` a read may ask.
_MAX_NODE_DEPTH: int = OPERATIONS["reg_read"]["request"]["depth"]["max"]
#: A reply text that may hold a surrogate once loaded: a raw one, or a ``\uXXXX`` escape of one.
_SURROGATE_HINT = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(fix_text(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _shown(value: t.Any, limit: int = 80) -> str:
    """A value from the host in a message: the repr of a text, number or null, one line, at most
    ``limit`` characters; the JSON type of anything else."""
    if isinstance(value, str):
        return _one_line(repr(value[:limit]), limit)
    if value is None or isinstance(value, (bool, int, float)):
        return _one_line(repr(value)[:limit], limit)
    return _json_type(value)


def decode_stderr(stderr: str | bytes | None) -> str:
    """stderr as one readable line; ``#< CLIXML`` error records are decoded like ansible does."""
    text = _text(stderr[:_STDERR_MAX_CHARS] if stderr else stderr)
    if "#< CLIXML" in text and "</Objs>" in text:
        from ansible.plugins.shell.powershell import _parse_clixml

        try:
            decoded = _parse_clixml(text.encode("utf-8", errors="surrogatepass")).decode("utf-8", errors="replace")
        except Exception:  # malformed CLIXML: fall back to the raw text
            decoded = text
        else:
            if not decoded.strip():  # only progress or other streams: nothing worth reporting
                decoded = ""
        text = decoded
    return _one_line(text)


_ACCESS_DENIED_RE = re.compile(r"access (is )?denied|UnauthorizedAccess|requires elevat", re.IGNORECASE)
_ADMIN_HINT = "connect with an account in the host's local Administrators group"
_BUSY = "another run of nhs_cm.remediation holds this PC, so nothing was done; run again when it has finished"


def _inflate(packed: bytes) -> bytes:
    """The gzip stream ``packed`` unpacked a piece at a time: refused as soon as it passes
    ``REPLY_MAX_BYTES``, so never much more than that is in memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip only
    pieces: list[bytes] = []
    size = 0
    while not inflater.eof:
        piece = inflater.decompress(packed, _INFLATE_PIECE)
        packed = inflater.unconsumed_tail
        if not piece and not packed and not inflater.eof:
            raise EOFError("the compressed data ends before the end of its gzip stream")
        size += len(piece)
        if size > REPLY_MAX_BYTES:
            raise RunnerError(f"the runner's reply unpacks to more than {_REPLY_MAX_TEXT}; refused")
        pieces.append(piece)
    if inflater.unused_data:
        raise ValueError("there is data after the end of the gzip stream")
    return b"".join(pieces)


def _unpack_reply(stdout: str) -> str:
    """The reply JSON of a compressed reply; else ``stdout``.

    The reply is the last line that starts with ``REPLY_GZIP_PREFIX`` or ``{"``: stray lines
    before it (a profile's banner, even one that starts with the prefix) are ignored. The gzip
    stream is unpacked a piece at a time, up to ``REPLY_MAX_BYTES`` (a few KB of gzip can
    unpack to gigabytes).
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith('{"'):
            return stdout
        if line.startswith(REPLY_GZIP_PREFIX):
            break
    else:
        return stdout
    packed = line[len(REPLY_GZIP_PREFIX):]
    try:
        return _inflate(base64.b64decode(packed, validate=True)).decode("ascii")
    except (ValueError, OSError, EOFError, zlib.error) as exc:  # binascii.Error and UnicodeDecodeError too
        raise RunnerError(f"the runner's compressed reply cannot be unpacked ({_one_line(str(exc), 120)}): "
                          f"{packed[:80]!r}") from None


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
    if kind == "busy":
        detail = f" ({message})" if reply.get("message") else ""
        return RunnerError(f"{_BUSY}{detail}")
    shown = kind if kind in ERROR_KINDS else f"unknown error kind {_shown(kind, 60)}"
    return RunnerError(f"the runner refused the request ({shown}): {message}")


def _json_type(value: t.Any) -> str:
    """The name of ``value``'s JSON type, as the types of ``OPERATIONS`` are written."""
    if value is None:
        return "null"
    for name in ("bool", "int", "str", "dict", "list"):
        if REPLY_TYPES[name](value):
            return name
    return "float" if isinstance(value, float) else type(value).__name__


def type_matches(spec: str, value: t.Any) -> bool:
    """Whether ``value`` is of the declared reply type ``spec`` (e.g. ``str|null``); a bool is no int."""
    return any(check(value) for check in _type_checks(spec))


@functools.lru_cache(maxsize=256)
def _type_checks(spec: str) -> tuple[t.Callable[[t.Any], bool], ...]:
    """The checks of the types ``spec`` names (a reply has thousands of fields and few specs)."""
    return tuple(REPLY_TYPES[name] for name in spec.split("|"))


def _expected(spec: str) -> str:
    return " or ".join(spec.split("|"))


class _Malformed(Exception):
    """A reply field of the wrong shape: ``where`` (``values['x'].data``) and what it must be."""

    def __init__(self, where: str, expected: str, value: t.Any, shown: str | None = None) -> None:
        super().__init__(where)
        self.text = f"{where} must be {expected}, not {shown or _json_type(value)}"


def _key(name: t.Any) -> str:
    return f"[{_shown(name, 60)}]"


def _check_value(where: str, value: t.Any) -> None:
    """One registry value ``{type, data}`` (docs/runner-protocol.md, "Registry conventions")."""
    if not isinstance(value, dict):
        raise _Malformed(where, "a value {type, data}", value)
    kind = value.get("type")
    if kind not in REG_DATA_TYPES:
        raise _Malformed(f"{where}.type", f"one of {', '.join(REG_DATA_TYPES)}", kind, _shown(kind, 40))
    if "data" not in value or not type_matches(REG_DATA_TYPES[kind], value["data"]):
        raise _Malformed(f"{where}.data", f"{_expected(REG_DATA_TYPES[kind])} for {kind}", value.get("data"))


def _check_node(where: str, node: t.Any, fields: dict[str, str]) -> None:
    """A registry node and every node below it: ``values`` ({name: {type, data}}), ``subkeys``
    ({name: node or null}) and ``fields`` (name -> type) of the node itself (its subkeys have
    ``error: str|null`` at most). A read goes at most ``_MAX_NODE_DEPTH`` levels down; below, a
    subkey is null. Walked without recursion."""
    stack: list[tuple[str, t.Any, dict[str, str], int]] = [(where, node, fields, 0)]
    while stack:
        where, node, fields, level = stack.pop()
        if level > _MAX_NODE_DEPTH:
            raise _Malformed(where, f"null (a read goes at most {_MAX_NODE_DEPTH} levels down)", node)
        if not isinstance(node, dict):
            raise _Malformed(where, "a key {values, subkeys}", node)
        for name, spec in {"values": "dict", "subkeys": "dict", **fields}.items():
            if name not in node and "null" not in spec:
                raise _Malformed(f"{where}.{name}", _expected(spec), None)
            if name in node and not type_matches(spec, node[name]):
                raise _Malformed(f"{where}.{name}", _expected(spec), node[name])
        for name, value in node["values"].items():
            _check_value(f"{where}.values{_key(name)}", value)
        for name, child in node["subkeys"].items():
            if child is not None:
                stack.append((f"{where}.subkeys{_key(name)}", child, {"error": "str|null"}, level + 1))


def _check_backup(where: str, backup: dict[str, t.Any]) -> None:
    """A backup as ``backup_load`` returns it: what restoring it relies on."""
    for name, spec in (("id", "str"), ("saved_at", "str"), ("entries", "list"), ("missing_keys", "list")):
        if not type_matches(spec, backup.get(name)):
            raise _Malformed(f"{where}.{name}", spec, backup.get(name))
    for number, entry in enumerate(backup["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise _Malformed(f"{where}.entries[{number}]", "an entry {kind, ...}", entry)
    for number, key in enumerate(backup["missing_keys"]):
        if not isinstance(key, dict) or not isinstance(key.get("key"), str) or not isinstance(key.get("view"), str):
            raise _Malformed(f"{where}.missing_keys[{number}]", "{key: str, view: str}", key)


def _check_shapes(name: str, result: dict[str, t.Any]) -> None:
    """The nested data the collection relies on, beyond the declared field types."""
    if name == "reg_read":
        _check_node("", result, {"exists": "bool"})
    elif name == "user_hives_read":
        for number, profile in enumerate(result["profiles"]):
            for path, node in profile["keys"].items():
                _check_node(f"profiles[{number}].keys{_key(path)}", node, {"exists": "bool", "error": "str|null"})
    elif name == "reg_write" and result["previous"] is not None:
        _check_value("previous", result["previous"])
    elif name == "backup_load":
        _check_backup("backup", result["backup"])


def _check_items(where: str, field: str, spec: dict[str, t.Any], value: list[t.Any]) -> None:
    items = spec.get("items")
    for number, item in enumerate(value):
        if isinstance(items, str):  # a list of plain values
            if not type_matches(items, item):
                raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}] must be "
                                  f"{_expected(items)}, not {_json_type(item)}")
            continue
        if not items:
            continue
        if not isinstance(item, dict):
            raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}] must be an object "
                              f"with {', '.join(items)}, not {_json_type(item)}")
        missing = [key for key in items if key not in item]
        if missing:
            raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}] lacks {', '.join(missing)}")
        for key, key_spec in items.items():
            if not type_matches(key_spec, item[key]):
                raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}].{key} must be "
                                  f"{_expected(key_spec)}, not {_json_type(item[key])}")


def _check_result(index: int, op: dict[str, t.Any] | None, result: t.Any) -> None:
    """One result: ``ok``; an error's kind and message; an ok result's every reply field, of the
    type ``OPERATIONS`` declares (the elements of a list too), and its registry nodes."""
    where = f"results[{index}]" + (f" ({op.get('op')})" if op else "")
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        raise RunnerError(f"the runner's reply is malformed: {where} is not a result with 'ok'")
    if not result["ok"]:
        if result.get("error") not in ERROR_KINDS:
            raise RunnerError(f"the runner's reply is malformed: {where} has unknown error kind "
                              f"{_shown(result.get('error'), 60)}")
        if not type_matches("str|null", result.get("message")):
            raise RunnerError(f"the runner's reply is malformed: {where} field 'message' must be str or null, "
                              f"not {_json_type(result.get('message'))}")
        return
    if not op or op.get("op") not in OPERATIONS:
        return
    for field, spec in OPERATIONS[op["op"]]["reply"].items():
        if field not in result:
            raise RunnerError(f"the runner's reply is malformed: {where} lacks field '{field}'")
        if not type_matches(spec["type"], result[field]):
            raise RunnerError(f"the runner's reply is malformed: {where} field '{field}' must be "
                              f"{_expected(spec['type'])}, not {_json_type(result[field])}")
        if isinstance(result[field], list):
            _check_items(where, field, spec, result[field])
    try:
        _check_shapes(op["op"], result)
    except _Malformed as exc:
        raise RunnerError(f"the runner's reply is malformed: {where} {exc.text.lstrip('.')}") from None


def parse_reply(
    stdout: str | bytes | None,
    stderr: str | bytes | None,
    rc: int | None,
    ops: list[dict[str, t.Any]] | None = None,
) -> list[dict[str, t.Any]]:
    """Return ``results`` of a runner reply, one per operation, or raise ``RunnerError``.

    With ``ops`` (the request), the number of results and each ok result's reply fields (their
    types too) are checked. A reply larger than ``REPLY_MAX_BYTES``, as it comes or unpacked, is
    refused; surrogate code points in its texts are replaced (``replace_surrogates``).
    """
    if stdout is not None and len(stdout) > REPLY_MAX_BYTES:
        return _raise(f"the runner's reply is larger than {_REPLY_MAX_TEXT}; refused")
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
        text = _unpack_reply(out)
        reply = _load_reply(text)
    except ValueError:
        detail = f"; stderr: {err}" if err else ""
        return _raise(f"the runner's reply is not JSON (exit code {rc}): {_one_line(repr(out.strip()[:200]))}{detail}")
    except RecursionError:
        return _raise("the runner's reply is not usable JSON: it is nested too deeply")
    if _SURROGATE_HINT.search(text):
        reply = replace_surrogates(reply)
    if not isinstance(reply, dict) or reply.get("runner") != RUNNER_NAME:
        return _raise(f"the reply is not from the nhs_cm runner: {_one_line(repr(out.strip()[:200]))}")
    if reply.get("protocol") != PROTOCOL:
        return _raise(f"the runner speaks protocol {_shown(reply.get('protocol'), 40)}, this collection {PROTOCOL}")
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
    cleanup = reply.get("cleanup_error")
    if cleanup:
        raise CleanupError(f"the operations ran, but the runner's cleanup failed: {_one_line(str(cleanup))}",
                           results)
    return results


def _raise(message: str) -> t.NoReturn:
    raise RunnerError(_one_line(message, 600))
