# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The checks of diagnose: one small pure function per finding id.

Each evaluator takes the facts of ``_facts.build_facts`` and the task options and returns an
``Outcome`` (findings and unknown checks). ``evaluate`` runs them all. A check whose input could
not be read goes to ``unknown`` as ``{check: <id>, reason: ...}``; it is never silently healthy.

Decisions (first slice, fault 1):
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

import ntpath
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    ID,
    ORDER,
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import (
    NDP_V4_FULL,
    icon_dir,
    image_name,
    installed,
    normalise_dir,
    options_with_defaults,
    sessions_unknown,
    uninstall_errors,
)

DOTNET48_RELEASE = 528040
DOTNET48_IN_OS_BUILD = 18362
CM_NAME_PATTERNS = "DisplayName 'NHS Credential Management*' or 'NHS Identity Hub*'"

Facts = dict[str, t.Any]
Options = dict[str, t.Any]


@dataclass
class Outcome:
    findings: list[dict[str, t.Any]] = field(default_factory=list)
    unknown: list[dict[str, t.Any]] = field(default_factory=list)


Evaluator = t.Callable[[Facts, Options], Outcome]

#: Evaluators keyed by finding id, in catalogue order of registration.
EVALUATORS: dict[str, Evaluator] = {}


def evaluator(check_id: str) -> t.Callable[[Evaluator], Evaluator]:
    def register(function: Evaluator) -> Evaluator:
        EVALUATORS[check_id] = function
        return function
    return register


def unknown(check_id: str, reason: str) -> Outcome:
    return Outcome(unknown=[{"check": check_id, "reason": reason}])


def found(finding: dict[str, t.Any]) -> Outcome:
    return Outcome(findings=[finding])


# ---------------------------------------------------------------------------------------------
# Shared helpers

def _cm_entries(facts: Facts, *kinds: str) -> tuple[list[dict[str, t.Any]], str | None]:
    """Installed entries of ``kinds`` and, when none was found and a view could not be read, why
    the answer is unknown."""
    entries = installed(facts, *kinds)
    errors = uninstall_errors(facts)
    if entries or not errors:
        return entries, None
    return [], "cannot tell whether NHS Credential Management is installed: " + "; ".join(errors)


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


def _service_evidence(service: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"service": service.get("name"), "display_name": service.get("display_name"),
            "state": service.get("state"), "start_mode": service.get("start_mode"),
            "image": service.get("image")}


def _service_finding(check_id: str, service: dict[str, t.Any], summary: str) -> Outcome:
    """A machine-wide finding of ``check_id`` about ``service``, with the service as evidence."""
    return found(make_finding(check_id, machine_scope(), [_service_evidence(service)], summary=summary))


def _port_service(facts: Facts, options: Options, check_id: str) -> tuple[dict[str, t.Any] | None, Outcome | None]:
    """(the Port Service, None) when the check applies; (None, outcome) when it does not or
    cannot be made."""
    entries, reason = _cm_entries(facts, "cm", "identity_hub")
    if not entries and not options["cm_required"]:
        return None, (unknown(check_id, reason) if reason else Outcome())
    services = facts.get("services")
    if services is None:
        return None, unknown(check_id, "cannot query services: " + facts["read_errors"].get("services", "not read"))
    if services.get("port_service") is None:
        return None, Outcome()
    return services["port_service"], None


# ---------------------------------------------------------------------------------------------
# Installation

@evaluator(ID.CM_NOT_INSTALLED)
def check_cm_not_installed(facts: Facts, options: Options) -> Outcome:
    if not options["cm_required"]:
        return Outcome()
    entries, reason = _cm_entries(facts, "cm", "identity_hub")
    if entries:
        return Outcome()
    if reason:
        return unknown(ID.CM_NOT_INSTALLED, reason)
    evidence = [dict(item, searched=CM_NAME_PATTERNS, matches=0) for item in facts["uninstall_keys"]]
    return found(make_finding(ID.CM_NOT_INSTALLED, machine_scope(), evidence))


@evaluator(ID.CM_LEGACY_IDENTITY_HUB)
def check_cm_legacy_identity_hub(facts: Facts, options: Options) -> Outcome:
    cm, reason = _cm_entries(facts, "cm")
    if cm:
        return Outcome()
    hubs = installed(facts, "identity_hub")
    if not hubs:
        return unknown(ID.CM_LEGACY_IDENTITY_HUB, reason) if reason else Outcome()
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
def check_cm_multiple_versions(facts: Facts, options: Options) -> Outcome:
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
    return Outcome()


