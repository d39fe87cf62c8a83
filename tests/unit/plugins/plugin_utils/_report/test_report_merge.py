"""Merging reports of several runs or job slices; the report rebuilt from job events."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    CATALOGUE,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import build as _report
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import merge as _report_merge

BASE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
HOSTS = ["pc-1", "pc-2", "pc-3", "pc-4"]
IDS = list(CATALOGUE)[:8]

results = st.one_of(
    st.none(),
    st.builds(lambda msg: {"unreachable": True, "msg": msg}, st.sampled_from(["refused", "timed out"])),
    st.builds(lambda ids, session: {"findings": [make_finding(i, user_scope("NHS\\u", None, session), [])
                                                 for i in ids], "unknown": []},
              st.lists(st.sampled_from(IDS), max_size=3, unique=True), st.integers(1, 3)),
)
reports = st.builds(
    lambda hosts, day, checks: _report.build_report(hosts, generated=BASE + dt.timedelta(hours=day), checks=checks),
    st.dictionaries(st.sampled_from(HOSTS), results, max_size=4),
    st.integers(0, 3),  # few distinct times: equal times must be decided the same way in any order
    st.lists(st.sampled_from(IDS), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(reports, reports, reports)
def test_merge_is_associative_and_commutative(a: dict, b: dict, c: dict) -> None:
    merge = _report_merge.merge_reports
    assert merge([merge([a, b]), c]) == merge([a, merge([b, c])]) == merge([a, b, c])
    assert merge([a, b]) == merge([b, a])


@settings(max_examples=100, deadline=None)
@given(reports, reports)
def test_merge_is_idempotent(a: dict, b: dict) -> None:
    merged = _report_merge.merge_reports([a, b])
    assert _report_merge.merge_reports([merged]) == merged
    assert _report_merge.merge_reports([merged, merged, a]) == merged


@settings(max_examples=100, deadline=None)
@given(reports, reports)
def test_newest_result_wins_per_host(a: dict, b: dict) -> None:
    merged = _report_merge.merge_reports([a, b])
    assert set(merged["hosts"]) == set(a["hosts"]) | set(b["hosts"])
    for name, entry in merged["hosts"].items():
        candidates = [r["hosts"][name] for r in (a, b) if name in r["hosts"]]
        newest = max(c["audited"] for c in candidates)
        assert entry["audited"] == newest
        assert entry in candidates
    assert merged["estate"] == _report.estate_summary(merged["hosts"])


def test_newer_run_replaces_a_host_and_keeps_the_others() -> None:
    stopped = make_finding("PORT_SERVICE_STOPPED", {"kind": "machine"}, [])
    monday = _report.build_report({"pc-1": {"findings": [stopped]}, "pc-2": {"unreachable": True, "msg": "refused"}},
                                  generated=BASE)
    tuesday = _report.build_report({"pc-1": {"findings": []}}, generated=BASE + dt.timedelta(days=1))
    merged = _report_merge.merge_reports([tuesday, monday])
    assert merged["hosts"]["pc-1"]["faults"] == [] and merged["hosts"]["pc-1"]["audited"] == tuesday["generated"]
    assert merged["hosts"]["pc-2"]["status"] == "failed"
    assert merged["generated"] == tuesday["generated"]
    assert merged["estate"]["with_fault"] == 0 and merged["estate"]["not_audited"] == 1


def test_schema_1_reports_are_read() -> None:
    old = {"schema": 1, "generated": "2026-11-01T02:00:00+00:00",
           "hosts": {"pc-1": {"status": "ok", "faults": [1], "findings": [
               make_finding("CM_NOT_INSTALLED", {"kind": "machine"}, [])], "unknown": [], "error": None}}}
    merged = _report_merge.merge_reports([old])
    entry = merged["hosts"]["pc-1"]
    assert merged["schema"] == _report.REPORT_SCHEMA
    assert entry["audited"] == "2026-11-01T02:00:00+00:00" and entry["waived"] == [] and entry["faults"] == [1]


@pytest.mark.parametrize(("doc", "message"), [
    ([], "report 1 must be a JSON object"),
    ({"schema": 9, "generated": "2026-11-01T02:00:00+00:00", "hosts": {}}, "report 1.schema must be 1 or 2, not 9"),
    ({"schema": 2, "generated": "yesterday", "hosts": {}}, "report 1.generated must be an ISO 8601 time"),
    ({"schema": 2, "generated": "2026-11-01T02:00:00+00:00", "hosts": []}, "report 1.hosts must be an object"),
    ({"schema": 2, "generated": "2026-11-01T02:00:00+00:00", "hosts": {"pc": {"status": "?"}}},
     "report 1.hosts.pc.status must be 'ok' or 'failed'"),
])
def test_bad_reports_are_named(doc: object, message: str) -> None:
    with pytest.raises(_report_merge.ReportError, match=message.replace(".", r"\.").replace("(", r"\(")):
        _report_merge.merge_reports([doc])  # type: ignore[list-item]
    with pytest.raises(_report_merge.ReportError, match="nothing to merge"):
        _report_merge.merge_reports([])


def test_load_report_names_the_file(tmp_path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text("{not json")
    with pytest.raises(_report_merge.ReportError, match=f"{bad}: not JSON"):
        _report_merge.load_report(str(bad))
    with pytest.raises(_report_merge.ReportError, match="cannot read it"):
        _report_merge.load_report(str(tmp_path / "missing.json"))


WAIVERS = "nhs_cm.remediation.waivers"


def _event(kind: str, host: str, action: str, res: dict) -> dict:
    return {"event": kind, "event_data": {"host": host, "task_action": action, "resolved_action": action, "res": res}}


def test_report_from_events_equals_the_report_from_results() -> None:
    stopped = make_finding("PORT_SERVICE_STOPPED", {"kind": "machine"}, [])
    waiver = {"id": "PORT_SERVICE_STOPPED", "justification": "j", "approved_by": "a", "expires": "2027-01-01",
              "source": "nhs_cm_waivers[0]"}
    events = [
        {"event": "playbook_on_start", "event_data": {}},
        _event("runner_on_ok", "pc-1", WAIVERS, {"hosts": {  # the waivers task runs once for all hosts
            "pc-1": {"waivers": [], "expired": [], "errors": []},
            "pc-2": {"waivers": [waiver], "expired": [], "errors": []}}}),
        _event("runner_on_ok", "pc-1", "nhs_cm.remediation.diagnose", {"findings": [stopped], "unknown": []}),
        _event("runner_on_ok", "pc-2", "nhs_cm.remediation.diagnose", {"findings": [stopped], "unknown": []}),
        _event("runner_on_unreachable", "pc-3", "nhs_cm.remediation.diagnose", {"msg": "refused"}),
        _event("runner_on_ok", "pc-1", "ansible.builtin.debug", {"msg": "summary"}),
        {"event": "playbook_on_stats", "event_data": {"ok": {"pc-1": 3, "pc-2": 3}, "dark": {"pc-3": 1},
                                                      "failures": {"pc-4": 1}}},
    ]
    when = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    from_events = _report_merge.report_from_events(events, generated=when, checks=["PORT_SERVICE_STOPPED"])
    direct = _report.build_report(
        {"pc-1": {"findings": [stopped]}, "pc-2": {"findings": [stopped]},
         "pc-3": {"unreachable": True, "msg": "refused"}, "pc-4": None},
        generated=when, waiver_checks={"pc-2": {"waivers": [waiver]}}, checks=["PORT_SERVICE_STOPPED"])
    assert from_events == direct
    assert from_events["hosts"]["pc-2"]["waived"][0]["id"] == "PORT_SERVICE_STOPPED"
    assert json.loads(json.dumps(from_events)) == from_events


def test_without_times() -> None:
    a = _report.build_report({"pc-1": {"findings": []}}, generated=BASE)
    b = _report.build_report({"pc-1": {"findings": []}}, generated=BASE + dt.timedelta(hours=1))
    assert a != b
    assert _report_merge.without_times(a) == _report_merge.without_times(b)


def _remediated(host: str, after: list[str], hour: int) -> dict:
    found = ("PORT_SERVICE_STOPPED", "CM_NOT_INSTALLED")
    before = {host: {"findings": [make_finding(fid, {"kind": "machine"}, []) for fid in found]}}
    results = {host: {"findings": [make_finding(fid, {"kind": "machine"}, []) for fid in after]}}
    report = _report.build_report(results, before=before, generated=BASE + dt.timedelta(hours=hour))
    return json.loads(json.dumps(report))


def test_remediation_reports_merge_with_their_totals() -> None:
    one = _remediated("pc-1", ["CM_NOT_INSTALLED"], 1)
    two = _remediated("pc-2", ["PORT_SERVICE_STOPPED", "CM_NOT_INSTALLED"], 2)
    merged = _report_merge.merge_reports([one, two])
    assert merged["estate"]["remediation"] == {"fixed": 1, "still_failing": 1, "needs_person": 2, "not_verified": 0}
    assert merged["hosts"]["pc-1"]["remediation"] == one["hosts"]["pc-1"]["remediation"]


def test_a_bad_remediation_is_named() -> None:
    bad = _remediated("pc-1", [], 1)
    bad["hosts"]["pc-1"]["remediation"]["findings"][0]["outcome"] = "<b>done</b>"
    with pytest.raises(_report_merge.ReportError,
                       match=r"report 1\.hosts\.pc-1\.remediation\.findings\[0\]\.outcome must be fixed or still "
                             r"failing or needs a person or not verified, not '<b>done</b>'"):
        _report_merge.merge_reports([bad])
