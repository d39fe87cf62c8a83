# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What ``nhs_cm.remediation.cm_service`` changes, decided from diagnose's facts and findings.

Pure functions, no I/O. ``extra_reads(facts, findings, options)`` names the one extra read call
planning may need (a listing of CM's install folder, a ``file_info`` of the Identity Agent's
install-data paths); ``plan_cm_service(facts, findings, options, listings, ia_infos)`` returns a
``CmPlan``: the changes for the write path (``_changes``), notes for people, the sessions where
nothing is started and why (``not_started``), and the reason when nothing may be changed. What
it does, by finding id (docs/remediation.md):

- PORT_SERVICE_STOPPED: start the NHS Port Service; PORT_SERVICE_NOT_AUTOMATIC: set its start
  mode to Automatic; PORT_SERVICE_NOT_LISTENING: restart it (one ``service_set``).
- SMARTCARD_SERVICE_STOPPED (CM 1.x / Identity Hub hosts only, as diagnose reports it): start
  the Smart Card service.
- CM_NOT_RUNNING: start CM in that session, as that user, with a one-off scheduled task
  (``task_run``, whose principal is the SID of the session's user: a session whose SID is not
  known is not started); on CM 1.x also the Identity Agent first when it does not run there.
  IA_NOT_RUNNING: start the Identity Agent in that session.
- CM_NOT_CONNECTED: stop the Identity Agent and CM in that session and start them again, once.
  Whether CM is connected cannot be read from outside the session: when diagnose still reports
  it afterwards, the escalation (National Service Desk) is returned instead of retrying.
- Nobody logged on: nothing to start; CM starts at the next logon. When the processes' owners
  could not be read, "nobody" cannot be told: nothing is started and the notes say why.

**What is started comes only from machine-wide install data or the options**, never from a
running process, HKCU or a user's profile: any user can run a program named
``IdentityAgent.exe`` from their Downloads folder, and taking its path would start it as
another user in that user's session. (The runner also refuses a program in a folder that
non-administrators can write, ``forbidden`` with the reason; that is reported per session.)

- CM's executable: option ``cm_executable`` (a full path, or a file name in CM's install
  folder); the Uninstall entry's ``DisplayIcon`` when that is an .exe; the single program in CM's
  ``InstallLocation`` that is not the NHS Port Service (``file_list``, an extra read made only
  when the others give no answer). When that folder holds several programs, a CM process that
  runs in another session may pick one of THEM (its image is never used as a path otherwise).
  When none gives exactly one answer, the plan says so and changes nothing at all.
- The Identity Agent's executable: option ``ia_executable``; else ``<folder>\\<name>`` for the
  folders of the Identity Agent's Uninstall entries (``InstallLocation``, the ``DisplayIcon``'s
  folder; both registry views) and the names of option ``ia_process_names``, when that file
  exists (``ia_files``, or ``file_info`` in the extra read call); else the first file of option
  ``ia_paths`` that exists. Otherwise the Identity Agent is not started, and the notes say why.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import ntpath
