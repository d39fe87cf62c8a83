"""The emulated estate: hosts built from scenario files, each with its own state and lock.

This is the interface the WS-Management server codes against:
``load_estate``, ``Estate``, ``HostState`` and ``ScenarioError``.

Process ids are deterministic (Windows-like multiples of 4):
  4                 System
  100, 104, ...     the emulator's own Windows processes (smss, csrss, wininit, services,
                    lsass, then csrss and winlogon per interactive session), in that order
  2000 + 4*i        the service at index i of ``services`` while it is not stopped
  5000 + 4*j        the process at index j of ``processes``
A ``pid`` given in the scenario (2000 or more) overrides the scheme. A session whose user has no
process in the scenario gets the user's ``sihost.exe`` (Windows runs it in every signed-in session),
numbered after the emulator's other processes, so that the session shows in ``session_list``,
which (as the runner) finds sessions from the processes' owners.

Concurrency: ``commands.execute`` holds the host's lock (``HostState.lock``); ``pause`` lets time
pass without it (a slow operation, a service that does not settle), and the runner's host-wide mutex
(``take_runner_mutex``) is a flag under the same lock, so that two runner commands of one host
can overlap as on Windows and the second one waits for the first.
"""

from __future__ import annotations

import copy
import datetime
import ntpath
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .registry import DEFAULT_PROFILE_MARK, PROFILE_LIST, Registry, split_key
from .scenario import (
    CORE_PID_BASE,
    DEFAULT_MUTEX_WAIT,
    SYSTEM_PID,
    ScenarioError,
    Where,
    parse_document,
    parse_inventory_vars,
    process_pid,
    read_file,
    scenario_files,
    service_pid,
)

__all__ = ["Estate", "HostState", "ScenarioError", "load_estate"]

SYSTEM_USER = "NT AUTHORITY\\SYSTEM"
#: The environment variables a ProfileList folder may use, as on the emulated hosts.
ENVIRONMENT = {"systemdrive": "C:", "systemroot": "C:\\Windows", "windir": "C:\\Windows",
               "programdata": "C:\\ProgramData"}
DEFAULT_SERVICE_IMAGE = r"C:\Windows\system32\svchost.exe -k netsvcs -p"
SYSTEM32 = "C:\\Windows\\System32\\"


def normalise_path(path: str) -> str:
    """A Windows path as the host compares it: separators made ``\\``, ``.``/``..`` resolved, case folded."""
    text = ntpath.normpath(path.replace("/", "\\"))
    return text.lower()


@dataclass
class Process:
    pid: int
    name: str
    image: str | None
    session: int
    user: str | None
    listens: list[int] = field(default_factory=list)
    version: str | None = None
    implicit: bool = False  # made up by the emulator (System, csrss, a service's process ...)
    pid_given: bool = False

    def as_data(self) -> dict[str, Any]:
        return {"image": self.image, "name": self.name, "session": self.session, "user": self.user,
                "listens": list(self.listens), "version": self.version, "pid": self.pid}


@dataclass
class Service:
    name: str
    display_name: str
    state: str
    start_mode: str
    image: str | None
    listens: list[int]
    pid: int | None = None

    def command_line(self) -> str:
        """The command line as Windows stores it (PathName): a path with spaces is quoted."""
        return service_command_line(self.image)

    def executable(self) -> str:
        return service_executable(self.image)

    def as_data(self) -> dict[str, Any]:
        data = {"name": self.name, "display_name": self.display_name, "state": self.state,
                "start_mode": self.start_mode, "image": self.image, "listens": list(self.listens)}
        if self.pid:
            data["pid"] = self.pid
        return data


def _split_command(image: str) -> tuple[str, str]:
    text = image.strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        return (text[1:end], text[end + 1:]) if end > 0 else (text[1:], "")
    match = re.match(r"(?i)^(.*?\.exe)(\s.*)?$", text)
    if match:
        return match.group(1), match.group(2) or ""
    return text, ""


def service_command_line(image: str | None) -> str:
    if image is None:
        return DEFAULT_SERVICE_IMAGE
    if image.strip().startswith('"'):
        return image.strip()
    path, args = _split_command(image)
    return f'"{path}"{args}' if " " in path else image.strip()


def service_executable(image: str | None) -> str:
    return _split_command(service_command_line(image))[0]


