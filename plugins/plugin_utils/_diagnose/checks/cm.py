# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fault-1 checks of diagnose: CM installed and running, the NHS Port Service, .NET 4.8, reboot.

Decisions:
- CM is an Uninstall entry (64- and 32-bit views) whose DisplayName starts with
  ``NHS Credential Management``; Identity Hub one that starts with ``NHS Identity Hub``.
- CM processes are those whose image lies under a CM / Identity Hub entry's InstallLocation
  (or, when that is empty, the folder of its DisplayIcon), case-insensitively, excluding the
  NHS Port Service's own image; or whose file name is in option ``cm_process_names``.
- CM_MULTIPLE_VERSIONS counts distinct (name, version) pairs among entries shown in Add/Remove
  Programs (``SystemComponent`` not 1), because a setup bundle hides its MSI's entry, whose
  version may differ from the bundle's; hidden entries count only when no entry is shown.
- DOTNET48_MISSING: ``NDP\\v4\\Full`` ``Release`` below 528040. When the NDP key is absent,
  .NET 4.8 counts as present on Windows 10 1903 and later, Windows 11 and Server 2022 (OS
  build >= 18362, where it is part of the OS) and as missing on older builds.
- CM_NOT_RUNNING is reported per interactive session, only when CM or Identity Hub is
  installed; a host with nobody logged on gets none. When the processes' owners could not be
  read (``process_list`` ``user_error``), the sessions the runner found from them may be
  incomplete: the sessions listed are still checked, and the check is also unknown with that
  reason (never "nobody is logged on").
