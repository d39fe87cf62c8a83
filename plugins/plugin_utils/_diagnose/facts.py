# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The normalised facts diagnose's checks read (``build_facts``), made of the results of the read plan.

Pure functions, no I/O. ``build_facts(results, options)`` pairs each result with the label of the
read it answers (``reads.read_labels``, kept with the plan) and returns a JSON-able dict. A read
that failed is recorded in ``facts["read_errors"][<read>]`` as ``"<kind>: <message>"`` and its
fact is left ``None``, so the evaluators can report the check as unknown instead of healthy.

Among the facts, the keys the models declare (``reads.DECLARED``) and who they are read for:

- ``facts["policy_keys"]``: ``{key as declared: node}``;
- ``facts["users"]``: one entry per interactive session's user and, with option
  ``include_offline_profiles``, one per other person's profile (``session`` null), each
  ``{sid, user, session, source: session|offline_profile, hive: loaded|mounted|unavailable,
  error, keys: {relative key as declared: node}}``;
- ``facts["gpo"]``: ``{available, error, settings: [{scope, sid, key, name, gpo}]}``, the
  registry-based Group Policy values in effect under the declared keys;
- ``facts["process_owners_error"]``: why the owners of the processes could not be read
  (``process_list``'s ``user_error``), or None. The runner finds the sessions from those owners,
  so while it is set an empty ``facts["sessions"]`` does not mean that nobody is logged on
  (``sessions_unknown``);

where a node is ``{exists, values: {name: {type, data}}, subkeys: {name: node or null},
error: null or the error kind}`` at every level. ``DiagnoseFacts`` and the ``TypedDict``s under it
give the top-level shape (types only).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re
import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import Node
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import options_with_defaults
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import (
    BROWSER_EXES,
    PRODUCT_KINDS,
    PRS_PATH,
    SMARTCARD_SERVICE,
    product_generation,
    product_kind,
    service_binary,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import (
    ACTIVE_COMPUTER_NAME,
    CALAIS_READERS,
    DECLARED,
    NDP_V4_FULL,
    PENDING_COMPUTER_NAME,
    REBOOT_KEYS,
    UNINSTALL_32,
    UNINSTALL_64,
    DeclaredReads,
    read_labels,
    reported,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import USER_SID_PATTERN

# ---------------------------------------------------------------------------------------------
# The shape of the facts (types only: the facts are plain JSON-able dicts)

#: One process of ``facts["processes"]``: an element of ``process_list``'s reply (pid, name, image, ...).
Process = dict[str, t.Any]


class ProductEntry(t.TypedDict):
    """An NHS CM product's Uninstall entry (``facts["products"][<kind>][i]``)."""

    kind: str
    name: str | None
    version: str | None
    publisher: str | None
    install_location: str | None
    display_icon: str | None
    system_component: bool
    key: str
    view: str
    values: dict[str, t.Any]


class ProductFacts(t.TypedDict):
    """``facts["product"]``: which set-up the host has (``product.product_generation``)."""

    generation: str | None
    name: str | None
    version: str | None
    reason: str | None


class DotNetFacts(t.TypedDict):
    path: str
    exists: bool
    release: int | None
    release_type: str | None
    version: str | None


class ServiceFacts(t.TypedDict):
    """``facts["services"]``: the services found by name, as ``service_query`` lists them."""

    port_service: dict[str, t.Any] | None
    smartcard: dict[str, t.Any] | None


class ProbeFacts(t.TypedDict):
    port: int
    url: str
    ran: bool
    answered: bool
    status: int | None
    body: str | None
    error: str | None


class RebootFacts(t.TypedDict):
    pending: bool
    indicators: list[dict[str, t.Any]]
    unreadable: list[str]


class OsFacts(t.TypedDict):
    product: str | None
    version: str | None
    build: int | None
    computer_name: str | None
    emulated: bool


class ReaderFacts(t.TypedDict):
    path: str
    exists: bool
    readers: list[str]


class FileFacts(t.TypedDict):
    """One of ``facts["ia_files"]``; ``facts["browser_files"]`` add ``browser``."""

    path: str | None
    exists: bool
    version: str | None


class UserFacts(t.TypedDict):
    """One of ``facts["users"]``: a session's user or, with ``include_offline_profiles``, a profile."""

    sid: str | None
    user: str | None
    session: int | None
    source: str
    hive: str
    error: str | None
    keys: dict[str, Node]


class GpoFacts(t.TypedDict):
    available: bool
    error: str | None
    settings: list[dict[str, t.Any]]


class DiagnoseFacts(t.TypedDict):
    """What ``build_facts`` returns. A fact is None when its read failed (``read_errors`` says why)."""

    products: dict[str, list[ProductEntry]]
    product: ProductFacts
    uninstall_keys: list[dict[str, t.Any]]
    dotnet: DotNetFacts | None
    services: ServiceFacts | None
    listeners: list[dict[str, t.Any]] | None
    prs_probes: list[ProbeFacts]
    processes: list[Process] | None
    process_owners_error: str | None
    sessions: list[dict[str, t.Any]] | None
    reboot: RebootFacts
    os: OsFacts | None
    smartcard_readers: ReaderFacts | None
    ia_files: list[FileFacts] | None
    browser_files: list[dict[str, t.Any]] | None
    policy_keys: dict[str, Node]
    users: list[UserFacts]
    gpo: GpoFacts
    browser_site_settings: list[dict[str, t.Any]] | None
    ers_report: dict[str, t.Any] | None
    read_errors: dict[str, str]


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


def _product_entry(key: str, subkey: str, node: dict[str, t.Any], view: str) -> ProductEntry | None:
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


def uninstall_entries(key: str, result: dict[str, t.Any], view: str) -> list[ProductEntry]:
    """NHS CM product entries below one Uninstall key (a reg_read result with depth >= 1)."""
    entries = []
    for subkey, node in sorted((result.get("subkeys") or {}).items()):
        if isinstance(node, dict):
            entry = _product_entry(key, subkey, node, view)
            if entry is not None:
                entries.append(entry)
    return entries


def _products(reads: dict[str, dict[str, t.Any]], errors: dict[str, str]) -> dict[str, list[ProductEntry]]:
    products: dict[str, list[ProductEntry]] = {kind: [] for kind in PRODUCT_KINDS}
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


def _dotnet(result: dict[str, t.Any]) -> DotNetFacts:
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


def _reboot(reads: dict[str, dict[str, t.Any]], errors: dict[str, str]) -> RebootFacts:
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


def _os(result: dict[str, t.Any]) -> OsFacts:
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


def _probes(reads: dict[str, dict[str, t.Any]], errors: dict[str, str], ports: list[int]) -> list[ProbeFacts]:
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


def build_facts(results: list[dict[str, t.Any]], options: dict[str, t.Any] | None = None,
                declared: DeclaredReads = DECLARED) -> DiagnoseFacts:
    """Normalised facts from the results of ``reads.plan_reads(options, declared)`` (same order)."""
    opts = options_with_defaults(options)
    labels = read_labels(opts, declared)
    if len(results) != len(labels):
        raise ValueError(f"{len(results)} results for {len(labels)} planned reads")
    reads = dict(zip(labels, results, strict=True))
    errors = {label: _error_text(result) for label, result in reads.items() if not result.get("ok")}

    services = None if "services" in errors else list(reads["services"].get("services") or [])
    port_service = _service(services or [], display_name=opts["port_service_display_name"])
    if port_service is not None:
        port_service["binary"] = service_binary(port_service.get("image"))
    listeners = None if "listeners" in errors else list(reads["listeners"].get("listeners") or [])
    products = _products(reads, errors)
    sessions = None if "sessions" in errors else list(reads["sessions"].get("sessions") or [])
    report = reported(opts)
    return {
        "products": products,
        "product": product_generation(products, [f"{key}: {errors[label]}" for label, key in
                                                 (("uninstall_64", UNINSTALL_64), ("uninstall_32", UNINSTALL_32))
                                                 if label in errors]),
        "uninstall_keys": _uninstall_summary(reads, errors),
        "dotnet": None if "dotnet" in errors else _dotnet(reads["dotnet"]),
        "services": None if services is None else {
            "port_service": port_service,
            "smartcard": _service(services, name=SMARTCARD_SERVICE),
        },
        "listeners": listeners,
        "prs_probes": _probes(reads, errors, list(opts["prs_ports"])),
        "processes": None if "processes" in errors else list(reads["processes"].get("processes") or []),
        "process_owners_error": None if "processes" in errors else _str_or_none(reads["processes"].get("user_error")),
        "sessions": sessions,
        "reboot": _reboot(reads, errors),
        "os": None if "os" in errors else _os(reads["os"]),
        "smartcard_readers": None if "smartcard_readers" in errors else _readers(reads["smartcard_readers"]),
        "ia_files": _ia_files(reads, errors),
        "browser_files": _browser_files(reads, errors),
        "policy_keys": {label.split(":", 1)[1]: registry_node(reads[label])
                        for label in reads if label.startswith("policy:")},
        "users": _users(sessions, reads["user_hives"], errors.get("user_hives"),
                        bool(opts["include_offline_profiles"])),
        "gpo": _gpo(reads["gpo"], errors.get("gpo")),
        "browser_site_settings": None if "browser_site_settings" in errors else [
            item for item in reads["browser_site_settings"].get("files") or [] if isinstance(item, dict)],
        "ers_report": report.as_dict() if report is not None else None,
        "read_errors": errors,
    }


# ---------------------------------------------------------------------------------------------
# Identity Agent files, browser files, smart card readers

def _readers(result: dict[str, t.Any]) -> ReaderFacts:
    return {"path": CALAIS_READERS, "exists": bool(result.get("exists")),
            "readers": sorted(result.get("subkeys") or {}, key=str.casefold)}


def _ia_files(reads: dict[str, dict[str, t.Any]], errors: dict[str, str]) -> list[FileFacts] | None:
    if "ia_files" not in reads:
        return []
    if "ia_files" in errors:
        return None
    return [{"path": item.get("path"), "exists": bool(item.get("exists")), "version": item.get("version")}
            for item in reads["ia_files"].get("files") or []]


def _browser_files(reads: dict[str, dict[str, t.Any]], errors: dict[str, str]) -> list[dict[str, t.Any]] | None:
    """``[{browser, path, exists, version}]`` of ``BROWSER_EXES``; None when the read failed."""
    if "browser_files" in errors:
        return None
    browser_of = {path.casefold(): browser for browser, paths in BROWSER_EXES.items() for path in paths}
    return [{"browser": browser_of.get(str(item.get("path")).casefold()), "path": item.get("path"),
             "exists": bool(item.get("exists")), "version": item.get("version")}
            for item in reads["browser_files"].get("files") or []]


# ---------------------------------------------------------------------------------------------
# Registry nodes, users, Group Policy

def registry_subnode(node: t.Any) -> dict[str, t.Any] | None:
    """A subkey of a reg_read reply (``{values, subkeys[, error]}`` or null) as a full node."""
    if not isinstance(node, dict):
        return None
    return {"exists": True, "values": dict(node.get("values") or {}),
            "subkeys": {name: registry_subnode(child) for name, child in (node.get("subkeys") or {}).items()},
            "error": node.get("error")}


def registry_node(result: dict[str, t.Any], with_message: bool = False) -> dict[str, t.Any]:
    """A reg_read result, or a key of user_hives_read, as ``{exists, values, subkeys, error}``; a
    failed read's error is its kind (``kind: message`` with ``with_message``)."""
    if result.get("ok") is False:
        error = result.get("error") or "failed"
        if with_message:
            error = f"{error}: {result.get('message') or ''}".rstrip(": ")
        return {"exists": False, "values": {}, "subkeys": {}, "error": error}
    return {"exists": bool(result.get("exists")), "values": dict(result.get("values") or {}),
            "subkeys": {name: registry_subnode(child) for name, child in (result.get("subkeys") or {}).items()},
            "error": result.get("error")}


def _hive(profile: dict[str, t.Any] | None, sid: str | None, hives_error: str | None) -> dict[str, t.Any]:
    """hive, error and keys of one user from its user_hives_read profile."""
    if hives_error is not None:
        return {"hive": "unavailable", "error": hives_error, "keys": {}}
    if sid is None:
        return {"hive": "unavailable", "error": "the SID of the session's user could not be resolved", "keys": {}}
    if profile is None:
        return {"hive": "unavailable", "error": f"HKU\\{sid} is not loaded and the profile is not in ProfileList",
                "keys": {}}
    keys = {path: registry_node(node) for path, node in (profile.get("keys") or {}).items()}
    if profile.get("loaded"):
        return {"hive": "loaded", "error": profile.get("error"), "keys": keys}
    if profile.get("mounted_as") and keys:
        return {"hive": "mounted", "error": profile.get("error"), "keys": keys}
    error = profile.get("error") or "the hive is not loaded and no key of it was asked for"
    return {"hive": "unavailable", "error": error, "keys": {}}


def _users(sessions: list[dict[str, t.Any]] | None, result: dict[str, t.Any], hives_error: str | None,
           include_offline: bool) -> list[dict[str, t.Any]]:
    """One entry per interactive session's user; with ``include_offline``, one per other
    person's profile."""
    profiles = [] if hives_error is not None else list(result.get("profiles") or [])
    by_sid = {str(profile.get("sid")).upper(): profile for profile in profiles}
    users = []
    for session in sorted(sessions or [], key=lambda item: item.get("id") or 0):
        sid = session.get("sid")
        entry = {"sid": sid, "user": session.get("user"), "session": session.get("id"), "source": "session"}
        entry.update(_hive(by_sid.get(str(sid).upper()) if sid else None, sid, hives_error))
        users.append(entry)
    if include_offline:
        in_sessions = {str(session.get("sid")).upper() for session in sessions or [] if session.get("sid")}
        for profile in profiles:
            sid = str(profile.get("sid"))
            if sid.upper() in in_sessions or not re.fullmatch(USER_SID_PATTERN, sid, re.IGNORECASE):
                continue
            entry = {"sid": sid, "user": profile.get("user"), "session": None, "source": "offline_profile"}
            entry.update(_hive(profile, sid, None))
            users.append(entry)
    return users


def _gpo(result: dict[str, t.Any], error: str | None) -> GpoFacts:
    if error is not None:
        return {"available": False, "error": error, "settings": []}
    settings = [{"scope": item.get("scope"), "sid": item.get("sid"), "key": item.get("key"),
                 "name": item.get("name"), "gpo": item.get("gpo")} for item in result.get("settings") or []]
    problems = [str(item) for item in result.get("errors") or []]
    return {"available": True, "error": "; ".join(problems) or None, "settings": settings}


# ---------------------------------------------------------------------------------------------
# Helpers for the evaluators

def sessions_unknown(facts: dict[str, t.Any]) -> str | None:
    """Why the list of sessions may be incomplete (the processes' owners, from which the runner
    finds the sessions, could not be read), or None when it can be trusted."""
    error = facts.get("process_owners_error")
    if not error:
        return None
    return f"the owners of the processes could not be read ({error}), so who is logged on is not known"
