"""Python stand-ins ("twins") for the few ansible.windows modules the benchmark's baseline uses.

Ansible runs a PowerShell module over WinRM by encoding ``bootstrap_wrapper.ps1`` on the command
line and piping its input on stdin: ``JSON1`` (the exec wrapper), the line ``\\0\\0\\0\\0``, then
``JSON2``, the manifest ``{"scripts": {...}, "actions": [...], "signed_hashlist": [...]}``. The
last action is ``module_wrapper.ps1``; its ``params.Script`` names the module
(``ansible_collections.ansible.windows.plugins.modules.win_reg_stat.ps1``) and
``params.Variables[0]`` (``Name: complex_args``) holds the module's arguments. The module's
PowerShell is never run: ``run_exec_wrapper`` answers from the host's state in the shape the
real module returns (its ``RETURN`` documentation and its PowerShell source, ansible.windows
3.3.0).

Twins: ``win_ping``, ``win_reg_stat``, ``win_service_info`` and ``win_shell`` (only for the one
process-listing command line of ``benchmarks/baseline.yml``, see ``PROCESS_COMMAND``). Any other
module, executor script or command fails with a message saying what the emulator can answer.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .registry import Key, Value

if TYPE_CHECKING:
    from .state import HostState, Service

Result = tuple[bytes, bytes, int]
SEPARATOR = "\n\0\0\0\0\n"
COLLECTION_PREFIX = "ansible_collections.ansible.windows.plugins.modules."
#: The one command line the win_shell twin answers (compared without case and extra blanks).
PROCESS_COMMAND = ("Get-Process -IncludeUserName | Select-Object -Property Id, ProcessName, Path, SessionId, "
                   "UserName | ConvertTo-Json -Compress")
REG_PATH = re.compile(r"^HK(CC|CR|CU|LM|U):\\", re.IGNORECASE)
ENVIRONMENT = {
    "systemroot": "C:\\Windows", "windir": "C:\\Windows", "systemdrive": "C:",
    "programfiles": "C:\\Program Files", "programfiles(x86)": "C:\\Program Files (x86)",
    "programdata": "C:\\ProgramData", "commonprogramfiles": "C:\\Program Files\\Common Files",
}
SERVICE_STATES = {"running": "started", "stopped": "stopped", "start_pending": "start_pending",
                  "stop_pending": "stop_pending", "continue_pending": "continue_pending",
                  "pause_pending": "pause_pending", "paused": "paused"}


class ModuleFailure(Exception):
    """A module result with ``failed: true``; ``fields`` are added to the result."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


# -- the exec wrapper ----------------------------------------------------------------------------


