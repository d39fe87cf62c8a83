"""The checks of e-RS faults 2 and 3, one id at a time: a case that fires (exact shape) and near
misses. Hosts are hostsim desktops: CM 1.4.2.0 with the Identity Agent 2.4.10.0 in both sessions
unless a test changes it."""

from __future__ import annotations

import typing as t

import pytest
from nhs_cm_hostsim import (
    CM_EXE,
    IA_EXE,
    IA_GUID,
    denied,
    healthy_host,
    process,
    product,
    results_for,
    sz,
    with_identity_agent,
)

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    CATALOGUE,
    FAULT_MESSAGES,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import options_with_defaults
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import product_generation
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import (
    CALAIS_READERS,
    UNINSTALL_32,
    UNINSTALL_64,
)

MY_IDS = ["IA_NOT_INSTALLED", "IA_NOT_RUNNING", "IA_VERSION_RETIRED", "CM_NOT_CONNECTED",
          "SMARTCARD_SERVICE_STOPPED", "NO_SMARTCARD_READER", "USER_NOT_LOGGED_IN"]
SID1 = "S-1-5-21-1004336348-1177238915-682003330-1001"
SID2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
USER1 = {"kind": "user", "user": "NHS\\jsmith", "sid": SID1, "session": 1}
USER2 = {"kind": "user", "user": "NHS\\akhan", "sid": SID2, "session": 2}
MACHINE = {"kind": "machine"}
FAULT2 = "NHS Credential Management is running on port 43485 but is not connected"
FAULT3 = "NHS Credential Management is running on port 55000 and is connected but cannot login to e-RS"
CM_PRODUCT = {"product": "NHS Credential Management", "version": "1.4.2.0", "generation": "cm1"}


def legacy_host() -> dict[str, t.Any]:
    """CM 1.4.2.0 with the Identity Agent 2.4.10.0 running in both sessions: healthy."""
    host = healthy_host()
    host["products"][1]["values"]["DisplayVersion"] = sz("1.4.2.0")
    return with_identity_agent(host)


def cm4_host() -> dict[str, t.Any]:
    return healthy_host()


def run(host: dict[str, t.Any], **options: t.Any) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    opts = options_with_defaults(options)
    return evaluate(build_facts(results_for(host, opts), opts), opts)


def mine(host: dict[str, t.Any], **options: t.Any) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    findings, unknown = run(host, **options)
    return [f for f in findings if f["id"] in MY_IDS], [u for u in unknown if u["check"] in MY_IDS]


def ids(findings: list[dict[str, t.Any]]) -> list[tuple[str, int | None]]:
    return [(f["id"], f["scope"].get("session")) for f in findings]


def expected(check_id: str, scope: dict[str, t.Any], evidence: list[dict[str, t.Any]], summary: str,
             action: str | None = None, port: int | None = None) -> dict[str, t.Any]:
    entry = CATALOGUE[check_id]
    message = FAULT_MESSAGES[entry.fault]
    escalation = None
    if entry.escalation is not None:
        escalation = {"to": "National Service Desk", "phone": "0300 303 5035", "why": entry.escalation.why}
    return {"id": check_id, "fault": entry.fault,
            "ers_message": message.replace("<port>", str(port)) if port is not None else message,
            "severity": entry.severity, "scope": scope, "browser": None, "summary": summary, "evidence": evidence,
            "remedy": {"automatic": entry.remedy.automatic, "role": entry.remedy.role,
                       "action": action or entry.remedy.action, "managed_by_gpo": False},
            "escalation": escalation}


def drop_ia_processes(host: dict[str, t.Any], *sessions: int) -> None:
    host["processes"] = [p for p in host["processes"]
                         if not (p["name"] == "IdentityAgent.exe" and p["session"] in sessions)]


def drop_ia(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != IA_GUID]
    host["files"].pop(IA_EXE)
    drop_ia_processes(host, 1, 2)


def ia_process(host: dict[str, t.Any], session: int) -> dict[str, t.Any]:
    return next(p for p in host["processes"] if p["name"] == "IdentityAgent.exe" and p["session"] == session)


def cm_process(host: dict[str, t.Any], session: int) -> dict[str, t.Any]:
    return next(p for p in host["processes"] if p["image"] == CM_EXE and p["session"] == session)


def process_evidence(p: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"pid": p["pid"], "name": p["name"], "image": p["image"], "session": p["session"], "version": p["version"]}


