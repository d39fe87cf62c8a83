"""A case-insensitive Windows registry tree for one emulated host.

Key and value names compare case-insensitively, as on Windows, and keep the case they were
first written with for display. Keys given flat (a full path) imply their parents. The tree
knows which keys a scenario named (``explicit``) and which values the emulator made up
(``synthetic``), so that a host's state can be written back as a scenario without the
emulator's own furniture (ProfileList, the non-people hives, ...).

User hives: a profile with ``loaded: true`` is visible as ``HKU\\<sid>``; the keys of a
profile with ``loaded: false`` are kept aside in ``offline`` (that profile's NTUSER.DAT).
``load_hive`` shows such a hive under a mount point of the caller's choosing, as
``reg load HKU\\<mount> <profile>\\NTUSER.DAT`` does, until ``unload_hive``; a hive that is
loaded already (its user is logged on, or it is mounted) cannot be loaded again. The keys a
scenario denies in the hive stay denied under the mount point (the ACLs travel with the file).

The default profile (``<ProfileList Default>\\NTUSER.DAT``, the template of new profiles) is one
more such hive, ``default_profile``: ``load_default_profile`` shows it under a mount point until
``unload_hive``; what is written there stays in it (the file).

A hive in ``stuck`` (a profile's SID in lower case, or ``DEFAULT_PROFILE_MARK``) cannot be unloaded:
``unload_hive`` fails as ``reg unload`` does while a process holds a key of the hive open, and the
mount point stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

HIVE_NAMES = {"HKLM": "HKLM", "HKU": "HKU"}
LONG_HIVE_NAMES = {"HKEY_LOCAL_MACHINE": "HKLM", "HKEY_USERS": "HKU"}
CURRENT_USER_NAMES = {"HKCU", "HKEY_CURRENT_USER"}
REG_TYPES = ("REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY", "REG_NONE")
SYSTEM_HIVES = (".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20")
CLASSES_SUFFIX = "_Classes"
PROFILE_LIST = ("SOFTWARE", "Microsoft", "Windows NT", "CurrentVersion", "ProfileList")
WOW64_NODE = "WOW6432Node"
SYSTEM_PROFILE_PATHS = {
    "S-1-5-18": r"%systemroot%\system32\config\systemprofile",
    "S-1-5-19": r"%systemroot%\ServiceProfiles\LocalService",
    "S-1-5-20": r"%systemroot%\ServiceProfiles\NetworkService",
}
# Keys that exist on every Windows host whatever the scenario says (64-bit view paths).
HKLM_SKELETON = (
    ("HARDWARE",),
    ("SAM", "SAM"),
    ("SECURITY",),
    ("SOFTWARE", "Microsoft", "Windows", "CurrentVersion", "Uninstall"),
    ("SOFTWARE", "Policies", "Microsoft"),
    ("SOFTWARE", WOW64_NODE, "Microsoft", "Windows", "CurrentVersion", "Uninstall"),
    ("SYSTEM", "CurrentControlSet", "Control", "Session Manager"),
    ("SYSTEM", "CurrentControlSet", "Services"),
)
USER_HIVE_SKELETON = (
    ("Control Panel",),
    ("Environment",),
    ("Software", "Microsoft", "Windows", "CurrentVersion", "Internet Settings"),
    ("Software", "Policies"),
)
SYSTEM_HIVE_SKELETON = (("Control Panel",), ("Software", "Microsoft"))
CLASSES_HIVE_SKELETON = (("Local Settings", "Software"),)
# Keys that a local administrator cannot read on Windows either.
BUILTIN_DENIED = (("HKLM", ("security",)), ("HKLM", ("sam", "sam")))


class KeyPathError(ValueError):
    """A registry key path that cannot be used; the message says why."""


class HiveError(Exception):
    """A hive cannot be loaded or unloaded; the message is what reg.exe would print."""


#: What ``mounts`` records for the default profile's hive (no SID can look like it).
DEFAULT_PROFILE_MARK = "<default profile>"
FILE_IN_USE = "ERROR: The process cannot access the file because it is being used by another process."
FILE_NOT_FOUND = "ERROR: The system cannot find the file specified."
ACCESS_DENIED = "ERROR: Access is denied."
KEY_NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value."


def split_key(path: str, *, strict: bool) -> tuple[str, list[str]]:
    """Split ``HKLM\\A\\B`` into ("HKLM", ["A", "B"]).

    strict (runner requests): hive abbreviations only, no trailing or doubled backslash.
    not strict (scenario files): HKEY_LOCAL_MACHINE / HKEY_USERS accepted, one trailing
    backslash tolerated. HKCU is refused either way.
    """
    if not isinstance(path, str) or not path.strip():
        raise KeyPathError("a key path must be a non-empty string")
    text = path if strict else path.strip()
    if not strict and text.endswith("\\"):
        text = text[:-1]
    parts = text.split("\\")
    head = parts[0].upper()
    if head in CURRENT_USER_NAMES:
        raise KeyPathError("HKCU is not allowed (over WinRM it is the connecting account); write HKU\\<sid>")
    if head in HIVE_NAMES:
        hive = HIVE_NAMES[head]
    elif head in LONG_HIVE_NAMES and not strict:
        hive = LONG_HIVE_NAMES[head]
    elif head in LONG_HIVE_NAMES:
        raise KeyPathError(f"use the hive abbreviation {LONG_HIVE_NAMES[head]}, not {parts[0]}")
    else:
        raise KeyPathError(f"unknown hive {parts[0]!r}: only HKLM and HKU are allowed")
    segments = parts[1:]
    if any(not s for s in segments):
        hint = "" if strict else " (in a single-quoted YAML string write one backslash)"
        raise KeyPathError(f"empty key name in the path: no trailing or doubled backslash{hint}")
    return hive, segments


def join_key(hive: str, segments: list[str] | tuple[str, ...]) -> str:
    return "\\".join([hive, *segments])


@dataclass
class Value:
    name: str
    type: str
    data: Any
    synthetic: bool = False

    def as_reply(self) -> dict[str, Any]:
        data = list(self.data) if isinstance(self.data, list) else self.data
        return {"type": self.type, "data": data}


@dataclass
class Key:
    name: str
    values: dict[str, Value] = field(default_factory=dict)
    children: dict[str, Key] = field(default_factory=dict)
    explicit: bool = False

    def child(self, name: str) -> Key | None:
        return self.children.get(name.lower())

    def ensure_child(self, name: str) -> Key:
        node = self.children.get(name.lower())
        if node is None:
            node = Key(name)
            self.children[name.lower()] = node
        return node

    def sorted_children(self) -> list[Key]:
        return sorted(self.children.values(), key=lambda k: k.name.lower())

    def value(self, name: str) -> Value | None:
        return self.values.get(name.lower())

    def set_value(self, value: Value, *, keep_existing: bool = False) -> None:
        if keep_existing and value.name.lower() in self.values:
            return
        self.values[value.name.lower()] = value


class Registry:
    """The registry of one host: HKLM, HKU, the offline user hives and the denied keys."""

    def __init__(self) -> None:
        self.roots: dict[str, Key] = {"HKLM": Key("HKLM"), "HKU": Key("HKU")}
        self.offline: dict[str, Key] = {}
        self.denied: list[str] = []
        self._denied: list[tuple[str, tuple[str, ...]]] = list(BUILTIN_DENIED)
        # mount point (lower case) -> (mount point as given, sid of the offline hive, lower case)
        self.mounts: dict[str, tuple[str, str]] = {}
        #: The default profile's NTUSER.DAT (keys relative to its root); empty unless a scenario fills it.
        self.default_profile = Key("Default")
        #: Hives that will not unload (sids in lower case, DEFAULT_PROFILE_MARK): see the module docstring.
        self.stuck: set[str] = set()

    def put_default_profile(self, segments: list[str], values: dict[str, tuple[str, Any]]) -> None:
        """Add a key of the default profile's hive as a scenario gives it (explicit), with its values."""
        node = self.default_profile
        for name in segments:
            node = node.ensure_child(name)
        node.explicit = True
        for name, (vtype, data) in values.items():
            node.set_value(Value(name, vtype, data))

    # -- building ---------------------------------------------------------------------------
    def add_offline_hive(self, sid: str) -> None:
        self.offline.setdefault(sid.lower(), Key(sid))

    def _target(self, hive: str, segments: list[str]) -> tuple[Key, list[str]]:
        """The tree a path lives in: an offline hive for HKU\\<sid of an unloaded profile>."""
        if hive == "HKU" and segments and segments[0].lower() in self.offline:
            return self.offline[segments[0].lower()], segments[1:]
        return self.roots[hive], segments

    def ensure_key(self, hive: str, segments: list[str] | tuple[str, ...], *, explicit: bool = False) -> Key:
        node, rest = self._target(hive, list(segments))
        for name in rest:
            node = node.ensure_child(name)
        if explicit:
            node.explicit = True
        return node

    def put_values(self, hive: str, segments: list[str], values: dict[str, tuple[str, Any]]) -> Key:
        """Add a key as a scenario gives it (explicit), with its values."""
        node = self.ensure_key(hive, segments, explicit=True)
        for name, (vtype, data) in values.items():
            node.set_value(Value(name, vtype, data))
        return node

    def add_denied(self, hive: str, segments: list[str]) -> None:
        self.denied.append(join_key(hive, segments))
        self._denied.append((hive, tuple(s.lower() for s in segments)))

    def add_synthetic(self, profiles: list[dict[str, Any]]) -> None:
        """What Windows shows whatever the scenario says (see the module docstring)."""
        for path in HKLM_SKELETON:
            self.ensure_key("HKLM", path)
        plist = self.ensure_key("HKLM", PROFILE_LIST)
        for name, data in (("ProfilesDirectory", r"%SystemDrive%\Users"), ("Default", r"%SystemDrive%\Users\Default"),
                           ("Public", r"%SystemDrive%\Users\Public")):
            plist.set_value(Value(name, "REG_EXPAND_SZ", data, synthetic=True), keep_existing=True)
        entries = [(sid, path) for sid, path in SYSTEM_PROFILE_PATHS.items()]
        entries += [(p["sid"], p["path"]) for p in profiles]
        for sid, path in entries:
            node = self.ensure_key("HKLM", (*PROFILE_LIST, sid))
            node.set_value(Value("ProfileImagePath", "REG_EXPAND_SZ", path, synthetic=True), keep_existing=True)
            node.set_value(Value("State", "REG_DWORD", 0, synthetic=True), keep_existing=True)
        for sid in SYSTEM_HIVES:
            for path in SYSTEM_HIVE_SKELETON:
                self.ensure_key("HKU", (sid, *path))
        for path in USER_HIVE_SKELETON:
            node = self.default_profile
            for name in path:
                node = node.ensure_child(name)
        for profile in profiles:
            sid = profile["sid"]
            for path in USER_HIVE_SKELETON:
                self.ensure_key("HKU", (sid, *path))
            if profile["loaded"]:
                for path in CLASSES_HIVE_SKELETON:
                    self.ensure_key("HKU", (sid + CLASSES_SUFFIX, *path))

    # -- offline hives -----------------------------------------------------------------------
    def load_hive(self, sid: str, mount: str) -> None:
        """Show the offline hive of profile ``sid`` as ``HKU\\<mount>`` (``reg load``)."""
        wanted = sid.lower()
        if not mount or "\\" in mount or mount.lower() in self.roots["HKU"].children:
            raise HiveError(f"ERROR: HKU\\{mount} cannot be a mount point (it exists or is not one key name).")
        if self.roots["HKU"].child(sid) is not None or any(mounted == wanted for _, mounted in self.mounts.values()):
            raise HiveError(FILE_IN_USE)
        hive = self.offline.get(wanted)
        if hive is None:
            raise HiveError(FILE_NOT_FOUND)
        self.roots["HKU"].children[mount.lower()] = Key(mount, values=hive.values, children=hive.children,
                                                        explicit=hive.explicit)
        self.mounts[mount.lower()] = (mount, wanted)
        for hive_name, denied in list(self._denied):
            if hive_name == "HKU" and denied[:1] == (wanted,):
                self._denied.append(("HKU", (mount.lower(), *denied[1:])))

    def load_default_profile(self, mount: str) -> None:
        """Show the default profile's hive as ``HKU\\<mount>`` (``reg load`` of its NTUSER.DAT)."""
        if not mount or "\\" in mount or mount.lower() in self.roots["HKU"].children:
            raise HiveError(f"ERROR: HKU\\{mount} cannot be a mount point (it exists or is not one key name).")
        if any(mounted == DEFAULT_PROFILE_MARK for _, mounted in self.mounts.values()):
            raise HiveError(FILE_IN_USE)
        hive = self.default_profile
        self.roots["HKU"].children[mount.lower()] = Key(mount, values=hive.values, children=hive.children,
                                                        explicit=hive.explicit)
        self.mounts[mount.lower()] = (mount, DEFAULT_PROFILE_MARK)

    def default_profile_dump(self) -> dict[str, dict[str, Any]]:
        """The default profile's keys (relative to its root) and values, as a scenario gives them."""
        out: dict[str, dict[str, Any]] = {}
        for path, node in _walk(self.default_profile, []):
            if path:
                values = {v.name: v.as_reply() for v in node.values.values() if not v.synthetic}
                if node.explicit or values:
                    out["\\".join(path)] = values
        return out

    def unload_hive(self, mount: str) -> None:
        """Remove the mount point ``HKU\\<mount>`` (``reg unload``); the hive stays in its file."""
        folded = mount.lower()
        if folded not in self.mounts:
            raise HiveError(KEY_NOT_FOUND)
        if self.mounts[folded][1] in self.stuck:
            raise HiveError(ACCESS_DENIED)
        del self.mounts[folded]
        del self.roots["HKU"].children[folded]
        self._denied = [(hive, path) for hive, path in self._denied if not (hive == "HKU" and path[:1] == (folded,))]

    def mounted(self) -> list[str]:
        """The mount points in use, as given."""
        return [name for name, _ in self.mounts.values()]

    # -- reading ----------------------------------------------------------------------------
    @staticmethod
    def map_view(hive: str, segments: list[str], view: str) -> list[str]:
        """Where Windows stores a path of the given view ("64" or "32")."""
        if view != "32" or hive != "HKLM" or not segments or segments[0].lower() != "software":
            return list(segments)
        if len(segments) > 1 and segments[1].lower() == WOW64_NODE.lower():
            return list(segments)
        return [segments[0], WOW64_NODE, *segments[1:]]

    def lookup(self, hive: str, segments: list[str]) -> Key | None:
        node: Key | None = self.roots[hive]
        for name in segments:
            node = node.child(name) if node is not None else None
            if node is None:
                return None
        return node

    def is_denied(self, hive: str, segments: list[str]) -> bool:
        lowered = tuple(s.lower() for s in segments)
        return any(h == hive and lowered[: len(d)] == d for h, d in self._denied)

    # -- writing back as a scenario -----------------------------------------------------------
    def dump(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The scenario's view of the registry: named keys and values the emulator did not invent."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for hive, root in self.roots.items():
            for path, node in _walk(root, []):
                if hive == "HKU" and path and path[0].lower() in self.mounts:
                    continue  # an offline hive shown for a while: it is dumped as HKU\<sid> below
                _dump_node(out, join_key(hive, path), node)
        for root in self.offline.values():
            for path, node in _walk(root, [root.name]):
                _dump_node(out, join_key("HKU", path), node)
        return out


def _walk(node: Key, path: list[str]) -> Iterator[tuple[list[str], Key]]:
    yield path, node
    for child in node.children.values():
        yield from _walk(child, [*path, child.name])


def _dump_node(out: dict[str, dict[str, dict[str, Any]]], path: str, node: Key) -> None:
    values = {v.name: v.as_reply() for v in node.values.values() if not v.synthetic}
    if (node.explicit or values) and "\\" in path:
        out[path] = values
