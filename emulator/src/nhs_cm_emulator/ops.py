"""The runner operations of docs/runner-protocol.md, answered from a host's state.

``handle_request(host, data)`` takes the request JSON (bytes, part two of the runner's
standard input) and returns ``(reply, exit_code)``. Each operation validates every field of
its request and answers ``invalid_request`` naming the field; operations never raise.

As the runner, a request first takes the host-wide mutex ``Global\\nhs_cm_runner`` (waiting up to
``HostState.mutex_wait`` seconds, else the reply is ``busy``), then unloads every hive a killed
run left loaded under ``HKU\\nhs_cm_*``, runs its operations and unloads the default profile's
hive if it loaded it. What went wrong in those two unloads is the reply's ``cleanup_error``; the
results are kept.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import read_ops, write_ops
from .contract import (
    ERROR_KINDS,
    OPERATIONS,
    PROTOCOL,
    REPLY_FIELDS,
    REPLY_GZIP_PREFIX,
    REQUEST_FIELDS,
    RUNNER,
    WRITE_OPERATIONS,
    OpError,
    invalid,
)
from .read_ops import MOUNT_PREFIX, release_default_profile
from .registry import HiveError

if TYPE_CHECKING:
    from .state import HostState

__all__ = ["ERROR_KINDS", "HANDLERS", "OPERATIONS", "PROTOCOL", "REPLY_FIELDS", "REPLY_GZIP_PREFIX", "REQUEST_FIELDS",
           "RUNNER", "encode_reply", "handle_request", "request_ops", "wants_compressed_reply"]

BUSY_MESSAGE = ("another nhs_cm run is in progress on this PC (mutex Global\\nhs_cm_runner); try again later")
#: Every operation's function: the read operations (read_ops.py), then the write operations (write_ops.py).
HANDLERS: dict[str, Callable[[HostState, dict[str, Any]], dict[str, Any]]] = {**read_ops.HANDLERS, **write_ops.HANDLERS}


# -- the request ------------------------------------------------------------------------------


def invalid_reply(message: str) -> dict[str, Any]:
    return {"runner": RUNNER, "protocol": PROTOCOL, "ok": False, "error": "invalid_request", "message": message,
            "results": []}


def busy_reply() -> dict[str, Any]:
    """Another run holds the host-wide mutex: the request did not run (exit code 1)."""
    return {"runner": RUNNER, "protocol": PROTOCOL, "ok": False, "error": "busy", "message": BUSY_MESSAGE,
            "results": []}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_request(data: bytes | str) -> dict[str, Any]:
    """The request object, or OpError(invalid_request) when it cannot be read."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OpError("invalid_request", f"the request is not UTF-8: {exc}") from exc
    data = data.lstrip("\ufeff")
    try:
        request = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise OpError("invalid_request", f"the request is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise OpError("invalid_request", "the request must be a JSON object with 'protocol' and 'ops'")
    for key in request:
        if key not in ("protocol", "ops", "write_errors", "compress"):
            raise OpError("invalid_request", f"unknown request field {key!r}")
    protocol = request.get("protocol")
    if isinstance(protocol, bool) or protocol != PROTOCOL:
        raise OpError("invalid_request", f"protocol: expected {PROTOCOL}, found {protocol!r}")
    if not isinstance(request.get("ops"), list):
        raise OpError("invalid_request", "ops: expected a list of operations")
    if not isinstance(request.get("compress", False), bool):
        raise OpError("invalid_request", "the request field 'compress' must be true or false")
    return request


def wants_compressed_reply(data: bytes | str) -> bool:
    """Whether a request asks for a compressed reply (``compress: true``).

    False when the request is refused as a whole (as the runner, which learns ``compress`` only
    from a request it accepted, answers those in plain JSON).
    """
    try:
        request = parse_request(data)
        check_write_errors(request)
    except OpError:
        return False
    return request.get("compress") is True


def request_ops(data: bytes | str) -> list[str]:
    """The names of a request's operations (none when it cannot be read)."""
    try:
        request = parse_request(data)
    except OpError:
        return []
    return [op["op"] for op in request["ops"] if isinstance(op, dict) and isinstance(op.get("op"), str)]


def handle_request(host: HostState, data: bytes | str) -> tuple[dict[str, Any], int]:
    """Run a request as the runner does (see the module docstring): (reply, exit code)."""
    if not host.take_runner_mutex():
        return busy_reply(), 1
    try:
        problems = unload_leftover_mounts(host)
        reply, code = _run_request(host, data, problems)
    finally:
        host.release_runner_mutex()
    if problems:  # the results stay: the controller learns which writes happened
        reply["cleanup_error"] = "; ".join(problems)
    return reply, code


def _run_request(host: HostState, data: bytes | str, problems: list[str]) -> tuple[dict[str, Any], int]:
    try:
        request = parse_request(data)
        check_write_errors(request)
    except OpError as exc:
        return invalid_reply(exc.message), 1
    try:
        results = run_request(host, request)  # honours write_errors: stop
    finally:
        problem = release_default_profile(host)  # the runner unloads it at the end of the request
        if problem:
            problems.append(problem)
    return {"runner": RUNNER, "protocol": PROTOCOL, "ok": True, "results": results}, 0


def unload_leftover_mounts(host: HostState) -> list[str]:
    """Unload every ``HKU\\nhs_cm_*`` mount (a run killed before its cleanup leaves its hive loaded),
    as the runner does first: why each one that stays loaded could not be unloaded."""
    problems = []
    for mount in sorted(host.registry.mounted(), key=str.lower):
        if not mount.lower().startswith(MOUNT_PREFIX):
            continue
        try:
            host.registry.unload_hive(mount)
        except HiveError as exc:
            problems.append(f"HKU\\{mount} (left loaded by an earlier run) cannot be unloaded: reg.exe unload "
                            f"exited with 1: {exc}")
        else:
            host.hive_unloads += 1
    return problems


def encode_reply(reply: dict[str, Any], compress: bool = False) -> bytes:
    """One line of compact ASCII JSON, ended as PowerShell ends output lines.

    With ``compress`` (request field ``compress: true``) the line is ``NHS-CM-GZIP:`` and the
    JSON gzipped, in base64, as the runner's Write-Reply writes it.
    """
    line = json.dumps(reply, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if compress:
        line = REPLY_GZIP_PREFIX + base64.b64encode(gzip.compress(line, mtime=0))
    return line + b"\r\n"


def run_op(host: HostState, op: Any) -> dict[str, Any]:
    try:
        if not isinstance(op, dict):
            raise OpError("invalid_request", "an operation must be a JSON object with an 'op' field")
        name = op.get("op")
        if not isinstance(name, str) or name not in HANDLERS:
            raise OpError("invalid_request", f"op: unknown operation {name!r}; known: {', '.join(OPERATIONS)}")
        for key in op:
            if key != "op" and key not in REQUEST_FIELDS[name]:
                raise invalid(name, key, "unknown field")
        return {"ok": True, **HANDLERS[name](host, op)}
    except OpError as exc:
        return {"ok": False, "error": exc.kind, "message": exc.message}


def check_write_errors(request: dict[str, Any]) -> None:
    mode = request.get("write_errors", "continue")
    if mode not in ("continue", "stop"):
        raise OpError("invalid_request", "the request field 'write_errors' must be 'continue' or 'stop'")


def run_request(host: HostState, request: dict[str, Any]) -> list[dict[str, Any]]:
    """One result per op; with ``write_errors: stop`` every write after a failed write is skipped."""
    stop = request.get("write_errors") == "stop"
    slow: dict[str, float] = host.behaviour.get("slow_ops", {})
    results: list[dict[str, Any]] = []
    failed: str | None = None
    for index, op in enumerate(request["ops"]):
        name = op.get("op") if isinstance(op, dict) else None
        is_write = name in WRITE_OPERATIONS
        if is_write and failed is not None:
            results.append({"ok": False, "error": "skipped",
                            "message": f"not run: {failed} failed before it (write_errors: stop)"})
            continue
        if isinstance(name, str) and slow.get(name):  # behaviour.slow_ops: this operation takes its time
            host.pause(slow[name])
        result = run_op(host, op)
        if is_write and result.get("ok"):
            write_ops.count_write(host)
        if is_write and stop and not result.get("ok"):
            failed = f"ops[{index}] ({name})"
        results.append(result)
    return results
