"""Read and validate scenario files (the format: emulator/docs/scenario-format.md).

The loader turns each host of a file into *canonical host data*: a plain dict of exactly the
scenario shape, every optional field filled in with its default, key paths normalised (hive
abbreviations, no trailing backslash, one spelling per key). ``HostState.state_dict()`` writes
the same shape back, so a dumped state loads again to an equal state.

Every error is a ``ScenarioError`` whose message names the file, the host (index and name)
and the field, e.g.
``scenarios/x.yml: hosts[2] (pc-0003): registry 'HKCU\\Software': HKCU is not allowed ...``.
"""

from __future__ import annotations

import ntpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from .contract import OPERATIONS
from .registry import REG_TYPES, SYSTEM_HIVES, KeyPathError, join_key, split_key

DEFAULT_OS = {"product": "Windows 10 Enterprise", "version": "10.0.19045"}
DEFAULT_AUTH = ["basic", "ntlm", "kerberos"]
DEFAULT_USERS = {"ansible": "Passw0rd!"}
AUTH_KINDS = ("basic", "ntlm", "kerberos")  # kerberos: with `serve --keytab` (a domain)
DEFAULT_BEHAVIOUR = {"starts_on_logon_task": True, "port_service_start_fails": False, "port_service_ports": [43487]}
#: Optional fault behaviours for reliability tests (emulator/README.md, "Fault behaviours"); kept
#: out of a host's state unless a scenario gives them, so that existing files round-trip unchanged.
#: ``garbage_reply: true``: the runner answers a line that is not JSON and runs nothing.
#: ``gp_refresh: {after_writes: N, registry: {...}}``: once the host has made N writes, a Group
#: Policy refresh (one the collection cannot see, like a Preferences item) writes ``registry`` once.
#: ``mutex_wait_seconds: S``: how long a runner waits for the host-wide mutex before ``busy`` (10).
#: ``slow_ops: {op: seconds}``: each such runner operation takes that long (the mutex stays held).
#: ``lose_write_answers: N``: the next N runner commands whose request holds a write operation run,
#: but their answer is lost (the Receive that would carry it gets the connection closed).
#: ``stuck_hives: [default | <sid>]``: hives that ``reg unload`` cannot unload (a handle is open).
#: ``hung_services: [name]``: services that never finish starting or stopping (start/stop_pending).
#: ``process_owners_unreadable: true``: ``Get-Process -IncludeUserName`` fails (no elevation).
OPTIONAL_BEHAVIOUR = ("garbage_reply", "gp_refresh", "mutex_wait_seconds", "slow_ops", "lose_write_answers",
                      "stuck_hives", "hung_services", "process_owners_unreadable")
DEFAULT_MUTEX_WAIT = 10.0  # seconds: the runner's wait for Global\nhs_cm_runner, as on Windows
FAIL_KINDS = ("refuse", "auth", "http500", "timeout", "drop")
DEFAULT_FAIL_SECONDS = 60.0  # as the server's DEFAULT_HOLD_SECONDS: longer than a client's 30 s read timeout
SESSION_STATES = ("active", "disconnected", "connected", "connectquery", "shadow", "idle", "listen", "reset",
                  "down", "init", "other")
SERVICE_STATES = ("running", "stopped", "start_pending", "stop_pending", "continue_pending", "pause_pending",
                  "paused", "unknown")
START_MODES = ("auto", "manual", "disabled", "boot", "system")
FINDING_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")
SID = re.compile(r"^S-1-\d+(-\d+)+$", re.IGNORECASE)
ABSOLUTE_PATH = re.compile(r"^([A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)")
HEX = re.compile(r"^[0-9a-fA-F]*$")
MAX_SESSIONS = 400
MAX_SERVICES = 750

# Deterministic pids (see state.py): System 4, the emulator's own Windows processes below
# 2000, the service at index i 2000 + 4i, the scenario process at index j 5000 + 4j.
SYSTEM_PID = 4
CORE_PID_BASE = 100
SERVICE_PID_BASE = 2000
PROCESS_PID_BASE = 5000
RESERVED_PIDS = 2000

HOST_FIELDS = ("name", "template", "os", "winrm", "sessions", "profiles", "registry", "denied", "services",
               "processes", "files", "group_policy", "behaviour", "transport", "backups", "default_profile",
               "hive_mounts", "backup_folder", "user_writable_folders")
#: Owners Windows shows (Get-Acl .Owner) for the accounts the runner trusts with its backups.
ADMIN_OWNERS = {"system": "NT AUTHORITY\\SYSTEM", "nt authority\\system": "NT AUTHORITY\\SYSTEM",
                "s-1-5-18": "NT AUTHORITY\\SYSTEM", "administrators": "BUILTIN\\Administrators",
                "builtin\\administrators": "BUILTIN\\Administrators", "s-1-5-32-544": "BUILTIN\\Administrators"}
DEFAULT_OWNER = "BUILTIN\\Administrators"  # what an elevated administrator's process creates
#: The ACL backup_save gives the backup folder (inheritance off): SYSTEM and Administrators only.
PROTECTED_ACL = ["NT AUTHORITY\\SYSTEM", "BUILTIN\\Administrators"]
#: The groups whose write access makes a folder writable by non-administrators.
USER_GROUPS = {"users": "BUILTIN\\Users", "builtin\\users": "BUILTIN\\Users",
               "authenticated users": "NT AUTHORITY\\Authenticated Users",
               "nt authority\\authenticated users": "NT AUTHORITY\\Authenticated Users", "everyone": "Everyone"}
TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))?Z$")
MOUNT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ScenarioError(Exception):
    """A scenario cannot be used; the message names the file, the host and the field."""