import re
import secrets
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import ID, NATIONAL_SERVICE_DESK
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import Process, sessions_unknown
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import (
    LEGACY_GENERATIONS,
    SMARTCARD_SERVICE,
    cm_entries,
    cm_matcher,
    icon_dir,
    image_name,
    install_dirs,
    installed,
    normalise_dir,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._paths import DRIVE_PATH
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import Action, Change, ServiceWant
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import USER_SID_PATTERN

#: The finding ids this role fixes.
HANDLED = (ID.PORT_SERVICE_STOPPED, ID.PORT_SERVICE_NOT_AUTOMATIC, ID.PORT_SERVICE_NOT_LISTENING,
           ID.SMARTCARD_SERVICE_STOPPED, ID.CM_NOT_RUNNING, ID.IA_NOT_RUNNING, ID.CM_NOT_CONNECTED)

DEFAULTS: dict[str, t.Any] = {
    "cm_executable": None,
    "ia_executable": None,
    "port_service": True,
    "port_service_automatic": True,
    "smartcard_service": True,
    "start_cm": True,
    "start_identity_agent": True,
    "reconnect": True,
    "wait_ms": 15000,
    "listen_wait_ms": 10000,
}

#: An Uninstall DisplayIcon's program: a .exe on a drive.
_DRIVE_EXE = re.compile(DRIVE_PATH.pattern + r".+\.exe$", re.IGNORECASE)


@dataclass
class CmPlan:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocked: str | None = None  # why nothing may be changed
    reconnect_sessions: list[int] = field(default_factory=list)
    fixes: set[tuple[str, int | None]] = field(default_factory=set)  # (finding id, session) it fixes
    cm_executable: str | None = None
    cm_executable_source: str | None = None
    ia_executable: str | None = None
    ia_executable_source: str | None = None
    #: sessions where a program should have been started but is not, ``{session, user, program, reason}``
    not_started: list[dict[str, t.Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# CM's executable

def install_folders(facts: dict[str, t.Any]) -> list[str]:
    """CM's and Identity Hub's install folders as recorded (InstallLocation, else DisplayIcon's)."""
    entries, _reason = cm_entries(facts, "cm", "identity_hub")
    return install_dirs(entries)


def _icon_exe(display_icon: str | None) -> str | None:
    if not display_icon:
        return None
    path = re.sub(r",\s*-?\d+$", "", display_icon.strip()).strip().strip('"')
    if not _DRIVE_EXE.match(path) or "%" in path:
        return None
    if normalise_dir(ntpath.dirname(path)).startswith("c:\\windows\\"):
        return None  # msiexec.exe and friends: not CM
    return path


def _port_service_binary(facts: dict[str, t.Any]) -> str:
    service = (facts.get("services") or {}).get("port_service") or {}
    binary = service.get("binary")
    return ntpath.normpath(binary).casefold() if binary else ""


def _distinct(paths: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for path in paths:
        seen.setdefault(ntpath.normpath(path).casefold(), path)
    return list(seen.values())


def _from_option(value: str, folders: list[str]) -> tuple[list[str], str]:
    if DRIVE_PATH.match(value):
        return [value], "option cm_executable"
    return [ntpath.join(folder, value) for folder in folders], "option cm_executable in CM's install folder"


def _from_icons(facts: dict[str, t.Any]) -> list[str]:
    entries, _reason = cm_entries(facts, "cm", "identity_hub")
    port = _port_service_binary(facts)
    icons = [_icon_exe(entry.get("display_icon")) for entry in entries]
    return _distinct([icon for icon in icons if icon and ntpath.normpath(icon).casefold() != port])


def cm_processes(facts: dict[str, t.Any], options: dict[str, t.Any]) -> list[Process]:
    """The CM processes diagnose sees (same matcher as CM_NOT_RUNNING)."""
    names = {image_name(name) for name in options.get("cm_process_names") or [] if name}
    is_cm = cm_matcher(facts, install_folders(facts), names)
    ia_names = {image_name(name) for name in options.get("ia_process_names") or [] if name}
    return [p for p in facts.get("processes") or [] if is_cm(p) and image_name(p.get("image") or p.get("name"))
            not in ia_names]


def _running_images(facts: dict[str, t.Any], options: dict[str, t.Any]) -> set[str]:
    return {ntpath.normpath(p["image"]).casefold() for p in cm_processes(facts, options) if p.get("image")}


def _from_listing(facts: dict[str, t.Any], listings: list[dict[str, t.Any]]) -> list[str]:
    port = _port_service_binary(facts)
    files = [item["path"] for listing in listings for item in listing.get("files") or []]
    return _distinct([path for path in files if ntpath.normpath(path).casefold() != port])


def needs_listing(facts: dict[str, t.Any], options: dict[str, t.Any]) -> bool:
    """Whether only a listing of the install folder can name CM's executable."""
    return not options.get("cm_executable") and not _from_icons(facts)


def listing_ops(facts: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    return [{"op": "file_list", "dir": folder.rstrip("\\"), "pattern": "*.exe"} for folder in install_folders(facts)]


def resolve_cm_executable(facts: dict[str, t.Any], options: dict[str, t.Any],
                          listings: list[dict[str, t.Any]] | None = None) -> tuple[str | None, str]:
    """(CM's executable, where it came from) or (None, why it cannot be told)."""
    folders = install_folders(facts)
    option = options.get("cm_executable")
    if option:
        found, source = _from_option(option, folders)
        if len(found) == 1:
            return found[0], source
        return None, (f"option cm_executable {option!r} is a file name, but CM's install folder is "
                      f"{'not recorded' if not found else 'not one folder: ' + ', '.join(folders)}")
    icons = _from_icons(facts)
    if len(icons) == 1:
        return icons[0], "the Uninstall entry's DisplayIcon"
    if len(icons) > 1:
        return None, (f"the Uninstall entry's DisplayIcon gives several programs ({', '.join(icons)}); set option "
                      "cm_executable")
    if listings is None:
        return None, "CM's install folder was not listed"
    candidates = _from_listing(facts, listings)
    if len(candidates) == 1:
        return candidates[0], "the only program in CM's InstallLocation besides the NHS Port Service"
    where = ", ".join(folders) or "(no InstallLocation recorded)"
    if not candidates:
        return None, f"no program other than the NHS Port Service is in CM's install folder {where}"
    running = _running_images(facts, options)
    chosen = [path for path in candidates if ntpath.normpath(path).casefold() in running]
    if len(chosen) == 1:
        return chosen[0], "the program of CM's InstallLocation that a CM process runs in another session"
    return None, (f"CM's install folder {where} has several programs ({', '.join(candidates)}), so which one "
                  "is CM cannot be told; set option cm_executable")


def _ia_exe_names(options: dict[str, t.Any]) -> list[str]:
    names = [ntpath.basename(str(name).strip()) for name in options.get("ia_process_names") or [] if name]
    names = [name if name.casefold().endswith(".exe") else f"{name}.exe" for name in names if name]
    return list(dict.fromkeys(names))


def ia_candidates(facts: dict[str, t.Any], options: dict[str, t.Any]) -> list[str]:
    """``<folder>\\<IA executable name>`` for the folders the Identity Agent's Uninstall entries
    record (InstallLocation, the DisplayIcon's folder; both registry views): machine-wide install
    data only, never the Windows folder."""
    paths = []
    for entry in installed(facts, "identity_agent"):
        for folder in (entry.get("install_location"), icon_dir(entry.get("display_icon"))):
            base = (folder or "").strip().strip('"').rstrip("\\")
            if not DRIVE_PATH.match(base) or normalise_dir(base).startswith("c:\\windows\\"):
                continue
            paths += [f"{base}\\{name}" for name in _ia_exe_names(options)]
    return _distinct(paths)


def _known_files(facts: dict[str, t.Any], infos: list[dict[str, t.Any]] | None) -> dict[str, bool]:
    files = list(facts.get("ia_files") or []) + [item for info in infos or [] for item in info.get("files") or []]
    return {ntpath.normpath(str(item.get("path"))).casefold(): bool(item.get("exists")) for item in files}


def ia_check_ops(facts: dict[str, t.Any], options: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """A ``file_info`` of the Identity Agent's install-data paths whose existence is not known yet
    (for the extra read call); [] when there is none or option ``ia_executable`` is set."""
    if options.get("ia_executable"):
        return []
    known = _known_files(facts, None)
    unknown = [path for path in ia_candidates(facts, options) if ntpath.normpath(path).casefold() not in known]
    return [{"op": "file_info", "paths": unknown}] if unknown else []


def resolve_ia_executable(facts: dict[str, t.Any], options: dict[str, t.Any],
                          infos: list[dict[str, t.Any]] | None = None) -> tuple[str | None, str]:
    """(the Identity Agent's executable, where it came from) or (None, why it is not known).
    ``infos``: the results of ``ia_check_ops`` (None when that read was not made)."""
    if options.get("ia_executable"):
        return str(options["ia_executable"]), "option ia_executable"
    known = _known_files(facts, infos)
    candidates = ia_candidates(facts, options)
    existing = [path for path in candidates if known.get(ntpath.normpath(path).casefold())]
    if len(existing) == 1:
        return existing[0], "the Identity Agent's Uninstall entry"
    if len(existing) > 1:
        return None, (f"the Identity Agent's Uninstall entries give several programs ({', '.join(existing)}); "
                      "set option ia_executable")
    files = [item["path"] for item in facts.get("ia_files") or [] if item.get("exists") and item.get("path")]
    if files:
        return files[0], "option ia_paths"
    missing = f" ({', '.join(candidates)} does not exist)" if candidates else ""
    return None, ("the Identity Agent's executable is not known: no install folder of its Uninstall entry "
                  f"holds it{missing} and no file of ia_paths exists; set option ia_executable (a running "
                  "IdentityAgent.exe is never taken: any user can run one from their own folders)")


# ---------------------------------------------------------------------------------------------
# The plan

def task_name(what: str, session: int) -> str:
    return f"nhs_cm_{what}_s{session}_{secrets.token_hex(4)}"


def session_sid(scope: dict[str, t.Any]) -> str | None:
    """The SID of a session's user when it is a person's SID (the task's principal), else None."""
    sid = scope.get("sid")
    return sid if isinstance(sid, str) and re.fullmatch(USER_SID_PATTERN, sid) else None


def _where(scope: dict[str, t.Any]) -> str:
    return f"session {scope['session']} ({scope.get('user')})"


def _start(what: str, label: str, exe: str, scope: dict[str, t.Any], wait_ms: int, sid: str) -> Action:
    session = int(scope["session"])
    op = {"op": "task_run", "name": task_name(what, session), "user": sid, "session": session, "command": exe,
          "wait_ms": wait_ms}
    where = _where(scope)
    return Action(f"start {label} in {where}", (op,), before=f"{where}: {label} not running",
                  after=f"{where}: {label} started ({exe})")


def _not_started(result: CmPlan, scope: dict[str, t.Any], label: str, reason: str, what: str = "started") -> None:
    result.not_started.append({"session": int(scope["session"]), "user": scope.get("user"), "program": label,
                               "reason": reason})
    result.notes.append(f"{_where(scope)}: {label} was not {what}: {reason}")


def _stop(label: str, process: Process, scope: dict[str, t.Any]) -> Action:
    op = {"op": "process_stop", "pid": process["pid"], "image": process["image"]}
    where = f"session {scope['session']} ({scope.get('user')})"
    return Action(f"stop {label} in {where}", (op,), before=f"{where}: {label} runs (pid {process['pid']})",
                  after=f"{where}: {label} stopped to restart it")


def _service_changes(result: CmPlan, facts: dict[str, t.Any], ids: set[str], options: dict[str, t.Any]) -> None:
    port = (facts.get("services") or {}).get("port_service")
    automatic = options["port_service_automatic"] and ID.PORT_SERVICE_NOT_AUTOMATIC in ids
    start = options["port_service"] and bool(ids & {ID.PORT_SERVICE_STOPPED, ID.PORT_SERVICE_NOT_LISTENING})
    if port and (start or automatic):
        result.changes.append(ServiceWant(port["name"], port.get("display_name") or "",
                                          start_mode="auto" if automatic else None,
                                          state="running" if start else None,
                                          restart=start and ID.PORT_SERVICE_NOT_LISTENING in ids,
                                          listen_ports=tuple(options.get("prs_ports") or ()),
                                          listen_wait_ms=int(options.get("listen_wait_ms") or 0)))
        fixed = ({ID.PORT_SERVICE_STOPPED, ID.PORT_SERVICE_NOT_LISTENING} if start else set()) | \
            ({ID.PORT_SERVICE_NOT_AUTOMATIC} if automatic else set())
        result.fixes.update((check, None) for check in fixed & ids)
    smartcard = (facts.get("services") or {}).get("smartcard")
    if smartcard and options["smartcard_service"] and ID.SMARTCARD_SERVICE_STOPPED in ids:
        result.changes.append(ServiceWant(smartcard.get("name") or SMARTCARD_SERVICE,
                                          smartcard.get("display_name") or "", state="running"))
        result.fixes.add((ID.SMARTCARD_SERVICE_STOPPED, None))


def _session_processes(facts: dict[str, t.Any], session: int) -> list[Process]:
    return [p for p in facts.get("processes") or [] if p.get("session") == session]


def _is_ia(process: Process, options: dict[str, t.Any]) -> bool:
    names = {image_name(name) for name in options.get("ia_process_names") or [] if name}
    return image_name(process.get("image") or process.get("name")) in names


def _by_session(findings: list[dict[str, t.Any]]) -> dict[int, list[dict[str, t.Any]]]:
    by_session: dict[int, list[dict[str, t.Any]]] = {}
    for finding in findings:
        if finding["id"] in (ID.CM_NOT_RUNNING, ID.IA_NOT_RUNNING, ID.CM_NOT_CONNECTED) and \
                finding["scope"].get("session") is not None:
            by_session.setdefault(int(finding["scope"]["session"]), []).append(finding)
    return by_session


def _needs(findings: list[dict[str, t.Any]], opts: dict[str, t.Any], legacy: bool) -> tuple[bool, bool]:
    """(CM's executable is needed, the Identity Agent's may be needed)."""
    ids = {f["id"] for f in findings if f["scope"].get("session") is not None}
    reconnect = opts["reconnect"] and ID.CM_NOT_CONNECTED in ids
    cm = (opts["start_cm"] and ID.CM_NOT_RUNNING in ids) or reconnect
    ia = reconnect or (opts["start_identity_agent"] and (
        ID.IA_NOT_RUNNING in ids or (legacy and opts["start_cm"] and ID.CM_NOT_RUNNING in ids)))
    return cm, ia


def extra_reads(facts: dict[str, t.Any], findings: list[dict[str, t.Any]], options: dict[str, t.Any]
                ) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """(the listing of CM's install folder, the file_info of the Identity Agent's install-data
    paths) that planning needs, each [] when it does not: ONE extra read call for both."""
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    legacy = (facts.get("product") or {}).get("generation") in LEGACY_GENERATIONS
    need_cm, need_ia = _needs(findings, opts, legacy)
    listing = listing_ops(facts) if need_cm and needs_listing(facts, opts) else []
    return listing, ia_check_ops(facts, opts) if need_ia else []


def plan_cm_service(facts: dict[str, t.Any], findings: list[dict[str, t.Any]], options: dict[str, t.Any],
                    listings: list[dict[str, t.Any]] | None = None,
                    ia_infos: list[dict[str, t.Any]] | None = None) -> CmPlan:
    """The changes for ``findings`` (diagnose's, for ``facts``); see the module docstring.
    ``listings`` and ``ia_infos``: the ok results of ``extra_reads`` (None when not made)."""
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    result = CmPlan()
    ids = {f["id"] for f in findings}
    _service_changes(result, facts, ids, opts)
    legacy = (facts.get("product") or {}).get("generation") in LEGACY_GENERATIONS
    by_session = _by_session(findings)
    if facts.get("sessions") == []:
        owners = sessions_unknown(facts)
        result.notes.append(f"No session was found, but {owners}: nothing was started in a session." if owners else
                            "Nobody is logged on: NHS Credential Management starts at the next logon; "
                            "nothing was started.")
    need_cm, need_ia = _needs(findings, opts, legacy)
    cm_exe: str | None = None
    cm_reason = ""
    if need_cm:
        cm_exe, cm_reason = resolve_cm_executable(facts, opts, listings)
        if cm_exe is None and opts["start_cm"] and ID.CM_NOT_RUNNING in ids:
            result.blocked = f"cannot tell NHS Credential Management's executable: {cm_reason}; nothing was changed"
            result.changes = []
            return result
        if cm_exe is not None:
            result.cm_executable, result.cm_executable_source = cm_exe, cm_reason
    ia: tuple[str | None, str] = (None, "")
    if need_ia:
        ia = resolve_ia_executable(facts, opts, ia_infos)
        if ia[0] is not None:
            result.ia_executable, result.ia_executable_source = ia
    cm_in = cm_processes(facts, opts)
    for session in sorted(by_session):
        _plan_session(result, facts, by_session[session], opts, legacy, (cm_exe, cm_reason), ia, cm_in)
    return result


NO_SID = "the SID of the session's user is not known, so no task can run as that user"


def _reconnect(result: CmPlan, scope: dict[str, t.Any], running: tuple[list[Process], list[Process]],
               programs: tuple[tuple[str | None, str], tuple[str | None, str]], wait: int) -> None:
    """CM_NOT_CONNECTED: stop the Identity Agent and CM in the session and start them again from
    their install data, or say why not (nothing stopped then)."""
    ia_running, cm_running = running
    (cm_exe, cm_reason), (ia_exe, ia_reason) = programs
    session, sid = int(scope["session"]), session_sid(scope)
    if not cm_running or not ia_running:
        result.notes.append(f"session {session}: CM_NOT_CONNECTED, but CM or the Identity Agent does not run "
                            "there now; nothing was restarted")
        return
    if sid is None or cm_exe is None or ia_exe is None:
        reason = NO_SID if sid is None else ia_reason if cm_exe else f"CM's executable is not known: {cm_reason}"
        _not_started(result, scope, "the Identity Agent and NHS Credential Management", reason, what="restarted")
        return
    result.changes.extend(_stop("the Identity Agent", p, scope) for p in ia_running)
    result.changes.extend(_stop("NHS Credential Management", p, scope) for p in cm_running)
    result.changes.append(_start("ia", "the Identity Agent", ia_exe, scope, wait, sid))
    result.changes.append(_start("cm", "NHS Credential Management", cm_exe, scope, wait, sid))
    result.reconnect_sessions.append(session)


def _plan_session(result: CmPlan, facts: dict[str, t.Any], findings: list[dict[str, t.Any]],
                  opts: dict[str, t.Any], legacy: bool, cm: tuple[str | None, str], ia: tuple[str | None, str],
                  cm_in: list[Process]) -> None:
    ids = {f["id"] for f in findings}
    scope = findings[0]["scope"]
    session = int(scope["session"])
    mine = _session_processes(facts, session)
    ia_running = [p for p in mine if _is_ia(p, opts) and p.get("image")]
    cm_running = [p for p in cm_in if p.get("session") == session and p.get("image")]
    wait = int(opts["wait_ms"])
    if ID.CM_NOT_CONNECTED in ids and opts["reconnect"]:
        _reconnect(result, scope, (ia_running, cm_running), (cm, ia), wait)
        return
    want_ia = opts["start_identity_agent"] and not ia_running and (
        ID.IA_NOT_RUNNING in ids or (legacy and ID.CM_NOT_RUNNING in ids and opts["start_cm"]))
    want_cm = ID.CM_NOT_RUNNING in ids and opts["start_cm"] and cm[0] is not None
    sid = session_sid(scope)
    if sid is None:
        for wanted, label in ((want_ia, "the Identity Agent"), (want_cm, "NHS Credential Management")):
            if wanted:
                _not_started(result, scope, label, NO_SID)
        return
    if want_ia:
        if ia[0] is None:
            _not_started(result, scope, "the Identity Agent", ia[1])
        else:
            result.changes.append(_start("ia", "the Identity Agent", ia[0], scope, wait, sid))
            result.fixes.add((ID.IA_NOT_RUNNING, session))
    if want_cm and cm[0] is not None:
        result.changes.append(_start("cm", "NHS Credential Management", cm[0], scope, wait, sid))
        result.fixes.add((ID.CM_NOT_RUNNING, session))


# ---------------------------------------------------------------------------------------------
# After the write call

def started_problems(actions: list[tuple[dict[str, t.Any], dict[str, t.Any]]]) -> list[str]:
    """task_run results whose program did not appear in its session."""
    problems = []
    for op, result in actions:
        if op.get("op") == "task_run" and result.get("ok") and not result.get("started"):
            problems.append(f"{op['command']} did not start in session {op['session']} (task result "
                            f"{result.get('last_result')}); is the user still logged on?")
        if op.get("op") == "task_run" and result.get("ok") and not result.get("deleted"):
            problems.append(f"the scheduled task {op['name']} could not be deleted; delete it by hand")
    return problems


def refused_starts(actions: list[tuple[dict[str, t.Any], dict[str, t.Any]]],
                   facts: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """``{session, user, program, reason}`` for each task_run the runner did not run: refused
    (``forbidden`` with its reason: a program in a folder that non-administrators can write, ...),
    failed, or skipped after an earlier change failed."""
    users = {s.get("id"): s.get("user") for s in facts.get("sessions") or []}
    out = []
    for op, result in actions:
        if op.get("op") != "task_run" or result.get("ok"):
            continue
        if result.get("error") == "skipped":
            reason = "not run: an earlier change of this run failed"
        else:
            reason = f"the runner did not start it ({result.get('error')}): {result.get('message')}"
        out.append({"session": op.get("session"), "user": users.get(op.get("session")), "program": op.get("command"),
                    "reason": reason})
    return out


def remaining(findings: list[dict[str, t.Any]], the_plan: CmPlan) -> tuple[list[dict[str, t.Any]],
                                                                           list[dict[str, t.Any]]]:
    """(findings this run fixed that diagnose still reports afterwards, escalations for
    CM_NOT_CONNECTED that persists after the one restart)."""
    still, escalations = [], []
    for finding in findings:
        session = finding["scope"].get("session")
        if finding["id"] == ID.CM_NOT_CONNECTED and session in the_plan.reconnect_sessions:
            escalations.append({
                "session": session, "user": finding["scope"].get("user"), "to": NATIONAL_SERVICE_DESK["to"],
                "phone": NATIONAL_SERVICE_DESK["phone"],
                "why": (f"the Identity Agent and NHS Credential Management were restarted once in session {session}; "
                        "whether CM is connected cannot be read from outside the session. If the e-RS check still "
                        "says it is not connected, do not restart again: call the National Service Desk"),
            })
            continue
        if (finding["id"], session if finding["scope"].get("kind") == "user" else None) in the_plan.fixes:
            still.append(finding)
    return still, escalations