# -- the healthy hosts and the product generation --------------------------------------------------

def test_every_id_of_faults_2_and_3_has_an_evaluator() -> None:
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import EVALUATORS

    assert set(MY_IDS) <= set(EVALUATORS)
    assert {CATALOGUE[i].fault for i in MY_IDS} == {2, 3}


@pytest.mark.parametrize("make", [legacy_host, cm4_host], ids=["cm1", "cm4"])
def test_healthy_hosts_get_nothing(make: t.Callable[[], dict[str, t.Any]]) -> None:
    assert run(make()) == ([], [])


@pytest.mark.parametrize("make", [legacy_host, cm4_host], ids=["cm1", "cm4"])
def test_a_report_on_a_healthy_host_raises_only_the_report_findings(make: t.Callable[[], dict[str, t.Any]]) -> None:
    findings, unknown = run(make(), ers_report=FAULT2)
    assert unknown == []
    assert ids(findings) == ([("CM_NOT_CONNECTED", 1), ("CM_NOT_CONNECTED", 2)] if make is legacy_host else [])


def _entry(name: str, version: str | None) -> dict[str, t.Any]:
    return {"name": name, "version": version}


@pytest.mark.parametrize(("products", "errors", "generation"), [
    ({"cm": [_entry("NHS Credential Management", "1.4.2.0")]}, [], "cm1"),
    ({"cm": [_entry("NHS Credential Management", "1.3.1.0")], "identity_hub": [_entry("NHS Identity Hub", "1.1")]},
     [], "cm1"),
    ({"cm": [_entry("NHS Credential Management", "2.0.0.0")]}, [], "cm1"),
    ({"cm": [_entry("NHS Credential Management", "3.0.1.0")]}, [], "cm3plus"),
    ({"cm": [_entry("NHS Credential Management", "4.1.1.0")]}, [], "cm3plus"),
    ({"cm": [_entry("NHS Credential Management", "1.4.2.0"), _entry("NHS Credential Management", "4.1.1.0")]}, [],
     "cm3plus"),  # the newest decides
    ({"cm": [_entry("NHS Credential Management", "v4.1")]}, [], "cm3plus"),
    ({"cm": [_entry("NHS Credential Management", None)], "smartcard_connect": [_entry("NHS Smartcard Connect", "4")]},
     [], "cm3plus"),
    ({"cm": [_entry("NHS Credential Management", "latest")], "identity_agent": [_entry("NHS Identity Agent", "2")]},
     [], "cm1"),
    ({"cm": [_entry("NHS Credential Management", "latest")]}, [], None),
    ({"identity_hub": [_entry("NHS Identity Hub", "1.1.0.0")]}, [], "identity_hub"),
    ({}, [], "none"),
    ({}, ["HKLM\\SOFTWARE\\WOW6432Node\\...\\Uninstall: access_denied: no"], None),
    ({"cm": [_entry("NHS Credential Management", "1.4.2.0")]}, ["HKLM\\...: access_denied: no"], "cm1"),
])
def test_product_generation(products: dict[str, t.Any], errors: list[str], generation: str | None) -> None:
    result = product_generation(products, errors)
    assert result["generation"] == generation
    assert (result["reason"] is None) == (generation is not None)


def test_an_unknown_generation_makes_every_check_unknown() -> None:
    host = legacy_host()
    host["products"][1]["values"]["DisplayVersion"] = sz("latest")
    drop_ia(host)
    findings, unknown = mine(host)
    assert findings == []
    assert [u["check"] for u in unknown] == ["IA_NOT_INSTALLED", "IA_VERSION_RETIRED", "IA_NOT_RUNNING",
                                             "SMARTCARD_SERVICE_STOPPED", "NO_SMARTCARD_READER"]
    assert unknown[0]["reason"].startswith("cannot tell which NHS Credential Management generation is installed: "
                                           "its DisplayVersion ('latest') is not a version")


def test_no_cm_means_no_identity_agent_checks() -> None:
    host = cm4_host()
    host["products"] = host["products"][:1]
    host["readers"] = []
    host["services"] = host["services"][:1]
    assert mine(host, ers_report=FAULT2) == ([], [])


# -- IA_NOT_INSTALLED ------------------------------------------------------------------------------

