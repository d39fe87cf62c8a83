"""What a host (or a report file) holds never stops the report of every host (issue 17): odd
text is written safely in every format, and a slice that is not a report is refused by name."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import build as _report
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import formats as _report_formats
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import merge as _report_merge
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.waivers import (
    check_entry,
    is_waiver_variable,
    parse_today,
)

WHEN = dt.datetime(2026, 11, 25, 3, 40, tzinfo=dt.UTC)
ODD = "C:\\Users\\\ud800odd\\AppData"  # an unpaired surrogate: NTFS allows it in a name


def odd_report() -> dict[str, Any]:
    """A surrogate in a path of the evidence, a user name, a failure reason, an unknown reason and a host name."""
    results = {
        "pc-odd": {"findings": [
            make_finding("CM_NOT_RUNNING", user_scope("NHS\\\udc80x", "S-1-5-21-1", 1), [{"path": ODD}]),
            make_finding("PORT_SERVICE_NOT_AUTOMATIC", machine_scope(), [{"image": ODD}]),
        ], "unknown": [{"check": "CM_NOT_INSTALLED", "reason": f"cannot read {ODD}"}], "product": ODD},
        "pc-\udfffname": {"findings": [], "unknown": []},
        "pc-down": {"failed": True, "msg": f"the runner failed: {ODD}"},
    }
    return _report.build_report(results, generated=WHEN, checks=["CM_NOT_RUNNING", "CM_NOT_INSTALLED"])


def test_a_surrogate_reaches_every_report_file_as_a_replacement_character(tmp_path: Path) -> None:
    report = odd_report()
    files = _report_formats.write_reports(report, str(tmp_path))
    assert set(files) == {"json", "csv", "junit", "html"}
    texts = {fmt: Path(path).read_bytes().decode("utf-8") for fmt, path in files.items()}  # strict UTF-8
    for fmt, text in texts.items():
        assert "C:\\Users\\\ufffdodd\\AppData" in text.replace("\\\\", "\\"), fmt
    doc = json.loads(texts["json"])
    assert "pc-\ufffdname" in doc["hosts"]
    assert doc["hosts"]["pc-odd"]["findings"][0]["evidence"] == [{"path": "C:\\Users\\\ufffdodd\\AppData"}]
    assert doc["hosts"]["pc-down"]["error"] == "the runner failed: C:\\Users\\\ufffdodd\\AppData"
    rows = list(csv.DictReader(io.StringIO(texts["csv"])))
    assert {row["host"] for row in rows} == {"pc-odd", "pc-\ufffdname", "pc-down"}
    ET.fromstring(texts["junit"].encode("utf-8"))
    result = _report.report_result(report, files)
    json.dumps(result, ensure_ascii=False).encode("utf-8")  # what Ansible shows and registers
    assert any("\ufffd" in line for line in result["summary"])


def test_a_surrogate_in_the_results_does_not_change_them() -> None:
    results = {"pc-odd": {"findings": [make_finding("CM_NOT_RUNNING", machine_scope(), [{"path": ODD}])]}}
    before = copy.deepcopy(results)
    _report.build_report(results, generated=WHEN)
    assert results == before


def test_write_text_atomic_never_fails_on_what_the_text_says(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    _report.write_text_atomic(str(target), "a\ud800b\udfffc")
    assert target.read_text(encoding="utf-8") == "a\ufffdb\ufffdc"


# -- junit.xml ------------------------------------------------------------------------------------

def _junit_report(name: str, check: str, text: str) -> dict[str, Any]:
    finding = dict(make_finding("CM_NOT_RUNNING", machine_scope(), [{"x": text}]), id=check, summary=text)
    entry = _report.host_entry({"findings": [finding]}, audited="2026-11-25T03:40:00+00:00")
    return {"schema": 2, "generated": "2026-11-25T03:40:00+00:00", "checks": [check], "hosts": {name: entry}}


@pytest.mark.parametrize("hostile", [
    'a"b\'c<d>&e', "new\nline\r\ttab", "\x00\x01\x08\x0b\x1b\x7f", "]]><x/>", "\ud800\udbff", "\ufffe\uffff",
])
def test_junit_names_types_and_messages_are_escaped(hostile: str) -> None:
    text = _report_formats.render_junit(_junit_report(f"pc{hostile}", f"ID{hostile}", f"sum{hostile}"))
    root = ET.fromstring(text.encode("utf-8"))
    case = root.find("testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    cleaned = _report_formats._xml_text(hostile)
    assert root.find("testsuite").get("name") == f"pc{cleaned}"  # type: ignore[union-attr]
    assert case.get("classname") == f"pc{cleaned}" and case.get("name") == f"ID{cleaned}"
    assert failure.get("type") == f"ID{cleaned}"
    assert failure.get("message") == f"e-RS fault 1: sum{cleaned}"
    assert not any(ch in cleaned for ch in "\x00\x01\x08\x0b\x1b\ud800\udbff\ufffe\uffff")


# -- merging slices -------------------------------------------------------------------------------

def good_slice() -> dict[str, Any]:
    stopped = make_finding("PORT_SERVICE_STOPPED", machine_scope(), [])
    waived = dict(make_finding("CM_REBOOT_PENDING", machine_scope(), []),
                  waiver={"id": "CM_REBOOT_PENDING", "justification": "j", "approved_by": "a", "expires": "2027-01-01",
                          "source": "nhs_cm_waivers[0]"})
    report = _report.build_report({"pc-1": {"findings": [stopped], "unknown": [
        {"check": "CM_NOT_RUNNING", "reason": "access denied"}]}, "pc-2": {"unreachable": True, "msg": "refused"}},
        generated=WHEN, checks=["PORT_SERVICE_STOPPED"])
    report["hosts"]["pc-1"]["waived"] = [waived]
    return json.loads(json.dumps(report))


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = doc
    parts = path.split("/")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def test_a_good_slice_merges(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(good_slice()))
    merged = _report_merge.merge_reports([_report_merge.load_report(str(path))])
    assert merged["hosts"]["pc-1"]["faults"] == [1]


BAD_SLICES = [
    ("hosts/pc-1/findings/0/fault", 7, "hosts.pc-1.findings[0].fault must be 1, 2, 3, 4 or null, not 7"),
    ("hosts/pc-1/findings/0/fault", "1", "hosts.pc-1.findings[0].fault must be 1, 2, 3, 4 or null, not '1'"),
    ("hosts/pc-1/findings/0/fault", True, "hosts.pc-1.findings[0].fault must be 1, 2, 3, 4 or null, not True"),
    ("hosts/pc-1/findings/0/fault", 0, "hosts.pc-1.findings[0].fault must be 1, 2, 3, 4 or null, not 0"),
    ("hosts/pc-1/findings/0/id", "NOT_AN_ID", "hosts.pc-1.findings[0].id must be a finding id of the catalogue"),
    ("hosts/pc-1/findings/0/id", "PORT_SERVICE_STOPPED\n", "hosts.pc-1.findings[0].id must be a finding id"),
    ("hosts/pc-1/findings/0/id", ["PORT_SERVICE_STOPPED"], "hosts.pc-1.findings[0].id must be a finding id"),
    ("hosts/pc-1/findings/0/severity", "fatal", "hosts.pc-1.findings[0].severity must be error or warning or info"),
    ("hosts/pc-1/findings/0/remedy", "reboot", "hosts.pc-1.findings[0].remedy must be an object or null, not 'reb"),
    ("hosts/pc-1/findings/0/scope", ["user"], "hosts.pc-1.findings[0].scope must be an object or null"),
    ("hosts/pc-1/findings/0/evidence", "x", "hosts.pc-1.findings[0].evidence must be a list or null"),
    ("hosts/pc-1/findings/0/browser", "netscape", "hosts.pc-1.findings[0].browser must be chrome, edge, firefox"),
    ("hosts/pc-1/findings/0/summary", {"a": 1}, "hosts.pc-1.findings[0].summary must be a text or null"),
    ("hosts/pc-1/findings/0", "x", "hosts.pc-1.findings[0] must be a finding object, not 'x'"),
    ("hosts/pc-1/findings", {}, "hosts.pc-1.findings must be a list (of: a finding object), not {}"),
    ("hosts/pc-1/waived/0/waiver", None, "hosts.pc-1.waived[0].waiver must be an object, not None"),
    ("hosts/pc-1/waived/0/fault", 5, "hosts.pc-1.waived[0].fault must be 1, 2, 3, 4 or null"),
    ("hosts/pc-1/unknown/0/check", "ANY", "hosts.pc-1.unknown[0].check must be a finding id of the catalogue"),
    ("hosts/pc-1/unknown/0/reason", 3, "hosts.pc-1.unknown[0].reason must be a text or null, not 3"),
    ("hosts/pc-1/unknown/0", "x", "hosts.pc-1.unknown[0] must be an object {check, reason}"),
    ("hosts/pc-1/status", "weird", "hosts.pc-1.status must be 'ok' or 'failed'"),
    ("hosts/pc-1/audited", 2026, "hosts.pc-1.audited must be an ISO 8601 time such as"),
    ("hosts/pc-1/error", ["x"], "hosts.pc-1.error must be a text or null"),
    ("hosts/pc-1/waiver_problems", [{"x": 1}], "hosts.pc-1.waiver_problems[0] must be a text"),
    ("hosts/pc-1/expired_waivers", ["x"], "hosts.pc-1.expired_waivers[0] must be a waiver object"),
    ("hosts/pc-1/backups", [7], "hosts.pc-1.backups[0] must be a backup id, not 7"),
    ("hosts/pc-1/changes", "all", "hosts.pc-1.changes must be a list (of: a change)"),
    ("hosts/pc-1/reported_fault", 9, "hosts.pc-1.reported_fault must be 1, 2, 3, 4 or null, not 9"),
    ("hosts/pc-1/reported_port", "43487", "hosts.pc-1.reported_port must be a port number or null"),
    ("hosts/pc-1\nFAKE LINE", {"status": "ok"}, "hosts has a host name that is empty, too long or holds a control"),
    ("hosts/", {"status": "ok"}, "hosts has a host name that is empty"),
    ("checks", ["PORT_SERVICE_STOPPED", "DROP TABLE"], "checks[1] must be a finding id of the catalogue"),
    ("checks", "PORT_SERVICE_STOPPED", "checks must be a list of finding ids"),
    ("generated", None, "generated must be an ISO 8601 time"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_SLICES, ids=[f"{p}={v!r}" for p, v, _message in BAD_SLICES])
def test_a_bad_slice_is_refused_naming_the_file_and_the_field(
        tmp_path: Path, path: str, value: Any, message: str) -> None:
    good = tmp_path / "good" / "report.json"
    good.parent.mkdir()
    good.write_text(json.dumps(good_slice()))
    bad = tmp_path / "slice-2" / "report.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(_set(good_slice(), path, value)))
    with pytest.raises(_report_merge.ReportError) as caught:
        _report_merge.merge_reports([_report_merge.load_report(str(good)), _report_merge.load_report(str(bad))])
    text = str(caught.value)
    assert text.startswith(f"{bad}.{message}") or text.startswith(f"{bad}.hosts has"), text
    assert message in text
    assert "\n" not in text and len(text) < 400


def test_a_schema_1_slice_is_checked_too() -> None:
    old = {"schema": 1, "generated": "2026-11-01T02:00:00+00:00",
           "hosts": {"pc-1": {"status": "ok", "faults": [1], "unknown": [], "error": None, "findings": [
               dict(make_finding("CM_NOT_INSTALLED", machine_scope(), []), fault="1")]}}}
    with pytest.raises(_report_merge.ReportError, match=r"^report 1\.hosts\.pc-1\.findings\[0\]\.fault must be 1, "
                                                        r"2, 3, 4 or null, not '1'$"):
        _report_merge.merge_reports([old])


def test_a_slice_of_json_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text('{"schema": 2, "hosts": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(_report_merge.ReportError, match="not a report: its JSON is nested too deeply"):
        _report_merge.load_report(str(bad))


def test_a_slice_with_surrogates_and_bad_utf8_is_merged_cleanly(tmp_path: Path) -> None:
    doc = good_slice()
    doc["hosts"]["pc-1"]["findings"][0]["evidence"] = [{"path": ODD}]
    path = tmp_path / "report.json"
    path.write_bytes(json.dumps(doc).encode("ascii").replace(b"unreachable: refused", b"unreachable: ref\xffused"))
    merged = _report_merge.merge_reports([_report_merge.load_report(str(path))])
    assert merged["hosts"]["pc-1"]["findings"][0]["evidence"] == [{"path": "C:\\Users\\\ufffdodd\\AppData"}]
    assert merged["hosts"]["pc-2"]["error"] == "unreachable: ref\ufffdused"
    _report_formats.write_reports(merged, str(tmp_path / "out"))


def test_a_report_this_collection_writes_merges_again(tmp_path: Path) -> None:
    files = _report_formats.write_reports(odd_report(), str(tmp_path))
    merged = _report_merge.merge_reports([_report_merge.load_report(files["json"])])
    assert set(merged["hosts"]) == {"pc-odd", "pc-\ufffdname", "pc-down"}


# -- waivers --------------------------------------------------------------------------------------

def test_waiver_names_and_dates_must_match_whole() -> None:
    assert is_waiver_variable("nhs_cm_waivers") and is_waiver_variable("nhs_cm_waivers__ward_1")
    for name in ("nhs_cm_waivers\n", "nhs_cm_waivers__ward\n", "nhs_cm_waivers__", "xnhs_cm_waivers"):
        assert not is_waiver_variable(name), name
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_today("\uff12\uff10\uff12\uff16-01-01")  # full-width digits
    entry = {"id": "CM_NOT_INSTALLED", "justification": "j", "approved_by": "a", "expires": "2026-01-0\u0661"}
    assert check_entry("w[0]", entry, dt.date(2026, 1, 1))[1] == [
        "w[0].expires must be a date written YYYY-MM-DD, not '2026-01-0\u0661'"]


def test_a_waiver_id_that_is_not_text_is_an_error_not_a_crash() -> None:
    entry = {"id": ["CM_NOT_INSTALLED"], "justification": "j", "approved_by": "a", "expires": "2027-01-01"}
    waiver, errors, _expired = check_entry("w[0]", entry, dt.date(2026, 1, 1))
    assert waiver is None and errors == ["w[0].id ['CM_NOT_INSTALLED'] is not a finding id of the catalogue "
                                         "(see docs/findings.md; ids are upper case, e.g. CM_NOT_INSTALLED)"]
