"""A tiny in-memory Windows desktop that answers diagnose's reads like the runner would.

Tests describe a host as data (``healthy_host()`` and small edits of it) and get the runner
results for ``plan_reads(options)`` from ``results_for``. Not an emulator: it answers only the
reads diagnose makes.
"""

from __future__ import annotations

import copy
import json
import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import (
    ACTIVE_COMPUTER_NAME,
    CALAIS_READERS,
    DECLARED,
    NDP_V4_FULL,
    PENDING_COMPUTER_NAME,
    UNINSTALL_32,
    UNINSTALL_64,
    DeclaredReads,
    planned_reads,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import parse_reply
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import validate_ops

CM_DIR = "C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management"
CM_EXE = CM_DIR + "\\NHSCredentialManagement.exe"
PORT_SERVICE_EXE = "C:\\Program Files (x86)\\NHS Digital\\NHS Port Service\\NHSPortService.exe"
CM_GUID = "{6C3F1B8E-4D0A-4C1E-9F2B-0A1B2C3D4E5F}"
PR30007 = ('{"errorCode":"PR30007","errorMessage":"Request failed due to unknown exception. '
           'Exception=Unable to find CM process for user"}')


def sz(data: str) -> dict[str, t.Any]:
    return {"type": "REG_SZ", "data": data}


def dword(data: int) -> dict[str, t.Any]:
    return {"type": "REG_DWORD", "data": data}


def product(subkey: str, name: str, version: str | None, *, view: str = "32", location: str | None = None,
            icon: str | None = None, system_component: bool = False) -> dict[str, t.Any]:
    values = {"DisplayName": sz(name), "Publisher": sz("NHS England")}
    if version is not None:
        values["DisplayVersion"] = sz(version)
    if location is not None:
        values["InstallLocation"] = sz(location)
    if icon is not None:
        values["DisplayIcon"] = sz(icon)
    if system_component:
        values["SystemComponent"] = dword(1)
    return {"view": view, "subkey": subkey, "values": values}


def process(pid: int, name: str, image: str | None, session: int, user: str | None = None,
            version: str | None = None) -> dict[str, t.Any]:
    return {"pid": pid, "name": name, "image": image, "session": session, "user": user, "version": version}


def session_processes(session: int, user: str, first_pid: int, cm: bool = True) -> list[dict[str, t.Any]]:
    procs = [
        process(first_pid, "csrss", None, session),
        process(first_pid + 1, "winlogon.exe", "C:\\Windows\\System32\\winlogon.exe", session, "NT AUTHORITY\\SYSTEM"),
        process(first_pid + 2, "explorer.exe", "C:\\Windows\\explorer.exe", session, user, "10.0.19041.3636"),
        process(first_pid + 3, "msedge.exe", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
                session, user, "120.0.2210.91"),
    ]
    if cm:
        procs.append(process(first_pid + 4, "NHSCredentialManagement.exe", CM_EXE, session, user, "4.1.0.12"))
    return procs


INTERNET_SETTINGS = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"
ZONEMAP = INTERNET_SETTINGS + "\\ZoneMap"
INTRANET_ZONE = INTERNET_SETTINGS + "\\Zones\\1"
INTRANET_ZONE_HKLM = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1"
IA_DIR = "C:\\Program Files (x86)\\HSCIC\\Identity Agent"
IA_EXE = IA_DIR + "\\IdentityAgent.exe"
IA_GUID = "{D3A5F2C8-1B47-4E96-A0C2-7F8E5B9D3146}"


def with_identity_agent(host: dict[str, t.Any], version: str = "2.4.10.0",
                        sessions: list[int] | None = None) -> dict[str, t.Any]:
    """``host`` with the legacy NHS Identity Agent installed (Uninstall entry and file) and
    running in ``sessions`` (default: every session)."""
    host["products"].append(product(IA_GUID, "NHS Identity Agent", version, location=IA_DIR + "\\"))
    host["files"][IA_EXE] = version
    wanted = [s["id"] for s in host["sessions"]] if sessions is None else sessions
    users = {s["id"]: s["user"] for s in host["sessions"]}
    for number in wanted:
        ia = process(9000 + number, "IdentityAgent.exe", IA_EXE, number, users.get(number), version)
        host["processes"].append(ia)
    return host


def healthy_host() -> dict[str, t.Any]:
    """A Windows 10 desktop with CM 4.1, the Port Service running and two users logged on."""
    return {
        "products": [
            product("{0D1E2F3A-0000-4000-8000-000000000001}", "Microsoft Edge", "120.0.2210.91"),
            product(CM_GUID, "NHS Credential Management", "4.1.0.12", location=CM_DIR + "\\",
                    icon=CM_EXE + ",0"),
        ],
        "other_uninstall_64": ["{11111111-2222-3333-4444-555555555555}", "Mozilla Firefox"],
        "dotnet": {"Release": dword(528372), "Version": sz("4.8.04084")},
        "reboot": {},
        "computer_name": {"active": "DESK01", "pending": "DESK01"},
        "services": [
            {"name": "NHSPortService", "display_name": "NHS Port Service", "state": "running",
             "start_mode": "auto", "image": f'"{PORT_SERVICE_EXE}"', "pid": 2100},
            {"name": "SCardSvr", "display_name": "Smart Card", "state": "running", "start_mode": "manual",
             "image": "C:\\Windows\\system32\\svchost.exe -k LocalServiceAndNoImpersonation", "pid": 1440},
        ],
        "listeners": [
            {"address": "0.0.0.0", "port": 135, "pid": 900},
            {"address": "127.0.0.1", "port": 43487, "pid": 2100},
        ],
        "probes": {43487: {"status": 500, "body": PR30007, "error": None}},
        # why the processes' owners could not be read (process_list user_error), or None
        "process_user_error": None,
        "processes": [
            process(0, "Idle", None, 0),
            process(4, "System", None, 0),
            process(2100, "NHSPortService.exe", PORT_SERVICE_EXE, 0, "NT AUTHORITY\\SYSTEM", "4.1.0.12"),
            process(1440, "svchost.exe", "C:\\Windows\\System32\\svchost.exe", 0, "NT AUTHORITY\\LOCAL SERVICE",
                    "10.0.19041.3636"),
            *session_processes(1, "NHS\\jsmith", 5000),
            *session_processes(2, "NHS\\akhan", 6000),
        ],
        "sessions": [
            {"id": 1, "user": "NHS\\jsmith", "sid": "S-1-5-21-1004336348-1177238915-682003330-1001"},
            {"id": 2, "user": "NHS\\akhan", "sid": "S-1-5-21-1004336348-1177238915-682003330-1002"},
        ],
        "os": {"product": "Windows 10 Enterprise", "version": "10.0.19045", "computer_name": "DESK01",
               "emulated": False},
        "readers": ["HID Global OMNIKEY 3x21 Smart Card Reader 0"],
        "files": {},  # path -> file version of the files that exist (file_info)
        # full key path -> {name: {type, data}} for any other key read: Windows' own intranet zone
        "registry": {INTRANET_ZONE_HKLM: {"1A00": dword(0x20000)}},
        # keys of every session user's hive (relative key -> values): the Local intranet zone as NHS wants it
        "user_keys": {ZONEMAP: {"AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1),
                                "UNCAsIntranet": dword(1)},
                      INTRANET_ZONE: {"1A00": dword(0x20000)}},
        # other user hives: sid -> {"path", "loaded", "user", "keys": {relative key: {name: {type, data}}}}
        "profiles": {},
        "gpo_settings": [],
        "failures": {},
    }


def _uninstall(host: dict[str, t.Any], view: str, names: list[str] | None) -> dict[str, t.Any]:
    subkeys: dict[str, t.Any] = {}
    for entry in host["products"]:
        if entry["view"] == view:
            values = {k: v for k, v in entry["values"].items() if names is None or k in names}
            subkeys[entry["subkey"]] = {"values": values, "subkeys": {}}
    if view == "64":
        for name in host.get("other_uninstall_64", []):
            subkeys.setdefault(name, {"values": {}, "subkeys": {}})
    return {"ok": True, "exists": True, "values": {}, "subkeys": subkeys}


def _key(exists: bool, values: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    return {"ok": True, "exists": exists, "values": dict(values or {}) if exists else {}, "subkeys": {}}


def _reg(host: dict[str, t.Any], op: dict[str, t.Any]) -> dict[str, t.Any]:
    key = op["key"]
    names = op.get("names")
    if key == UNINSTALL_64:
        return _uninstall(host, "64", names)
    if key == UNINSTALL_32:
        return _uninstall(host, "32", names)
    if key == NDP_V4_FULL:
        return _key(host["dotnet"] is not None, host["dotnet"])
    if key == ACTIVE_COMPUTER_NAME:
        return _key(True, {"ComputerName": sz(host["computer_name"]["active"])})
    if key == PENDING_COMPUTER_NAME:
        return _key(True, {"ComputerName": sz(host["computer_name"]["pending"])})
    if key == CALAIS_READERS:
        readers = host["readers"]
        return {"ok": True, "exists": readers is not None, "values": {}, "subkeys": dict.fromkeys(readers or [])}
    if key in host["registry"]:
        return _key(True, {k: v for k, v in host["registry"][key].items() if names is None or k in names})
    reboot = host["reboot"].get(key)
    if reboot is None:
        return _key(key.endswith("Session Manager") or key.endswith("Updates"))
    return _key(True, reboot)


def _user_hives(host: dict[str, t.Any], op: dict[str, t.Any]) -> dict[str, t.Any]:
    profiles = {session["sid"].upper(): {"user": session["user"], "loaded": True, "keys": dict(host["user_keys"])}
                for session in host["sessions"] if session.get("sid")}
    profiles.update({sid.upper(): dict(profile) for sid, profile in host["profiles"].items()})
    out = []
    for sid, profile in sorted(profiles.items()):
        readable = profile["loaded"] or (op["include_offline"] and op["paths"])
        keys = {path: ({"exists": path in profile["keys"], "values": dict(profile["keys"].get(path) or {}),
                        "subkeys": {}, "error": None})
                for path, _depth in op["paths"]} if readable else {}
        out.append({"sid": sid, "user": profile.get("user"), "path": profile.get("path", f"C:\\Users\\{sid}"),
                    "loaded": profile["loaded"], "mounted_as": None if profile["loaded"] or not keys else "nhs_cm_1",
                    "error": None, "keys": keys})
    return {"ok": True, "profiles": out}


def _browser_site_settings(host: dict[str, t.Any], op: dict[str, t.Any]) -> dict[str, t.Any]:
    """Each signed-in person's (all with include_offline) Chrome and Edge files: ``host["browser_site_files"]``
    ({(sid, browser): [Local State item, Preferences items...]}), else a Local State that does not exist."""
    people = {session["sid"].upper(): True for session in host["sessions"] if session.get("sid")}
    people.update({sid.upper(): profile["loaded"] for sid, profile in host["profiles"].items()})
    given = {(sid.upper(), browser): items for (sid, browser), items in host.get("browser_site_files", {}).items()}
    files = []
    for sid, loaded in sorted(people.items()):
        if not (loaded or op["include_offline"]):
            continue
        for browser, folder in (("chrome", "Google\\Chrome"), ("edge", "Microsoft\\Edge")):
            files += given.get((sid, browser)) or [
                {"sid": sid, "browser": browser, "profile": None, "exists": False, "modified": None, "error": None,
                 "exceptions": None, "path": f"C:\\Users\\{sid}\\AppData\\Local\\{folder}\\User Data\\Local State"}]
    return {"ok": True, "files": files}


def _probe(host: dict[str, t.Any], op: dict[str, t.Any]) -> dict[str, t.Any]:
    port = int(op["url"].split(":")[2].split("/")[0])
    answer = host["probes"].get(port, {"status": None, "body": None, "error": "connection refused"})
    return {"ok": True, **answer}


def answer(host: dict[str, t.Any], op: dict[str, t.Any]) -> dict[str, t.Any]:
    """The runner's result for one op against ``host``."""
    kind = op["op"]
    if kind == "reg_read":
        return _reg(host, op)
    if kind == "service_query":
        names = [n.casefold() for n in op.get("names") or []]
        display = [n.casefold() for n in op.get("display_names") or []]
        services = [s for s in host["services"]
                    if s["name"].casefold() in names or s["display_name"].casefold() in display]
        return {"ok": True, "services": services}
    if kind == "tcp_listeners":
        return {"ok": True, "listeners": [x for x in host["listeners"] if x["port"] in op["ports"]]}
    if kind == "http_get":
        return _probe(host, op)
    if kind == "process_list":
        return {"ok": True, "processes": host["processes"], "user_error": host.get("process_user_error")}
    if kind == "session_list":
        return {"ok": True, "sessions": host["sessions"]}
    if kind == "os_info":
        return {"ok": True, **host["os"]}
    if kind == "file_info":
        files = host["files"]
        return {"ok": True, "files": [{"path": path, "exists": path in files, "version": files.get(path)}
                                      for path in op["paths"]]}
    if kind == "user_hives_read":
        return _user_hives(host, op)
    if kind == "gpo_registry_settings":
        return {"ok": True, "settings": list(host["gpo_settings"]), "errors": []}
    if kind == "browser_site_settings":
        return _browser_site_settings(host, op)
    raise AssertionError(f"hostsim does not answer {kind}")


def results_for(host: dict[str, t.Any], options: dict[str, t.Any] | None = None,
                declared: DeclaredReads = DECLARED) -> list[dict[str, t.Any]]:
    """Runner results for every read of ``plan_reads(options, declared)``; ``host["failures"]`` maps
    a read label to the error result it gets instead."""
    results, ops = [], []
    for label, op in planned_reads(options, declared):
        failure = host["failures"].get(label)
        results.append(copy.deepcopy(failure) if failure else copy.deepcopy(answer(host, op)))
        ops.append(op)
    # Held to the protocol: every answer passes the checks the controller makes of a real reply.
    return parse_reply(reply_line(results), "", 0, validate_ops(ops))


def reply_line(results: list[dict[str, t.Any]]) -> str:
    """The runner's stdout for ``results``: one line of ASCII JSON."""
    reply = {"runner": "nhs_cm", "protocol": 1, "ok": True, "results": results}
    return json.dumps(reply, ensure_ascii=True, separators=(",", ":"))


def denied(message: str = "Access is denied.") -> dict[str, t.Any]:
    return {"ok": False, "error": "access_denied", "message": message}
