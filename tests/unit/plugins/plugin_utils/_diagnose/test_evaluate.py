"""The checks of diagnose, one id at a time: a case that fires (exact shape) and near misses."""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
from nhs_cm_hostsim import (
    CM_DIR,
    CM_EXE,
    CM_GUID,
    PORT_SERVICE_EXE,
    denied,
    dword,
    healthy_host,
    process,
    product,
    results_for,
    session_processes,
    sz,
    with_identity_agent,
)

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    CATALOGUE,
    FAULT_MESSAGES,
    ID,
    make_finding,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import EVALUATORS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.base import CheckResult
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import options_with_defaults
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import icon_dir, service_binary
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import (
    NDP_V4_FULL,
    REBOOT_KEYS,
    UNINSTALL_32,
    UNINSTALL_64,
    plan_reads,
)

#: The repository's finding table (tools/gen_findings_docs.py writes it from the catalogue).
FINDINGS_MD = Path(__file__).resolve().parents[5] / "docs" / "findings.md"
FAULT1 = FAULT_MESSAGES[1]
CM_KEY = f"{UNINSTALL_32}\\{CM_GUID}"
MACHINE = {"kind": "machine"}
FIRST_SLICE = ["CM_NOT_INSTALLED", "CM_LEGACY_IDENTITY_HUB", "CM_MULTIPLE_VERSIONS", "DOTNET48_MISSING",
               "PORT_SERVICE_MISSING", "PORT_SERVICE_STOPPED", "PORT_SERVICE_NOT_AUTOMATIC",
               "PORT_SERVICE_NOT_LISTENING", "CM_NOT_RUNNING", "CM_REBOOT_PENDING"]


def run(host: dict[str, t.Any], **options: t.Any) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    opts = options_with_defaults(options)
    return evaluate(build_facts(results_for(host, opts), opts), opts)


def ids(findings: list[dict[str, t.Any]]) -> list[str]:
    return [finding["id"] for finding in findings]


def only(findings: list[dict[str, t.Any]], check_id: str) -> dict[str, t.Any]:
    (finding,) = [f for f in findings if f["id"] == check_id]
    return finding


def expected(check_id: str, evidence: list[dict[str, t.Any]], summary: str, scope: dict[str, t.Any] | None = None,
             severity: str = "error", automatic: bool = False, role: str | None = None,
             action: str | None = None) -> dict[str, t.Any]:
    entry = CATALOGUE[check_id]
    return {"id": check_id, "fault": 1, "ers_message": FAULT1, "severity": severity, "scope": scope or MACHINE,
            "browser": None, "summary": summary, "evidence": evidence,
            "remedy": {"automatic": automatic, "role": role, "action": action or entry.remedy.action,
                       "managed_by_gpo": False},
            "escalation": None}


def cm_product(**changes: t.Any) -> dict[str, t.Any]:
    defaults = {"location": CM_DIR + "\\", "icon": CM_EXE + ",0"}
    defaults.update(changes)
    return product(CM_GUID, "NHS Credential Management", defaults.pop("version", "4.1.0.12"), **defaults)


@pytest.fixture
def host() -> dict[str, t.Any]:
    return healthy_host()


# -- the catalogue ----------------------------------------------------------------------------

def test_every_first_slice_id_has_an_evaluator() -> None:
    assert list(EVALUATORS)[:len(FIRST_SLICE)] == FIRST_SLICE  # other slices register after these


def test_the_documented_table_is_the_catalogue_with_its_severities() -> None:
    rows = re.findall(r"^\| \[([A-Z0-9_]+)\]\(findings/[^)]+\) \| [^|]+ \| (error|warning|info) \|",
                      FINDINGS_MD.read_text(encoding="utf-8"), re.MULTILINE)
    assert set(rows) == {(e.id, e.severity) for e in CATALOGUE.values()}


