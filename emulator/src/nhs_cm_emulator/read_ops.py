"""The read operations of docs/runner-protocol.md, answered from a host's state.

Each operation validates every field of its request and raises ``OpError`` (``invalid_request``
naming the field, or the error the runner would give); ``ops.run_op`` turns that into the
operation's error result. ``HANDLERS`` maps each read operation to its function; ops.py joins it
with write_ops.HANDLERS. The default profile's hive is loaded here on first use in a request
(``default_profile_segments``), for reads and writes alike, and unloaded at the request's end
(``release_default_profile``, called by ops.py).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .contract import OpError, invalid
from .registry import HiveError, Key, KeyPathError, Registry, split_key
from .state import normalise_path

if TYPE_CHECKING:
    from .state import HostState

#: What Get-Process -IncludeUserName says without elevation (behaviour process_owners_unreadable).
NO_OWNERS = ("Get-Process -IncludeUserName failed: The 'IncludeUserName' parameter requires elevated user rights. "
             "Try running the command again in a session that has been opened with elevated user rights (that "
             "is, Run as Administrator).")
MAX_DEPTH = 4
MAX_BODY = 4096
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
PORT_SERVICE_DISPLAY_NAME = "NHS Port Service"
PRS_PORT_PATH = "/prs/getportnumber"
PR30007 = "PR30007: Request failed due to unknown exception. Exception=Unable to find CM process for user"
WINRM_LISTENER = {"address": "0.0.0.0", "port": 5985, "pid": 4}
ABSOLUTE_PATH = re.compile(r"^([A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)")
#: People's SIDs (USER_SID_PATTERN of the collection's _runner/protocol.py): service SIDs, the system
#: accounts and <sid>_Classes hives never match.
USER_SID = re.compile(r"^S-1-(?:5-21|12-1)-\d+-\d+-\d+-\d+$", re.IGNORECASE)
RELATIVE_KEY = re.compile(r"^[^\\]+(?:\\[^\\]+)*$")
HIVE_NAMES = ("HKLM", "HKU", "HKCU", "HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CURRENT_USER")
GPO_NAME = "Emulated domain policy"
MOUNT_PREFIX = "nhs_cm_"


# -- field readers ----------------------------------------------------------------------------


def _opt(op: dict[str, Any], field: str) -> Any:
    return op.get(field)


def _int_field(op: dict[str, Any], field: str, low: int, high: int, default: int) -> int:
    value = _opt(op, field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(op["op"], field, f"expected an integer {low}..{high}, found {value!r}")
    return value


def _str_list(op: dict[str, Any], field: str) -> list[str] | None:
    value = _opt(op, field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(op["op"], field, "expected a list of strings")
    return value


def _required_str(op: dict[str, Any], field: str) -> str:
    value = _opt(op, field)
    if value is None:
        raise invalid(op["op"], field, "missing")
    if not isinstance(value, str):
        raise invalid(op["op"], field, f"expected a string, found {type(value).__name__}")
    return value


# -- reg_read ---------------------------------------------------------------------------------


DEFAULT_PROFILE_ROOT = ".DEFAULT_PROFILE"


def default_profile_segments(host: HostState, hive: str, segments: list[str]) -> list[str]:
    """``HKU\\.DEFAULT_PROFILE[\\...]`` -> ``HKU\\<mount point>[\\...]``, as the runner's
    Resolve-DefaultProfilePath: the default profile's hive (``<ProfileList Default>\\NTUSER.DAT``)
    is loaded under a new mount point on first use in a request and unloaded by
    ``release_default_profile`` at its end; a load that failed fails every later use the same way.
    Other paths are returned unchanged."""
    if hive != "HKU" or not segments or segments[0].lower() != DEFAULT_PROFILE_ROOT.lower():
        return segments
    if host.default_profile_error is not None:
        raise OpError(*host.default_profile_error)
    if host.default_profile_mount is None:
        file = host.default_profile_file()
        mount = MOUNT_PREFIX + uuid.uuid4().hex[:12]
        if file is None:
            host.default_profile_error = ("not_found", "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\"
                                          "ProfileList has no value 'Default' (the default profile's folder)")
            raise OpError(*host.default_profile_error)
        try:
            host.registry.load_default_profile(mount)
        except HiveError as exc:
            host.default_profile_error = ("failed", f"cannot load the default profile hive {file}: "
                                                    f"reg.exe load exited with 1: {exc}")
            raise OpError(*host.default_profile_error) from None
        host.hive_loads += 1
        host.default_profile_mount = mount
    return [host.default_profile_mount, *segments[1:]]


def release_default_profile(host: HostState) -> str | None:
    """Unload the default profile's hive if the request loaded it (the runner's end-of-run cleanup):
    why it stays loaded, or None."""
    mount, problem = host.default_profile_mount, None
    if mount is not None:
        try:
            host.registry.unload_hive(mount)
        except HiveError as exc:
            problem = f"the default profile hive stays loaded as HKU\\{mount}: reg.exe unload exited with 1: {exc}"
        else:
            host.hive_unloads += 1
    host.default_profile_mount = None
    host.default_profile_error = None
    return problem


def op_reg_read(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    key = _required_str(op, "key")
    try:
        hive, segments = split_key(key, strict=True)
    except KeyPathError as exc:
        raise invalid("reg_read", "key", str(exc)) from exc
    segments = default_profile_segments(host, hive, segments)
    view = _opt(op, "view")
    if view is None:
        view = "64"
    if view not in ("64", "32"):
        raise invalid("reg_read", "view", f'expected "64" or "32", found {view!r}')
    depth = _int_field(op, "depth", 0, MAX_DEPTH, 0)
    names = _str_list(op, "names")
    wanted = None if names is None else {n.lower() for n in names}
    reg: Registry = host.registry
    real = reg.map_view(hive, segments, view)
    if reg.is_denied(hive, real):
        raise OpError("access_denied", f"reg_read: access to {key} is denied")
    node = reg.lookup(hive, real)
    if node is None:
        return {"exists": False, "values": {}, "subkeys": {}}
    body = _read_node(reg, hive, segments, node, depth, wanted, view)
    return {"exists": True, **body}


def _read_node(reg: Registry, hive: str, logical: list[str], node: Key, depth: int, wanted: set[str] | None,
               view: str) -> dict[str, Any]:
    values = {v.name: v.as_reply() for v in node.values.values() if wanted is None or v.name.lower() in wanted}
    subkeys: dict[str, Any] = {}
    for child in node.sorted_children():
        path = [*logical, child.name]
        if depth == 0:
            subkeys[child.name] = None
            continue
        real = reg.map_view(hive, path, view)
        target = reg.lookup(hive, real)
        if reg.is_denied(hive, real):
            subkeys[child.name] = {"values": {}, "subkeys": {}, "error": "access_denied"}
        elif target is None:
            subkeys[child.name] = {"values": {}, "subkeys": {}}
        else:
            subkeys[child.name] = _read_node(reg, hive, path, target, depth - 1, wanted, view)
    return {"values": values, "subkeys": subkeys}


# -- processes, services, listeners -------------------------------------------------------------


def op_process_list(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    """Every process; with ``behaviour.process_owners_unreadable`` (Get-Process -IncludeUserName
    fails, as without elevation) every ``user`` is null, meaning unknown, and ``user_error`` says why."""
    unreadable = bool(host.behaviour.get("process_owners_unreadable"))
    processes = sorted(host.processes, key=lambda p: p.pid)
    return {"processes": [{"pid": p.pid, "name": p.name, "image": p.image, "session": p.session,
                           "user": None if unreadable else p.user, "version": host.process_version(p)}
                          for p in processes],
            "user_error": NO_OWNERS if unreadable else None}


def op_service_query(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    names = _str_list(op, "names")
    display_names = _str_list(op, "display_names")
    wanted_names = None if names is None else {n.lower() for n in names}
    wanted_display = None if display_names is None else {n.lower() for n in display_names}
    out = []
    for service in sorted(host.services, key=lambda s: s.name.lower()):
        everything = wanted_names is None and wanted_display is None
        by_name = wanted_names is not None and service.name.lower() in wanted_names
        by_display = wanted_display is not None and service.display_name.lower() in wanted_display
        if everything or by_name or by_display:
            out.append({"name": service.name, "display_name": service.display_name, "state": service.state,
                        "start_mode": service.start_mode, "image": service.command_line(),
                        "pid": service.pid or 0})
    return {"services": out}


def op_tcp_listeners(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    ports = _opt(op, "ports")
    if ports is not None and (not isinstance(ports, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports)):
        raise invalid("tcp_listeners", "ports", "expected a list of port numbers 1..65535")
    listeners = [dict(WINRM_LISTENER)] + [{"address": "127.0.0.1", "port": port, "pid": pid}
                                         for port, (pid, _) in host.listeners().items()]
    if ports is not None:
        listeners = [entry for entry in listeners if entry["port"] in ports]
    return {"listeners": sorted(listeners, key=lambda e: (e["port"], e["pid"]))}


def op_http_get(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    url = _required_str(op, "url")
    _int_field(op, "timeout_ms", 100, 30000, 2000)
    port, path = _loopback_url(url)
    owner = host.listeners().get(port)
    if owner is None:
        return {"status": None, "body": None, "error": "connection refused"}
    _, listener = owner
    if getattr(listener, "display_name", "").lower() == PORT_SERVICE_DISPLAY_NAME.lower():
        if path.rstrip("/").lower() == PRS_PORT_PATH:
            return {"status": 500, "body": PR30007, "error": None}
        return {"status": 404, "body": "Not Found", "error": None}
    return {"status": 200, "body": "OK"[:MAX_BODY], "error": None}


def _loopback_url(url: str) -> tuple[int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise invalid("http_get", "url", f"not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise invalid("http_get", "url", "only http and https URLs are allowed")
    if (parts.hostname or "").lower() not in LOOPBACK_HOSTS:
        raise invalid("http_get", "url", "the host must be localhost, 127.0.0.1 or [::1]")
    if parts.username is not None or parts.password is not None:
        raise invalid("http_get", "url", "no user name or password in the URL")
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    if not 1 <= port <= 65535:
        raise invalid("http_get", "url", "port out of range")
    return port, parts.path or "/"


# -- files, sessions, os -------------------------------------------------------------------------


def op_file_info(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    paths = _opt(op, "paths")
    if not isinstance(paths, list):
        raise invalid("file_info", "paths", "missing" if paths is None else "expected a list of absolute paths")
    for i, path in enumerate(paths):
        if not isinstance(path, str) or not ABSOLUTE_PATH.match(path.replace("/", "\\")):
            raise invalid("file_info", f"paths[{i}]", f"{path!r} is not an absolute path")
    known = host.known_files()
    out = []
    for path in paths:
        key = normalise_path(path)
        exists = key in known
        out.append({"path": path, "exists": exists, "version": known.get(key) if exists else None})
    return {"files": out}


def op_session_list(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    """The sessions with a user, found as the runner finds them, from the processes: a session's
    user is the owner of its explorer.exe, else of its processes owned by a person (USER_SID);
    never session 0. Nothing is compiled on the host, so the connection state is not known.
    Without the processes' owners (``process_owners_unreadable``) no session's user is known."""
    if host.behaviour.get("process_owners_unreadable"):
        raise OpError("access_denied", f"the sessions' users cannot be known: {NO_OWNERS}")
    owners: dict[int, list[tuple[bool, int, str]]] = {}
    for process in host.processes:
        if process.session < 1 or not process.user:
            continue
        explorer = process.name.lower() == "explorer.exe"
        if explorer or USER_SID.match(host.account_sid(process.user) or ""):
            owners.setdefault(process.session, []).append((not explorer, process.pid, process.user))
    sessions = []
    for number in sorted(owners):
        user = min(owners[number])[2]  # explorer.exe first, then the lowest pid
        sessions.append({"id": number, "user": user, "sid": host.account_sid(user)})
    return {"sessions": sessions}


def op_os_info(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    return {"product": host.os["product"], "version": host.os["version"], "computer_name": host.name,
            "emulated": True}


# -- user hives ----------------------------------------------------------------------------------


def _relative_key(op: dict[str, Any], field: str, path: Any) -> list[str]:
    if not isinstance(path, str) or not RELATIVE_KEY.match(path):
        raise invalid(op["op"], field, f"{path!r} is not a key path relative to a hive root (no empty parts)")
    segments = path.split("\\")
    if segments[0].upper() in HIVE_NAMES:
        raise invalid(op["op"], field, f"{path!r} names a hive; give the path below the hive root")
    return segments


def _path_depths(op: dict[str, Any]) -> list[tuple[str, list[str], int]]:
    value = _opt(op, "paths")
    if not isinstance(value, list):
        raise invalid(op["op"], "paths", "missing" if value is None else "expected a list of [key path, depth] pairs")
    out = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise invalid(op["op"], "paths", f"expected [key path, depth] pairs, found {item!r}")
        path, depth = item
        segments = _relative_key(op, "paths", path)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
            raise invalid(op["op"], "paths", f"depth of {path!r}: expected an integer 0..{MAX_DEPTH}, found {depth!r}")
        out.append((path, segments, depth))
    return out


def _bool_field(op: dict[str, Any], field: str, default: bool) -> bool:
    value = _opt(op, field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(op["op"], field, f"expected true or false, found {value!r}")
    return value


def _user_key(reg: Registry, root: str, segments: list[str], depth: int) -> dict[str, Any]:
    """One key below HKU\\<root> as the runner's node {exists, values, subkeys, error}."""
    path = [root, *segments]
    if reg.is_denied("HKU", path):
        return {"exists": False, "values": {}, "subkeys": {}, "error": "access_denied"}
    node = reg.lookup("HKU", path)
    if node is None:
        return {"exists": False, "values": {}, "subkeys": {}, "error": None}
    return {"exists": True, **_read_node(reg, "HKU", path, node, depth, None, "64"), "error": None}


