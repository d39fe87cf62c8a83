# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What diagnose reads (``plan_reads``) and the normalised facts made of it (``build_facts``).

Pure functions, no I/O. ``plan_reads(options)`` returns the operations of ONE runner call;
``build_facts(results, options)`` pairs each result with the read it answers and returns a
JSON-able dict. A read that failed is recorded in ``facts["read_errors"][<read>]`` as
``"<kind>: <message>"`` and its fact is left ``None``, so the evaluators can report the check
as unknown instead of healthy.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import ntpath
import re
import typing as t

UNINSTALL_64 = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
UNINSTALL_32 = "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
NDP_V4_FULL = "HKLM\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"
UNINSTALL_VALUE_NAMES = ["DisplayName", "DisplayVersion", "Publisher", "InstallLocation", "DisplayIcon",
                         "UninstallString", "InstallDate", "SystemComponent"]

PRS_PORTS = [43487, 44213, 45031, 46478, 48853]
PRS_PATH = "/PRS/GetPortNumber"
SMARTCARD_SERVICE = "SCardSvr"

DEFAULT_OPTIONS: dict[str, t.Any] = {
    "cm_required": True,
    "cm_process_names": [],
    "port_service_display_name": "NHS Port Service",
    "prs_ports": list(PRS_PORTS),
    "probe_timeout_ms": 1000,
}

#: Uninstall DisplayName prefixes (case-insensitive) -> product kind.
PRODUCT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("NHS Credential Management", "cm"),
    ("NHS Identity Hub", "identity_hub"),
    ("NHS Identity Agent", "identity_agent"),
    ("NHS Digital Identity Agent", "identity_agent"),
    ("HSCIC Identity Agent", "identity_agent"),
    ("NHS Port Service", "port_service"),
)
PRODUCT_KINDS = ("cm", "identity_hub", "identity_agent", "port_service")

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


def options_with_defaults(options: dict[str, t.Any] | None) -> dict[str, t.Any]:
    merged = dict(DEFAULT_OPTIONS)
    merged.update({key: value for key, value in (options or {}).items() if value is not None})
    return merged


def _reg(key: str, names: list[str] | None = None, depth: int = 0) -> dict[str, t.Any]:
    op: dict[str, t.Any] = {"op": "reg_read", "key": key}
    if depth:
        op["depth"] = depth
    if names is not None:
        op["names"] = names
    return op


def planned_reads(options: dict[str, t.Any] | None = None) -> list[tuple[str, dict[str, t.Any]]]:
    """(label, op) for every read of diagnose, in request order."""
    opts = options_with_defaults(options)
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
    reads.append(("listeners", {"op": "tcp_listeners", "ports": list(opts["prs_ports"])}))
    for port in opts["prs_ports"]:
        reads.append((f"prs_probe_{port}", {"op": "http_get", "url": f"http://localhost:{port}{PRS_PATH}",
                                            "timeout_ms": opts["probe_timeout_ms"]}))
    reads.append(("processes", {"op": "process_list"}))
    reads.append(("sessions", {"op": "session_list"}))
    reads.append(("os", {"op": "os_info"}))
    return reads