@evaluator(ID.DOTNET48_MISSING)
def check_dotnet48_missing(facts: Facts, options: Options) -> Outcome:
    entries, reason = _cm_entries(facts, "cm", "identity_hub")
    if not entries and not options["cm_required"]:
        return unknown(ID.DOTNET48_MISSING, reason) if reason else Outcome()
    dotnet = facts.get("dotnet")
    if dotnet is None:
        reason = facts["read_errors"].get("dotnet", "not read")
        return unknown(ID.DOTNET48_MISSING, f"cannot read {NDP_V4_FULL}: {reason}")
    if dotnet["exists"]:
        release = dotnet["release"]
        if release is not None and release >= DOTNET48_RELEASE:
            return Outcome()
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
        return Outcome()
    evidence = [{"path": NDP_V4_FULL, "exists": False},
                {"os": os_facts.get("product"), "version": os_facts.get("version"), "build": os_facts["build"]}]
    summary = (f".NET Framework 4.8 is not installed ({NDP_V4_FULL} is absent and OS build "
               f"{os_facts['build']} predates Windows 10 1903)")
    return found(make_finding(ID.DOTNET48_MISSING, machine_scope(), evidence, summary=summary))


# ---------------------------------------------------------------------------------------------
# NHS Port Service

@evaluator(ID.PORT_SERVICE_MISSING)
def check_port_service_missing(facts: Facts, options: Options) -> Outcome:
    cm, reason = _cm_entries(facts, "cm")
    if not cm:
        return unknown(ID.PORT_SERVICE_MISSING, reason) if reason else Outcome()
    services = facts.get("services")
    if services is None:
        return unknown(ID.PORT_SERVICE_MISSING,
                       "cannot query services: " + facts["read_errors"].get("services", "not read"))
    if services.get("port_service") is not None:
        return Outcome()
    display_name = options["port_service_display_name"]
    evidence = [*_entry_evidence(cm), {"service_display_name": display_name, "found": False}]
    return found(make_finding(
        ID.PORT_SERVICE_MISSING, machine_scope(), evidence,
        summary=f"NHS Credential Management is installed but no service is named '{display_name}'",
    ))


def _port_service_field(facts: Facts, options: Options, check_id: str, name: str, wanted: str, fault: str) -> Outcome:
    """A finding of ``check_id`` when the Port Service's ``name`` field is not ``wanted``; ``fault``
    says what it is instead, with ``{}`` for the field's value."""
    service, outcome = _port_service(facts, options, check_id)
    if service is None:
        return outcome or Outcome()
    if service.get(name) == wanted:
        return Outcome()
    return _service_finding(check_id, service,
                            f"The NHS Port Service ({service.get('name')}) {fault.format(service.get(name))}")


@evaluator(ID.PORT_SERVICE_STOPPED)
def check_port_service_stopped(facts: Facts, options: Options) -> Outcome:
    return _port_service_field(facts, options, ID.PORT_SERVICE_STOPPED, "state", "running", "is {}, not running")


@evaluator(ID.PORT_SERVICE_NOT_AUTOMATIC)
def check_port_service_not_automatic(facts: Facts, options: Options) -> Outcome:
    return _port_service_field(facts, options, ID.PORT_SERVICE_NOT_AUTOMATIC, "start_mode", "auto",
                               "starts {}, not automatically")


@evaluator(ID.PORT_SERVICE_NOT_LISTENING)
def check_port_service_not_listening(facts: Facts, options: Options) -> Outcome:
    service, outcome = _port_service(facts, options, ID.PORT_SERVICE_NOT_LISTENING)
    if service is None:
        return outcome or Outcome()
    if service.get("state") != "running":
        return Outcome()
    ports = list(options["prs_ports"])
    listeners = facts.get("listeners")
    probes = facts.get("prs_probes") or []
    listening = [item for item in listeners or [] if item.get("port") in ports]
    if listening or any(probe["answered"] for probe in probes):
        return Outcome()
    if listeners is None and not (probes and all(probe["ran"] for probe in probes)):
        reason = facts["read_errors"].get("listeners", "not read")
        return unknown(ID.PORT_SERVICE_NOT_LISTENING, f"cannot list TCP listeners ({reason}) and not every probe ran")
    evidence: list[dict[str, t.Any]] = [_service_evidence(service)]
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

def _install_dirs(entries: list[dict[str, t.Any]]) -> list[str]:
    """CM install folders as recorded (InstallLocation, else the DisplayIcon's folder), each
    with one trailing backslash."""
    folders: list[str] = []
    for entry in entries:
        folder = entry.get("install_location") or icon_dir(entry.get("display_icon"))
        if folder:
            shown = folder.strip().strip('"').replace("/", "\\").rstrip("\\") + "\\"
            if normalise_dir(shown) not in [normalise_dir(known) for known in folders]:
                folders.append(shown)
    return folders