@dataclass(frozen=True)
class Where:
    """Where in which file a value was found, for error messages."""

    source: str
    host: str | None = None

    def fail(self, field: str, message: str) -> NoReturn:
        parts = [self.source, self.host, field] if self.host else [self.source, field]
        raise ScenarioError(": ".join([*parts, message]))


def service_pid(index: int) -> int:
    return SERVICE_PID_BASE + 4 * index


def process_pid(index: int) -> int:
    return PROCESS_PID_BASE + 4 * index


# -- reading files --------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping (YAML says keys are unique)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # unhashable: the base constructor reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def scenario_files(paths: list[str]) -> list[Path]:
    """Files named, and every *.yml / *.yaml directly inside directories named, sorted."""
    if isinstance(paths, (str, Path)):
        paths = [str(paths)]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".yml", ".yaml") and p.is_file())
            if not found:
                raise ScenarioError(f"{raw}: no *.yml or *.yaml scenario files in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(f"{raw}: no such scenario file or directory")
    return files


def read_file(path: Path) -> Any:
    try:
        return parse_text(path.read_bytes(), str(path))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def parse_text(text: str | bytes, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
    except (UnicodeDecodeError, RecursionError, ValueError, OverflowError) as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from exc


# -- documents --------------------------------------------------------------------------------


def parse_document(doc: Any, source: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Validate one file's content: (canonical host data in order, expect)."""
    where = Where(source)
    if not isinstance(doc, dict):
        where.fail("top level", f"expected a mapping with a 'hosts' list, found {_kind(doc)}")
    raw_hosts = doc.get("hosts")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        where.fail("hosts", "expected a non-empty list of hosts" + ("" if "hosts" in doc else " (missing)"))
    hosts = []
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_hosts):
        host = normalise_host(raw, source, index)
        lowered = host["name"].lower()
        if lowered in names:
            Where(source, _host_label(index, host["name"])).fail(
                "name", f"duplicate host name: hosts[{names[lowered]}] has the same name")
        names[lowered] = index
        hosts.append(host)
    expect = _expect(doc.get("expect"), where, {h["name"].lower(): h["name"] for h in hosts})
    return hosts, expect


def _expect(raw: Any, where: Where, names: dict[str, str]) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        where.fail("expect", f"expected a mapping of host name to a list of finding ids, found {_kind(raw)}")
    out: dict[str, list[str]] = {}
    for host, ids in raw.items():
        field = f"expect[{_quoted(host)}]"
        if not isinstance(host, str) or host.lower() not in names:
            where.fail(field, "names no host of this file")
        if ids is None:
            ids = []
        if not isinstance(ids, list):
            where.fail(field, f"expected a list of finding ids, found {_kind(ids)}")
        for item in ids:
            if not isinstance(item, str) or not FINDING_ID.match(item):
                where.fail(field, f"{item!r} is not a finding id (upper-case letters, digits and _)")
        out[names[host.lower()]] = sorted(set(ids))
    return out


VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_inventory_vars(doc: Any, source: str, hosts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The optional top-level ``inventory_vars``: host name -> {variable: value} that the
    emulator's inventory gives that host (e.g. what the person auditing it would set, such as
    ``nhs_cm_ers_report``). Connection variables (``ansible_*``) cannot be set this way."""
    raw = doc.get("inventory_vars") if isinstance(doc, dict) else None
    if raw is None:
        return {}
    where = Where(source)
    if not isinstance(raw, dict):
        where.fail("inventory_vars", f"expected a mapping of host name to variables, found {_kind(raw)}")
    names = {h["name"].lower(): h["name"] for h in hosts}
    out: dict[str, dict[str, Any]] = {}
    for host, variables in raw.items():
        field = f"inventory_vars[{_quoted(host)}]"
        if not isinstance(host, str) or host.lower() not in names:
            where.fail(field, "names no host of this file")
        if not isinstance(variables, dict):
            where.fail(field, f"expected a mapping of variable name to value, found {_kind(variables)}")
        for name in variables:
            if not isinstance(name, str) or not VARIABLE_NAME.match(name):
                where.fail(field, f"{name!r} is not a variable name (letters, digits and _)")
            if name.lower().startswith("ansible_"):
                where.fail(field, f"{name}: connection variables are the emulator's; give other variables")
        out[names[host.lower()]] = dict(variables)
    return out


def _host_label(index: int, name: Any) -> str:
    return f"hosts[{index}] ({name})" if isinstance(name, str) and name else f"hosts[{index}]"


# -- one host ---------------------------------------------------------------------------------


def normalise_host(raw: Any, source: str, index: int) -> dict[str, Any]:
    name = raw.get("name") if isinstance(raw, dict) else None
    where = Where(source, _host_label(index, name))
    if not isinstance(raw, dict):
        where.fail("host", f"expected a mapping, found {_kind(raw)}")
    _known_fields(raw, HOST_FIELDS, where, "host")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
        where.fail("name", "required: a host name of letters, digits, '.', '_' and '-' (at most 63)")
    template = raw.get("template")
    if template is None:
        template = f"{Path(source).name}:{name}"
    elif not isinstance(template, str):
        where.fail("template", f"expected a string, found {_kind(template)}")
    winrm = _winrm(raw.get("winrm"), where)
    profiles = _profiles(raw.get("profiles"), where)
    sessions = _sessions(raw.get("sessions"), where, profiles)
    services = _services(raw.get("services"), where)
    processes = _processes(raw.get("processes"), where, sessions)
    _check_pids(services, processes, where)
    _check_ports(services, processes, where)
    backups = _backups(raw.get("backups"), where)
    return {
        "name": name,
        "template": template,
        "os": _os(raw.get("os"), where),
        "winrm": winrm,
        "sessions": sessions,
        "profiles": profiles,
        "registry": _registry(raw.get("registry"), where, "registry", profiles),
        "denied": _denied(raw.get("denied"), where),
        "services": services,
        "processes": processes,
        "files": _files(raw.get("files"), where),
        "group_policy": _registry(raw.get("group_policy"), where, "group_policy", profiles),
        "behaviour": _behaviour(raw.get("behaviour"), where, profiles, services),
        "transport": {"fail": _transport(raw.get("transport"), where)},
        "backups": backups,
        "default_profile": _default_profile(raw.get("default_profile"), where),
        "hive_mounts": _hive_mounts(raw.get("hive_mounts"), where, profiles),
        "backup_folder": _backup_folder(raw.get("backup_folder"), where, bool(backups)),
        "user_writable_folders": _user_writable_folders(raw.get("user_writable_folders"), where),
    }


def _os(raw: Any, where: Where) -> dict[str, str]:
    data = _mapping(raw, where, "os")
    _known_fields(data, ("product", "version"), where, "os")
    return {k: _string(data.get(k, DEFAULT_OS[k]), where, f"os.{k}") for k in ("product", "version")}


def _winrm(raw: Any, where: Where) -> dict[str, Any]:
    data = _mapping(raw, where, "winrm")
    _known_fields(data, ("auth", "users", "clock_offset_seconds"), where, "winrm")
    auth = data.get("auth")
    if auth is None:
        auth = list(DEFAULT_AUTH)
    if isinstance(auth, str):
        auth = [auth]
    if not isinstance(auth, list) or not auth:
        where.fail("winrm.auth", f"expected a non-empty list from {list(AUTH_KINDS)}")
    for item in auth:
        if item not in AUTH_KINDS:
            where.fail("winrm.auth", f"{item!r} is not one of {list(AUTH_KINDS)}")
    if len(set(auth)) != len(auth):
        where.fail("winrm.auth", "lists a kind twice")
    users = data.get("users")
    if users is None:
        users = dict(DEFAULT_USERS)
    if not isinstance(users, dict) or not users:
        where.fail("winrm.users", "expected a non-empty mapping of user name to password")
    for user, password in users.items():
        if not isinstance(user, str) or not user:
            where.fail("winrm.users", f"user name {user!r} must be a non-empty string")
        if not isinstance(password, str):
            where.fail(f"winrm.users.{user}", f"the password must be a string (quote it), found {_kind(password)}")
    winrm: dict[str, Any] = {"auth": list(auth), "users": dict(users)}
    if "clock_offset_seconds" in data:  # how far the desktop's clock is from the domain's (Kerberos: 300 s at most)
        winrm["clock_offset_seconds"] = _int(data["clock_offset_seconds"], where, "winrm.clock_offset_seconds",
                                             -10**9, 10**9)
    return winrm


def _profiles(raw: Any, where: Where) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    sids: dict[str, int] = {}
    for i, field, data in _records(raw, where, "profiles", ("user", "sid", "path", "loaded")):
        user = _string(data.get("user"), where, f"{field}.user")
        sid = _sid(data.get("sid"), where, f"{field}.sid")
        if sid.upper() in SYSTEM_HIVES:
            where.fail(f"{field}.sid", f"{sid} is a system account: the emulator shows its hive and ProfileList "
                       "entry itself; list people's profiles only")
        if sid.lower() in sids:
            where.fail(f"{field}.sid", f"{sid} is also the sid of profiles[{sids[sid.lower()]}]")
        sids[sid.lower()] = i
        path = _abs_path(data.get("path"), where, f"{field}.path")
        loaded = data.get("loaded", True)
        if not isinstance(loaded, bool):
            where.fail(f"{field}.loaded", f"expected true or false, found {_kind(loaded)}")
        out.append({"user": user, "sid": sid, "path": path, "loaded": loaded})
    return out


def _sessions(raw: Any, where: Where, profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_sid = {p["sid"].lower(): (i, p) for i, p in enumerate(profiles)}
    by_user = {p["user"].lower(): (i, p) for i, p in enumerate(profiles)}
    out: list[dict[str, Any]] = []
    ids: set[int] = set()
    for i, field, data in _records(raw, where, "sessions", ("id", "user", "sid", "state"), MAX_SESSIONS):
        number = _int(data.get("id"), where, f"{field}.id", 0, 65535)
        if number == 0:
            where.fail(f"{field}.id", "session 0 is implicit (services); interactive sessions start at 1")
        if number in ids:
            where.fail(f"{field}.id", f"session {number} is listed twice")
        ids.add(number)
        field = f"sessions[{i}] (id {number})"
        user = data.get("user")
        sid = data.get("sid")
        if user is None and sid is None:
            where.fail(field, "give the session's user and sid (they must match a profile)")
        if sid is not None:
            sid = _sid(sid, where, f"{field}.sid")
            if sid.lower() not in by_sid:
                where.fail(f"{field}.sid", f"{sid} matches no profile: add a profile with this sid "
                           "(loaded: true), since a logged-on user's hive is loaded")
            index, profile = by_sid[sid.lower()]
        else:
            user = _string(user, where, f"{field}.user")
            if user.lower() not in by_user:
                where.fail(f"{field}.user", f"{user!r} has no profile, so the session's sid is unknown: "
                           "add a profile for this user or give the sid")
            index, profile = by_user[user.lower()]
        if user is None:
            user = profile["user"]
        user = _string(user, where, f"{field}.user")
        if user.lower() != profile["user"].lower():
            where.fail(f"{field}.user", f"{user!r} differs from the user {profile['user']!r} of profiles[{index}], "
                       f"whose sid is {profile['sid']}")
        if not profile["loaded"]:
            where.fail(field, f"{user} is logged on but profiles[{index}] has loaded: false; a logged-on "
                       "user's hive is always loaded")
        state = _choice(data.get("state", "active"), SESSION_STATES, where, f"{field}.state")
        out.append({"id": number, "user": user, "sid": profile["sid"], "state": state})
    return out


def _services(raw: Any, where: Where) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    fields = ("name", "display_name", "state", "start_mode", "image", "listens", "pid")
    for i, field, data in _records(raw, where, "services", fields, MAX_SERVICES):
        name = _string(data.get("name"), where, f"{field}.name")
        if "\\" in name or "/" in name:
            where.fail(f"{field}.name", "a service name has no slashes")
        if name.lower() in names:
            where.fail(f"{field}.name", f"service {name!r} is also services[{names[name.lower()]}]")
        names[name.lower()] = i
        field = f"services[{i}] ({name})"
        service = {
            "name": name,
            "display_name": _string(data.get("display_name", name), where, f"{field}.display_name"),
            "state": _choice(data.get("state", "stopped"), SERVICE_STATES, where, f"{field}.state"),
            "start_mode": _choice(data.get("start_mode", "manual"), START_MODES, where, f"{field}.start_mode"),
            "image": _optional_string(data.get("image"), where, f"{field}.image"),
            "listens": _ports(data.get("listens"), where, f"{field}.listens"),
        }
        pid = data.get("pid")
        if pid is not None:
            if service["state"] == "stopped":
                where.fail(f"{field}.pid", "a stopped service has no process id")
            service["pid"] = _int(pid, where, f"{field}.pid", 1, 2**32 - 1)
        out.append(service)
    return out


def _processes(raw: Any, where: Where, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    users = {s["id"]: s["user"] for s in sessions}
    out: list[dict[str, Any]] = []
    fields = ("image", "name", "session", "user", "listens", "version", "pid")
    for _i, field, data in _records(raw, where, "processes", fields):
        image = data.get("image")
        if image is not None:
            image = _abs_path(image, where, f"{field}.image")
        name = data.get("name")
        if name is None and image is None:
            where.fail(field, "give the process's image (full path) or, when it cannot be read, its name")
        name = _string(name if name is not None else ntpath.basename(image), where, f"{field}.name")
        session = _int(data.get("session", 0), where, f"{field}.session", 0, 65535)
        if session and session not in users:
            where.fail(f"{field}.session", f"session {session} is not in sessions")
        user = data.get("user", users.get(session))
        process = {
            "image": image,
            "name": name,
            "session": session,
            "user": _optional_string(user, where, f"{field}.user"),
            "listens": _ports(data.get("listens"), where, f"{field}.listens"),
            "version": _version(data.get("version"), where, f"{field}.version"),
        }
        if data.get("pid") is not None:
            process["pid"] = _int(data.get("pid"), where, f"{field}.pid", 1, 2**32 - 1)
        out.append(process)
    return out


def _check_pids(services: list[dict[str, Any]], processes: list[dict[str, Any]], where: Where) -> None:
    owners: dict[int, str] = {}
    entries = [(f"services[{i}]", s, service_pid(i)) for i, s in enumerate(services) if s["state"] != "stopped"]
    entries += [(f"processes[{j}]", p, process_pid(j)) for j, p in enumerate(processes)]
    for label, entry, default in entries:
        pid = entry.get("pid", default)
        if "pid" in entry and pid < RESERVED_PIDS:
            where.fail(f"{label}.pid", f"pids below {RESERVED_PIDS} are the emulator's own Windows processes")
        if pid in owners:
            where.fail(f"{label}.pid", f"pid {pid} is also the pid of {owners[pid]}")
        owners[pid] = label


def _check_ports(services: list[dict[str, Any]], processes: list[dict[str, Any]], where: Where) -> None:
    owners: dict[int, str] = {}
    entries = [(f"services[{i}]", s) for i, s in enumerate(services) if s["state"] == "running"]
    entries += [(f"processes[{j}]", p) for j, p in enumerate(processes)]
    for label, entry in entries:
        for port in entry["listens"]:
            if port in owners:
                where.fail(f"{label}.listens", f"port {port} is already listened on by {owners[port]}")
            owners[port] = label


def _files(raw: Any, where: Where) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(_list(raw, where, "files")):
        field = f"files[{i}]"
        if isinstance(item, str):
            item = {"path": item}
        data = _mapping(item, where, field, allow_none=False)
        _known_fields(data, ("path", "version", "content", "modified", "reparse_point"), where, field)
        path = _abs_path(data.get("path"), where, f"{field}.path")
        if path.lower() in seen:
            where.fail(f"{field}.path", f"{path} is also files[{seen[path.lower()]}]")
        seen[path.lower()] = i
        entry = {"path": path, "version": _version(data.get("version"), where, f"{field}.version")}
        # A data file's text (a browser's Local State or Preferences) and its last-write time (UTC,
        # ISO 8601); kept out of the state unless given.
        if data.get("content") is not None:
            if not isinstance(data["content"], str):
                where.fail(f"{field}.content", f"expected the file's text as a string, found {_kind(data['content'])}")
            entry["content"] = data["content"]
        if data.get("modified") is not None:
            entry["modified"] = _string(data["modified"], where, f"{field}.modified")
        if data.get("reparse_point") is not None:
            if not isinstance(data["reparse_point"], bool):
                where.fail(f"{field}.reparse_point", f"expected true or false, found {_kind(data['reparse_point'])}")
            entry["reparse_point"] = data["reparse_point"]
        out.append(entry)
    return out


def _gp_refresh(raw: Any, where: Where, profiles: list[dict[str, Any]]) -> dict[str, Any]:
    data = _mapping(raw, where, "behaviour.gp_refresh")
    _known_fields(data, ("after_writes", "registry"), where, "behaviour.gp_refresh")
    after = data.get("after_writes", 1)
    if isinstance(after, bool) or not isinstance(after, int) or after < 1:
        where.fail("behaviour.gp_refresh.after_writes", f"expected an integer 1 or more, found {after!r}")
    return {"after_writes": after,
            "registry": _registry(data.get("registry"), where, "behaviour.gp_refresh.registry", profiles)}


def _seconds(raw: Any, where: Where, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 600:
        where.fail(field, f"expected a number of seconds 0..600, found {raw!r}")
    return float(raw)


def _optional_behaviour(data: dict[str, Any], where: Where, profiles: list[dict[str, Any]],
                        services: list[dict[str, Any]]) -> dict[str, Any]:
    """The optional knobs and faults of OPTIONAL_BEHAVIOUR besides garbage_reply and gp_refresh."""
    out: dict[str, Any] = {}
    if data.get("mutex_wait_seconds") is not None:
        out["mutex_wait_seconds"] = _seconds(data["mutex_wait_seconds"], where, "behaviour.mutex_wait_seconds")
    if data.get("slow_ops") is not None:
        slow = _mapping(data["slow_ops"], where, "behaviour.slow_ops")
        for name, seconds in slow.items():
            if name not in OPERATIONS:
                where.fail("behaviour.slow_ops", f"{name!r} is not a runner operation ({', '.join(OPERATIONS)})")
            _seconds(seconds, where, f"behaviour.slow_ops.{name}")
        out["slow_ops"] = {name: float(seconds) for name, seconds in slow.items()}
    if data.get("lose_write_answers") is not None:
        out["lose_write_answers"] = _int(data["lose_write_answers"], where, "behaviour.lose_write_answers", 0, 10**6)
    if data.get("stuck_hives") is not None:
        offline = {p["sid"].lower(): p["sid"] for p in profiles if not p["loaded"]}
        stuck = []
        for i, hive in enumerate(_list(data["stuck_hives"], where, "behaviour.stuck_hives")):
            if isinstance(hive, str) and hive.lower() == "default":
                stuck.append("default")
            elif isinstance(hive, str) and hive.lower() in offline:
                stuck.append(offline[hive.lower()])
            else:
                where.fail(f"behaviour.stuck_hives[{i}]", f"{hive!r} is neither 'default' (the default profile's "
                           "hive) nor the sid of a profile with loaded: false")
        out["stuck_hives"] = stuck
    if data.get("hung_services") is not None:
        names = {s["name"].lower(): s["name"] for s in services}
        hung = []
        for i, name in enumerate(_list(data["hung_services"], where, "behaviour.hung_services")):
            if not isinstance(name, str) or name.lower() not in names:
                where.fail(f"behaviour.hung_services[{i}]", f"{name!r} is not the name of a service of this host")
            hung.append(names[name.lower()])
        out["hung_services"] = hung
    if data.get("process_owners_unreadable") is not None:
        value = data["process_owners_unreadable"]
        if not isinstance(value, bool):
            where.fail("behaviour.process_owners_unreadable", f"expected true or false, found {_kind(value)}")
        if value:
            out["process_owners_unreadable"] = True
    return out


def _behaviour(raw: Any, where: Where, profiles: list[dict[str, Any]] | None = None,
               services: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = _mapping(raw, where, "behaviour")
    _known_fields(data, tuple(DEFAULT_BEHAVIOUR) + OPTIONAL_BEHAVIOUR, where, "behaviour")
    if "garbage_reply" in data and not isinstance(data["garbage_reply"], bool):
        where.fail("behaviour.garbage_reply", f"expected true or false, found {_kind(data['garbage_reply'])}")
    out: dict[str, Any] = {}
    for key in ("starts_on_logon_task", "port_service_start_fails"):
        value = data.get(key, DEFAULT_BEHAVIOUR[key])
        if not isinstance(value, bool):
            where.fail(f"behaviour.{key}", f"expected true or false, found {_kind(value)}")
        out[key] = value
    ports = data.get("port_service_ports")
    out["port_service_ports"] = list(DEFAULT_BEHAVIOUR["port_service_ports"]) if ports is None else \
        _ports(ports, where, "behaviour.port_service_ports")
    if data.get("garbage_reply"):
        out["garbage_reply"] = True
    if data.get("gp_refresh") is not None:
        out["gp_refresh"] = _gp_refresh(data["gp_refresh"], where, profiles or [])
    out.update(_optional_behaviour(data, where, profiles or [], services or []))
    return out


def _transport(raw: Any, where: Where) -> dict[str, Any] | None:
    data = _mapping(raw, where, "transport")
    _known_fields(data, ("fail",), where, "transport")
    fail = data.get("fail")
    if fail is None:
        return None
    if isinstance(fail, str):
        fail = {"kind": fail}
    fail = _mapping(fail, where, "transport.fail", allow_none=False)
    _known_fields(fail, ("kind", "after_requests", "times", "seconds"), where, "transport.fail")
    seconds = fail.get("seconds", DEFAULT_FAIL_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
        where.fail("transport.fail.seconds", "expected a number of seconds 0..3600")
    return {
        "kind": _choice(fail.get("kind"), FAIL_KINDS, where, "transport.fail.kind"),
        "after_requests": _int(fail.get("after_requests", 0), where, "transport.fail.after_requests", 0, 10**9),
        "times": _int(fail.get("times", 1), where, "transport.fail.times", 1, 10**9),
        "seconds": float(seconds),
    }


# -- registry ---------------------------------------------------------------------------------


def _registry(raw: Any, where: Where, field: str, profiles: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Normalise a registry mapping: one spelling per key, hive abbreviations, typed data."""
    data = _mapping(raw, where, field)
    profile_sids = {p["sid"].lower(): p for p in profiles}
    out: dict[str, dict[str, Any]] = {}
    spelling: dict[str, str] = {}
    for path, values in data.items():
        kfield = f"{field} {_quoted(path)}"
        hive, segments = _key_path(path, where, kfield)
        if not segments:
            where.fail(kfield, "give a key below the hive; a hive root holds no values")
        if hive == "HKU":
            _check_user_hive(segments[0], where, kfield, profile_sids)
        canonical = join_key(hive, segments)
        display = spelling.setdefault(canonical.lower(), canonical)
        target = out.setdefault(display, {})
        for name, value in _values(values, where, kfield).items():
            if any(name.lower() == other.lower() for other in target):
                where.fail(f"{kfield} value {name!r}", "is given twice (key and value names ignore case)")
            target[name] = value
    return out


def _default_profile(raw: Any, where: Where) -> dict[str, Any]:
    """Extension of the scenario format: ``default_profile: {registry: {<key relative to the hive
    root>: {<value>: {type, data}}}}``, the content of the default profile's NTUSER.DAT (the
    folder ProfileList ``Default`` names); empty when not given."""
    data = _mapping(raw, where, "default_profile")
    _known_fields(data, ("registry",), where, "default_profile")
    out: dict[str, dict[str, Any]] = {}
    spelling: dict[str, str] = {}
    for path, values in _mapping(data.get("registry"), where, "default_profile.registry").items():
        kfield = f"default_profile.registry {_quoted(path)}"
        segments = _relative_key(path, where, kfield)
        display = spelling.setdefault("\\".join(segments).lower(), "\\".join(segments))
        target = out.setdefault(display, {})
        for name, value in _values(values, where, kfield).items():
            if any(name.lower() == other.lower() for other in target):
                where.fail(f"{kfield} value {name!r}", "is given twice (key and value names ignore case)")
            target[name] = value
    return {"registry": out}


def _relative_key(path: Any, where: Where, field: str) -> list[str]:
    """A key below a hive's root (``Software\\...``), without the hive's name."""
    if not isinstance(path, str) or not path.strip():
        where.fail(field, f"a key path must be a non-empty string, found {_kind(path)}")
    text = path.strip()
    text = text[:-1] if text.endswith("\\") else text
    segments = text.split("\\")
    if segments[0].upper() in ("HKLM", "HKU", "HKCU", "HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CURRENT_USER"):
        where.fail(field, "give the key relative to the default profile's hive root (Software\\...), no hive name")
    if any(not segment for segment in segments):
        where.fail(field, "empty key name in the path: no leading, trailing or doubled backslash")
    return segments


def _key_path(path: Any, where: Where, field: str) -> tuple[str, list[str]]:
    if not isinstance(path, str):
        where.fail(field, f"a key path must be a string, found {_kind(path)}")
    try:
        return split_key(path, strict=False)
    except KeyPathError as exc:
        where.fail(field, str(exc))


def _check_user_hive(name: str, where: Where, field: str, profile_sids: dict[str, dict[str, Any]]) -> None:
    lowered = name.lower()
    if name.upper() in SYSTEM_HIVES or lowered in profile_sids:
        return
    if lowered.endswith("_classes") and lowered[: -len("_classes")] in profile_sids:
        if profile_sids[lowered[: -len("_classes")]]["loaded"]:
            return
        where.fail(field, f"HKU\\{name} exists only while the profile's hive is loaded (loaded: false here)")
    where.fail(field, f"HKU\\{name} is no profile's sid: add a profile with sid {name} (loaded: true to show "
               "its hive, false to keep it in NTUSER.DAT), or use .DEFAULT, S-1-5-18, -19 or -20")


def _values(raw: Any, where: Where, field: str) -> dict[str, dict[str, Any]]:
    data = _mapping(raw, where, field)
    out: dict[str, dict[str, Any]] = {}
    for name, spec in data.items():
        if isinstance(name, bool) or not isinstance(name, (str, int)):
            where.fail(field, f"value name {name!r} must be a string ('' for the default value)")
        name = str(name)
        vfield = f"{field} value {_quoted(name)}"
        spec = _mapping(spec, where, vfield, allow_none=False)
        _known_fields(spec, ("type", "data"), where, vfield)
        vtype = spec.get("type")
        if not isinstance(vtype, str) or vtype.upper() not in REG_TYPES:
            where.fail(f"{vfield}.type", f"{vtype!r} is not one of {', '.join(REG_TYPES)}")
        vtype = vtype.upper()
        if "data" not in spec:
            where.fail(f"{vfield}.data", "missing")
        out[name] = {"type": vtype, "data": reg_data(vtype, spec["data"], where, f"{vfield}.data")}
    return out


def reg_data(vtype: str, data: Any, where: Where, field: str) -> Any:
    """Check and normalise value data for its type (the shapes of the runner protocol)."""
    if vtype in ("REG_SZ", "REG_EXPAND_SZ"):
        if not isinstance(data, str):
            where.fail(field, f"{vtype} data must be a string (quote it in YAML), found {_kind(data)}")
        return data
    if vtype == "REG_MULTI_SZ":
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
            where.fail(field, "REG_MULTI_SZ data must be a list of strings (quote numbers)")
        return list(data)
    if vtype in ("REG_DWORD", "REG_QWORD"):
        bits = 32 if vtype == "REG_DWORD" else 64
        if isinstance(data, bool) or not isinstance(data, int):
            where.fail(field, f"{vtype} data must be an integer, found {_kind(data)}")
        if not -(2 ** (bits - 1)) <= data < 2**bits:
            where.fail(field, f"{vtype} data {data} does not fit in {bits} bits")
        return data % 2**bits
    if data is None:
        return ""
    if not isinstance(data, str):
        where.fail(field, f"{vtype} data must be a hex string such as '01ff' (quote it in YAML), found {_kind(data)}")
    text = re.sub(r"[\s,:]", "", data).lower()
    if text.startswith("hex"):
        text = text[3:].lstrip("()")
    if not HEX.match(text) or len(text) % 2:
        where.fail(field, f"{vtype} data must be hex digits, two per byte, such as '01ff'")
    return text


def timestamp(raw: Any, where: Where, field: str) -> str:
    """A UTC time as the runner writes it, ``yyyy-MM-ddTHH:mm:ss.fffZ`` (milliseconds optional)."""
    match = TIMESTAMP.match(raw) if isinstance(raw, str) else None
    if match is None:
        where.fail(field, f"{raw!r} is not a UTC time such as '2026-01-31T09:15:00.000Z'")
    return f"{match.group(1)}.{(match.group(2) or '0').ljust(3, '0')}Z"


def _owner(raw: Any, where: Where, field: str) -> str:
    """An owner as Get-Acl shows it; SYSTEM and Administrators (names or SIDs) in Windows' spelling."""
    owner = _string(raw if raw is not None else DEFAULT_OWNER, where, field)
    return ADMIN_OWNERS.get(owner.lower(), owner)


def _backups(raw: Any, where: Where) -> list[dict[str, Any]]:
    """The files of the backup folder (%ProgramData%\\nhs_cm\\backups\\<id>.json): those the collection
    saved (backup_save), so that a dumped state loads again, and those a test plants. Each is
    ``{id, saved_at, entries, missing_keys}`` (a backup as the runner writes it) or ``{id, content}``
    (the file's text as it is, valid JSON or not), with the file's ``modified`` time (UTC; by
    default ``saved_at``), ``owner`` (BUILTIN\\Administrators) and ``reparse_point`` (false)."""
    out: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    fields = ("id", "saved_at", "entries", "missing_keys", "content", "modified", "owner", "reparse_point")
    for i, field, data in _records(raw, where, "backups", fields):
        backup_id = _string(data.get("id"), where, f"{field}.id")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", backup_id):
            where.fail(f"{field}.id", "1 to 80 letters, digits, '_' or '-'")
        if backup_id.lower() in ids:
            where.fail(f"{field}.id", f"{backup_id}.json is also backups[{ids[backup_id.lower()]}] (file names "
                       "ignore case)")
        ids[backup_id.lower()] = i
        backup: dict[str, Any] = {"id": backup_id}
        if "content" in data:
            given = [name for name in ("saved_at", "entries", "missing_keys") if name in data]
            if given:
                where.fail(field, f"give the file's content or {', '.join(given)}, not both")
            if not isinstance(data["content"], str):
                where.fail(f"{field}.content", f"expected the file's text, found {_kind(data['content'])}")
            if data.get("modified") is None:
                where.fail(f"{field}.modified", "required with content: the file's last-write time (UTC)")
            backup["content"] = data["content"]
        else:
            entries = _list(data.get("entries"), where, f"{field}.entries")
            missing = _list(data.get("missing_keys"), where, f"{field}.missing_keys")
            if not all(isinstance(e, dict) for e in entries + missing):
                where.fail(field, "entries and missing_keys must be lists of mappings")
            saved_at = _string(data.get("saved_at"), where, f"{field}.saved_at")
            if data.get("modified") is None and not TIMESTAMP.match(saved_at):
                where.fail(f"{field}.modified", "required: saved_at is not a time the file's time can be taken from")
            backup.update(saved_at=saved_at, entries=entries, missing_keys=missing)
        backup["modified"] = timestamp(data.get("modified", backup.get("saved_at")), where, f"{field}.modified")
        backup["owner"] = _owner(data.get("owner"), where, f"{field}.owner")
        reparse = data.get("reparse_point", False)
        if not isinstance(reparse, bool):
            where.fail(f"{field}.reparse_point", f"expected true or false, found {_kind(reparse)}")
        backup["reparse_point"] = reparse
        out.append(backup)
    return out


def _backup_folder(raw: Any, where: Where, has_backups: bool) -> dict[str, Any] | None:
    """The backup folder (%ProgramData%\\nhs_cm\\backups): absent (null) until backup_save creates it,
    unless the scenario gives it or has backups. ``{owner, reparse_point, acl, inherit}``: ``acl``
    lists who has access, ``inherit`` whether it inherits %ProgramData%'s ACL (which lets Users
    create files)."""
    if raw is None:
        return {"owner": DEFAULT_OWNER, "reparse_point": False, "acl": list(PROTECTED_ACL), "inherit": False} \
            if has_backups else None
    data = _mapping(raw, where, "backup_folder")
    _known_fields(data, ("owner", "reparse_point", "acl", "inherit"), where, "backup_folder")
    for name in ("reparse_point", "inherit"):
        if not isinstance(data.get(name, False), bool):
            where.fail(f"backup_folder.{name}", f"expected true or false, found {_kind(data[name])}")
    acl = data.get("acl", PROTECTED_ACL)
    acl = [_owner(item, where, "backup_folder.acl") for item in _list(acl, where, "backup_folder.acl")]
    return {"owner": _owner(data.get("owner"), where, "backup_folder.owner"),
            "reparse_point": data.get("reparse_point", False), "acl": acl, "inherit": data.get("inherit", False)}


def _hive_mounts(raw: Any, where: Where, profiles: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Hives loaded under ``HKU\\<mount>`` by a run that did not finish (killed before it unloaded
    them): ``{mount, hive}``, hive ``default`` (the default profile's) or a profile's sid (loaded: false)."""
    offline = {p["sid"].lower(): p["sid"] for p in profiles if not p["loaded"]}
    out: list[dict[str, str]] = []
    mounts: dict[str, int] = {}
    hives: dict[str, int] = {}
    for i, field, data in _records(raw, where, "hive_mounts", ("mount", "hive")):
        mount = data.get("mount")
        if not isinstance(mount, str) or not MOUNT_NAME.match(mount) or SID.match(mount) \
                or mount.upper() in SYSTEM_HIVES:
            where.fail(f"{field}.mount", f"{mount!r} is not a mount point name such as nhs_cm_0123456789ab "
                       "(letters, digits, '_', '.', '-'; not a SID)")
        hive = data.get("hive")
        if isinstance(hive, str) and hive.lower() == "default":
            hive = "default"
        elif isinstance(hive, str) and hive.lower() in offline:
            hive = offline[hive.lower()]
        else:
            where.fail(f"{field}.hive", f"{hive!r} is neither 'default' (the default profile's hive) nor the sid "
                       "of a profile with loaded: false (a loaded hive cannot be loaded again)")
        for seen, key, what in ((mounts, mount.lower(), "mount point"), (hives, hive.lower(), "hive")):
            if key in seen:
                where.fail(field, f"the same {what} as hive_mounts[{seen[key]}]")
            seen[key] = i
        out.append({"mount": mount, "hive": hive})
    return out


def _user_writable_folders(raw: Any, where: Where) -> list[dict[str, str]]:
    """Folders whose ACL lets non-administrators write (``{path, group}``, group Users,
    Authenticated Users or Everyone; a path alone means Users). Any other folder is as Windows
    makes Program Files: only administrators and SYSTEM may write."""
    out: list[dict[str, str]] = []
    for i, item in enumerate(_list(raw, where, "user_writable_folders")):
        field = f"user_writable_folders[{i}]"
        data = _mapping({"path": item} if isinstance(item, str) else item, where, field, allow_none=False)
        _known_fields(data, ("path", "group"), where, field)
        path = _abs_path(data.get("path"), where, f"{field}.path").rstrip("\\")
        if path.endswith(":"):  # a drive's root
            path += "\\"
        group = data.get("group", "Users")
        if not isinstance(group, str) or group.lower() not in USER_GROUPS:
            where.fail(f"{field}.group", f"{group!r} is not one of Users, Authenticated Users, Everyone")
        out.append({"path": path, "group": USER_GROUPS[group.lower()]})
    return out


def _denied(raw: Any, where: Where) -> list[str]:
    out: list[str] = []
    for i, path in enumerate(_list(raw, where, "denied")):
        hive, segments = _key_path(path, where, f"denied[{i}]")
        out.append(join_key(hive, segments))
    return out


# -- small validators -------------------------------------------------------------------------


def _quoted(value: Any) -> str:
    """A name for a message: strings as written in the file (backslashes not doubled)."""
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")


def _mapping(raw: Any, where: Where, field: str, *, allow_none: bool = True) -> dict[Any, Any]:
    if raw is None and allow_none:
        return {}
    if not isinstance(raw, dict):
        where.fail(field, f"expected a mapping, found {_kind(raw)}")
    return raw


def _list(raw: Any, where: Where, field: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        where.fail(field, f"expected a list, found {_kind(raw)}")
    return raw


def _records(raw: Any, where: Where, name: str, allowed: tuple[str, ...],
             most: int | None = None) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Each item of the list ``name`` as (index, its field, its mapping): a list (of at most
    ``most`` items) of mappings with no field but ``allowed``."""
    items = _list(raw, where, name)
    if most is not None and len(items) > most:
        where.fail(name, f"at most {most} {name}")
    for i, item in enumerate(items):
        field = f"{name}[{i}]"
        data = _mapping(item, where, field, allow_none=False)
        _known_fields(data, allowed, where, field)
        yield i, field, data


def _known_fields(data: dict[Any, Any], allowed: tuple[str, ...], where: Where, field: str) -> None:
    for key in data:
        if key not in allowed:
            where.fail(field, f"unknown field {key!r}; known fields: {', '.join(allowed)}")


def _string(raw: Any, where: Where, field: str) -> str:
    if raw is None:
        where.fail(field, "required")
    if not isinstance(raw, str) or not raw:
        where.fail(field, f"expected a non-empty string (quote it in YAML), found {_kind(raw)}")
    return raw


def _optional_string(raw: Any, where: Where, field: str) -> str | None:
    return None if raw is None else _string(raw, where, field)


def _version(raw: Any, where: Where, field: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        where.fail(field, f"a version must be a string such as '2.4.10.0' (quote it), found {_kind(raw)}")
    return raw


def _int(raw: Any, where: Where, field: str, low: int, high: int) -> int:
    if raw is None:
        where.fail(field, "required")
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        where.fail(field, f"expected an integer {low}..{high}, found {raw!r}")
    return raw


def _choice(raw: Any, allowed: tuple[str, ...], where: Where, field: str) -> str:
    if not isinstance(raw, str) or raw.lower() not in allowed:
        where.fail(field, f"{raw!r} is not one of {', '.join(allowed)}")
    return raw.lower()


def _ports(raw: Any, where: Where, field: str) -> list[int]:
    ports = [_int(p, where, field, 1, 65535) for p in _list(raw, where, field)]
    if len(set(ports)) != len(ports):
        where.fail(field, "lists a port twice")
    return ports


def _sid(raw: Any, where: Where, field: str) -> str:
    if not isinstance(raw, str) or not SID.match(raw):
        where.fail(field, f"{raw!r} is not a SID such as S-1-5-21-1004336348-1177238915-682003330-1001")
    return raw.upper()


def _abs_path(raw: Any, where: Where, field: str) -> str:
    if not isinstance(raw, str) or not ABSOLUTE_PATH.match(raw):
        where.fail(field, f"{raw!r} is not an absolute Windows path such as 'C:\\Windows\\explorer.exe'")
    return raw