def test_ia_not_installed() -> None:
    host = legacy_host()
    drop_ia(host)
    findings, unknown = mine(host)
    assert unknown == []
    assert findings == [expected(
        "IA_NOT_INSTALLED", MACHINE,
        [CM_PRODUCT,
         {"path": UNINSTALL_64, "exists": True, "subkeys": 2, "searched": "DisplayName 'NHS Identity Agent*', "
          "'NHS Digital Identity Agent*', 'HSCIC Identity Agent*'", "matches": 0},
         {"path": UNINSTALL_32, "exists": True, "subkeys": 2, "searched": "DisplayName 'NHS Identity Agent*', "
          "'NHS Digital Identity Agent*', 'HSCIC Identity Agent*'", "matches": 0},
         {"path": "C:\\Program Files (x86)\\HSCIC\\Identity Agent\\IdentityAgent.exe", "exists": False},
         {"path": "C:\\Program Files\\HSCIC\\Identity Agent\\IdentityAgent.exe", "exists": False},
         {"processes": ["IdentityAgent.exe"], "running": 0}],
        "NHS Credential Management 1.4.2.0 works through the NHS Identity Agent, but no Identity Agent is "
        "installed")]


@pytest.mark.parametrize("keep", ["uninstall", "file", "process"])
def test_any_trace_of_the_identity_agent_counts_as_installed(keep: str) -> None:
    host = legacy_host()
    entry = next(p for p in host["products"] if p["subkey"] == IA_GUID)
    running = ia_process(host, 1)
    drop_ia(host)
    if keep == "uninstall":
        host["products"].append(entry)
    elif keep == "file":
        host["files"][IA_EXE] = "2.4.10.0"
    else:
        host["processes"].append(running)
    assert "IA_NOT_INSTALLED" not in [f["id"] for f in mine(host)[0]]


def test_ia_not_installed_on_an_identity_hub_host() -> None:
    host = legacy_host()
    host["products"][1] = product("{HUB-1}", "NHS Identity Hub", "1.1.0.0", location="C:\\Hub\\")
    drop_ia(host)
    findings, _unknown = mine(host)
    assert [f["id"] for f in findings] == ["IA_NOT_INSTALLED"]
    assert findings[0]["summary"].startswith("NHS Identity Hub 1.1.0.0 works through the NHS Identity Agent")


def test_ia_not_installed_is_unknown_when_the_uninstall_keys_are_unreadable() -> None:
    host = legacy_host()
    drop_ia(host)
    host["failures"]["uninstall_64"] = denied()
    findings, unknown = mine(host)
    assert findings == []
    assert unknown[0] == {"check": "IA_NOT_INSTALLED", "reason": "cannot tell whether the NHS Identity Agent is "
                          f"installed: {UNINSTALL_64}: access_denied: Access is denied."}


def test_ia_paths_option_is_where_the_file_is_looked_for() -> None:
    host = legacy_host()
    drop_ia(host)
    host["files"]["D:\\Apps\\IA\\IdentityAgent.exe"] = "2.4.10.0"
    assert [f["id"] for f in mine(host)[0]] == ["IA_NOT_INSTALLED"]
    # installed there, but not running in either session
    found = mine(host, ia_paths=["D:\\Apps\\IA\\IdentityAgent.exe"])[0]
    assert ids(found) == [("IA_NOT_RUNNING", 1), ("IA_NOT_RUNNING", 2)]


# -- IA_VERSION_RETIRED ----------------------------------------------------------------------------

def test_ia_version_retired_from_the_running_executable() -> None:
    host = legacy_host()
    for p in host["processes"]:
        if p["name"] == "IdentityAgent.exe":
            p["version"] = "2.4.6.0"
    host["files"][IA_EXE] = "2.4.6.0"
    findings, unknown = mine(host)
    assert unknown == []
    assert findings == [expected(
        "IA_VERSION_RETIRED", MACHINE,
        [process_evidence(ia_process(host, 1)), process_evidence(ia_process(host, 2)),
         {"path": IA_EXE, "exists": True, "version": "2.4.6.0"}, {"minimum_version": "2.4.10.0"}],
        "The NHS Identity Agent 2.4.6.0 is older than 2.4.10.0: retired and blocked by NHS")]