def read_user_keys(reg: Registry, root: str, paths: list[tuple[str, list[str], int]]) -> dict[str, Any]:
    """Every requested key below HKU\\<root> (a SID or a mount point), by relative path."""
    return {path: _user_key(reg, root, segments, depth) for path, segments, depth in paths}


def _people(host: HostState) -> list[tuple[str, str | None, str | None]]:
    """(sid, user, profile folder) of every person's profile and loaded hive, sorted by SID."""
    found = {p["sid"].upper(): (p["sid"], p["user"], p["path"]) for p in host.profiles if USER_SID.match(p["sid"])}
    for child in host.registry.roots["HKU"].sorted_children():
        if USER_SID.match(child.name) and child.name.upper() not in found:
            found[child.name.upper()] = (child.name, None, None)
    return [found[sid] for sid in sorted(found)]


def _read_offline(host: HostState, sid: str, folder: str | None,
                  paths: list[tuple[str, list[str], int]]) -> tuple[str | None, dict[str, Any], str | None]:
    """Load the profile's NTUSER.DAT under a new mount point, read, unload even when reading
    fails: (mount point or None, keys, error)."""
    if folder is None:
        return None, {}, "not_found: ProfileList has no ProfileImagePath for this profile"
    file = folder.rstrip("\\") + "\\NTUSER.DAT"
    mount = MOUNT_PREFIX + uuid.uuid4().hex[:12]
    try:
        host.registry.load_hive(sid, mount)
    except HiveError as exc:
        return None, {}, f"failed: cannot load {file}: {exc}"
    host.hive_loads += 1
    keys: dict[str, Any] = {}
    error = None
    try:
        keys = read_user_keys(host.registry, mount, paths)
    except Exception as exc:  # as the runner: a read that fails must not leave the hive loaded
        error = f"failed: {type(exc).__name__}: {exc}"
    finally:
        try:
            host.registry.unload_hive(mount)
        except HiveError as exc:  # it stays loaded: the next run's start unloads it, or says why not
            error = f"failed: cannot unload HKU\\{mount}: reg.exe unload exited with 1: {exc}"
        else:
            host.hive_unloads += 1
    return mount, keys, error