- CM_REBOOT_PENDING cannot tell when CM was installed: it is reported (info) whenever CM is
  installed and Windows reports a pending reboot.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    ID,
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.base import (
    CheckResult,
    Facts,
    Options,
    evaluator,
    found,
    unknown,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import sessions_unknown
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import (
    cm_entries,
    cm_matcher,
    image_name,
    install_dirs,
    installed,
    uninstall_errors,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import NDP_V4_FULL

DOTNET48_RELEASE = 528040
DOTNET48_IN_OS_BUILD = 18362
CM_NAME_PATTERNS = "DisplayName 'NHS Credential Management*' or 'NHS Identity Hub*'"


# ---------------------------------------------------------------------------------------------
# Evidence and the Port Service

def _value_evidence(entry: dict[str, t.Any], name: str) -> dict[str, t.Any]:
    value = (entry.get("values") or {}).get(name)
    if not isinstance(value, dict):
        return {"path": entry["key"], "name": name, "exists": False}
    return {"path": entry["key"], "name": name, "type": value.get("type"), "data": value.get("data")}


def _entry_evidence(entries: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    evidence = []
    for entry in entries:
        evidence.append(_value_evidence(entry, "DisplayName"))
        evidence.append(_value_evidence(entry, "DisplayVersion"))
    return evidence


def service_evidence(service: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"service": service.get("name"), "display_name": service.get("display_name"),
            "state": service.get("state"), "start_mode": service.get("start_mode"),
            "image": service.get("image")}


def service_finding(check_id: str, service: dict[str, t.Any], summary: str) -> CheckResult:
    """A machine-wide finding of ``check_id`` about ``service``, with the service as evidence."""
    return found(make_finding(check_id, machine_scope(), [service_evidence(service)], summary=summary))


def _port_service(facts: Facts, options: Options, check_id: str) -> tuple[dict[str, t.Any] | None, CheckResult | None]:
    """(the Port Service, None) when the check applies; (None, result) when it does not or
    cannot be made."""
    entries, reason = cm_entries(facts, "cm", "identity_hub")
    if not entries and not options["cm_required"]:
        return None, (unknown(check_id, reason) if reason else CheckResult())
    services = facts.get("services")
    if services is None:
        return None, unknown(check_id, "cannot query services: " + facts["read_errors"].get("services", "not read"))
    if services.get("port_service") is None:
        return None, CheckResult()
    return services["port_service"], None


# ---------------------------------------------------------------------------------------------
# Installation

@evaluator(ID.CM_NOT_INSTALLED)
def check_cm_not_installed(facts: Facts, options: Options) -> CheckResult:
    if not options["cm_required"]:
        return CheckResult()
    entries, reason = cm_entries(facts, "cm", "identity_hub")
    if entries:
        return CheckResult()
    if reason:
        return unknown(ID.CM_NOT_INSTALLED, reason)
    evidence = [dict(item, searched=CM_NAME_PATTERNS, matches=0) for item in facts["uninstall_keys"]]
    return found(make_finding(ID.CM_NOT_INSTALLED, machine_scope(), evidence))


@evaluator(ID.CM_LEGACY_IDENTITY_HUB)
def check_cm_legacy_identity_hub(facts: Facts, options: Options) -> CheckResult:
    cm, reason = cm_entries(facts, "cm")
    if cm:
        return CheckResult()
    hubs = installed(facts, "identity_hub")
    if not hubs:
        return unknown(ID.CM_LEGACY_IDENTITY_HUB, reason) if reason else CheckResult()
    if reason:
        return unknown(ID.CM_LEGACY_IDENTITY_HUB, reason)
    versions = ", ".join(sorted({str(entry["version"]) for entry in hubs}))
    return found(make_finding(
        ID.CM_LEGACY_IDENTITY_HUB, machine_scope(), _entry_evidence(hubs),
        summary=f"Only the deprecated NHS Identity Hub ({versions}) is installed, not NHS Credential Management",
    ))


def _shown_entries(entries: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    shown = [entry for entry in entries if not entry["system_component"]]
    return shown or entries


@evaluator(ID.CM_MULTIPLE_VERSIONS)
def check_cm_multiple_versions(facts: Facts, options: Options) -> CheckResult:
    entries = _shown_entries(installed(facts, "cm", "identity_hub"))
    distinct = {(str(entry["name"]).casefold(), str(entry["version"] or "").casefold()) for entry in entries}
    if len(distinct) > 1:
        names = "; ".join(sorted({f"{entry['name']} {entry['version'] or '(no version)'}" for entry in entries}))
        return found(make_finding(
            ID.CM_MULTIPLE_VERSIONS, machine_scope(), _entry_evidence(entries),
            summary=f"{len(distinct)} NHS Credential Management / Identity Hub versions are installed: {names}",
        ))
    errors = uninstall_errors(facts)
    if errors:
        return unknown(ID.CM_MULTIPLE_VERSIONS, "cannot read every Uninstall key: " + "; ".join(errors))
    return CheckResult()


@evaluator(ID.DOTNET48_MISSING)
def check_dotnet48_missing(facts: Facts, options: Options) -> CheckResult:
    entries, reason = cm_entries(facts, "cm", "identity_hub")
    if not entries and not options["cm_required"]:
        return unknown(ID.DOTNET48_MISSING, reason) if reason else CheckResult()
    dotnet = facts.get("dotnet")
    if dotnet is None:
        reason = facts["read_errors"].get("dotnet", "not read")
        return unknown(ID.DOTNET48_MISSING, f"cannot read {NDP_V4_FULL}: {reason}")
    if dotnet["exists"]:
        release = dotnet["release"]
        if release is not None and release >= DOTNET48_RELEASE:
            return CheckResult()
        if release is None:
            evidence = [{"path": NDP_V4_FULL, "name": "Release", "exists": False}]
            summary = f".NET Framework 4.8 is not installed ({NDP_V4_FULL} has no REG_DWORD Release)"
        else:
            evidence = [{"path": NDP_V4_FULL, "name": "Release", "type": dotnet["release_type"], "data": release}]
            summary = f".NET Framework 4.8 is not installed (Release {release} < {DOTNET48_RELEASE})"
        return found(make_finding(ID.DOTNET48_MISSING, machine_scope(), evidence, summary=summary))
    os_facts = facts.get("os")
    if os_facts is None or os_facts.get("build") is None:
        return unknown(ID.DOTNET48_MISSING, f"{NDP_V4_FULL} is absent and the OS build is unknown")
    if os_facts["build"] >= DOTNET48_IN_OS_BUILD:
        return CheckResult()
    evidence = [{"path": NDP_V4_FULL, "exists": False},
                {"os": os_facts.get("product"), "version": os_facts.get("version"), "build": os_facts["build"]}]
    summary = (f".NET Framework 4.8 is not installed ({NDP_V4_FULL} is absent and OS build "
               f"{os_facts['build']} predates Windows 10 1903)")
    return found(make_finding(ID.DOTNET48_MISSING, machine_scope(), evidence, summary=summary))


# ---------------------------------------------------------------------------------------------
# NHS Port Service

@evaluator(ID.PORT_SERVICE_MISSING)
def check_port_service_missing(facts: Facts, options: Options) -> CheckResult:
    cm, reason = cm_entries(facts, "cm")
    if not cm:
        return unknown(ID.PORT_SERVICE_MISSING, reason) if reason else CheckResult()
    services = facts.get("services")
    if services is None:
        return unknown(ID.PORT_SERVICE_MISSING,
                       "cannot query services: " + facts["read_errors"].get("services", "not read"))
    if services.get("port_service") is not None:
        return CheckResult()
    display_name = options["port_service_display_name"]
    evidence = [*_entry_evidence(cm), {"service_display_name": display_name, "found": False}]
    return found(make_finding(
        ID.PORT_SERVICE_MISSING, machine_scope(), evidence,
        summary=f"NHS Credential Management is installed but no service is named '{display_name}'",
    ))


def _port_service_field(facts: Facts, options: Options, check_id: str, name: str, wanted: str,
                        fault: str) -> CheckResult:
    """A finding of ``check_id`` when the Port Service's ``name`` field is not ``wanted``; ``fault``
    says what it is instead, with ``{}`` for the field's value."""
    service, result = _port_service(facts, options, check_id)
    if service is None:
        return result or CheckResult()
    if service.get(name) == wanted:
        return CheckResult()
    return service_finding(check_id, service,
                           f"The NHS Port Service ({service.get('name')}) {fault.format(service.get(name))}")


@evaluator(ID.PORT_SERVICE_STOPPED)
def check_port_service_stopped(facts: Facts, options: Options) -> CheckResult:
    return _port_service_field(facts, options, ID.PORT_SERVICE_STOPPED, "state", "running", "is {}, not running")


@evaluator(ID.PORT_SERVICE_NOT_AUTOMATIC)
def check_port_service_not_automatic(facts: Facts, options: Options) -> CheckResult:
    return _port_service_field(facts, options, ID.PORT_SERVICE_NOT_AUTOMATIC, "start_mode", "auto",
                               "starts {}, not automatically")


@evaluator(ID.PORT_SERVICE_NOT_LISTENING)
def check_port_service_not_listening(facts: Facts, options: Options) -> CheckResult:
    service, result = _port_service(facts, options, ID.PORT_SERVICE_NOT_LISTENING)
    if service is None:
        return result or CheckResult()
    if service.get("state") != "running":
        return CheckResult()
    ports = list(options["prs_ports"])
    listeners = facts.get("listeners")
    probes = facts.get("prs_probes") or []
    listening = [item for item in listeners or [] if item.get("port") in ports]
    if listening or any(probe["answered"] for probe in probes):
        return CheckResult()
    if listeners is None and not (probes and all(probe["ran"] for probe in probes)):
        reason = facts["read_errors"].get("listeners", "not read")
        return unknown(ID.PORT_SERVICE_NOT_LISTENING, f"cannot list TCP listeners ({reason}) and not every probe ran")
    evidence: list[dict[str, t.Any]] = [service_evidence(service)]
    if listeners is None:
        evidence.append({"tcp_listeners": ports, "error": facts["read_errors"].get("listeners")})
    else:
        evidence.append({"tcp_listeners": ports, "found": []})
    evidence.extend({"url": probe["url"], "status": probe["status"], "error": probe["error"]} for probe in probes)
    return found(make_finding(
        ID.PORT_SERVICE_NOT_LISTENING, machine_scope(), evidence,
        summary=f"The NHS Port Service runs but nothing listens on {', '.join(map(str, ports))}",
    ))


# ---------------------------------------------------------------------------------------------
# CM in each interactive session

@evaluator(ID.CM_NOT_RUNNING)
def check_cm_not_running(facts: Facts, options: Options) -> CheckResult:
    entries, reason = cm_entries(facts, "cm", "identity_hub")
    if not entries:
        return unknown(ID.CM_NOT_RUNNING, reason) if reason else CheckResult()
    sessions, processes = facts.get("sessions"), facts.get("processes")
    if sessions is None:
        return unknown(ID.CM_NOT_RUNNING, "cannot list sessions: " + facts["read_errors"].get("sessions", "not read"))
    owners_unknown = sessions_unknown(facts)
    if not sessions:
        return unknown(ID.CM_NOT_RUNNING, owners_unknown) if owners_unknown else CheckResult()
    if processes is None:
        return unknown(ID.CM_NOT_RUNNING, "cannot list processes: " + facts["read_errors"].get("processes", "not read"))
    folders = install_dirs(entries)
    names = {image_name(name) for name in options["cm_process_names"] if name}
    if not folders and not names:
        return unknown(ID.CM_NOT_RUNNING, "NHS Credential Management's folder is not recorded (InstallLocation "
                                          "and DisplayIcon are empty) and option cm_process_names is not set")
    is_cm = cm_matcher(facts, folders, names)
    match = {"cm_install_folders": folders, "cm_process_names": sorted(names)}
    result = CheckResult()
    for session in sessions:
        _check_session(session, processes, is_cm, match, result, bool(names))
    if owners_unknown:
        result.unknown.append({"check": ID.CM_NOT_RUNNING, "reason": f"{owners_unknown}: sessions other than "
                               f"{', '.join(str(s.get('id')) for s in sessions)} were not checked"})
    return result


def _check_session(session: dict[str, t.Any], processes: list[dict[str, t.Any]],
                   is_cm: t.Callable[[dict[str, t.Any]], bool], match: dict[str, t.Any],
                   result: CheckResult, by_name: bool) -> None:
    mine = [process for process in processes if process.get("session") == session.get("id")]
    if any(is_cm(process) for process in mine):
        return
    label = f"session {session.get('id')} ({session.get('user')})"
    if mine and not by_name and all(not process.get("image") for process in mine):
        result.unknown.append({"check": ID.CM_NOT_RUNNING,
                               "reason": f"cannot read the process images of {label}"})
        return
    listed = [{"pid": p.get("pid"), "name": p.get("name"), "image": p.get("image")}
              for p in sorted(mine, key=lambda p: (str(p.get("name")).casefold(), p.get("pid") or 0))]
    evidence = [{"session": session.get("id"), "user": session.get("user"),
                 "processes": listed}, match]
    result.findings.append(make_finding(
        ID.CM_NOT_RUNNING, user_scope(session.get("user"), session.get("sid"), session.get("id")), evidence,
        summary=f"NHS Credential Management is not running in {label}",
        action=f"Start NHS Credential Management in {label}",
    ))


# ---------------------------------------------------------------------------------------------
# Reboot

@evaluator(ID.CM_REBOOT_PENDING)
def check_cm_reboot_pending(facts: Facts, options: Options) -> CheckResult:
    entries, reason = cm_entries(facts, "cm", "identity_hub")
    if not entries:
        return unknown(ID.CM_REBOOT_PENDING, reason) if reason else CheckResult()
    reboot = facts["reboot"]
    if reboot["pending"]:
        reasons = "; ".join(f"{item['path']}" + (f" {item['name']}" if item.get("name") else "")
                            for item in reboot["indicators"])
        return found(make_finding(
            ID.CM_REBOOT_PENDING, machine_scope(), list(reboot["indicators"]),
            summary=f"NHS Credential Management is installed and Windows reports a pending reboot ({reasons})",
        ))
    if reboot["unreadable"]:
        return unknown(ID.CM_REBOOT_PENDING, "cannot read: " + "; ".join(reboot["unreadable"]))
    return CheckResult()