@pytest.mark.parametrize(("version", "retired"), [
    ("2.4.10.0", False), ("2.4.10", False), ("2.4.11.0", False), ("2.5", False), ("3.0.0.0", False),
    ("2.4.9.99", True), ("2.4.6.0", True), ("2.4.5.0", True), ("2.1.2.16", True), ("2.4", True),
])
def test_ia_version_boundary(version: str, retired: bool) -> None:
    host = legacy_host()
    host["files"][IA_EXE] = version
    drop_ia_processes(host, 1, 2)
    host["processes"] += [process(9100 + s, "IdentityAgent.exe", IA_EXE, s, None, version) for s in (1, 2)]
    assert ("IA_VERSION_RETIRED" in [f["id"] for f in mine(host)[0]]) is retired


def test_the_executables_version_wins_over_the_uninstall_entry() -> None:
    host = legacy_host()
    entry = next(p for p in host["products"] if p["subkey"] == IA_GUID)
    entry["values"]["DisplayVersion"] = sz("2.4.6.0")
    assert mine(host) == ([], [])


def test_the_uninstall_version_is_used_when_no_executables_version_is_known() -> None:
    host = legacy_host()
    entry = next(p for p in host["products"] if p["subkey"] == IA_GUID)
    entry["values"]["DisplayVersion"] = sz("2.4.6.0")
    host["files"].pop(IA_EXE)
    for p in host["processes"]:
        if p["name"] == "IdentityAgent.exe":
            p["version"] = None
    findings, _unknown = mine(host)
    assert [f["id"] for f in findings] == ["IA_VERSION_RETIRED"]
    assert findings[0]["evidence"][0] == {"path": f"{UNINSTALL_32}\\{IA_GUID}", "name": "DisplayVersion",
                                          "type": "REG_SZ", "data": "2.4.6.0"}


def test_no_readable_version_is_unknown() -> None:
    host = legacy_host()
    entry = next(p for p in host["products"] if p["subkey"] == IA_GUID)
    entry["values"].pop("DisplayVersion")
    host["files"][IA_EXE] = None
    for p in host["processes"]:
        if p["name"] == "IdentityAgent.exe":
            p["version"] = None
    assert mine(host)[1] == [{"check": "IA_VERSION_RETIRED",
                              "reason": "the NHS Identity Agent is installed but its version cannot be read"}]


def test_ia_min_version_option() -> None:
    assert [f["id"] for f in mine(legacy_host(), ia_min_version="2.5.0.0")[0]] == ["IA_VERSION_RETIRED"]


def test_an_old_identity_agent_left_on_a_cm4_host_is_not_reported() -> None:
    host = with_identity_agent(cm4_host(), version="2.4.6.0")
    assert mine(host) == ([], [])


# -- IA_NOT_RUNNING --------------------------------------------------------------------------------

def test_ia_not_running_in_one_session() -> None:
    host = legacy_host()
    drop_ia_processes(host, 2)
    findings, unknown = mine(host)
    assert unknown == []
    assert findings == [expected(
        "IA_NOT_RUNNING", USER2,
        [{"session": 2, "user": "NHS\\akhan",
          "cm_processes": [process_evidence(cm_process(host, 2))], "identity_agent_processes": []},
         {"ia_process_names": ["IdentityAgent.exe"]}],
        "NHS Credential Management runs in session 2 (NHS\\akhan) but the Identity Agent does not",
        action="Start the NHS Identity Agent in session 2 (NHS\\akhan)")]


def test_a_session_without_cm_gets_cm_not_running_not_ia_not_running() -> None:
    host = legacy_host()
    drop_ia_processes(host, 2)
    host["processes"] = [p for p in host["processes"] if not (p["image"] == CM_EXE and p["session"] == 2)]
    findings, _unknown = run(host)
    assert ids(findings) == [("CM_NOT_RUNNING", 2)]


def test_ia_not_running_is_not_reported_when_it_is_not_installed() -> None:
    host = legacy_host()
    drop_ia(host)
    assert [f["id"] for f in mine(host)[0]] == ["IA_NOT_INSTALLED"]


def test_ia_process_names_option() -> None:
    host = legacy_host()
    for p in host["processes"]:
        if p["name"] == "IdentityAgent.exe":
            p["name"], p["image"] = "NHSIA.exe", "C:\\IA\\NHSIA.exe"
    assert ids(mine(host)[0]) == [("IA_NOT_RUNNING", 1), ("IA_NOT_RUNNING", 2)]
    assert mine(host, ia_process_names=["nhsia"]) == ([], [])


@pytest.mark.parametrize("read", ["sessions", "processes"])
def test_ia_not_running_is_unknown_when_sessions_or_processes_are_unreadable(read: str) -> None:
    host = legacy_host()
    host["failures"][read] = denied()
    unknown = {u["check"]: u["reason"] for u in mine(host)[1]}
    assert unknown["IA_NOT_RUNNING"] == f"cannot list {read}: access_denied: Access is denied."


