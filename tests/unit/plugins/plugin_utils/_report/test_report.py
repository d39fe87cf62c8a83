"""Estate report building: what a desk engineer reads after an audit."""

from __future__ import annotations

import datetime as dt
import json

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    CATALOGUE,
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import build as _report


def _finding(fid: str, severity: str = "error", fault: int | None = 1, **scope) -> dict:
    return {"id": fid, "fault": fault, "severity": severity, "summary": f"{fid} summary",
            "scope": scope or {"kind": "machine"}, "browser": None}


def test_ok_failed_unreachable_and_missing_hosts() -> None:
    results = {
        "pc-1": {"changed": False, "findings": [], "unknown": []},
        "pc-2": {"changed": False,
                 "findings": [_finding("PORT_SERVICE_STOPPED"), _finding("PORT_SERVICE_NOT_AUTOMATIC", "warning")],
                 "unknown": [{"check": "CM_NOT_RUNNING", "reason": "access denied"}]},
        "pc-3": {"unreachable": True, "msg": "ntlm: the specified credentials were rejected\nby the server"},
        "pc-4": {"failed": True, "msg": "host replied with something that is not JSON: 'oops'"},
        "pc-5": None,
    }
    report = _report.build_report(results, generated=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    hosts = report["hosts"]
    assert list(hosts) == ["pc-1", "pc-2", "pc-3", "pc-4", "pc-5"]
    assert hosts["pc-1"] == {"status": "ok", "audited": "2026-01-02T00:00:00+00:00", "faults": [], "findings": [],
                             "waived": [], "unknown": [], "changes": [], "backups": [], "expired_waivers": [],
                             "waiver_problems": [], "error": None, "product": None, "reported_fault": None,
                             "reported_port": None}
    assert hosts["pc-2"]["faults"] == [1]
    assert hosts["pc-3"]["status"] == "failed"
    assert hosts["pc-3"]["error"] == "unreachable: ntlm: the specified credentials were rejected by the server"
    assert hosts["pc-4"]["error"].startswith("host replied with something that is not JSON")
    assert hosts["pc-5"]["error"] == "no result: the host was not audited in this run"
    assert report["generated"] == "2026-01-02T00:00:00+00:00"
    json.dumps(report)  # plain JSON


def test_warnings_alone_do_not_make_a_fault() -> None:
    entry = _report.host_entry({"findings": [_finding("CM_MULTIPLE_VERSIONS", "warning")], "unknown": []})
    assert entry["faults"] == []
    assert _report.host_line("pc-9", entry) == (
        "pc-9: warnings only, no e-RS fault now - CM_MULTIPLE_VERSIONS: CM_MULTIPLE_VERSIONS summary")


def test_summary_lines_name_fault_finding_and_session() -> None:
    results = {
        "pc-a": {"findings": [_finding("CM_NOT_RUNNING", kind="user", user="NHS\\jsmith", session=2)]},
        "pc-b": {"findings": [_finding("CM_REBOOT_PENDING", "info", None)]},
        "pc-c": {"failed": True, "msg": "timed out"},
    }
    lines = _report.summary_lines(_report.build_report(results))
    assert lines[0] == "pc-a: e-RS fault 1 - CM_NOT_RUNNING (NHS\\jsmith, session 2): CM_NOT_RUNNING summary"
    assert lines[1] == "pc-b: no e-RS fault found"
    assert lines[2] == "pc-c: FAILED - timed out"
    assert lines[3] == "Estate: 3 host(s) - 1 with no fault or warning, 1 with findings, 1 could not be audited"
    assert "  fault 1 ('NHS Credential Management cannot be found'): 1 host(s)" in lines
    assert "  CM_NOT_RUNNING (Credential Management is not running for a user): 1 host(s)" in lines


def test_write_json_atomic_leaves_no_temp_file(tmp_path) -> None:
    target = tmp_path / "deep" / "report.json"
    _report.write_json_atomic(str(target), {"hosts": {}})
    assert json.loads(target.read_text()) == {"hosts": {}}
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_waived_findings_are_apart_and_not_faults() -> None:
    waiver = {"id": "PORT_SERVICE_STOPPED", "justification": "being replaced", "approved_by": "IG lead",
              "expires": "2027-01-01", "source": "nhs_cm_waivers[0]"}
    results = {"pc-1": {"findings": [_finding("PORT_SERVICE_STOPPED"), _finding("CM_MULTIPLE_VERSIONS", "warning")]}}
    checks = {"pc-1": {"waivers": [waiver], "expired": [], "errors": []}}
    report = _report.build_report(results, waiver_checks=checks, checks=["PORT_SERVICE_STOPPED", "CM_NOT_INSTALLED"])
    entry = report["hosts"]["pc-1"]
    assert entry["faults"] == []
    assert [f["id"] for f in entry["findings"]] == ["CM_MULTIPLE_VERSIONS"]
    assert [(f["id"], f["waiver"]["approved_by"]) for f in entry["waived"]] == [("PORT_SERVICE_STOPPED", "IG lead")]
    assert report["estate"]["per_fault"] == {}
    assert report["estate"]["waived_per_finding"] == {"PORT_SERVICE_STOPPED": 1}
    assert report["checks"] == ["CM_NOT_INSTALLED", "PORT_SERVICE_STOPPED"]  # catalogue order
    assert _report.host_line("pc-1", entry).endswith("; waived: PORT_SERVICE_STOPPED")


def test_waiver_problems_are_listed_and_named_by_host() -> None:
    checks = {"pc-2": {"failed": True, "waivers": [], "expired": [],
                       "errors": ["nhs_cm_waivers[0].justification is missing: give why"]}}
    report = _report.build_report({"pc-2": {"findings": [_finding("PORT_SERVICE_STOPPED")]}}, waiver_checks=checks)
    assert report["hosts"]["pc-2"]["faults"] == [1]
    lines = _report.summary_lines(report)
    assert "pc-2: waiver problem - nhs_cm_waivers[0].justification is missing: give why" in lines
    assert report["estate"]["with_waiver_problems"] == 1


def test_changes_backups_and_passed_through_fields() -> None:
    result = {"findings": [], "product": {"name": "NHS Credential Management", "version": "4.1.1"},
              "reported_fault": {"fault": 1, "port": None}, "facts": {"big": True}}
    report = _report.build_report({"pc-3": result}, changes={"pc-3": [{"role": "cm_service"}]},
                                  backups={"pc-3": ["20261125T034000-pc-3"]})
    entry = report["hosts"]["pc-3"]
    assert entry["product"]["version"] == "4.1.1" and entry["reported_fault"] == {"fault": 1, "port": None}
    assert entry["changes"] == [{"role": "cm_service"}] and entry["backups"] == ["20261125T034000-pc-3"]
    assert "facts" not in entry
    assert _report.build_report({"pc-3": result}, include_facts=True)["hosts"]["pc-3"]["facts"] == {"big": True}


def test_estate_counts_match_the_hosts() -> None:
    results = {"a": {"findings": [_finding("PORT_SERVICE_STOPPED")]},
               "b": {"findings": [_finding("CM_MULTIPLE_VERSIONS", "warning")],
                     "unknown": [{"check": "CM_NOT_RUNNING", "reason": "denied"}]},
               "c": {"findings": []}, "d": None}
    estate = _report.build_report(results)["estate"]
    assert estate == {"hosts": 4, "audited": 3, "not_audited": 1, "with_fault": 1, "with_findings": 2,
                      "no_fault_or_warning": 1, "with_unknown": 1, "with_waived": 0, "with_waiver_problems": 0,
                      "per_fault": {"1": 1}, "per_finding": {"PORT_SERVICE_STOPPED": 1, "CM_MULTIPLE_VERSIONS": 1},
                      "waived_per_finding": {}}


def test_result_fields_leave_out_what_is_no_json_and_the_facts() -> None:
    class ErrorSummary:  # what Ansible 2.19 puts in a failed task's result
        pass

    registered = {"failed": True, "unreachable": True, "msg": "refused", "exception": ErrorSummary(),
                  "facts": {"big": 1}, "_ansible_no_log": False, "findings": [], "product": "cm3plus"}
    fields = _report.result_fields(registered)
    assert fields == {"failed": True, "unreachable": True, "msg": "refused", "findings": [], "product": "cm3plus"}
    json.dumps(fields)
    assert _report.result_fields(registered, include_facts=True)["facts"] == {"big": 1}
    assert _report.result_fields(None) is None and _report.result_fields({}) is None


def test_every_finding_id_has_a_one_line_plain_english_title() -> None:
    titles = {fid: entry.title for fid, entry in CATALOGUE.items()}
    for fid, title in titles.items():
        assert title.strip() == title and "\n" not in title and 10 <= len(title) <= 64, fid
        assert "_" not in title and title != fid, fid  # words, not the id again
    assert len(set(titles.values())) == len(titles)  # no two ids look the same to a reader


def _real(fid: str, **kwargs) -> dict:
    return make_finding(fid, kwargs.pop("scope", None) or machine_scope(), [], **kwargs)


def test_remediation_report_has_before_after_and_totals() -> None:
    jsmith = user_scope("NHS\\jsmith", "S-1-5-21-1", 2)
    before = {
        "pc-1": {"findings": [_real("PORT_SERVICE_STOPPED"), _real("CM_NOT_RUNNING", scope=jsmith),
                              _real("NO_SMARTCARD_READER"), _real("INTRANET_AUTODETECT_ON", managed_by_gpo=True)]},
        "pc-2": {"findings": [_real("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", browser="edge")]},
        "pc-3": {"findings": [_real("CM_NOT_INSTALLED")]},
    }
    after = {
        # the port service and CM were started; no reader is hardware; the GPO value came back
        "pc-1": {"findings": [_real("NO_SMARTCARD_READER"), _real("INTRANET_AUTODETECT_ON", managed_by_gpo=True)]},
        # the role failed on this host: the finding an automatic remedy should fix is still there
        "pc-2": {"findings": [_real("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", browser="edge")]},
        "pc-3": {"unreachable": True, "msg": "timed out"},
    }
    report = _report.build_report(after, before=before, generated=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    rows = {(r["id"], r["where"]): (r["before"], r["after"], r["outcome"])
            for r in report["hosts"]["pc-1"]["remediation"]["findings"]}
    assert rows == {
        ("PORT_SERVICE_STOPPED", "machine"): ("found", "not found", "fixed"),
        ("CM_NOT_RUNNING", "user NHS\\jsmith, session 2"): ("found", "not found", "fixed"),
        ("NO_SMARTCARD_READER", "machine"): ("found", "found", "needs a person"),
        ("INTRANET_AUTODETECT_ON", "machine"): ("found", "found", "needs a person"),
    }
    pc2 = report["hosts"]["pc-2"]["remediation"]["findings"]
    assert [(r["title"], r["outcome"]) for r in pc2] == [("Browser sign-in allow list leaves out localhost",
                                                          "still failing")]
    assert report["hosts"]["pc-3"]["remediation"]["findings"][0]["outcome"] == "not verified"
    assert report["estate"]["remediation"] == {"fixed": 2, "still_failing": 1, "needs_person": 2, "not_verified": 1}
    lines = _report.summary_lines(report)
    assert lines[0].endswith("; fixed: PORT_SERVICE_STOPPED, CM_NOT_RUNNING; "
                             "needs a person: NO_SMARTCARD_READER, INTRANET_AUTODETECT_ON")
    assert lines[1].endswith("; still failing: AUTH_ALLOWLIST_EXCLUDES_LOCALHOST")
    assert lines[-1] == ("Remediation: 2 finding(s) fixed, 1 still failing, 2 need a person, 1 not verified")
    json.dumps(report)


def test_an_audit_report_has_no_remediation() -> None:
    report = _report.build_report({"pc-1": {"findings": [_real("PORT_SERVICE_STOPPED")]}})
    assert "remediation" not in report["hosts"]["pc-1"] and "remediation" not in report["estate"]
    assert not any(line.startswith("Remediation:") for line in _report.summary_lines(report))