class HostState:
    """One emulated Windows host. ``execute`` and ``state_dict`` are thread-safe."""

    def __init__(self, data: dict[str, Any]) -> None:
        data = copy.deepcopy(data)
        self._lock = threading.RLock()
        # notified when the runner's mutex is released; waiting on it lets go of the lock
        self._changed = threading.Condition(self._lock)
        self.runner_running = False  # the runner's host-wide mutex (Global\nhs_cm_runner) is held
        self.name: str = data["name"]
        self.template: str = data["template"]
        self.os: dict[str, str] = data["os"]
        self.auth: list[str] = data["winrm"]["auth"]
        self.users: dict[str, str] = data["winrm"]["users"]
        self.clock_offset_seconds: int = data["winrm"].get("clock_offset_seconds", 0)
        self.sessions: list[dict[str, Any]] = data["sessions"]
        self.profiles: list[dict[str, Any]] = data["profiles"]
        self.files: list[dict[str, Any]] = data["files"]
        self.group_policy: dict[str, Any] = data["group_policy"]
        self.behaviour: dict[str, Any] = data["behaviour"]
        self.transport_fail: dict[str, Any] | None = data["transport"]["fail"]
        self.writes = 0
        # the backup folder's files (write_ops.py): what backup_save wrote and what a scenario planted
        self.backups: list[dict[str, Any]] = data["backups"]
        self.backup_folder: dict[str, Any] | None = data["backup_folder"]
        self.user_writable_folders: list[dict[str, str]] = data["user_writable_folders"]
        # optional knobs and faults (scenario.py OPTIONAL_BEHAVIOUR)
        self.mutex_wait: float = self.behaviour.get("mutex_wait_seconds", DEFAULT_MUTEX_WAIT)
        self.answers_to_lose: int = self.behaviour.get("lose_write_answers", 0)
        # loading an offline hive to read it is not a registry write: counted apart
        self.hive_loads = 0
        self.hive_unloads = 0
        # the default profile's hive while a request has it loaded (ops.default_profile_segments)
        self.default_profile_mount: str | None = None
        self.default_profile_error: tuple[str, str] | None = None
        self.registry = self._build_registry(data)
        self.services = [Service(s["name"], s["display_name"], s["state"], s["start_mode"], s["image"],
                                 s["listens"], None if s["state"] == "stopped" else s.get("pid", service_pid(i)))
                         for i, s in enumerate(data["services"])]
        listed = [Process(p.get("pid", process_pid(j)), p["name"], p["image"], p["session"], p["user"], p["listens"],
                          p["version"], pid_given="pid" in p)
                  for j, p in enumerate(data["processes"])]
        self.processes = self._core_processes(listed) + self._service_processes() + listed
        for mount in data["hive_mounts"]:  # left loaded by a run that was killed
            if mount["hive"] == "default":
                self.registry.load_default_profile(mount["mount"])
            else:
                self.registry.load_hive(mount["hive"], mount["mount"])

    # -- construction ---------------------------------------------------------------------------
    def _build_registry(self, data: dict[str, Any]) -> Registry:
        reg = Registry()
        for profile in self.profiles:
            if not profile["loaded"]:
                reg.add_offline_hive(profile["sid"])
        for path, values in data["registry"].items():
            hive, segments = split_key(path, strict=False)
            reg.put_values(hive, segments, {n: (v["type"], v["data"]) for n, v in values.items()})
        for path in data["denied"]:
            reg.add_denied(*split_key(path, strict=False))
        for path, values in data.get("default_profile", {}).get("registry", {}).items():
            reg.put_default_profile(path.split("\\"), {n: (v["type"], v["data"]) for n, v in values.items()})
        reg.add_synthetic(self.profiles)
        reg.stuck = {DEFAULT_PROFILE_MARK if hive == "default" else hive.lower()
                     for hive in data["behaviour"].get("stuck_hives", [])}
        return reg

    def _core_processes(self, listed: list[Process]) -> list[Process]:
        system_version = f"{self.os['version']}.1"
        core: list[tuple[str, str | None, int, str | None]] = [
            ("smss.exe", SYSTEM32 + "smss.exe", 0, SYSTEM_USER),
            ("csrss.exe", None, 0, None),
            ("wininit.exe", SYSTEM32 + "wininit.exe", 0, SYSTEM_USER),
            ("services.exe", SYSTEM32 + "services.exe", 0, SYSTEM_USER),
            ("lsass.exe", SYSTEM32 + "lsass.exe", 0, SYSTEM_USER),
        ]
        for session in sorted(s["id"] for s in self.sessions):
            core += [("csrss.exe", None, session, None), ("winlogon.exe", SYSTEM32 + "winlogon.exe", session,
                                                          SYSTEM_USER)]
        for session in sorted(self.sessions, key=lambda s: s["id"]):
            owned = any(p.session == session["id"] and (p.user or "").lower() == session["user"].lower()
                        for p in listed)
            if not owned:  # Windows runs the user's shell host in every signed-in session
                core.append(("sihost.exe", SYSTEM32 + "sihost.exe", session["id"], session["user"]))
        out = [Process(SYSTEM_PID, "System", None, 0, None, implicit=True)]
        for k, (name, image, session, user) in enumerate(core):
            out.append(Process(CORE_PID_BASE + 4 * k, name, image, session, user,
                               version=system_version if image else None, implicit=True))
        return out

    def _service_processes(self) -> list[Process]:
        out = []
        for service in self.services:
            if service.pid:
                image = service.executable()
                out.append(Process(service.pid, ntpath.basename(image), image, 0, SYSTEM_USER, implicit=True))
        return out

    # -- queries used by the operations -----------------------------------------------------------
    def file_versions(self) -> dict[str, str | None]:
        return {normalise_path(f["path"]): f["version"] for f in self.files}

    def process_version(self, process: Process) -> str | None:
        if process.version is not None:
            return process.version
        if process.image is None:
            return None
        return self.file_versions().get(normalise_path(process.image))

    def known_files(self) -> dict[str, str | None]:
        """Every path that exists (files and their folders), lower-cased, with its file version."""
        known: dict[str, str | None] = {}
        paths: list[tuple[str, str | None]] = [(p["path"] + "\\NTUSER.DAT", None) for p in self.profiles]
        default_file = self.default_profile_file()
        if default_file is not None:
            paths.append((default_file, None))
        paths += [(s.executable(), None) for s in self.services]
        paths += [(p.image, p.version) for p in self.processes if p.image]
        paths += [(f["path"], f["version"]) for f in self.files]
        for path, version in paths:
            key = normalise_path(path)
            if version is not None or key not in known:
                known[key] = version
            parent = ntpath.dirname(key)
            while parent and parent not in known and parent != key:
                known[parent] = None
                key, parent = parent, ntpath.dirname(parent)
        return known

    def default_profile_file(self) -> str | None:
        """``<ProfileList value Default, expanded>\\NTUSER.DAT``, where the default profile's hive
        is (as the runner resolves it), or None when that value is missing or not a string."""
        folder = self.profile_list_folder("Default")
        return None if folder is None else folder + "\\NTUSER.DAT"

    def profile_list_folder(self, name: str) -> str | None:
        """A folder value of ProfileList (``Default``, ``ProfilesDirectory``, ``Public``), expanded,
        without a trailing backslash; None when the value is missing or not a string."""
        node = self.registry.lookup("HKLM", list(PROFILE_LIST))
        value = node.value(name) if node is not None else None
        if value is None or not isinstance(value.data, str) or not value.data.strip():
            return None
        return self.expand(value.data).rstrip("\\")

    def account_sid(self, account: str | None) -> str | None:
        """The SID of an account name (``DOMAIN\\name``) as Windows would translate it: known here
        from the profiles and the sessions; None for an account the host cannot resolve."""
        if not account:
            return None
        wanted = account.lower()
        for record in [*self.profiles, *self.sessions]:
            if str(record.get("user", "")).lower() == wanted and record.get("sid"):
                return record["sid"]
        return {"nt authority\\system": "S-1-5-18", "nt authority\\local service": "S-1-5-19",
                "nt authority\\network service": "S-1-5-20"}.get(wanted)

    def expand(self, text: str) -> str:
        """``%SystemDrive%``, ``%SystemRoot%``, ``%ProgramData%`` ... expanded as on the emulated hosts."""
        return re.sub(r"%([^%]+)%", lambda m: ENVIRONMENT.get(m.group(1).lower(), m.group(0)), text)

    def now(self) -> datetime.datetime:
        """The host's clock (UTC): what the runner's operations read, e.g. a backup's time."""
        return datetime.datetime.now(datetime.UTC)

    def pause(self, seconds: float) -> None:
        """Let ``seconds`` pass inside a command without holding the host: other commands (and the
        control server) go on meanwhile, as on Windows."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)

    def take_runner_mutex(self) -> bool:
        """Take the runner's host-wide mutex (Global\\nhs_cm_runner), waiting for it up to
        ``mutex_wait`` seconds (10 s, as the runner) without holding the host: False when another
        run still holds it then."""
        deadline = time.monotonic() + self.mutex_wait
        with self._changed:
            while self.runner_running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            self.runner_running = True
            return True

    def release_runner_mutex(self) -> None:
        with self._changed:
            self.runner_running = False
            self._changed.notify_all()

    def listeners(self) -> dict[int, tuple[int, Service | Process]]:
        """port -> (pid, owner) for running services and processes."""
        out: dict[int, tuple[int, Service | Process]] = {}
        for service in self.services:
            if service.state == "running" and service.pid:
                for port in service.listens:
                    out.setdefault(port, (service.pid, service))
        for process in self.processes:
            for port in process.listens:
                out.setdefault(port, (process.pid, process))
        return out

    def mounted(self) -> list[str]:
        """Hives loaded under a mount point now: none between two commands, unless a scenario left
        one (``hive_mounts``) or a hive would not unload (``behaviour.stuck_hives``)."""
        with self._lock:
            return self.registry.mounted()

    # -- the interface --------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """The host's lock: held by ``commands.execute`` while it interprets a command (``pause``
        lets time pass without it)."""
        return self._lock

    def state_dict(self) -> dict[str, Any]:
        """This host in the scenario format, as it is now."""
        with self._lock:
            return copy.deepcopy({
                "name": self.name,
                "template": self.template,
                "os": self.os,
                "winrm": {"auth": self.auth, "users": self.users, **(
                    {"clock_offset_seconds": self.clock_offset_seconds} if self.clock_offset_seconds else {})},
                "sessions": self.sessions,
                "profiles": self.profiles,
                "registry": self.registry.dump(),
                "denied": self.registry.denied,
                "services": [s.as_data() for s in self.services],
                "processes": [p.as_data() for p in self.processes if not p.implicit],
                "files": self.files,
                "group_policy": self.group_policy,
                "behaviour": self.behaviour,
                "transport": {"fail": self.transport_fail},
                "backups": self.backups,
                "default_profile": {"registry": self.registry.default_profile_dump()},
                "hive_mounts": [{"mount": mount, "hive": "default" if hive == DEFAULT_PROFILE_MARK else hive.upper()}
                                for mount, hive in self.registry.mounts.values()],
                "backup_folder": self.backup_folder,
                "user_writable_folders": self.user_writable_folders,
            })

    def __repr__(self) -> str:
        return f"HostState({self.name!r}, template={self.template!r})"


class Estate:
    """The hosts of an emulated estate, in order, the findings expected on each and the
    inventory variables a scenario gives a host (``inventory_vars``)."""

    def __init__(self, hosts: list[HostState], expect: dict[str, list[str]],
                 inventory_vars: dict[str, dict[str, Any]] | None = None) -> None:
        self.hosts = hosts
        self.expect = expect
        self.inventory_vars = inventory_vars or {}
        self._by_name = {h.name.lower(): h for h in hosts}

    def by_name(self, name: str) -> HostState:
        return self._by_name[name.lower()]

    def state_dict(self) -> dict[str, Any]:
        state = {"hosts": [h.state_dict() for h in self.hosts], "expect": copy.deepcopy(self.expect)}
        if self.inventory_vars:
            state["inventory_vars"] = copy.deepcopy(self.inventory_vars)
        return state


def load_estate(paths: list[str], hosts: int | None = None, seed: int = 0) -> Estate:
    """Load scenario files (or directories of them) into an estate.

    Without ``hosts``: every host of every file, names as written (unique across files).
    With ``hosts=N``: N hosts named pc-0001 ...; the first min(N, T) copy each of the T
    templates once, in file order; the rest copy templates chosen by random.Random(seed).
    """
    templates: list[tuple[dict[str, Any], list[str] | None]] = []
    variables: dict[str, dict[str, Any]] = {}  # by template (the host's name in its file)
    seen: dict[str, str] = {}
    for path in scenario_files(paths):
        source = str(path)
        doc = read_file(path)
        host_data, expect = parse_document(doc, source)
        for index, data in enumerate(host_data):
            first = seen.setdefault(data["name"].lower(), source)
            if hosts is None and first != source:
                Where(source, f"hosts[{index}] ({data['name']})").fail(
                    "name", f"host name also used in {first}; names must be unique across the files loaded")
            templates.append((data, expect.get(data["name"])))
        for name, values in parse_inventory_vars(doc, source, host_data).items():
            variables[next(d["template"] for d in host_data if d["name"] == name)] = values
    chosen = templates if hosts is None else _spread(templates, hosts, seed)
    built = [HostState(data) for data, _ in chosen]
    expect = {data["name"]: list(ids) for data, ids in chosen if ids is not None}
    inventory_vars = {data["name"]: dict(variables[data["template"]]) for data, _ in chosen
                      if data["template"] in variables}
    return Estate(built, expect, inventory_vars)


def _spread(templates: list[tuple[dict[str, Any], list[str] | None]], count: int,
            seed: int) -> list[tuple[dict[str, Any], list[str] | None]]:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ScenarioError(f"hosts: expected a number of hosts of 1 or more, found {count!r}")
    rng = random.Random(seed)
    order = templates[: min(count, len(templates))]
    order += [rng.choice(templates) for _ in range(count - len(order))]
    return [(dict(data, name=f"pc-{i:04d}"), ids) for i, (data, ids) in enumerate(order, start=1)]
