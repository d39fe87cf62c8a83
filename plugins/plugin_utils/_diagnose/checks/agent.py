# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The checks of e-RS faults 2 and 3: the legacy NHS Identity Agent, the Smart Card service, the
smartcard readers, and the two findings only an e-RS report can raise.

Decisions:
- Every check here applies only where the Identity Agent is part of the set-up:
  ``facts["product"]["generation"]`` ``cm1`` (CM before 3.x) or ``identity_hub``. CM 3.x and
  later ship NHS Smartcard Connect and no Identity Agent, so those hosts never get these
  findings; a host whose generation cannot be told gets ``unknown``.
- The Identity Agent is installed when an Uninstall entry is named ``NHS Identity Agent*`` (or
  the older ``NHS Digital`` / ``HSCIC`` names), a file of option ``ia_paths`` exists, or a
  process of option ``ia_process_names`` runs.
- IA_VERSION_RETIRED compares the file version of ``IdentityAgent.exe`` (running processes and
  ``ia_paths``) with option ``ia_min_version``; the Uninstall DisplayVersion is used only when no
  executable's version could be read.
- IA_NOT_RUNNING is reported per session where CM runs and ``IdentityAgent.exe`` does not (a
  session without CM gets CM_NOT_RUNNING instead), and only when the Identity Agent is installed
  (otherwise IA_NOT_INSTALLED says it all).
- CM_NOT_CONNECTED (fault 2) and USER_NOT_LOGGED_IN (fault 3) cannot be seen from outside the
  user's session: they are raised only when option ``ers_report`` names that fault, for the
  sessions where CM and the Identity Agent run (fault 3: where the Identity Agent runs). When
  the report names a port and a process of one of those sessions listens on it, only that
  session is reported.