def plan_reads(options: dict[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    """The operations diagnose sends, in ONE runner call."""
    return [op for _label, op in planned_reads(options)]


# ---------------------------------------------------------------------------------------------
# Normalising

def _error_text(result: dict[str, t.Any]) -> str:
    return f"{result.get('error', 'failed')}: {result.get('message') or 'no message'}"


def _data(values: dict[str, t.Any], name: str) -> t.Any:
    value = values.get(name)
    return value.get("data") if isinstance(value, dict) else None


def _str_or_none(value: t.Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def product_kind(display_name: str | None) -> str | None:
    """The product kind of an Uninstall DisplayName, or None when it is not an NHS CM product."""
    if not display_name:
        return None
    folded = display_name.strip().casefold()
    for prefix, kind in PRODUCT_PREFIXES:
        if folded.startswith(prefix.casefold()):
            return kind
    return None


def _product_entry(key: str, subkey: str, node: dict[str, t.Any], view: str) -> dict[str, t.Any] | None:
    values = node.get("values") or {}
    name = _str_or_none(_data(values, "DisplayName"))
    kind = product_kind(name)
    if kind is None:
        return None
    system_component = _data(values, "SystemComponent")
    return {
        "kind": kind,
        "name": name,
        "version": _str_or_none(_data(values, "DisplayVersion")),
        "publisher": _str_or_none(_data(values, "Publisher")),
        "install_location": _str_or_none(_data(values, "InstallLocation")),
        "display_icon": _str_or_none(_data(values, "DisplayIcon")),
        "system_component": system_component == 1,
        "key": f"{key}\\{subkey}",
        "view": view,
        "values": values,
    }


def uninstall_entries(key: str, result: dict[str, t.Any], view: str) -> list[dict[str, t.Any]]:
    """NHS CM product entries below one Uninstall key (a reg_read result with depth >= 1)."""
    entries = []
    for subkey, node in sorted((result.get("subkeys") or {}).items()):
        if isinstance(node, dict):
            entry = _product_entry(key, subkey, node, view)
            if entry is not None:
                entries.append(entry)
    return entries


def _products(reads: dict[str, dict[str, t.Any]], errors: dict[str, str]) -> dict[str, list[dict[str, t.Any]]]:
    products: dict[str, list[dict[str, t.Any]]] = {kind: [] for kind in PRODUCT_KINDS}
    for label, key, view in (("uninstall_64", UNINSTALL_64, "64"), ("uninstall_32", UNINSTALL_32, "32")):
        result = reads[label]
        if label in errors:
            continue
        for entry in uninstall_entries(key, result, view):
            products[entry["kind"]].append(entry)
    return products


def _uninstall_summary(reads: dict[str, dict[str, t.Any]], errors: dict[str, str]) -> list[dict[str, t.Any]]:
    summary = []
    for label, key in (("uninstall_64", UNINSTALL_64), ("uninstall_32", UNINSTALL_32)):
        result = reads[label]
        if label in errors:
            summary.append({"path": key, "error": errors[label]})
        else:
            summary.append({"path": key, "exists": bool(result.get("exists")),
                            "subkeys": len(result.get("subkeys") or {})})
    return summary


def _dotnet(result: dict[str, t.Any]) -> dict[str, t.Any]:
    values = result.get("values") or {}
    release = values.get("Release")
    return {
        "path": NDP_V4_FULL,
        "exists": bool(result.get("exists")),
        "release": release.get("data") if isinstance(release, dict) and isinstance(release.get("data"), int) else None,
        "release_type": release.get("type") if isinstance(release, dict) else None,
        "version": _str_or_none(_data(values, "Version")),
    }


def _service(services: list[dict[str, t.Any]], *, name: str | None = None,
             display_name: str | None = None) -> dict[str, t.Any] | None:
    for service in services:
        if name is not None and str(service.get("name", "")).casefold() == name.casefold():
            return dict(service)
        if display_name is not None and str(service.get("display_name", "")).casefold() == display_name.casefold():
            return dict(service)
    return None


def service_binary(image: str | None) -> str | None:
    """The executable of a service command line (``"C:\\x y\\a.exe" -k`` -> ``C:\\x y\\a.exe``)."""
    if not image:
        return None
    text = image.strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        return text[1:end] if end > 0 else text[1:]
    match = re.match(r"(?i)^(.*?\.exe)(?:\s|$)", text)
    return match.group(1) if match else text.split(" ")[0]


def _reboot(reads: dict[str, dict[str, t.Any]], errors: dict[str, str]) -> dict[str, t.Any]:
    indicators: list[dict[str, t.Any]] = []
    unreadable: list[str] = []
    for label, key, name in REBOOT_KEYS:
        if label in errors:
            unreadable.append(f"{key}: {errors[label]}")
            continue
        result = reads[label]
        indicator = _reboot_indicator(key, name, result)
        if indicator is not None:
            indicators.append(indicator)
    names = {}
    for label, key in (("reboot_name_active", ACTIVE_COMPUTER_NAME), ("reboot_name_pending", PENDING_COMPUTER_NAME)):
        if label in errors:
            unreadable.append(f"{key}: {errors[label]}")
        else:
            names[key] = _data(reads[label].get("values") or {}, "ComputerName")
    active, pending = names.get(ACTIVE_COMPUTER_NAME), names.get(PENDING_COMPUTER_NAME)
    if active and pending and str(active).casefold() != str(pending).casefold():
        indicators.append({"path": PENDING_COMPUTER_NAME, "name": "ComputerName", "type": "REG_SZ",
                           "data": pending, "reason": f"computer rename pending (active name {active})"})
    return {"pending": bool(indicators), "indicators": indicators, "unreadable": unreadable}


def _reboot_indicator(key: str, name: str | None, result: dict[str, t.Any]) -> dict[str, t.Any] | None:
    if not result.get("exists"):
        return None
    if name is None:
        return {"path": key, "exists": True, "reason": "key exists"}
    value = (result.get("values") or {}).get(name)
    if not isinstance(value, dict):
        return None
    data = value.get("data")
    if name == "UpdateExeVolatile" and data in (0, None):
        return None
    if name == "PendingFileRenameOperations" and not data:
        return None
    return {"path": key, "name": name, "type": value.get("type"), "data": data, "reason": "value set"}


def _os(result: dict[str, t.Any]) -> dict[str, t.Any]:
    version = str(result.get("version") or "")
    parts = version.split(".")
    build = int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else None
    return {
        "product": result.get("product"),
        "version": version or None,
        "build": build,
        "computer_name": result.get("computer_name"),
        "emulated": bool(result.get("emulated")),
    }


def _probes(reads: dict[str, dict[str, t.Any]], errors: dict[str, str], ports: list[int]) -> list[dict[str, t.Any]]:
    probes = []
    for port in ports:
        label = f"prs_probe_{port}"
        url = f"http://localhost:{port}{PRS_PATH}"
        if label in errors:
            probes.append({"port": port, "url": url, "ran": False, "answered": False, "status": None,
                           "body": None, "error": errors[label]})
            continue
        result = reads[label]
        status = result.get("status")
        probes.append({"port": port, "url": url, "ran": True, "answered": status is not None, "status": status,
                       "body": result.get("body"), "error": result.get("error")})
    return probes


def build_facts(results: list[dict[str, t.Any]], options: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """Normalised facts from the results of ``plan_reads(options)`` (same order)."""
    opts = options_with_defaults(options)
    planned = planned_reads(opts)
    if len(results) != len(planned):
        raise ValueError(f"{len(results)} results for {len(planned)} planned reads")
    reads = {label: result for (label, _op), result in zip(planned, results, strict=True)}
    errors = {label: _error_text(result) for label, result in reads.items() if not result.get("ok")}

    services = None if "services" in errors else list(reads["services"].get("services") or [])
    port_service = _service(services or [], display_name=opts["port_service_display_name"])
    if port_service is not None:
        port_service["binary"] = service_binary(port_service.get("image"))
    listeners = None if "listeners" in errors else list(reads["listeners"].get("listeners") or [])
    return {
        "products": _products(reads, errors),
        "uninstall_keys": _uninstall_summary(reads, errors),
        "dotnet": None if "dotnet" in errors else _dotnet(reads["dotnet"]),
        "services": None if services is None else {
            "port_service": port_service,
            "smartcard": _service(services, name=SMARTCARD_SERVICE),
        },
        "listeners": listeners,
        "prs_probes": _probes(reads, errors, list(opts["prs_ports"])),
        "processes": None if "processes" in errors else list(reads["processes"].get("processes") or []),
        "sessions": None if "sessions" in errors else list(reads["sessions"].get("sessions") or []),
        "reboot": _reboot(reads, errors),
        "os": None if "os" in errors else _os(reads["os"]),
        "read_errors": errors,
    }


# ---------------------------------------------------------------------------------------------
# Helpers for the evaluators

def installed(facts: dict[str, t.Any], *kinds: str) -> list[dict[str, t.Any]]:
    """Product entries of the given kinds (all views), or [] when the Uninstall keys were unread."""
    products = facts.get("products") or {}
    return [entry for kind in kinds for entry in products.get(kind, [])]


def uninstall_errors(facts: dict[str, t.Any]) -> list[str]:
    return [f"{item['path']}: {item['error']}" for item in facts.get("uninstall_keys", []) if "error" in item]


def normalise_dir(path: str) -> str:
    """A Windows folder for prefix comparison: lower case, backslashes, one trailing backslash."""
    folded = ntpath.normpath(path.strip().strip('"').replace("/", "\\")).casefold()
    return folded.rstrip("\\") + "\\"


def icon_dir(display_icon: str | None) -> str | None:
    """The folder of an Uninstall DisplayIcon (``"C:\\x\\cm.exe",0`` -> ``C:\\x``)."""
    if not display_icon:
        return None
    path = display_icon.strip()
    path = re.sub(r",\s*-?\d+$", "", path).strip().strip('"')
    if not re.match(r"^(?:[A-Za-z]:\\|\\\\)", path) or "%" in path:
        return None
    folder = ntpath.dirname(path)
    return folder or None


def image_name(name: str | None) -> str:
    """A process or file name for comparison: lower case, without a trailing ``.exe``."""
    folded = ntpath.basename((name or "").strip()).casefold()
    return folded[:-4] if folded.endswith(".exe") else folded
