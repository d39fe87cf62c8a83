"""The write operations of docs/runner-protocol.md, answered from (and changing) a host's state.

``HANDLERS`` maps each write operation (its fields are in contract.py) to its function; ops.py
joins it with read_ops.HANDLERS, runs a whole request (``write_errors: stop``) and calls
``count_write`` after each write that succeeded.

The write allow-list is the runner's (``$WriteKeyPatterns``, ``$DeleteKeyPatterns``, ... in
plugins/plugin_utils/_runner/writes.ps1), pattern for pattern: the same targets are refused
with ``forbidden`` in the same order of checks, whatever the request asks.

Behaviour (``behaviour`` of the scenario format, emulator/README.md):
- ``service_set`` of the NHS Port Service fails when ``port_service_start_fails``; once
  (re)started it listens on ``port_service_ports``. A running service has the pid
  2000 + 4 * its index, as at load time. A service of ``hung_services`` stays start_pending /
  stop_pending: the operation waits ``timeout_ms`` and answers ``timeout``.
- ``task_run`` starts the program in the session of the task's user (``user``: that user's SID)
  when ``starts_on_logon_task`` allows it and the image is a file the host has (else the task ran
  but the program did not: ``started: false`` with the LastTaskResult Windows would give). A
  program under a CM or Identity Hub ``InstallLocation`` listens on a free loopback port. A
  program in a folder non-administrators can write (a profile, Public, %ProgramData%, a temporary
  folder, ``user_writable_folders``) is ``forbidden``.
- Backups are the files of the backup folder (``HostState.backups``, ``backup_folder``), with
  their owner, reparse point and last-write time; see op_backup_save, op_backup_load and
  op_backup_list.
- Every executed write operation counts in ``HostState.writes`` (``GET /stats``).
- ``gp_refresh`` (optional): right after the host's ``after_writes``-th write, its ``registry``
  values are written, once, as a Group Policy refresh during the run would. ``slow_ops``: an
  operation of the request takes that many seconds first.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import ntpath
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .contract import WRITE_OPERATIONS, OpError, invalid
from .read_ops import ABSOLUTE_PATH, PORT_SERVICE_DISPLAY_NAME, USER_SID, default_profile_segments
from .registry import KeyPathError, Registry, Value, split_key
from .scenario import ADMIN_OWNERS, DEFAULT_OWNER, PROCESS_PID_BASE, PROTECTED_ACL, service_pid
from .state import ENVIRONMENT, SYSTEM_USER, Process, normalise_path

if TYPE_CHECKING:
    from .registry import Key
    from .state import HostState, Service

__all__ = ["HANDLERS", "WRITE_OPERATIONS", "check_write_target", "count_write"]

#: The host code's allow-list (writes.ps1), the same patterns; emulator/tests/test_write_ops.py evaluates
#: the PowerShell assignments and compares. (key pattern, value name pattern) pairs, case-insensitive.
WRITE_ROOT = r"^(HKLM\\SOFTWARE|HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software)\\"
USER_ROOT = r"^HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software\\"
ZONE_ROOT = (r"(^HKLM\\SOFTWARE\\Policies\\|" + USER_ROOT
             + r"(Policies\\)?)Microsoft\\Windows\\CurrentVersion\\Internet Settings\\")
WRITE_TARGETS = (
    (WRITE_ROOT + r"Policies\\(Google\\Chrome|Microsoft\\Edge)\\(CookiesAllowedForUrls|CookiesBlockedForUrls|"
     r"LocalNetworkAccessAllowedForUrls|LoopbackNetworkAllowedForUrls)$", r"^[0-9]{1,5}$"),
    (WRITE_ROOT + r"Policies\\Mozilla\\Firefox\\Cookies\\Allow$", r"^[0-9]{1,5}$"),
    (WRITE_ROOT + r"Policies\\Mozilla\\Firefox\\Cookies\\Block$", r"^[^\x00-\x1F]{1,255}$"),
    (WRITE_ROOT + r"Policies\\(Google\\Chrome|Microsoft\\Edge)$",
     r"^(BlockThirdPartyCookies|AuthServerAllowlist|AuthServerWhitelist)$"),
    (ZONE_ROOT + r"ZoneMap$", r"^(AutoDetect|IntranetName|ProxyBypass|UNCAsIntranet)$"),
    (ZONE_ROOT + r"ZoneMap\\(Domains|EscDomains|Ranges)(\\[^\\]+){1,2}$", r"^(\*|[a-z][a-z0-9+.-]{0,31}|:Range)$"),
    (ZONE_ROOT + r"Zones\\1$", r"^1A00$"),
    (WRITE_ROOT + r"Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMapKey$",
     r"^[^\x00-\x1F]{1,255}$"),
)
#: The parents of those keys that a write may have created: only ever deleted when empty.
PARENT_KEYS = (
    WRITE_ROOT + r"Policies\\(Google|Mozilla|Mozilla\\Firefox|Mozilla\\Firefox\\Cookies|Microsoft|Microsoft\\Windows|"
    r"Microsoft\\Windows\\CurrentVersion)$",
    ZONE_ROOT.rstrip("\\") + "$",
    ZONE_ROOT + r"(ZoneMap|ZoneMap\\(Domains|EscDomains|Ranges)|Zones)$",
)
SERVICE_NAMES = ("SCardSvr",)
SERVICE_DISPLAY_NAMES = ("NHS Port Service",)
TASK_NAME_PATTERN = r"^nhs_cm_[A-Za-z0-9_-]{1,64}$"
BACKUP_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
WRITE_REG_TYPES = ("REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY")
BACKUP_FOLDER = "C:\\ProgramData\\nhs_cm\\backups"
SYSTEM_ROOT = "C:\\Windows"
CM_PREFIXES = ("nhs credential management", "nhs identity hub")
UNINSTALL_KEYS = (("SOFTWARE", "Microsoft", "Windows", "CurrentVersion", "Uninstall"),
                  ("SOFTWARE", "WOW6432Node", "Microsoft", "Windows", "CurrentVersion", "Uninstall"))
FIRST_CM_PORT = 43485
#: LastTaskResult values: the task has not run (SCHED_S_TASK_HAS_NOT_RUN, 0x41303) and the task
#: is running (SCHED_S_TASK_RUNNING, 0x41301).
HAS_NOT_RUN_RESULT = 0x41303
RUNNING_RESULT = 0x41301

def _forbidden(message: str) -> OpError:
    return OpError("forbidden", message)


def count_write(host: HostState) -> None:
    """A write operation succeeded: count it (``writes`` of ``GET /stats``), then ``behaviour.gp_refresh``:
    once the host has made ``after_writes`` writes, a Group Policy refresh writes its ``registry``
    values, once (a reliability test's fault)."""
    host.writes += 1
    refresh = host.behaviour.get("gp_refresh")
    if not refresh or host.writes != refresh["after_writes"]:
        return
    for path, values in refresh["registry"].items():
        hive, segments = split_key(path, strict=False)
        host.registry.put_values(hive, segments, {n: (v["type"], v["data"]) for n, v in values.items()})


# -- fields -----------------------------------------------------------------------------------


def _str(op: dict[str, Any], field: str, default: str | None = None) -> str:
    value = op.get(field)
    if value is None:
        if default is None:
            raise invalid(op["op"], field, "missing")
        return default
    if not isinstance(value, str):
        raise invalid(op["op"], field, f"expected a string, found {type(value).__name__}")
    return value


def _choice(op: dict[str, Any], field: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = op.get(field)
    if value is None:
        return default
    if value not in choices:
        raise invalid(op["op"], field, f"expected one of {', '.join(choices)}, found {value!r}")
    return value


def _int(op: dict[str, Any], field: str, low: int, high: int, default: int | None) -> int:
    value = op.get(field)
    if value is None:
        if default is None:
            raise invalid(op["op"], field, "missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(op["op"], field, f"expected an integer {low}..{high}, found {value!r}")
    return value


# -- the allow-list -----------------------------------------------------------------------------


def key_shape_problem(key: str) -> str | None:
    """Why a key is not a plain path (printable ASCII, <= 512, no '/', no empty, '.' or '..' part)."""
    if not 1 <= len(key) <= 512:
        return "is empty or longer than 512 characters"
    if re.search(r"[^\x20-\x7E]", key):
        return "has control or non-ASCII characters"
    if "/" in key:
        return "has a '/'"
    if any(part in ("", ".", "..") for part in key.split("\\")):
        return "has an empty, '.' or '..' part"
    return None


def _matches(text: str, pattern: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None


def check_write_target(key: str, name: str, key_only: bool = False) -> None:
    """``forbidden`` unless the allow-list lets this value be written (or, ``key_only``, this key be
    emptied away), as Assert-WriteTarget in writes.ps1."""
    plain = key_shape_problem(key) is None
    if plain and any(_matches(key, target) and (key_only or _matches(name, names)) for target, names in WRITE_TARGETS):
        return
    if plain and key_only and any(_matches(key, parent) for parent in PARENT_KEYS):
        return
    raise _forbidden(f"'{key}' value '{name}' is not one this collection's roles write (the runner's write allow-list)")


def program_path_problem(path: str) -> str | None:
    """Why a path is not a .exe on a local drive outside the Windows folder."""
    if len(path) > 260:
        return "is longer than 260 characters"
    if not re.match(r'^[A-Za-z]:\\[^<>"|?*\x00-\x1F]+\.exe$', path, re.IGNORECASE):
        return "is not the absolute path of a .exe on a local drive"
    if any(part in ("", ".", "..") for part in path.split("\\")):
        return "has an empty, '.' or '..' part"
    if path.lower().startswith(SYSTEM_ROOT.lower() + "\\"):
        return "lies under the Windows folder"
    return None


# -- registry -----------------------------------------------------------------------------------


def _key_parts(host: HostState, op: dict[str, Any], key: str, view: str) -> tuple[str, list[str]]:
    try:
        hive, segments = split_key(key, strict=True)
    except KeyPathError as exc:
        raise invalid(op["op"], "key", str(exc)) from exc
    return hive, host_view(hive, default_profile_segments(host, hive, segments), view)


def host_view(hive: str, segments: list[str], view: str) -> list[str]:
    return Registry.map_view(hive, segments, view)


def _check_denied(reg: Registry, hive: str, segments: list[str], key: str) -> None:
    if reg.is_denied(hive, segments):
        raise OpError("access_denied", f"access to {key} is denied")


def _write_data(op: dict[str, Any], vtype: str, data: Any) -> Any:
    if vtype in ("REG_SZ", "REG_EXPAND_SZ") and isinstance(data, str):
        return data
    if vtype == "REG_MULTI_SZ" and isinstance(data, list) and all(isinstance(s, str) for s in data):
        return list(data)
    if vtype in ("REG_DWORD", "REG_QWORD") and isinstance(data, int) and not isinstance(data, bool):
        top = 2**32 if vtype == "REG_DWORD" else 2**64
        if 0 <= data < top:
            return data
    if vtype == "REG_BINARY" and isinstance(data, str) and re.fullmatch(r"(?:[0-9a-f]{2})*", data):
        return data
    raise invalid(op["op"], "data", f"does not fit the type {vtype}: {data!r}")


def _ensure_key(reg: Registry, hive: str, segments: list[str], key: str) -> tuple[Key, bool]:
    """The key, created (with its missing parents, shown in GET /state) when missing."""
    if reg.lookup(hive, segments) is not None:
        return reg.lookup(hive, segments), False  # type: ignore[return-value]
    if hive == "HKU" and reg.lookup("HKU", segments[:1]) is None:
        raise OpError("access_denied", f"cannot create {key}: HKU\\{segments[0]} is not a loaded hive")
    node = reg.roots[hive]
    for name in segments:
        child = node.child(name)
        if child is None:
            child = node.ensure_child(name)
            child.explicit = True
        node = child
    return node, True


def op_reg_write(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    key = _str(op, "key")
    view = _choice(op, "view", ("64", "32"), "64") or "64"
    name = _str(op, "name")
    vtype = _choice(op, "type", WRITE_REG_TYPES, None)
    if vtype is None:
        raise invalid("reg_write", "type", "missing")
    check_write_target(key, name)
    data = _write_data(op, vtype, op.get("data"))
    hive, segments = _key_parts(host, op, key, view)
    _check_denied(host.registry, hive, segments, key)
    node, created = _ensure_key(host.registry, hive, segments, key)
    old = node.value(name)
    node.set_value(Value(name, vtype, data))
    return {"previous": old.as_reply() if old is not None else None, "created_key": created}


def op_reg_delete(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    key = _str(op, "key")
    view = _choice(op, "view", ("64", "32"), "64") or "64"
    name = _str(op, "name")
    check_write_target(key, name)
    hive, segments = _key_parts(host, op, key, view)
    _check_denied(host.registry, hive, segments, key)
    node = host.registry.lookup(hive, segments)
    if node is None or node.value(name) is None:
        return {"existed": False}
    del node.values[name.lower()]
    return {"existed": True}


def op_reg_delete_key(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    key = _str(op, "key")
    view = _choice(op, "view", ("64", "32"), "64") or "64"
    check_write_target(key, "", key_only=True)
    hive, segments = _key_parts(host, op, key, view)
    _check_denied(host.registry, hive, segments, key)
    node = host.registry.lookup(hive, segments)
    if node is None:
        return {"deleted": False, "reason": "does not exist"}
    if node.values or node.children:
        return {"deleted": False, "reason": "not empty"}
    parent = host.registry.lookup(hive, segments[:-1])
    assert parent is not None
    del parent.children[segments[-1].lower()]
    return {"deleted": True, "reason": None}


# -- backups ------------------------------------------------------------------------------------


def _backup_id(op: dict[str, Any]) -> str:
    value = _str(op, "id")
    if re.match(BACKUP_ID_PATTERN, value):
        return value
    raise _forbidden(f"backup id '{value}' must be 1 to 80 letters, digits, '_' or '-'")


def _entries(op: dict[str, Any]) -> list[dict[str, Any]]:
    value = op.get("entries")
    if value is None:
        raise invalid("backup_save", "entries", "missing")
    if not isinstance(value, list) or len(value) > 1000:
        raise invalid("backup_save", "entries", "expected a list of at most 1000 objects")
    for entry in value:
        if not isinstance(entry, dict) or entry.get("kind") not in ("reg", "service"):
            raise invalid("backup_save", "entries", "each entry needs kind 'reg' or 'service'")
        target = entry.get("key") if entry["kind"] == "reg" else entry.get("name")
        if not isinstance(target, str):
            raise invalid("backup_save", "entries", "a reg entry needs a key, a service entry a name")
    return value


def _missing_keys(host: HostState, entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    missing: list[dict[str, str]] = []
    for entry in entries:
        if entry["kind"] != "reg":
            continue
        view = "32" if entry.get("view") == "32" else "64"
        chain: list[str] = []
        key = entry["key"]
        while "\\" in key and not _key_exists(host, key, view):
            chain.insert(0, key)
            key = key.rsplit("\\", 1)[0]
        for item in chain:
            if (view, item.upper()) not in seen:
                seen.add((view, item.upper()))
                missing.append({"key": item, "view": view})
    return missing


def _key_exists(host: HostState, key: str, view: str) -> bool:
    try:
        hive, segments = split_key(key, strict=True)
    except KeyPathError:
        return False
    segments = default_profile_segments(host, hive, segments)
    return host.registry.lookup(hive, host_view(hive, segments, view)) is not None


def _path(backup_id: str) -> str:
    return f"{BACKUP_FOLDER}\\{backup_id}.json"


def _stamp(moment: datetime.datetime) -> str:
    """A UTC time as the runner writes it: yyyy-MM-ddTHH:mm:ss.fffZ."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _file_time(host: HostState) -> str:
    """Now, by the host's clock, for a new backup file; never the time of a file already there or
    earlier (two backups in one millisecond stay in the order they were saved)."""
    text = _stamp(host.now())
    latest = max((b["modified"] for b in host.backups), default="")
    if text <= latest:
        later = datetime.datetime.strptime(latest, "%Y-%m-%dT%H:%M:%S.%fZ") + datetime.timedelta(milliseconds=1)
        text = _stamp(later)
    return text


def _owner_problem(owner: str) -> str | None:
    if owner.lower() in ADMIN_OWNERS:
        return None
    return f"is owned by {owner}, not by SYSTEM or BUILTIN\\Administrators, so another account controls it"


def _folder_problem(folder: dict[str, Any]) -> str | None:
    """Why the runner must not use an existing backup folder, or None."""
    if folder["reparse_point"]:
        return "is a reparse point (a link to another folder), which another account could have made"
    return _owner_problem(folder["owner"])


def _file_problem(backup: dict[str, Any]) -> str | None:
    """Why the runner must not trust a backup file, or None."""
    if backup["reparse_point"]:
        return "is a reparse point (a link to another file), which another account could have made"
    return _owner_problem(backup["owner"])


def _content(backup: dict[str, Any]) -> dict[str, Any]:
    """The backup a file holds, or ValueError saying why it is none."""
    if "content" not in backup:
        return {name: backup[name] for name in ("id", "saved_at", "entries", "missing_keys")}
    try:
        data = json.loads(backup["content"].lstrip("\ufeff"))
    except ValueError as exc:
        raise ValueError(f"is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ValueError("is not a backup: no list of entries")
    return data


def _find_backup(host: HostState, backup_id: str) -> dict[str, Any] | None:
    return next((b for b in host.backups if b["id"].lower() == backup_id.lower()), None)


def op_backup_save(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    backup_id = _backup_id(op)
    entries = _entries(op)
    folder = host.backup_folder
    if folder is not None:
        problem = _folder_problem(folder)
        if problem:
            raise _forbidden(f"the backup folder {BACKUP_FOLDER} {problem}; refusing to save backups there")
        host.backup_folder = {**folder, "acl": list(PROTECTED_ACL), "inherit": False}  # made protected again
    else:  # created with a protected ACL: SYSTEM and Administrators only, inheritance off
        host.backup_folder = {"owner": DEFAULT_OWNER, "reparse_point": False, "acl": list(PROTECTED_ACL),
                              "inherit": False}
    if _find_backup(host, backup_id) is not None:
        raise invalid("backup_save", "id", f"a backup with the id '{backup_id}' exists already")
    missing = _missing_keys(host, entries)
    modified = _file_time(host)
    host.backups.append({"id": backup_id, "saved_at": modified, "entries": entries, "missing_keys": missing,
                         "modified": modified, "owner": DEFAULT_OWNER, "reparse_point": False})
    return {"id": backup_id, "path": _path(backup_id), "missing_keys": missing}


def op_backup_load(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    backup_id = _backup_id(op)
    backup = _find_backup(host, backup_id)
    if backup is None:
        raise OpError("not_found", f"no backup '{backup_id}' on this host ({_path(backup_id)})")
    path = _path(backup["id"])
    problem = _file_problem(backup)
    if problem:
        raise _forbidden(f"the backup file {path} {problem}; refusing to use it")
    try:
        return {"backup": _content(backup)}
    except ValueError as exc:
        raise OpError("failed", f"the backup file {path} {exc}") from None


def op_backup_list(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    """One element per *.json file of the backup folder, oldest first by the file's last-write time
    (never by what a file says); a file that cannot be used says why in ``error``."""
    listed = []
    for backup in sorted(host.backups, key=lambda b: (b["modified"], b["id"].lower())):
        entries, error = None, _file_problem(backup)
        if error is None:
            try:
                entries = len(_content(backup)["entries"])
            except ValueError as exc:
                error = str(exc)
        listed.append({"id": backup["id"], "saved_at": backup["modified"], "entries": entries,
                       "path": _path(backup["id"]), "error": error})
    return {"backups": listed}


# -- services -----------------------------------------------------------------------------------


def _listen_ports(op: dict[str, Any]) -> list[int]:
    value = op.get("listen_ports")
    if value is None:
        return []
    if not isinstance(value, list) or any(isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535
                                          for p in value):
        raise invalid("service_set", "listen_ports", f"expected a list of ports 1..65535, found {value!r}")
    return value


def _service(host: HostState, name: str) -> tuple[int, Service]:
    if not re.match(r"^[A-Za-z0-9 _.$-]{1,256}$", name):
        raise invalid("service_set", "name", "must be a service name")
    for index, service in enumerate(host.services):
        if service.name.lower() == name.lower():
            return index, service
    raise OpError("not_found", f"no service is named '{name}'")


def _is_port_service(service: Service) -> bool:
    return service.display_name.lower() == PORT_SERVICE_DISPLAY_NAME.lower()


def _stop(host: HostState, service: Service) -> None:
    host.processes = [p for p in host.processes if not (p.implicit and p.pid == service.pid)]
    service.state, service.pid = "stopped", None


def _hangs(host: HostState, service: Service) -> bool:
    """``behaviour.hung_services``: the service never finishes starting or stopping."""
    return service.name.lower() in {name.lower() for name in host.behaviour.get("hung_services", [])}


def _not_settled(host: HostState, service: Service, wanted: str, timeout_ms: int) -> OpError:
    """The runner waits ``timeout_ms`` for the state, then gives up (error timeout)."""
    host.pause(timeout_ms / 1000)
    shown = {"start_pending": "StartPending", "stop_pending": "StopPending"}.get(service.state, service.state)
    return OpError("timeout", f"service {service.name} did not become {wanted} within {timeout_ms} ms (it is "
                              f"{shown})")


def _start(host: HostState, index: int, service: Service, timeout_ms: int) -> None:
    if _is_port_service(service) and host.behaviour.get("port_service_start_fails"):
        raise OpError("failed", f"service {service.name} is Stopped, not Running (the service did not respond "
                                "to the start or control request in a timely fashion)")
    if service.pid is None:  # (a service still start_pending from an earlier start has its process)
        service.pid = service_pid(index)
        image = service.executable()
        host.processes.append(Process(service.pid, ntpath.basename(image), image, 0, SYSTEM_USER, implicit=True))
    service.state = "start_pending" if _hangs(host, service) else "running"
    if service.state != "running":
        raise _not_settled(host, service, "Running", timeout_ms)
    if _is_port_service(service):
        service.listens = list(host.behaviour.get("port_service_ports") or [])


def op_service_set(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    name = _str(op, "name")
    start_mode = _choice(op, "start_mode", ("auto", "manual", "disabled"), None)
    state = _choice(op, "state", ("started", "stopped", "restarted"), None)
    if state is None:
        raise invalid("service_set", "state", "missing")
    timeout_ms = _int(op, "timeout_ms", 1000, 120000, 30000)
    _listen_ports(op)
    _int(op, "listen_wait_ms", 0, 120000, 0)  # the emulated service listens at once: nothing to wait for
    index, service = _service(host, name)
    if service.name not in SERVICE_NAMES and service.display_name not in SERVICE_DISPLAY_NAMES:
        raise _forbidden(f"service '{service.name}' ({service.display_name}) is not one this collection manages "
                         "(the runner's write allow-list)")
    previous_state, previous_start_mode = service.state, service.start_mode
    if start_mode is not None:
        service.start_mode = start_mode
    if state in ("stopped", "restarted") and service.state != "stopped":
        if _hangs(host, service):
            service.state = "stop_pending"
            raise _not_settled(host, service, "Stopped", timeout_ms)
        _stop(host, service)
    if state in ("started", "restarted") and service.state != "running":
        if service.start_mode == "disabled":
            raise OpError("failed", f"service {service.name} cannot be started: it is disabled")
        _start(host, index, service, timeout_ms)
    return {"name": service.name, "display_name": service.display_name, "state": service.state,
            "start_mode": service.start_mode, "previous_state": previous_state,
            "previous_start_mode": previous_start_mode}


# -- tasks and processes ------------------------------------------------------------------------


def _cm_folders(reg: Registry) -> list[str]:
    folders = []
    for path in UNINSTALL_KEYS:
        root = reg.lookup("HKLM", list(path))
        for entry in root.children.values() if root is not None else []:
            name, location = entry.value("DisplayName"), entry.value("InstallLocation")
            if name is None or location is None or not str(location.data).strip():
                continue
            if str(name.data).lower().startswith(CM_PREFIXES):
                folders.append(normalise_path(str(location.data)).rstrip("\\") + "\\")
    return folders


def _free_port(host: HostState) -> int:
    used = set(host.listeners())
    port = FIRST_CM_PORT
    while port in used:
        port += 1
    return port


def _new_pid(host: HostState) -> int:
    return max([PROCESS_PID_BASE, *(p.pid for p in host.processes)]) + 4


def _session_of(host: HostState, number: int, sid: str) -> dict[str, Any] | None:
    """The session ``number`` when its user is the account ``sid`` (the task's principal)."""
    for session in host.sessions:
        if session["id"] == number and str(session["sid"]).lower() == sid.lower():
            return session
    return None


def _is_under(path: str, folder: str) -> bool:
    folded, base = normalise_path(path), normalise_path(folder).rstrip("\\")
    return folded == base or folded.startswith(base + "\\")


def writable_folder_problem(host: HostState, command: str) -> str | None:
    """Why non-administrators could replace the program ``command`` (so the runner refuses to
    start it as a user), or None: it lies under a user profile folder, the Public profile,
    %ProgramData% or a temporary folder, or a folder on its path gives write access to Users,
    Authenticated Users or Everyone (``user_writable_folders``; every other folder is
    administrators-only, as Program Files)."""
    places = [(host.profile_list_folder("ProfilesDirectory") or "C:\\Users", "the user profile folder"),
              (host.profile_list_folder("Public") or "C:\\Users\\Public", "the Public profile folder")]
    places += [(profile["path"], f"the profile folder of {profile['user']}") for profile in host.profiles]
    places += [(ENVIRONMENT["programdata"], "%ProgramData%"), (SYSTEM_ROOT + "\\Temp", "a temporary folder")]
    for folder, label in places:
        if _is_under(command, folder):
            shown = folder.rstrip("\\")
            return (f"lies under {label} ({shown}), which non-administrators can write: only a program in a "
                    "folder that only administrators can write is started")
    folder = ntpath.dirname(command)
    for acl in host.user_writable_folders:
        if _is_under(folder, acl["path"]):
            return (f"lies in {acl['path']}, whose ACL lets {acl['group']} write: only a program in a folder "
                    "that only administrators can write is started")
    return None


def _files(host: HostState) -> dict[str, str]:
    """Every file the host has, lower-cased path -> path as written."""
    paths = [f["path"] for f in host.files] + [p.image for p in host.processes if p.image]
    paths += [s.executable() for s in host.services]
    return {normalise_path(path): path for path in paths}


def op_task_run(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    name = _str(op, "name")
    user = _str(op, "user")
    if not USER_SID.match(user):
        raise invalid("task_run", "user", f"must be the SID of a person's account (S-1-5-21-... or S-1-12-1-...), "
                                           f"not {user!r}")
    number = _int(op, "session", 1, 65535, None)
    command = _str(op, "command")
    arguments = _str(op, "arguments", "")
    _int(op, "wait_ms", 0, 120000, 15000)
    if not re.match(TASK_NAME_PATTERN, name):
        raise _forbidden(f"task name '{name}' must be nhs_cm_ followed by 1 to 64 letters, digits, '_' or '-'")
    if len(arguments) > 512 or re.search(r"[\x00-\x1F]", arguments):
        raise _forbidden("the arguments must be at most 512 characters without control characters")
    problem = program_path_problem(command) or writable_folder_problem(host, command)
    if problem:
        raise _forbidden(f"command '{command}' {problem}")
    if normalise_path(command) not in host.known_files():
        raise OpError("not_found", f"no program at {command}")
    session = _session_of(host, number, user)
    if session is None or not host.behaviour.get("starts_on_logon_task", True):
        return {"started": False, "pid": None, "last_result": HAS_NOT_RUN_RESULT, "deleted": True}
    image = _files(host)[normalise_path(command)]
    folded = normalise_path(image)
    listens = [_free_port(host)] if any(folded.startswith(f) for f in _cm_folders(host.registry)) else []
    version = host.file_versions().get(folded)
    process = Process(_new_pid(host), ntpath.basename(image), image, number, session["user"], listens, version)
    host.processes.append(process)
    return {"started": True, "pid": process.pid, "last_result": RUNNING_RESULT, "deleted": True}


def op_process_stop(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    pid = _int(op, "pid", 1, 2**31 - 1, None)
    image = _str(op, "image")
    problem = program_path_problem(image)
    if problem:
        raise _forbidden(f"image '{image}' {problem}")
    target: Process | None = None
    for process in host.processes:
        if process.pid == pid and process.image and normalise_path(process.image) == normalise_path(image):
            target = process
    if target is None:
        return {"found": False, "stopped": False}
    if target.session < 1:
        raise _forbidden(f"process {pid} runs in session 0; only processes of interactive sessions may be stopped")
    host.processes.remove(target)
    return {"found": True, "stopped": True}


# -- files ----------------------------------------------------------------------------------------


def op_file_list(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    folder = _str(op, "dir")
    pattern = _str(op, "pattern", "*.exe")
    if not ABSOLUTE_PATH.match(folder):
        raise invalid("file_list", "dir", "must be an absolute path")
    if not re.match(r"^[A-Za-z0-9 _.*?-]{1,64}$", pattern):
        raise invalid("file_list", "pattern", "must be a file-name wildcard of letters, digits, space, '_', '.', "
                                               "'-', '*' and '?'")
    wanted = normalise_path(folder).rstrip("\\")
    versions = host.known_files()
    files = []
    for folded, path in sorted(_files(host).items()):
        if ntpath.dirname(folded) == wanted and fnmatch.fnmatch(ntpath.basename(folded), pattern.lower()):
            files.append({"path": path, "version": versions.get(folded)})
    return {"files": files}


HANDLERS: dict[str, Callable[[HostState, dict[str, Any]], dict[str, Any]]] = {
    "reg_write": op_reg_write,
    "reg_delete": op_reg_delete,
    "reg_delete_key": op_reg_delete_key,
    "backup_save": op_backup_save,
    "backup_load": op_backup_load,
    "backup_list": op_backup_list,
    "service_set": op_service_set,
    "task_run": op_task_run,
    "process_stop": op_process_stop,
    "file_list": op_file_list,
}