def test_catalogue_entries_are_complete() -> None:
    for entry in CATALOGUE.values():
        assert entry.summary and entry.remedy.action
        assert entry.remedy.automatic == (entry.remedy.role is not None)
    escalated = {i: e.escalation for i, e in CATALOGUE.items() if e.escalation}
    assert list(escalated) == ["CM_NOT_CONNECTED"]
    escalation = escalated["CM_NOT_CONNECTED"]
    assert (escalation.to, escalation.phone) == ("National Service Desk", "0300 303 5035")


def test_make_finding_has_every_field_of_findings_md() -> None:
    finding = make_finding(ID.CM_NOT_CONNECTED, MACHINE, [], port=43485)
    assert list(finding) == ["id", "fault", "ers_message", "severity", "scope", "browser", "summary", "evidence",
                             "remedy", "escalation"]
    assert list(finding["remedy"]) == ["automatic", "role", "action", "managed_by_gpo"]
    assert finding["ers_message"] == "NHS Credential Management is running on port 43485 but is not connected"
    assert finding["escalation"]["phone"] == "0300 303 5035"
    assert make_finding(ID.CM_NOT_CONNECTED, MACHINE, [])["ers_message"].startswith(
        "NHS Credential Management is running on port <port>")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"id": "NO_SUCH_ID", "scope": MACHINE, "evidence": []}, "unknown finding id 'NO_SUCH_ID'"),
    ({"id": "CM_NOT_RUNNING", "scope": MACHINE, "evidence": [], "browser": "safari"}, "browser must be one of"),
    ({"id": "CM_NOT_RUNNING", "scope": {"kind": "pc"}, "evidence": []}, "scope kind must be"),
])
def test_make_finding_refuses_what_the_spec_does_not_allow(kwargs: dict[str, t.Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_finding(**kwargs)


# -- healthy hosts ------------------------------------------------------------------------------

def test_a_healthy_host_has_no_finding_and_nothing_unknown(host: dict[str, t.Any]) -> None:
    assert run(host) == ([], [])


def test_a_healthy_host_with_nobody_logged_on(host: dict[str, t.Any]) -> None:
    host["sessions"] = []
    assert run(host) == ([], [])


def test_a_host_without_cm_where_cm_is_not_required(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID]
    host["services"] = host["services"][1:]
    host["dotnet"] = None
    host["os"]["version"] = "10.0.17763"
    assert run(host, cm_required=False) == ([], [])


# -- CM_NOT_INSTALLED -----------------------------------------------------------------------------

def test_cm_not_installed(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID]
    findings, unknown = run(host)
    assert unknown == []
    searched = "DisplayName 'NHS Credential Management*' or 'NHS Identity Hub*'"
    assert findings == [expected(
        "CM_NOT_INSTALLED",
        [{"path": UNINSTALL_64, "exists": True, "subkeys": 2, "searched": searched, "matches": 0},
         {"path": UNINSTALL_32, "exists": True, "subkeys": 1, "searched": searched, "matches": 0}],
        "Neither NHS Credential Management nor NHS Identity Hub is installed")]


@pytest.mark.parametrize("entry", [
    cm_product(view="64"),
    product(CM_GUID, "nhs credential management 4.1", "4.1.0.12", location=CM_DIR),
    product("{HUB}", "NHS Identity Hub", "1.0.0.0", location="C:\\Program Files (x86)\\NHS Identity Hub"),
])
def test_cm_is_found_in_either_view_and_any_case(host: dict[str, t.Any], entry: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID] + [entry]
    assert "CM_NOT_INSTALLED" not in ids(run(host)[0])


def test_cm_not_installed_is_not_reported_when_cm_is_not_required(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID]
    assert run(host, cm_required=False) == ([], [])


def test_a_port_service_entry_alone_is_not_cm(host: dict[str, t.Any]) -> None:
    host["products"] = [product("{PS}", "NHS Port Service", "4.1.0.12")]
    assert ids(run(host)[0]) == ["CM_NOT_INSTALLED"]


def test_an_unreadable_view_makes_cm_not_installed_unknown(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID]
    host["failures"]["uninstall_32"] = denied("Requested registry access is not allowed.")
    findings, unknown = run(host)
    assert findings == []
    reason = ("cannot tell whether NHS Credential Management is installed: "
              f"{UNINSTALL_32}: access_denied: Requested registry access is not allowed.")
    assert {"check": "CM_NOT_INSTALLED", "reason": reason} in unknown


def test_an_unreadable_view_does_not_matter_when_cm_is_found_in_the_other(host: dict[str, t.Any]) -> None:
    host["failures"]["uninstall_64"] = denied()
    findings, unknown = run(host)
    assert findings == []
    assert [u["check"] for u in unknown] == ["CM_MULTIPLE_VERSIONS"]


# -- CM_LEGACY_IDENTITY_HUB -----------------------------------------------------------------------

HUB = product("{HUB-1}", "NHS Identity Hub", "1.2.0.0", location="C:\\Program Files (x86)\\NHS Digital\\Identity Hub")


def test_only_identity_hub_installed(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID] + [HUB]
    with_identity_agent(host)  # Identity Hub works through the Identity Agent
    for proc in host["processes"]:
        if proc["image"] == CM_EXE:
            proc["image"] = "C:\\Program Files (x86)\\NHS Digital\\Identity Hub\\IdentityHub.exe"
    findings, unknown = run(host)
    key = f"{UNINSTALL_32}\\{{HUB-1}}"
    assert (findings, unknown) == ([expected(
        "CM_LEGACY_IDENTITY_HUB",
        [{"path": key, "name": "DisplayName", "type": "REG_SZ", "data": "NHS Identity Hub"},
         {"path": key, "name": "DisplayVersion", "type": "REG_SZ", "data": "1.2.0.0"}],
        "Only the deprecated NHS Identity Hub (1.2.0.0) is installed, not NHS Credential Management",
        severity="warning")], [])


def test_identity_hub_next_to_cm_is_not_legacy_only(host: dict[str, t.Any]) -> None:
    host["products"].append(HUB)
    assert ids(run(host)[0]) == ["CM_MULTIPLE_VERSIONS"]


# -- CM_MULTIPLE_VERSIONS -------------------------------------------------------------------------

def test_two_cm_versions(host: dict[str, t.Any]) -> None:
    old = product("{OLD}", "NHS Credential Management", "1.3.1.0", view="64")
    host["products"].append(old)
    findings, unknown = run(host)
    assert unknown == []
    old_key = f"{UNINSTALL_64}\\{{OLD}}"
    assert findings == [expected(
        "CM_MULTIPLE_VERSIONS",
        [{"path": old_key, "name": "DisplayName", "type": "REG_SZ", "data": "NHS Credential Management"},
         {"path": old_key, "name": "DisplayVersion", "type": "REG_SZ", "data": "1.3.1.0"},
         {"path": CM_KEY, "name": "DisplayName", "type": "REG_SZ", "data": "NHS Credential Management"},
         {"path": CM_KEY, "name": "DisplayVersion", "type": "REG_SZ", "data": "4.1.0.12"}],
        "2 NHS Credential Management / Identity Hub versions are installed: NHS Credential Management 1.3.1.0; "
        "NHS Credential Management 4.1.0.12",
        severity="warning")]


@pytest.mark.parametrize("extra", [
    product("{SAME}", "NHS Credential Management", "4.1.0.12", view="64"),
    product("{SAME}", "nhs credential management ", "4.1.0.12", view="64"),
    product("{MSI}", "NHS Credential Management", "4.1.0.77", system_component=True),
    product("{IA}", "NHS Identity Agent", "2.4.10.0"),
])
def test_not_multiple_versions(host: dict[str, t.Any], extra: dict[str, t.Any]) -> None:
    host["products"].append(extra)
    assert run(host) == ([], [])


# -- DOTNET48_MISSING -----------------------------------------------------------------------------

def test_dotnet_472(host: dict[str, t.Any]) -> None:
    host["dotnet"]["Release"] = dword(461814)
    assert run(host) == ([expected(
        "DOTNET48_MISSING", [{"path": NDP_V4_FULL, "name": "Release", "type": "REG_DWORD", "data": 461814}],
        ".NET Framework 4.8 is not installed (Release 461814 < 528040)")], [])


def test_dotnet_release_exactly_528040_is_48(host: dict[str, t.Any]) -> None:
    host["dotnet"]["Release"] = dword(528040)
    assert run(host) == ([], [])


def test_dotnet_48_missing_when_cm_is_wanted_but_not_installed(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID]
    host["dotnet"]["Release"] = dword(528039)
    assert ids(run(host)[0]) == ["CM_NOT_INSTALLED", "DOTNET48_MISSING"]
    assert run(host, cm_required=False) == ([], [])


def test_dotnet_key_without_release(host: dict[str, t.Any]) -> None:
    host["dotnet"] = {"Version": sz("4.0.30319")}
    finding = only(run(host)[0], "DOTNET48_MISSING")
    assert finding["evidence"] == [{"path": NDP_V4_FULL, "name": "Release", "exists": False}]


@pytest.mark.parametrize(("version", "fires"), [("10.0.18362", False), ("10.0.22631", False),
                                                ("10.0.20348", False), ("10.0.17763", True), ("6.1.7601", True)])
def test_dotnet_key_absent_depends_on_the_os_build(host: dict[str, t.Any], version: str, fires: bool) -> None:
    host["dotnet"] = None
    host["os"]["version"] = version
    findings, unknown = run(host)
    assert unknown == []
    assert ids(findings) == (["DOTNET48_MISSING"] if fires else [])
    if fires:
        assert findings[0]["evidence"] == [
            {"path": NDP_V4_FULL, "exists": False},
            {"os": "Windows 10 Enterprise", "version": version, "build": int(version.split(".")[2])}]


def test_dotnet_unknown_when_it_cannot_be_read(host: dict[str, t.Any]) -> None:
    host["failures"]["dotnet"] = denied()
    assert run(host) == ([], [{"check": "DOTNET48_MISSING",
                               "reason": f"cannot read {NDP_V4_FULL}: access_denied: Access is denied."}])
    host["failures"] = {"os": {"ok": False, "error": "timeout", "message": "CIM timed out"}}
    host["dotnet"] = None
    assert run(host)[1] == [{"check": "DOTNET48_MISSING", "reason": f"{NDP_V4_FULL} is absent and the OS build is "
                                                                    "unknown"}]


# -- the NHS Port Service -------------------------------------------------------------------------

PORT_SERVICE = {"service": "NHSPortService", "display_name": "NHS Port Service", "state": "running",
                "start_mode": "auto", "image": f'"{PORT_SERVICE_EXE}"'}


def test_port_service_missing(host: dict[str, t.Any]) -> None:
    host["services"] = host["services"][1:]
    assert run(host) == ([expected(
        "PORT_SERVICE_MISSING",
        [{"path": CM_KEY, "name": "DisplayName", "type": "REG_SZ", "data": "NHS Credential Management"},
         {"path": CM_KEY, "name": "DisplayVersion", "type": "REG_SZ", "data": "4.1.0.12"},
         {"service_display_name": "NHS Port Service", "found": False}],
        "NHS Credential Management is installed but no service is named 'NHS Port Service'")], [])


def test_port_service_found_by_display_name_option_and_any_case(host: dict[str, t.Any]) -> None:
    host["services"][0]["display_name"] = "nhs port service"
    assert run(host) == ([], [])
    host["services"][0]["display_name"] = "NHS Port Redirection Service"
    assert ids(run(host)[0]) == ["PORT_SERVICE_MISSING"]
    assert run(host, port_service_display_name="NHS Port Redirection Service") == ([], [])


def test_port_service_missing_is_not_reported_for_identity_hub_alone(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID] + [HUB]
    with_identity_agent(host)
    host["services"] = host["services"][1:]
    host["sessions"] = []
    assert ids(run(host)[0]) == ["CM_LEGACY_IDENTITY_HUB"]


def test_services_unreadable_is_unknown(host: dict[str, t.Any]) -> None:
    host["failures"]["services"] = {"ok": False, "error": "failed", "message": "WMI is broken"}
    findings, unknown = run(host)
    assert findings == []
    assert [u["check"] for u in unknown] == ["PORT_SERVICE_MISSING", "PORT_SERVICE_STOPPED",
                                             "PORT_SERVICE_NOT_AUTOMATIC", "PORT_SERVICE_NOT_LISTENING"]
    assert unknown[0]["reason"] == "cannot query services: failed: WMI is broken"


@pytest.mark.parametrize("state", ["stopped", "start_pending", "paused"])
def test_port_service_stopped(host: dict[str, t.Any], state: str) -> None:
    host["services"][0].update(state=state, pid=0)
    host["listeners"] = host["listeners"][:1]
    host["probes"] = {}
    assert run(host) == ([expected(
        "PORT_SERVICE_STOPPED", [dict(PORT_SERVICE, state=state)],
        f"The NHS Port Service (NHSPortService) is {state}, not running",
        automatic=True, role="nhs_cm.remediation.cm_service")], [])


@pytest.mark.parametrize("mode", ["manual", "disabled"])
def test_port_service_not_automatic(host: dict[str, t.Any], mode: str) -> None:
    host["services"][0]["start_mode"] = mode
    assert run(host) == ([expected(
        "PORT_SERVICE_NOT_AUTOMATIC", [dict(PORT_SERVICE, start_mode=mode)],
        f"The NHS Port Service (NHSPortService) starts {mode}, not automatically",
        severity="warning", automatic=True, role="nhs_cm.remediation.cm_service")], [])


def test_delayed_automatic_start_is_automatic(host: dict[str, t.Any]) -> None:
    # Win32_Service reports "Auto" for automatic (delayed start); the runner says "auto".
    host["services"][0]["start_mode"] = "auto"
    assert run(host) == ([], [])


def test_port_service_not_listening(host: dict[str, t.Any]) -> None:
    host["listeners"] = [{"address": "0.0.0.0", "port": 135, "pid": 900},
                         {"address": "127.0.0.1", "port": 43485, "pid": 5004}]
    host["probes"] = {}
    refused = [{"url": f"http://localhost:{port}/PRS/GetPortNumber", "status": None, "error": "connection refused"}
               for port in (43487, 44213, 45031, 46478, 48853)]
    assert run(host) == ([expected(
        "PORT_SERVICE_NOT_LISTENING",
        [PORT_SERVICE, {"tcp_listeners": [43487, 44213, 45031, 46478, 48853], "found": []}, *refused],
        "The NHS Port Service runs but nothing listens on 43487, 44213, 45031, 46478, 48853",
        automatic=True, role="nhs_cm.remediation.cm_service")], [])


@pytest.mark.parametrize(("listeners", "probes"), [
    ([{"address": "127.0.0.1", "port": 48853, "pid": 2100}], {}),
    ([{"address": "::", "port": 44213, "pid": 2100}], {}),
    ([], {45031: {"status": 404, "body": "Not Found", "error": None}}),
])
def test_listening_on_any_prs_port_or_answering_a_probe_is_enough(host: dict[str, t.Any], listeners: list,
                                                                  probes: dict) -> None:
    host["listeners"] = listeners
    host["probes"] = probes
    assert run(host) == ([], [])


def test_not_listening_with_custom_ports(host: dict[str, t.Any]) -> None:
    assert ids(run(host, prs_ports=[44213])[0]) == ["PORT_SERVICE_NOT_LISTENING"]


def test_not_listening_from_probes_alone_when_listeners_are_unreadable(host: dict[str, t.Any]) -> None:
    host["failures"]["listeners"] = denied()
    host["probes"] = {}
    finding = only(run(host)[0], "PORT_SERVICE_NOT_LISTENING")
    assert finding["evidence"][1] == {"tcp_listeners": [43487, 44213, 45031, 46478, 48853],
                                      "error": "access_denied: Access is denied."}


def test_not_listening_is_unknown_when_neither_listeners_nor_every_probe_could_be_read(host: dict[str, t.Any]) -> None:
    host["failures"]["listeners"] = denied()
    host["failures"]["prs_probe_46478"] = {"ok": False, "error": "failed", "message": "boom"}
    host["probes"] = {}
    findings, unknown = run(host)
    assert findings == []
    reason = "cannot list TCP listeners (access_denied: Access is denied.) and not every probe ran"
    assert unknown == [{"check": "PORT_SERVICE_NOT_LISTENING", "reason": reason}]


# -- CM_NOT_RUNNING -------------------------------------------------------------------------------

def _drop_cm(host: dict[str, t.Any], session: int) -> None:
    host["processes"] = [p for p in host["processes"] if not (p["session"] == session and p["image"] == CM_EXE)]


def test_cm_not_running_in_one_session(host: dict[str, t.Any]) -> None:
    _drop_cm(host, 2)
    findings, unknown = run(host)
    assert unknown == []
    processes = [{"pid": 6000, "name": "csrss", "image": None},
                 {"pid": 6002, "name": "explorer.exe", "image": "C:\\Windows\\explorer.exe"},
                 {"pid": 6003, "name": "msedge.exe",
                  "image": "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"},
                 {"pid": 6001, "name": "winlogon.exe", "image": "C:\\Windows\\System32\\winlogon.exe"}]
    assert findings == [expected(
        "CM_NOT_RUNNING",
        [{"session": 2, "user": "NHS\\akhan", "processes": processes},
         {"cm_install_folders": [CM_DIR + "\\"], "cm_process_names": []}],
        "NHS Credential Management is not running in session 2 (NHS\\akhan)",
        scope={"kind": "user", "user": "NHS\\akhan", "sid": "S-1-5-21-1004336348-1177238915-682003330-1002",
               "session": 2},
        automatic=True, role="nhs_cm.remediation.cm_service",
        action="Start NHS Credential Management in session 2 (NHS\\akhan)")]


def test_cm_not_running_in_any_session_gives_one_finding_per_session(host: dict[str, t.Any]) -> None:
    _drop_cm(host, 1)
    _drop_cm(host, 2)
    findings = run(host)[0]
    assert [(f["id"], f["scope"]["session"], f["scope"]["user"]) for f in findings] == [
        ("CM_NOT_RUNNING", 1, "NHS\\jsmith"), ("CM_NOT_RUNNING", 2, "NHS\\akhan")]


def test_cm_matching_is_case_insensitive(host: dict[str, t.Any]) -> None:
    for proc in host["processes"]:
        if proc["image"] == CM_EXE:
            proc["image"] = CM_EXE.upper()
    assert run(host) == ([], [])


def test_cm_not_running_only_when_cm_is_installed(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID]
    _drop_cm(host, 1)
    assert ids(run(host)[0]) == ["CM_NOT_INSTALLED"]


def test_the_port_service_image_is_not_cm(host: dict[str, t.Any]) -> None:
    root = "C:\\Program Files (x86)\\NHS Digital\\"
    host["products"] = [cm_product(location=root)]
    _drop_cm(host, 2)
    host["processes"].append(process(6100, "NHSPortService.exe", PORT_SERVICE_EXE, 2, "NHS\\akhan"))
    finding = only(run(host)[0], "CM_NOT_RUNNING")
    assert finding["scope"]["session"] == 2


def test_cm_folder_falls_back_to_the_display_icon(host: dict[str, t.Any]) -> None:
    host["products"] = [cm_product(location=None, icon=f'"{CM_EXE}",0')]
    assert run(host) == ([], [])
    _drop_cm(host, 1)
    assert only(run(host)[0], "CM_NOT_RUNNING")["evidence"][1]["cm_install_folders"] == [CM_DIR + "\\"]


def test_cm_process_names_option(host: dict[str, t.Any]) -> None:
    host["products"] = [cm_product(location=None, icon=None)]
    findings, unknown = run(host)
    assert findings == []
    assert unknown == [{"check": "CM_NOT_RUNNING", "reason": "NHS Credential Management's folder is not recorded "
                        "(InstallLocation and DisplayIcon are empty) and option cm_process_names is not set"}]
    assert run(host, cm_process_names=["nhscredentialmanagement"]) == ([], [])
    assert run(host, cm_process_names=["NHSCredentialManagement.EXE"]) == ([], [])
    _drop_cm(host, 1)
    assert ids(run(host, cm_process_names=["NHSCredentialManagement.exe"])[0]) == ["CM_NOT_RUNNING"]


def test_a_session_whose_images_cannot_be_read_is_unknown(host: dict[str, t.Any]) -> None:
    _drop_cm(host, 2)
    for proc in host["processes"]:
        if proc["session"] == 2:
            proc["image"] = None
    findings, unknown = run(host)
    assert findings == []
    assert unknown == [{"check": "CM_NOT_RUNNING", "reason": "cannot read the process images of session 2 "
                        "(NHS\\akhan)"}]


def test_sessions_or_processes_unreadable_is_unknown(host: dict[str, t.Any]) -> None:
    host["failures"]["sessions"] = {"ok": False, "error": "failed", "message": "Add-Type failed"}
    assert run(host) == ([], [{"check": "CM_NOT_RUNNING", "reason": "cannot list sessions: failed: Add-Type failed"}])
    host["failures"] = {"processes": denied()}
    assert run(host) == ([], [{"check": "CM_NOT_RUNNING",
                               "reason": "cannot list processes: access_denied: Access is denied."}])


OWNERS = "OpenProcessToken failed: Access is denied"
OWNERS_UNKNOWN = f"the owners of the processes could not be read ({OWNERS}), so who is logged on is not known"


def test_no_session_with_unknown_process_owners_is_unknown_not_nobody_logged_on(host: dict[str, t.Any]) -> None:
    host["sessions"] = []
    for proc in host["processes"]:
        proc["user"] = None
    host["process_user_error"] = OWNERS
    _drop_cm(host, 1)
    assert run(host) == ([], [{"check": "CM_NOT_RUNNING", "reason": OWNERS_UNKNOWN}])
    host["process_user_error"] = None  # the same processes, owners read: nobody is logged on
    assert run(host) == ([], [])


def test_with_unknown_process_owners_the_sessions_found_are_checked_and_others_unknown(
        host: dict[str, t.Any]) -> None:
    host["process_user_error"] = OWNERS
    _drop_cm(host, 2)
    findings, unknown = run(host)
    assert [(f["id"], f["scope"]["session"]) for f in findings] == [("CM_NOT_RUNNING", 2)]
    assert unknown == [{"check": "CM_NOT_RUNNING", "reason": f"{OWNERS_UNKNOWN}: sessions other than 1, 2 were "
                        "not checked"}]
    facts = build_facts(results_for(host, options_with_defaults({})), options_with_defaults({}))
    assert facts["process_owners_error"] == OWNERS


def test_a_new_session_without_cm(host: dict[str, t.Any]) -> None:
    host["sessions"].append({"id": 3, "user": "DESK01\\locum", "sid": None})
    host["processes"] += session_processes(3, "DESK01\\locum", 7000, cm=False)
    finding = only(run(host)[0], "CM_NOT_RUNNING")
    assert finding["scope"] == {"kind": "user", "user": "DESK01\\locum", "sid": None, "session": 3}


# -- CM_REBOOT_PENDING ----------------------------------------------------------------------------

CBS_KEY = REBOOT_KEYS[0][1]
PFRO_KEY = REBOOT_KEYS[2][1]
UPDATES_KEY = REBOOT_KEYS[3][1]


def test_reboot_pending_from_component_based_servicing(host: dict[str, t.Any]) -> None:
    host["reboot"][CBS_KEY] = {}
    assert run(host) == ([expected(
        "CM_REBOOT_PENDING", [{"path": CBS_KEY, "exists": True, "reason": "key exists"}],
        f"NHS Credential Management is installed and Windows reports a pending reboot ({CBS_KEY})",
        severity="info")], [])


def test_reboot_pending_from_file_renames_and_rename(host: dict[str, t.Any]) -> None:
    pfro = {"type": "REG_MULTI_SZ", "data": ["\\??\\C:\\Temp\\x.dll", ""]}
    host["reboot"][PFRO_KEY] = {"PendingFileRenameOperations": pfro}
    host["computer_name"]["pending"] = "DESK99"
    evidence = only(run(host)[0], "CM_REBOOT_PENDING")["evidence"]
    assert evidence[0] == {"path": PFRO_KEY, "name": "PendingFileRenameOperations", "type": "REG_MULTI_SZ",
                           "data": pfro["data"], "reason": "value set"}
    assert evidence[1]["data"] == "DESK99"


@pytest.mark.parametrize("values", [{"UpdateExeVolatile": dword(0)}, {}])
def test_no_reboot_pending(host: dict[str, t.Any], values: dict[str, t.Any]) -> None:
    host["reboot"][UPDATES_KEY] = values
    assert run(host) == ([], [])


def test_reboot_pending_without_cm_is_not_reported(host: dict[str, t.Any]) -> None:
    host["products"] = [p for p in host["products"] if p["subkey"] != CM_GUID]
    host["reboot"][CBS_KEY] = {}
    assert run(host, cm_required=False) == ([], [])


def test_reboot_unknown_when_nothing_pending_could_be_read(host: dict[str, t.Any]) -> None:
    host["failures"]["reboot_wu"] = denied()
    assert run(host)[1] == [{"check": "CM_REBOOT_PENDING", "reason": f"cannot read: {REBOOT_KEYS[1][1]}: "
                                                                     "access_denied: Access is denied."}]


# -- evaluate ---------------------------------------------------------------------------------------

def test_a_failing_check_is_unknown_not_healthy(host: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(facts: dict, options: dict) -> CheckResult:
        raise KeyError("products")

    monkeypatch.setitem(EVALUATORS, "CM_NOT_INSTALLED", broken)
    assert run(host) == ([], [{"check": "CM_NOT_INSTALLED", "reason": "the check failed: KeyError: 'products'"}])


def test_findings_are_in_catalogue_order(host: dict[str, t.Any]) -> None:
    _drop_cm(host, 1)
    host["services"][0]["start_mode"] = "manual"
    host["dotnet"]["Release"] = dword(1)
    host["reboot"][CBS_KEY] = {}
    assert ids(run(host)[0]) == ["DOTNET48_MISSING", "PORT_SERVICE_NOT_AUTOMATIC", "CM_NOT_RUNNING",
                                 "CM_REBOOT_PENDING"]


# -- facts helpers ----------------------------------------------------------------------------------

def test_plan_is_one_call_with_every_read() -> None:
    ops = plan_reads({})
    assert [op["op"] for op in ops].count("http_get") == 5
    assert {op["op"] for op in ops} == {"reg_read", "service_query", "tcp_listeners", "http_get", "process_list",
                                        "session_list", "os_info", "file_info", "user_hives_read",
                                        "gpo_registry_settings", "browser_site_settings"}
    uninstall = [op for op in ops if op.get("key") in (UNINSTALL_64, UNINSTALL_32)]
    assert [op["depth"] for op in uninstall] == [1, 1] and all("DisplayName" in op["names"] for op in uninstall)
    assert next(op["url"] for op in ops if op["op"] == "http_get") == "http://localhost:43487/PRS/GetPortNumber"


@pytest.mark.parametrize(("image", "binary"), [
    ('"C:\\Program Files\\X\\a.exe" -k net', "C:\\Program Files\\X\\a.exe"),
    ("C:\\Program Files\\X\\a.exe -k net", "C:\\Program Files\\X\\a.exe"),
    ("C:\\Windows\\system32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe"),
    (None, None),
])
def test_service_binary(image: str | None, binary: str | None) -> None:
    assert service_binary(image) == binary


@pytest.mark.parametrize(("icon", "folder"), [
    ('"C:\\Program Files (x86)\\NHS\\cm.exe",0', "C:\\Program Files (x86)\\NHS"),
    ("C:\\NHS\\cm.exe", "C:\\NHS"),
    ("%SystemRoot%\\Installer\\{X}\\icon.exe", None),
    ("cm.ico", None),
    (None, None),
])
def test_icon_dir(icon: str | None, folder: str | None) -> None:
    assert icon_dir(icon) == folder