def op_user_hives_read(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    paths = _path_depths(op)
    include_offline = _bool_field(op, "include_offline", False)
    profiles = []
    for sid, user, folder in _people(host):
        loaded = host.registry.lookup("HKU", [sid]) is not None
        mount, keys, error = None, {}, None
        if loaded:
            keys = read_user_keys(host.registry, sid, paths)
        elif include_offline and paths:
            mount, keys, error = _read_offline(host, sid, folder, paths)
        profiles.append({"sid": sid, "user": user, "path": folder, "loaded": loaded, "mounted_as": mount,
                         "error": error, "keys": keys})
    return {"profiles": profiles}


# -- Group Policy --------------------------------------------------------------------------------


def _under(segments: list[str], prefixes: list[list[str]] | None) -> bool:
    if prefixes is None:
        return True
    folded = [s.lower() for s in segments]
    return any(folded[: len(prefix)] == [s.lower() for s in prefix] for prefix in prefixes)


def op_gpo_registry_settings(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    """The scenario's group_policy as Resultant Set of Policy shows it: an HKLM key is the
    computer's, an HKU\\<sid> key that user's; one GPO sets every value."""
    names = _str_list(op, "key_prefixes")
    prefixes = None if names is None else [_relative_key(op, "key_prefixes", name) for name in names]
    settings = []
    for path, values in host.group_policy.items():
        hive, segments = split_key(path, strict=False)
        scope, sid = "machine", None
        if hive == "HKU":
            if not segments or not USER_SID.match(segments[0]):
                continue
            scope, sid, segments = "user", segments[0], segments[1:]
        if not segments or not _under(segments, prefixes):
            continue
        settings += [{"scope": scope, "sid": sid, "key": path, "name": name, "gpo": GPO_NAME} for name in values]
    return {"settings": settings, "errors": []}


# -- browsers' site settings ---------------------------------------------------------------------

#: Chrome's and Edge's User Data folders below a profile folder (the runner's list).
BROWSER_USER_DATA = (("chrome", "AppData\\Local\\Google\\Chrome\\User Data"),
                     ("edge", "AppData\\Local\\Microsoft\\Edge\\User Data"))
#: A browser profile's folder name the runner follows (nothing that could lead out of User Data).
BROWSER_PROFILE_NAME = re.compile(r"[A-Za-z0-9 _-]{1,64}")
#: The last-write time of a data file whose scenario entry gives none.
DEFAULT_MODIFIED = "2025-11-20T09:00:00.0000000Z"


def _json_member(data: Any, names: list[str]) -> Any:
    for name in names:
        if not isinstance(data, dict) or name not in data:
            return None
        data = data[name]
    return data


def _site_settings_file(host: HostState, sid: str, browser: str, profile: str | None, path: str,
                        types: list[str], max_bytes: int, names: list[str]) -> dict[str, Any]:
    """One element of browser_site_settings' files; a Local State adds its profiles to ``names``."""
    entry = {normalise_path(f["path"]): f for f in host.files}.get(normalise_path(path))
    item: dict[str, Any] = {"sid": sid, "browser": browser, "profile": profile, "path": path,
                            "exists": entry is not None, "modified": None, "error": None, "exceptions": None}
    if entry is None:
        return item
    if entry.get("reparse_point"):
        item["error"] = "forbidden: a link (reparse point) on the way is not followed"
        return item
    item["modified"] = entry.get("modified", DEFAULT_MODIFIED)
    text = entry.get("content") or ""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        item["error"] = f"failed: {size} bytes, over the limit of {max_bytes}"
        return item
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        item["error"] = "failed: not a JSON object"
        return item
    if profile is None:
        cache = _json_member(data, ["profile", "info_cache"])
        if isinstance(cache, dict):
            names += [name for name in cache if BROWSER_PROFILE_NAME.fullmatch(name)]
    else:
        item["exceptions"] = {kind: _json_member(data, ["profile", "content_settings", "exceptions", kind])
                              for kind in types}
    return item


def op_browser_site_settings(host: HostState, op: dict[str, Any]) -> dict[str, Any]:
    """Chrome's and Edge's Local State and Preferences in each person's profile folder (ProfileList
    only), as the runner: the files are the scenario's ``files`` with ``content``."""
    types = _str_list(op, "types")
    if types is None:
        raise invalid("browser_site_settings", "types", "missing")
    max_bytes = _int_field(op, "max_bytes", 1024, 64 * 1024 * 1024, 5 * 1024 * 1024)
    include_offline = _bool_field(op, "include_offline", False)
    files = []
    for sid, _user, folder in _people(host):
        loaded = host.registry.lookup("HKU", [sid]) is not None
        if folder is None or not (include_offline or loaded):
            continue
        for browser, relative in BROWSER_USER_DATA:
            root = folder.rstrip("\\") + "\\" + relative
            names: list[str] = []
            files.append(_site_settings_file(host, sid, browser, None, root + "\\Local State", types, max_bytes, names))
            for name in names:
                files.append(_site_settings_file(host, sid, browser, name, f"{root}\\{name}\\Preferences", types,
                                                 max_bytes, names))
    return {"files": files}

HANDLERS: dict[str, Callable[[HostState, dict[str, Any]], dict[str, Any]]] = {
    "reg_read": op_reg_read,
    "process_list": op_process_list,
    "service_query": op_service_query,
    "tcp_listeners": op_tcp_listeners,
    "http_get": op_http_get,
    "file_info": op_file_info,
    "session_list": op_session_list,
    "os_info": op_os_info,
    "user_hives_read": op_user_hives_read,
    "gpo_registry_settings": op_gpo_registry_settings,
    "browser_site_settings": op_browser_site_settings,
}