def test_nobody_logged_on_no_per_session_finding() -> None:
    host = legacy_host()
    host["sessions"] = []
    host["processes"] = [p for p in host["processes"] if p["session"] == 0]
    assert mine(host, ers_report=FAULT2) == ([], [])
    assert mine(host, ers_report=FAULT3) == ([], [])


def test_no_session_with_unknown_process_owners_is_unknown() -> None:
    host = legacy_host()
    host["sessions"] = []
    host["process_user_error"] = "OpenProcessToken failed"
    findings, unknown = mine(host, ers_report=FAULT2)
    assert findings == []
    reason = "the owners of the processes could not be read (OpenProcessToken failed), so who is logged on is not known"
    assert unknown == [{"check": "IA_NOT_RUNNING", "reason": reason}, {"check": "CM_NOT_CONNECTED", "reason": reason}]
    host["process_user_error"] = None
    assert mine(host, ers_report=FAULT2) == ([], [])


# -- CM_NOT_CONNECTED and USER_NOT_LOGGED_IN (only from a report) -----------------------------------

def _report_evidence(host: dict[str, t.Any], session: int, user: str, message: str,
                     port: int | None, cm: bool = True) -> list[dict[str, t.Any]]:
    return [{"ers_report": message, "reported_port": port, "reported_version": None},
            {"session": session, "user": user,
             "cm_processes": [process_evidence(cm_process(host, session))] if cm else [],
             "identity_agent_processes": [process_evidence(ia_process(host, session))]}]


def test_cm_not_connected_for_every_session_with_cm_and_the_identity_agent() -> None:
    host = legacy_host()
    findings, _unknown = mine(host, ers_report=FAULT2)
    action = ("Restart the Identity Agent and NHS Credential Management in {} once; if the fault persists, "
              "escalate to the National Service Desk")
    assert findings == [
        expected("CM_NOT_CONNECTED", USER1,
                 _report_evidence(host, 1, "NHS\\jsmith", FAULT2, 43485),
                 "e-RS reports that NHS Credential Management is not connected, while it and the Identity Agent "
                 "both run in session 1 (NHS\\jsmith)", action=action.format("session 1 (NHS\\jsmith)"), port=43485),
        expected("CM_NOT_CONNECTED", USER2,
                 _report_evidence(host, 2, "NHS\\akhan", FAULT2, 43485),
                 "e-RS reports that NHS Credential Management is not connected, while it and the Identity Agent "
                 "both run in session 2 (NHS\\akhan)", action=action.format("session 2 (NHS\\akhan)"), port=43485),
    ]
    assert findings[0]["escalation"]["to"] == "National Service Desk"
    assert findings[0]["ers_message"] == FAULT2


def test_the_reported_port_picks_the_session_whose_cm_listens_on_it() -> None:
    host = legacy_host()
    listener = {"address": "127.0.0.1", "port": 43485, "pid": cm_process(host, 2)["pid"]}
    host["listeners"].append(listener)
    findings, _unknown = mine(host, ers_report=FAULT2)
    assert ids(findings) == [("CM_NOT_CONNECTED", 2)]
    assert findings[0]["evidence"][-1] == {"tcp_listeners": [43485], "found": [listener]}


def test_a_reported_port_nobody_listens_on_keeps_every_session() -> None:
    host = legacy_host()
    findings, _unknown = mine(host, ers_report=FAULT2.replace("43485", "50001"))
    assert ids(findings) == [("CM_NOT_CONNECTED", 1), ("CM_NOT_CONNECTED", 2)]
    assert findings[0]["ers_message"] == FAULT2.replace("43485", "50001")


def test_cm_not_connected_needs_cm_and_the_identity_agent_running() -> None:
    host = legacy_host()
    drop_ia_processes(host, 2)
    findings, _unknown = mine(host, ers_report=FAULT2)
    assert ids(findings) == [("IA_NOT_RUNNING", 2), ("CM_NOT_CONNECTED", 1)]


def test_no_report_or_another_fault_no_cm_not_connected() -> None:
    host = legacy_host()
    assert mine(host) == ([], [])
    assert "CM_NOT_CONNECTED" not in [f["id"] for f in mine(host, ers_report=FAULT3)[0]]
    assert mine(host, ers_report="NHS Credential Management cannot be found") == ([], [])


