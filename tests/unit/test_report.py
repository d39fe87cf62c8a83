"""Estate report building: what a desk engineer reads after an audit."""

from __future__ import annotations

import datetime as dt
import json

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils import _report


def _finding(fid: str, severity: str = "error", fault: int | None = 1, **scope) -> dict:
    return {"id": fid, "fault": fault, "severity": severity, "summary": f"{fid} summary",
            "scope": scope or {"kind": "machine"}, "browser": None}


def test_ok_failed_unreachable_and_missing_hosts() -> None:
    results = {
        "pc-1": {"changed": False, "findings": [], "unknown": []},
        "pc-2": {"changed": False, "findings": [_finding("PORT_SERVICE_STOPPED"),
                                                 _finding("PORT_SERVICE_NOT_AUTOMATIC", "warning")],
                 "unknown": [{"check": "CM_NOT_RUNNING", "reason": "access denied"}]},
        "pc-3": {"unreachable": True, "msg": "ntlm: the specified credentials were rejected\nby the server"},
        "pc-4": {"failed": True, "msg": "host replied with something that is not JSON: 'oops'"},
        "pc-5": None,
    }
    report = _report.build_report(results, generated=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    hosts = report["hosts"]
    assert list(hosts) == ["pc-1", "pc-2", "pc-3", "pc-4", "pc-5"]
    assert hosts["pc-1"] == {"status": "ok", "faults": [], "findings": [], "unknown": [], "error": None}
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
    assert "  CM_NOT_RUNNING: 1 host(s)" in lines


def test_write_json_atomic_leaves_no_temp_file(tmp_path) -> None:
    target = tmp_path / "deep" / "report.json"
    _report.write_json_atomic(str(target), {"hosts": {}})
    assert json.loads(target.read_text()) == {"hosts": {}}
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]