- NO_SMARTCARD_READER reads ``HKLM\\SOFTWARE\\Microsoft\\Cryptography\\Calais\\Readers``. Readers
  redirected into a Remote Desktop session are not listed there: set option
  ``smartcard_reader_required`` to false on such hosts.
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
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.cm import service_finding
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import Process, sessions_unknown
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import (
    LEGACY_GENERATIONS,
    PRODUCT_PREFIXES,
    SMARTCARD_SERVICE,
    cm_entries,
    cm_matcher,
    image_name,
    install_dirs,
    installed,
    parse_version,
    uninstall_errors,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import CALAIS_READERS

IA_NAMES = ", ".join(f"'{prefix}*'" for prefix, kind in PRODUCT_PREFIXES if kind == "identity_agent")


# ---------------------------------------------------------------------------------------------
# Shared helpers

def _legacy(facts: Facts, check_id: str) -> CheckResult | None:
    """None when the Identity Agent is part of the host's set-up; otherwise what to return
    (nothing, or unknown when the product cannot be told)."""
    product = facts.get("product") or {}
    generation = product.get("generation")
    if generation in LEGACY_GENERATIONS:
        return None
    if generation is None:
        return unknown(check_id, product.get("reason") or "cannot tell which NHS product is installed")
    return CheckResult()


def _product_evidence(facts: Facts) -> dict[str, t.Any]:
    product = facts.get("product") or {}
    return {"product": product.get("name"), "version": product.get("version"), "generation": product.get("generation")}


def _is_ia(options: Options) -> t.Callable[[Process], bool]:
    names = {image_name(name) for name in options["ia_process_names"] if name} - {""}

    def match(process: Process) -> bool:
        return image_name(process.get("name")) in names or image_name(process.get("image")) in names
    return match


def _ia_processes(facts: Facts, options: Options) -> list[Process]:
    is_ia = _is_ia(options)
    return [process for process in facts.get("processes") or [] if is_ia(process)]


def _ia_files(facts: Facts) -> list[dict[str, t.Any]]:
    return [item for item in facts.get("ia_files") or [] if item.get("exists")]


def _ia_installed(facts: Facts, options: Options) -> tuple[bool, str | None]:
    """(installed, why it cannot be told when nothing was found)."""
    if installed(facts, "identity_agent") or _ia_files(facts) or _ia_processes(facts, options):
        return True, None
    problems = uninstall_errors(facts)
    if facts.get("ia_files") is None:
        problems.append("files: " + facts["read_errors"].get("ia_files", "not read"))
    if facts.get("processes") is None:
        problems.append("processes: " + facts["read_errors"].get("processes", "not read"))
    if problems:
        return False, "cannot tell whether the NHS Identity Agent is installed: " + "; ".join(problems)
    return False, None


def _process_evidence(process: Process) -> dict[str, t.Any]:
    return {"pid": process.get("pid"), "name": process.get("name"), "image": process.get("image"),
            "session": process.get("session"), "version": process.get("version")}


def _label(session: dict[str, t.Any]) -> str:
    return f"session {session.get('id')} ({session.get('user')})"


def _session_scope(session: dict[str, t.Any]) -> dict[str, t.Any]:
    return user_scope(session.get("user"), session.get("sid"), session.get("id"))


SessionView = tuple[dict[str, t.Any], list[Process], list[Process]]


def _sessions_with_cm(facts: Facts, options: Options, check_id: str) -> tuple[list[SessionView], CheckResult | None]:
    """(session, its CM processes, its Identity Agent processes) for every interactive session,
    or a result when that cannot be read."""
    sessions, processes = facts.get("sessions"), facts.get("processes")
    if sessions is None:
        return [], unknown(check_id, "cannot list sessions: " + facts["read_errors"].get("sessions", "not read"))
    if not sessions:
        owners_unknown = sessions_unknown(facts)
        return [], unknown(check_id, owners_unknown) if owners_unknown else CheckResult()
    if processes is None:
        return [], unknown(check_id, "cannot list processes: " + facts["read_errors"].get("processes", "not read"))
    entries, _reason = cm_entries(facts, "cm", "identity_hub")
    folders = install_dirs(entries)
    names = {image_name(name) for name in options["cm_process_names"] if name}
    if not folders and not names:
        return [], unknown(check_id, "NHS Credential Management's folder is not recorded (InstallLocation and "
                                     "DisplayIcon are empty) and option cm_process_names is not set")
    is_cm, is_ia = cm_matcher(facts, folders, names), _is_ia(options)
    views = []
    for session in sorted(sessions, key=lambda item: item.get("id") or 0):
        mine = [process for process in processes if process.get("session") == session.get("id")]
        ia = [process for process in mine if is_ia(process)]
        cm = [process for process in mine if is_cm(process) and not is_ia(process)]
        views.append((session, cm, ia))
    return views, None


def _version_key(version: tuple[int, ...]) -> tuple[int, ...]:
    return (*version, 0, 0, 0, 0)[:4]


# ---------------------------------------------------------------------------------------------
# Fault 2: the Identity Agent

@evaluator(ID.IA_NOT_INSTALLED)
def check_ia_not_installed(facts: Facts, options: Options) -> CheckResult:
    gate = _legacy(facts, ID.IA_NOT_INSTALLED)
    if gate is not None:
        return gate
    present, reason = _ia_installed(facts, options)
    if present:
        return CheckResult()
    if reason:
        return unknown(ID.IA_NOT_INSTALLED, reason)
    product = facts["product"]
    evidence: list[dict[str, t.Any]] = [_product_evidence(facts)]
    evidence += [dict(item, searched=f"DisplayName {IA_NAMES}", matches=0) for item in facts["uninstall_keys"]]
    evidence += [{"path": item["path"], "exists": False} for item in facts.get("ia_files") or []]
    evidence.append({"processes": sorted(options["ia_process_names"]), "running": 0})
    return found(make_finding(
        ID.IA_NOT_INSTALLED, machine_scope(), evidence,
        summary=f"{product.get('name')} {product.get('version') or ''}".rstrip()
                + " works through the NHS Identity Agent, but no Identity Agent is installed",
    ))


def _ia_versions(facts: Facts, options: Options) -> list[tuple[dict[str, t.Any], str]]:
    """(evidence, version) of every Identity Agent found: executables, else Uninstall entries."""
    versions: list[tuple[dict[str, t.Any], str]] = []
    for process in _ia_processes(facts, options):
        if process.get("version"):
            versions.append((_process_evidence(process), str(process["version"])))
    for item in _ia_files(facts):
        if item.get("version"):
            versions.append(({"path": item["path"], "exists": True, "version": item["version"]}, str(item["version"])))
    if versions:
        return versions
    for entry in installed(facts, "identity_agent"):
        if entry.get("version"):
            evidence = {"path": entry["key"], "name": "DisplayVersion", "type": "REG_SZ", "data": entry["version"]}
            versions.append((evidence, str(entry["version"])))
    return versions


def _installed_gate(facts: Facts, options: Options, check_id: str) -> CheckResult | None:
    """None when ``check_id`` applies (the host's set-up has the Identity Agent and it is
    installed); otherwise what to return (nothing, or unknown when it cannot be told)."""
    gate = _legacy(facts, check_id)
    if gate is not None:
        return gate
    present, reason = _ia_installed(facts, options)
    if not present:
        return unknown(check_id, reason) if reason else CheckResult()
    return None


@evaluator(ID.IA_VERSION_RETIRED)
def check_ia_version_retired(facts: Facts, options: Options) -> CheckResult:
    gate = _installed_gate(facts, options, ID.IA_VERSION_RETIRED)
    if gate is not None:
        return gate
    minimum = parse_version(options["ia_min_version"])
    if minimum is None:
        return unknown(ID.IA_VERSION_RETIRED, f"option ia_min_version {options['ia_min_version']!r} is not a version")
    readable = [(evidence, version, parse_version(version)) for evidence, version in _ia_versions(facts, options)]
    readable = [(evidence, version, parsed) for evidence, version, parsed in readable if parsed is not None]
    if not readable:
        return unknown(ID.IA_VERSION_RETIRED, "the NHS Identity Agent is installed but its version cannot be read")
    retired = [(evidence, version) for evidence, version, parsed in readable
               if _version_key(parsed) < _version_key(minimum)]
    if not retired:
        return CheckResult()
    versions = ", ".join(sorted({version for _evidence, version in retired}))
    evidence = [item for item, _version in retired] + [{"minimum_version": options["ia_min_version"]}]
    return found(make_finding(
        ID.IA_VERSION_RETIRED, machine_scope(), evidence,
        summary=f"The NHS Identity Agent {versions} is older than {options['ia_min_version']}: retired and "
                "blocked by NHS",
    ))


@evaluator(ID.IA_NOT_RUNNING)
def check_ia_not_running(facts: Facts, options: Options) -> CheckResult:
    gate = _installed_gate(facts, options, ID.IA_NOT_RUNNING)
    if gate is not None:
        return gate
    views, result = _sessions_with_cm(facts, options, ID.IA_NOT_RUNNING)
    if result is not None:
        return result
    result = CheckResult()
    for session, cm, ia in views:
        if not cm or ia:
            continue
        evidence = [{"session": session.get("id"), "user": session.get("user"),
                     "cm_processes": [_process_evidence(p) for p in cm], "identity_agent_processes": []},
                    {"ia_process_names": sorted(options["ia_process_names"])}]
        result.findings.append(make_finding(
            ID.IA_NOT_RUNNING, _session_scope(session), evidence,
            summary=f"NHS Credential Management runs in {_label(session)} but the Identity Agent does not",
            action=f"Start the NHS Identity Agent in {_label(session)}",
        ))
    return result


# ---------------------------------------------------------------------------------------------
# Faults 2 and 3 as reported by e-RS

def _port_owner_session(facts: Facts, port: int | None) -> int | None:
    """The session of the process that listens on ``port``, if one does."""
    if port is None:
        return None
    pids = {item.get("pid") for item in facts.get("listeners") or [] if item.get("port") == port}
    sessions = {process.get("session") for process in facts.get("processes") or [] if process.get("pid") in pids}
    return sessions.pop() if len(sessions) == 1 else None


def _reported(facts: Facts, options: Options, fault: int, check_id: str,
              need_cm: bool) -> tuple[list[SessionView], dict[str, t.Any] | None, CheckResult | None]:
    """The sessions a report of ``fault`` is about: (views, the report, or the result to return)."""
    report = facts.get("ers_report")
    if not report or report.get("fault") != fault:
        return [], None, CheckResult()
    gate = _legacy(facts, check_id)
    if gate is not None:
        return [], None, gate
    views, result = _sessions_with_cm(facts, options, check_id)
    if result is not None:
        return [], None, result
    running = [view for view in views if view[2] and (view[1] or not need_cm)]
    owner = _port_owner_session(facts, report.get("port"))
    if owner is not None and any(view[0].get("id") == owner for view in views):
        running = [view for view in running if view[0].get("id") == owner]
    return running, report, None


def _report_evidence(facts: Facts, report: dict[str, t.Any], view: SessionView) -> list[dict[str, t.Any]]:
    session, cm, ia = view
    evidence: list[dict[str, t.Any]] = [
        {"ers_report": report.get("message"), "reported_port": report.get("port"),
         "reported_version": report.get("version")},
        {"session": session.get("id"), "user": session.get("user"),
         "cm_processes": [_process_evidence(p) for p in cm],
         "identity_agent_processes": [_process_evidence(p) for p in ia]},
    ]
    port = report.get("port")
    listeners = [item for item in facts.get("listeners") or [] if port is not None and item.get("port") == port]
    if listeners:
        evidence.append({"tcp_listeners": [port], "found": listeners})
    return evidence


def _per_reported_session(facts: Facts, options: Options, fault: int, check_id: str, need_cm: bool,
                          texts: t.Callable[[dict[str, t.Any]], tuple[str, str]]) -> CheckResult:
    """One finding of ``check_id`` per session a report of ``fault`` is about; ``texts`` gives a
    session's (summary, action)."""
    views, report, result = _reported(facts, options, fault, check_id, need_cm=need_cm)
    if result is not None or report is None:
        return result or CheckResult()
    result = CheckResult()
    for view in views:
        summary, action = texts(view[0])
        result.findings.append(make_finding(
            check_id, _session_scope(view[0]), _report_evidence(facts, report, view),
            port=report.get("port"), summary=summary, action=action,
        ))
    return result


@evaluator(ID.CM_NOT_CONNECTED)
def check_cm_not_connected(facts: Facts, options: Options) -> CheckResult:
    def texts(session: dict[str, t.Any]) -> tuple[str, str]:
        return (f"e-RS reports that NHS Credential Management is not connected, while it and the Identity "
                f"Agent both run in {_label(session)}",
                f"Restart the Identity Agent and NHS Credential Management in {_label(session)} once; if "
                "the fault persists, escalate to the National Service Desk")
    return _per_reported_session(facts, options, 2, ID.CM_NOT_CONNECTED, True, texts)


@evaluator(ID.USER_NOT_LOGGED_IN)
def check_user_not_logged_in(facts: Facts, options: Options) -> CheckResult:
    def texts(session: dict[str, t.Any]) -> tuple[str, str]:
        return (f"e-RS reports that NHS Credential Management cannot log in; the Identity Agent runs in "
                f"{_label(session)}, but whether the user is logged in to it cannot be read remotely",
                f"Ask {session.get('user')} to insert their smartcard and enter their passcode "
                f"(session {session.get('id')})")
    return _per_reported_session(facts, options, 3, ID.USER_NOT_LOGGED_IN, False, texts)


# ---------------------------------------------------------------------------------------------
# Fault 3: smart card service and readers

@evaluator(ID.SMARTCARD_SERVICE_STOPPED)
def check_smartcard_service_stopped(facts: Facts, options: Options) -> CheckResult:
    gate = _legacy(facts, ID.SMARTCARD_SERVICE_STOPPED)
    if gate is not None:
        return gate
    services = facts.get("services")
    if services is None:
        return unknown(ID.SMARTCARD_SERVICE_STOPPED,
                       "cannot query services: " + facts["read_errors"].get("services", "not read"))
    service = services.get("smartcard")
    if service is None:
        return found(make_finding(
            ID.SMARTCARD_SERVICE_STOPPED, machine_scope(), [{"service": SMARTCARD_SERVICE, "found": False}],
            summary=f"The Smart Card service ({SMARTCARD_SERVICE}) is not installed, so the Identity Agent cannot "
                    "read smartcards",
            action=f"Repair Windows' Smart Card service ({SMARTCARD_SERVICE}); it is part of Windows",
        ))
    if service.get("state") == "running":
        return CheckResult()
    return service_finding(ID.SMARTCARD_SERVICE_STOPPED, service,
                           f"The Smart Card service ({service.get('name')}) is {service.get('state')}, not running")


@evaluator(ID.NO_SMARTCARD_READER)
def check_no_smartcard_reader(facts: Facts, options: Options) -> CheckResult:
    gate = _legacy(facts, ID.NO_SMARTCARD_READER)
    if gate is not None:
        return gate
    if not options["smartcard_reader_required"]:
        return CheckResult()
    readers = facts.get("smartcard_readers")
    if readers is None:
        reason = facts["read_errors"].get("smartcard_readers", "not read")
        return unknown(ID.NO_SMARTCARD_READER, f"cannot read {CALAIS_READERS}: {reason}")
    if readers["readers"]:
        return CheckResult()
    return found(make_finding(
        ID.NO_SMARTCARD_READER, machine_scope(), [{"path": CALAIS_READERS, "exists": readers["exists"], "subkeys": []}],
        summary=f"No smartcard reader is registered with Windows ({CALAIS_READERS} lists none)",
    ))