def test_user_not_logged_in_where_the_identity_agent_runs() -> None:
    host = legacy_host()
    host["processes"] = [p for p in host["processes"] if not (p["image"] == CM_EXE and p["session"] == 2)]
    findings, _unknown = mine(host, ers_report=FAULT3)
    assert [f for f in findings if f["id"] == "USER_NOT_LOGGED_IN"] == [
        expected("USER_NOT_LOGGED_IN", USER1, _report_evidence(host, 1, "NHS\\jsmith", FAULT3, 55000),
                 "e-RS reports that NHS Credential Management cannot log in; the Identity Agent runs in session 1 "
                 "(NHS\\jsmith), but whether the user is logged in to it cannot be read remotely",
                 action="Ask NHS\\jsmith to insert their smartcard and enter their passcode (session 1)", port=55000),
        expected("USER_NOT_LOGGED_IN", USER2,
                 _report_evidence(host, 2, "NHS\\akhan", FAULT3, 55000, cm=False),
                 "e-RS reports that NHS Credential Management cannot log in; the Identity Agent runs in session 2 "
                 "(NHS\\akhan), but whether the user is logged in to it cannot be read remotely",
                 action="Ask NHS\\akhan to insert their smartcard and enter their passcode (session 2)", port=55000),
    ]
    assert findings[0]["severity"] == "info"


def test_user_not_logged_in_not_where_the_identity_agent_does_not_run() -> None:
    host = legacy_host()
    drop_ia_processes(host, 1)
    findings, _unknown = mine(host, ers_report=FAULT3)
    assert ids(findings) == [("IA_NOT_RUNNING", 1), ("USER_NOT_LOGGED_IN", 2)]


# -- SMARTCARD_SERVICE_STOPPED ---------------------------------------------------------------------

def test_smartcard_service_stopped() -> None:
    host = legacy_host()
    service = host["services"][1]
    service.update(state="stopped", pid=0)
    findings, _unknown = mine(host)
    assert findings == [expected(
        "SMARTCARD_SERVICE_STOPPED", MACHINE,
        [{"service": "SCardSvr", "display_name": "Smart Card", "state": "stopped", "start_mode": "manual",
          "image": service["image"]}],
        "The Smart Card service (SCardSvr) is stopped, not running")]


def test_smartcard_service_missing() -> None:
    host = legacy_host()
    host["services"] = host["services"][:1]
    findings, _unknown = mine(host)
    assert findings == [expected(
        "SMARTCARD_SERVICE_STOPPED", MACHINE, [{"service": "SCardSvr", "found": False}],
        "The Smart Card service (SCardSvr) is not installed, so the Identity Agent cannot read smartcards",
        action="Repair Windows' Smart Card service (SCardSvr); it is part of Windows")]


def test_smartcard_service_near_misses() -> None:
    host = cm4_host()
    host["services"][1]["state"] = "stopped"
    assert mine(host) == ([], [])  # no Identity Agent in a CM 4 set-up
    host = legacy_host()
    host["failures"]["services"] = denied()
    assert {u["check"]: u["reason"] for u in mine(host)[1]}["SMARTCARD_SERVICE_STOPPED"] == (
        "cannot query services: access_denied: Access is denied.")


# -- NO_SMARTCARD_READER ---------------------------------------------------------------------------

@pytest.mark.parametrize("readers", [[], None], ids=["empty", "no key"])
def test_no_smartcard_reader(readers: list[str] | None) -> None:
    host = legacy_host()
    host["readers"] = readers
    findings, _unknown = mine(host)
    assert findings == [expected(
        "NO_SMARTCARD_READER", MACHINE, [{"path": CALAIS_READERS, "exists": readers is not None, "subkeys": []}],
        f"No smartcard reader is registered with Windows ({CALAIS_READERS} lists none)")]


def test_no_smartcard_reader_near_misses() -> None:
    host = legacy_host()
    host["readers"] = []
    assert mine(host, smartcard_reader_required=False) == ([], [])
    host = cm4_host()
    host["readers"] = []
    assert mine(host) == ([], [])
    host = legacy_host()
    host["failures"]["smartcard_readers"] = denied()
    assert mine(host)[1] == [{"check": "NO_SMARTCARD_READER",
                              "reason": f"cannot read {CALAIS_READERS}: access_denied: Access is denied."}]
