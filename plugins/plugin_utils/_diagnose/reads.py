# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What diagnose reads: the read plan (``planned_reads``), each read with its label.

Pure functions, no I/O. ``plan_reads(options)`` returns the operations of ONE runner call;
``read_labels(options)`` their labels, in the same order, which ``facts.build_facts`` pairs with
the results. Both are worked out once per process and set of options (``_memo.memo``):
diagnose does it before Ansible forks (``prepare_before_fork``), so each host's fork copies the
plan instead of planning again.

Registry keys the models need are declared there, not here: ``DECLARATIONS`` lists what each
declaring model module declares in ``MACHINE_READS`` (full ``HKLM\\...`` key, depth),
``USER_READS`` (key relative to a user's hive root, depth) and ``READ_VALUE_NAMES`` ({declared
key: the only value names needed}, used as the ``names`` filter of the machine reads).
``merge_declared`` checks and merges them into ``DECLARED``, once, at import; the plan reads
them in the same runner call (``facts["policy_keys"]``, ``facts["users"][i]["keys"]`` and the
Group Policy settings under them, ``facts["gpo"]``).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.ers_report import (
    ErsReport,
    parse_ers_report,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    MACHINE_READS,
    READ_VALUE_NAMES,
    USER_READS,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import options_with_defaults
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import (
    BROWSER_EXES,
    PRS_PATH,
    SMARTCARD_SERVICE,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._memo import memo, same

#: Patterns compiled once, at import (in Ansible's main process, before the forks).
_KEY_PATH = re.compile(r"[^\\]+(?:\\[^\\]+)*")
_HIVE_PREFIXES = ("HKLM\\", "HKU\\", "HKCU\\", "HKEY_")

UNINSTALL_64 = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
UNINSTALL_32 = "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
NDP_V4_FULL = "HKLM\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"
UNINSTALL_VALUE_NAMES = ["DisplayName", "DisplayVersion", "Publisher", "InstallLocation", "DisplayIcon",
                         "UninstallString", "InstallDate", "SystemComponent"]

CALAIS_READERS = "HKLM\\SOFTWARE\\Microsoft\\Cryptography\\Calais\\Readers"

#: Pending-reboot indicators: (read label, key, value name or None for "the key exists").
_CURRENT_VERSION = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion"
REBOOT_KEYS: tuple[tuple[str, str, str | None], ...] = (
    ("reboot_cbs", _CURRENT_VERSION + "\\Component Based Servicing\\RebootPending", None),
    ("reboot_wu", _CURRENT_VERSION + "\\WindowsUpdate\\Auto Update\\RebootRequired", None),
    ("reboot_pfro", "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager", "PendingFileRenameOperations"),
    ("reboot_updates", "HKLM\\SOFTWARE\\Microsoft\\Updates", "UpdateExeVolatile"),
)
ACTIVE_COMPUTER_NAME = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\ComputerName\\ActiveComputerName"
PENDING_COMPUTER_NAME = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\ComputerName\\ComputerName"


#: The Local Network Access content-setting types read from people's Chrome and Edge profiles
#: (``browser_site_settings``; ``models.local_network``), as Preferences names them
#: (``profile.content_settings.exceptions.<type>``): Chromium's content_settings_registry.cc registers
#: ``local-network-access`` and, for the split permission, ``loopback-network`` (the local device) and
#: ``local-network`` (local network endpoints); website_settings_info.cc makes '-' '_' in the
#: preference name (docs/browser-policy.md).
SITE_SETTING_TYPES = ("local_network_access", "loopback_network", "local_network")


#: A declared read: (key, depth, value names or None for all).
ReadSpec = tuple[str, int, list[str] | None]
Read = tuple[str, dict[str, t.Any]]


def _reg(key: str, names: list[str] | None = None, depth: int = 0) -> dict[str, t.Any]:
    op: dict[str, t.Any] = {"op": "reg_read", "key": key}
    if depth:
        op["depth"] = depth
    if names is not None:
        op["names"] = names
    return op


# ---------------------------------------------------------------------------------------------
# Keys the models declare

@dataclass(frozen=True)
class Declaration:
    """The registry keys one module's checks need read (``where`` names it in errors)."""

    where: str
    machine_reads: t.Sequence[t.Any] = ()
    user_reads: t.Sequence[t.Any] = ()
    value_names: t.Mapping[str, t.Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeclaredReads:
    """The declared reads merged: each key once (``merge_declared``)."""

    machine: tuple[ReadSpec, ...]
    user: tuple[ReadSpec, ...]


def _declared_entry(where: str, entry: t.Any, machine: bool) -> tuple[str, int]:
    if (not isinstance(entry, (tuple, list)) or len(entry) != 2 or not isinstance(entry[0], str)
            or isinstance(entry[1], bool) or not isinstance(entry[1], int)):
        raise ValueError(f"{where} must be a (key path, depth) pair, not {entry!r}")
    path, depth = entry
    if not 0 <= depth <= 4:
        raise ValueError(f"{where}: depth must be from 0 to 4, not {depth!r}")
    if not _KEY_PATH.fullmatch(path):
        raise ValueError(f"{where}: {path!r} has an empty part or a leading or trailing backslash")
    starts_with_hive = path.upper().startswith(_HIVE_PREFIXES)
    if machine and not path.upper().startswith("HKLM\\"):
        raise ValueError(f"{where}: {path!r} must be a full HKLM\\... key")
    if not machine and starts_with_hive:
        raise ValueError(f"{where}: {path!r} must be relative to the user's hive root (no hive name)")
    return path, depth


def _declared_names(declaration: Declaration, path: str) -> list[str] | None:
    names = (declaration.value_names or {}).get(path)
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{declaration.where}.READ_VALUE_NAMES[{path!r}] must be a list of value names, "
                         f"not {names!r}")
    return list(names)


def merge_declared(declarations: t.Iterable[Declaration], machine: bool) -> list[ReadSpec]:
    """(key, depth, value names or None for all) that ``declarations`` declare for the machine
    (``machine_reads``) or for every user (``user_reads``), each key once, in order: the deepest
    read wins, and the names of several declarations add up (one without a filter reads them all).
    A declaration that is not a (key, depth) pair, or names a key of the wrong hive, is a
    ValueError naming it."""
    list_name = "MACHINE_READS" if machine else "USER_READS"
    merged: dict[str, ReadSpec] = {}
    for declaration in declarations:
        entries = declaration.machine_reads if machine else declaration.user_reads
        for index, entry in enumerate(entries or []):
            path, depth = _declared_entry(f"{declaration.where}.{list_name}[{index}]", entry, machine)
            names = _declared_names(declaration, path)
            known = merged.get(path.casefold())
            if known is not None:
                both = None if known[2] is None or names is None else known[2] + [
                    name for name in names if name.casefold() not in {n.casefold() for n in known[2]}]
                merged[path.casefold()] = (known[0], max(known[1], depth), both)
            else:
                merged[path.casefold()] = (path, depth, names)
    return list(merged.values())


def declared_reads(declarations: t.Iterable[Declaration]) -> DeclaredReads:
    """``declarations`` merged, for the machine and for the users."""
    listed = tuple(declarations)
    return DeclaredReads(machine=tuple(merge_declared(listed, machine=True)),
                         user=tuple(merge_declared(listed, machine=False)))


#: The modules that declare reads, and what they declare.
DECLARATIONS: tuple[Declaration, ...] = (
    Declaration("_diagnose.models.policy", MACHINE_READS, USER_READS, READ_VALUE_NAMES),
)
#: What the plan reads for the models: merged once, at import.
DECLARED = declared_reads(DECLARATIONS)


def _gpo_prefixes(machine: t.Sequence[ReadSpec], user: t.Sequence[ReadSpec]) -> list[str]:
    """The declared keys relative to their hive root, each once, leaving out keys below another."""
    paths = [entry[0].split("\\", 1)[1] for entry in machine] + [entry[0] for entry in user]
    prefixes: dict[str, str] = {}
    for path in paths:
        prefixes.setdefault(path.casefold(), path)
    folded = list(prefixes)
    return [prefixes[key] for key in folded if not any(key.startswith(other + "\\") for other in folded)]


# ---------------------------------------------------------------------------------------------
# The plan

def reported(opts: dict[str, t.Any]) -> ErsReport | None:
    """The e-RS report of option ``ers_report`` (complete options), parsed once per process and text:
    the plan lists its port, the facts carry it."""
    return _reported(opts.get("ers_report"))


@memo(32, fresh=same)
def _reported(text: str | None) -> ErsReport | None:
    return parse_ers_report(text)


def _listener_ports(opts: dict[str, t.Any]) -> list[int]:
    """The NHS Port Service's ports and, when the e-RS report names one, CM's port (so the
    session whose CM the report is about can be found)."""
    ports = list(opts["prs_ports"])
    report = reported(opts)
    if report is not None and report.port is not None and report.port not in ports:
        ports.append(report.port)
    return ports


def planned_reads(options: dict[str, t.Any] | None = None, declared: DeclaredReads = DECLARED) -> list[Read]:
    """(label, op) for every read of diagnose, in request order.

    A new list of new dicts on every call, but worked out once per process, set of options and
    declared reads (``_plan`` is a ``_memo.memo``).
    """
    return _plan(options_with_defaults(options), declared)


def read_labels(opts: dict[str, t.Any], declared: DeclaredReads = DECLARED) -> tuple[str, ...]:
    """The labels of the plan for complete options (``options_with_defaults``, ``validate_options``),
    in request order: kept with the plan, never planned again to find them."""
    return _labels(opts, declared)


def plan_reads(options: dict[str, t.Any] | None = None, declared: DeclaredReads = DECLARED) -> list[dict[str, t.Any]]:
    """The operations diagnose sends, in ONE runner call."""
    return [op for _label, op in planned_reads(options, declared)]


@memo(32)
def _plan(opts: dict[str, t.Any], declared: DeclaredReads) -> list[Read]:
    """The plan for complete options (``options_with_defaults``)."""
    reads: list[tuple[str, dict[str, t.Any]]] = [
        ("uninstall_64", _reg(UNINSTALL_64, UNINSTALL_VALUE_NAMES, depth=1)),
        ("uninstall_32", _reg(UNINSTALL_32, UNINSTALL_VALUE_NAMES, depth=1)),
        ("dotnet", _reg(NDP_V4_FULL, ["Release", "Version"])),
    ]
    for label, key, name in REBOOT_KEYS:
        reads.append((label, _reg(key, [name] if name else [])))
    reads.append(("reboot_name_active", _reg(ACTIVE_COMPUTER_NAME, ["ComputerName"])))
    reads.append(("reboot_name_pending", _reg(PENDING_COMPUTER_NAME, ["ComputerName"])))
    reads.append(("services", {"op": "service_query", "names": [SMARTCARD_SERVICE],
                               "display_names": [opts["port_service_display_name"]]}))
    reads.append(("listeners", {"op": "tcp_listeners", "ports": _listener_ports(opts)}))
    for port in opts["prs_ports"]:
        reads.append((f"prs_probe_{port}", {"op": "http_get", "url": f"http://localhost:{port}{PRS_PATH}",
                                            "timeout_ms": opts["probe_timeout_ms"]}))
    reads.append(("processes", {"op": "process_list"}))
    reads.append(("sessions", {"op": "session_list"}))
    reads.append(("os", {"op": "os_info"}))
    reads.append(("smartcard_readers", _reg(CALAIS_READERS, [])))
    if opts["ia_paths"]:
        reads.append(("ia_files", {"op": "file_info", "paths": list(opts["ia_paths"])}))
    reads.append(("browser_files", {"op": "file_info", "paths": [path for paths in BROWSER_EXES.values()
                                                                 for path in paths]}))
    reads.append(("user_hives", {"op": "user_hives_read", "paths": [[path, depth] for path, depth, _n in declared.user],
                                 "include_offline": bool(opts["include_offline_profiles"])}))
    reads.append(("browser_site_settings", {"op": "browser_site_settings", "types": list(SITE_SETTING_TYPES),
                                            "include_offline": bool(opts["include_offline_profiles"])}))
    reads.append(("gpo", {"op": "gpo_registry_settings",
                          "key_prefixes": _gpo_prefixes(declared.machine, declared.user)}))
    for path, depth, names in declared.machine:
        reads.append((f"policy:{path}", _reg(path, None if names is None else list(names), depth=depth)))
    return reads


@memo(32, fresh=same)
def _labels(opts: dict[str, t.Any], declared: DeclaredReads) -> tuple[str, ...]:
    """The labels of the plan for complete options, worked out when the plan is."""
    return tuple(label for label, _op in _plan(opts, declared))