def parse_manifest(stdin: bytes) -> dict[str, Any]:
    """JSON2 of the exec wrapper's input, or ModuleFailure naming what is wrong with it."""
    text = stdin.decode("utf-8", "replace").replace("\r\n", "\n")
    _, separator, rest = text.partition(SEPARATOR)
    if not separator:
        raise ModuleFailure("nhs_cm_emulator: the exec wrapper's input has no '\\0\\0\\0\\0' line after JSON1")
    manifest_text, _, _module_input = rest.partition(SEPARATOR)
    try:
        manifest = json.loads(manifest_text)
    except ValueError as exc:
        raise ModuleFailure(f"nhs_cm_emulator: the exec wrapper's manifest is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("actions"), list) or not manifest["actions"]:
        raise ModuleFailure("nhs_cm_emulator: the exec wrapper's manifest has no 'actions' list")
    return manifest


def module_call(manifest: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(module short name, complex_args) of the manifest's last action (module_wrapper.ps1)."""
    action = manifest["actions"][-1]
    name = action.get("name") if isinstance(action, dict) else None
    if name != "module_wrapper.ps1":
        raise ModuleFailure(f"nhs_cm_emulator: the executor script {name!r} is not emulated; only modules "
                            f"({', '.join(sorted(TWINS))}) are answered")
    params = action.get("params") or {}
    script = str(params.get("Script") or "")
    if not script.startswith(COLLECTION_PREFIX) or not script.endswith(".ps1"):
        raise ModuleFailure(f"nhs_cm_emulator: the module {script!r} is not emulated; only ansible.windows."
                            f"{', ansible.windows.'.join(sorted(TWINS))} are answered by Python stand-ins")
    short = script[len(COLLECTION_PREFIX):-len(".ps1")]
    if short not in TWINS:
        raise ModuleFailure(f"nhs_cm_emulator: the module ansible.windows.{short} is not emulated; only "
                            f"ansible.windows.{', ansible.windows.'.join(sorted(TWINS))} are answered")
    args: dict[str, Any] = {}
    for variable in params.get("Variables") or []:
        if isinstance(variable, dict) and variable.get("Name") == "complex_args":
            args = dict(variable.get("Value") or {})
    return short, args


def run_exec_wrapper(host: HostState, stdin: bytes) -> Result:
    """Answer one module run through Ansible's exec wrapper: (stdout, stderr, exit code)."""
    try:
        name, args = module_call(parse_manifest(stdin))
        result = TWINS[name](host, {k: v for k, v in args.items() if not k.startswith("_ansible_")})
    except ModuleFailure as exc:
        result = {"changed": False, **exc.fields, "failed": True, "msg": exc.message}
    code = 1 if result.get("failed") else 0
    return json.dumps(result, separators=(",", ":")).encode("utf-8") + b"\r\n", b"", code


def _param(args: dict[str, Any], name: str, *aliases: str) -> Any:
    for key in (name, *aliases):
        if args.get(key) is not None:
            return args[key]
    return None


def _check_args(args: dict[str, Any], module: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ModuleFailure(f"Unsupported parameters for ({module}) module: {', '.join(unknown)}. "
                            f"Supported parameters include: {', '.join(sorted(allowed))}")


# -- win_ping ------------------------------------------------------------------------------------


def win_ping(host: HostState, args: dict[str, Any]) -> dict[str, Any]:
    _check_args(args, "ansible.windows.win_ping", ("data",))
    data = args.get("data", "pong")
    if data == "crash":
        raise ModuleFailure("Unhandled exception while executing module: boom")
    return {"changed": False, "ping": data, "invocation": {"module_args": {"data": data}}}


# -- win_reg_stat --------------------------------------------------------------------------------


def _expand(text: str) -> str:
    return re.sub(r"%([^%]+)%", lambda m: ENVIRONMENT.get(m.group(1).lower(), m.group(0)), text)


def reg_value(value: Value) -> dict[str, Any]:
    """{type, value, raw_value} as win_reg_stat's Get-PropertyValue returns them."""
    data = value.data
    if value.type in ("REG_BINARY", "REG_NONE"):
        octets = bytes.fromhex(data or "")
        return {"type": value.type, "value": list(octets), "raw_value": [f"0x{b:02x}" for b in octets]}
    if value.type == "REG_EXPAND_SZ":
        return {"type": value.type, "value": _expand(data), "raw_value": data}
    if value.type == "REG_MULTI_SZ":
        return {"type": value.type, "value": list(data), "raw_value": list(data)}
    return {"type": value.type, "value": data, "raw_value": data}


def _open_key(host: HostState, path: str) -> Key | None:
    qualifier, _, rest = path.partition(":")
    hive = {"HKLM": "HKLM", "HKU": "HKU"}.get(qualifier.upper())
    segments = [s for s in rest.split("\\") if s]
    if hive is None:  # HKCU is the connecting account's hive, HKCR/HKCC are not emulated: empty
        return None
    registry = host.registry
    if registry.is_denied(hive, segments):
        raise ModuleFailure("Unhandled exception while executing module: Requested registry access is not allowed.",
                            exception="System.Security.SecurityException: Requested registry access is not allowed.")
    if not segments:
        return registry.roots[hive]
    return registry.lookup(hive, segments)


def win_reg_stat(host: HostState, args: dict[str, Any]) -> dict[str, Any]:
    _check_args(args, "ansible.windows.win_reg_stat", ("path", "key", "name", "entry", "value"))
    path = _param(args, "path", "key")
    name = _param(args, "name", "entry", "value")
    if not path:
        raise ModuleFailure("Get-AnsibleParam: Missing required argument: path")
    if not REG_PATH.match(str(path)):
        raise ModuleFailure(f"path: {path} is not a valid registry path, see module documentation for examples.")
    key = _open_key(host, str(path))
    result: dict[str, Any] = {"changed": False}
    if key is None:
        return {**result, "exists": False}
    if name is None:
        properties = {v.name: reg_value(v) for v in key.values.values()}
        return {**result, "exists": True, "properties": properties,
                "sub_keys": [child.name for child in key.sorted_children()]}
    value = key.value(str(name))
    if value is None:
        return {**result, "exists": False}
    return {**result, "exists": True, **reg_value(value)}


# -- win_service_info ----------------------------------------------------------------------------


def _matching_services(host: HostState, name: str | None) -> list[Service]:
    services = list(host.services)
    if name is None:
        return sorted(services, key=lambda s: s.name.lower())
    exact = [s for s in services if s.name.lower() == name.lower()]
    if exact:
        return exact
    if any(char in name for char in "*?["):  # Get-Service -Name: wildcards match the service name only
        return sorted((s for s in services if fnmatch.fnmatch(s.name.lower(), name.lower())),
                      key=lambda s: s.name.lower())
    return [s for s in services if s.display_name.lower() == name.lower()]  # ServiceController(display name)


def service_info(service: Service) -> dict[str, Any]:
    """One element of win_service_info's ``services``, every key the real module returns."""
    running = service.state == "running"
    shared = "svchost.exe" in service.command_line().lower()
    return {
        "checkpoint": 0, "controls_accepted": ["stop", "shutdown"] if running else [], "dependencies": [],
        "dependency_of": [], "description": "", "desktop_interact": False, "display_name": service.display_name,
        "error_control": "normal", "failure_actions": [], "failure_actions_on_non_crash_failure": False,
        "failure_command": None, "failure_reboot_msg": None, "failure_reset_period_sec": 0,
        "launch_protection": "none", "load_order_group": "", "name": service.name, "path": service.command_line(),
        "pre_shutdown_timeout_ms": 10000, "preferred_node": None, "process_id": service.pid or 0,
        "required_privileges": [], "service_exit_code": 0, "service_flags": [],
        "service_type": "win32_share_process" if shared else "win32_own_process", "sid_info": "none",
        "start_mode": service.start_mode, "state": SERVICE_STATES.get(service.state, service.state), "triggers": [],
        "username": "LocalSystem", "wait_hint_ms": 0, "win32_exit_code": 0 if running else 1077,
    }


def win_service_info(host: HostState, args: dict[str, Any]) -> dict[str, Any]:
    _check_args(args, "ansible.windows.win_service_info", ("name",))
    name = args.get("name")
    services = [service_info(s) for s in _matching_services(host, None if name is None else str(name))]
    return {"changed": False, "exists": bool(services), "services": services,
            "invocation": {"module_args": {"name": name}}}


# -- win_shell -----------------------------------------------------------------------------------


def _normalise_command(text: str) -> str:
    return re.sub(r"\s*,\s*", ", ", " ".join(text.split())).lower()


def process_objects(host: HostState) -> list[dict[str, Any]]:
    """What ``Get-Process -IncludeUserName | Select-Object ...`` gives, as ConvertTo-Json writes it."""
    out = []
    for process in sorted(host.processes, key=lambda p: p.pid):
        name = process.name
        base = name[:-4] if name.lower().endswith(".exe") else name
        out.append({"Id": process.pid, "ProcessName": base, "Path": process.image, "SessionId": process.session,
                    "UserName": process.user})
    return out


def win_shell(host: HostState, args: dict[str, Any]) -> dict[str, Any]:
    _check_args(args, "ansible.windows.win_shell", ("_raw_params", "cmd", "chdir", "executable", "creates",
                                                    "removes", "stdin", "no_profile", "output_encoding_override"))
    command = str(_param(args, "_raw_params", "cmd") or "")
    start = datetime(2025, 1, 1, 12, 0, 0)
    end = start + timedelta(milliseconds=350)
    result: dict[str, Any] = {"changed": True, "cmd": command, "start": str(start), "end": str(end),
                              "delta": str(end - start), "stderr": ""}
    if args.get("executable") or _normalise_command(command) != _normalise_command(PROCESS_COMMAND):
        message = ("nhs_cm_emulator: win_shell can only answer the process listing of benchmarks/baseline.yml "
                   f"({PROCESS_COMMAND!r}); the emulated host does not run PowerShell")
        raise ModuleFailure("non-zero return code", **{**result, "rc": 1, "stdout": "", "stderr": message + "\r\n"})
    stdout = json.dumps(process_objects(host), separators=(",", ":")) + "\r\n"
    return {**result, "rc": 0, "stdout": stdout}


TWINS: dict[str, Callable[[HostState, dict[str, Any]], dict[str, Any]]] = {
    "win_ping": win_ping,
    "win_reg_stat": win_reg_stat,
    "win_service_info": win_service_info,
    "win_shell": win_shell,
}