def _cm_matcher(facts: Facts, shown_folders: list[str], names: set[str]) -> t.Callable[[dict[str, t.Any]], bool]:
    folders = [normalise_dir(folder) for folder in shown_folders]
    port_service = (facts.get("services") or {}).get("port_service") or {}
    binary = port_service.get("binary")
    excluded_image = ntpath.normpath(binary).casefold() if binary else ""
    excluded_pid = port_service.get("pid") or None

    def is_cm(process: dict[str, t.Any]) -> bool:
        image = (process.get("image") or "").replace("/", "\\")
        if excluded_pid and process.get("pid") == excluded_pid:
            return False
        if image and ntpath.normpath(image).casefold() == excluded_image:
            return False
        if names and (image_name(process.get("name")) in names or (image and image_name(image) in names)):
            return True
        folded = ntpath.normpath(image).casefold() if image else ""
        return bool(folded) and any(folded.startswith(folder) for folder in folders)
    return is_cm


@evaluator(ID.CM_NOT_RUNNING)
def check_cm_not_running(facts: Facts, options: Options) -> Outcome:
    entries, reason = _cm_entries(facts, "cm", "identity_hub")
    if not entries:
        return unknown(ID.CM_NOT_RUNNING, reason) if reason else Outcome()
    sessions, processes = facts.get("sessions"), facts.get("processes")
    if sessions is None:
        return unknown(ID.CM_NOT_RUNNING, "cannot list sessions: " + facts["read_errors"].get("sessions", "not read"))
    owners_unknown = sessions_unknown(facts)
    if not sessions:
        return unknown(ID.CM_NOT_RUNNING, owners_unknown) if owners_unknown else Outcome()
    if processes is None:
        return unknown(ID.CM_NOT_RUNNING, "cannot list processes: " + facts["read_errors"].get("processes", "not read"))
    folders = _install_dirs(entries)
    names = {image_name(name) for name in options["cm_process_names"] if name}
    if not folders and not names:
        return unknown(ID.CM_NOT_RUNNING, "NHS Credential Management's folder is not recorded (InstallLocation "
                                          "and DisplayIcon are empty) and option cm_process_names is not set")
    is_cm = _cm_matcher(facts, folders, names)
    match = {"cm_install_folders": folders, "cm_process_names": sorted(names)}
    outcome = Outcome()
    for session in sessions:
        _check_session(session, processes, is_cm, match, outcome, bool(names))
    if owners_unknown:
        outcome.unknown.append({"check": ID.CM_NOT_RUNNING, "reason": f"{owners_unknown}: sessions other than "
                                f"{', '.join(str(s.get('id')) for s in sessions)} were not checked"})
    return outcome


def _check_session(session: dict[str, t.Any], processes: list[dict[str, t.Any]],
                   is_cm: t.Callable[[dict[str, t.Any]], bool], match: dict[str, t.Any],
                   outcome: Outcome, by_name: bool) -> None:
    mine = [process for process in processes if process.get("session") == session.get("id")]
    if any(is_cm(process) for process in mine):
        return
    label = f"session {session.get('id')} ({session.get('user')})"
    if mine and not by_name and all(not process.get("image") for process in mine):
        outcome.unknown.append({"check": ID.CM_NOT_RUNNING,
                                "reason": f"cannot read the process images of {label}"})
        return
    listed = [{"pid": p.get("pid"), "name": p.get("name"), "image": p.get("image")}
              for p in sorted(mine, key=lambda p: (str(p.get("name")).casefold(), p.get("pid") or 0))]
    evidence = [{"session": session.get("id"), "user": session.get("user"),
                 "processes": listed}, match]
    outcome.findings.append(make_finding(
        ID.CM_NOT_RUNNING, user_scope(session.get("user"), session.get("sid"), session.get("id")), evidence,
        summary=f"NHS Credential Management is not running in {label}",
        action=f"Start NHS Credential Management in {label}",
    ))


# ---------------------------------------------------------------------------------------------
# Reboot

@evaluator(ID.CM_REBOOT_PENDING)
def check_cm_reboot_pending(facts: Facts, options: Options) -> Outcome:
    entries, reason = _cm_entries(facts, "cm", "identity_hub")
    if not entries:
        return unknown(ID.CM_REBOOT_PENDING, reason) if reason else Outcome()
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
    return Outcome()


# ---------------------------------------------------------------------------------------------

def evaluate(facts: Facts, options: Options | None = None) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """Run every evaluator; return (findings in catalogue order, unknown checks)."""
    opts = options_with_defaults(options)
    findings: list[dict[str, t.Any]] = []
    unknowns: list[dict[str, t.Any]] = []
    for check_id, function in EVALUATORS.items():
        try:
            outcome = function(facts, opts)
        except Exception as exc:  # a bug must not turn into "healthy"
            unknowns.append({"check": check_id, "reason": f"the check failed: {type(exc).__name__}: {exc}"})
            continue
        findings.extend(outcome.findings)
        unknowns.extend(outcome.unknown)
    findings.sort(key=lambda finding: ORDER[finding["id"]])
    return findings, unknowns


# The checks of the other faults live in their own modules and register themselves here.
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import (  # noqa: E402  # pylint: disable=unused-import
    agent,  # noqa: F401
    browser,  # noqa: F401
    zones,  # noqa: F401
)
