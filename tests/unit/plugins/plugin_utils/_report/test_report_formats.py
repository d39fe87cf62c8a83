"""findings.csv, junit.xml and report.html as a spreadsheet, a CI server and a browser read them."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    CATALOGUE,
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import build as _report
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import formats as _report_formats
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import html as _report_html

HOSTILE = '<script>document.body.dataset.pwned="1"</script><img src=x onerror=alert(1)>"\'&'
CHECKS = ["CM_NOT_INSTALLED", "PORT_SERVICE_STOPPED", "CM_NOT_RUNNING", "CM_REBOOT_PENDING",
          "PORT_SERVICE_NOT_AUTOMATIC"]
WAIVER = {"id": "CM_REBOOT_PENDING", "justification": "reboots at the weekend", "approved_by": "IT lead",
          "expires": "2027-01-01", "source": "nhs_cm_waivers[0]"}


def sample_report() -> dict:
    """Four hosts: a fault with a hostile user name, warnings and an unknown, a waiver, one not audited."""
    results = {
        "pc-fault": {"findings": [
            make_finding("PORT_SERVICE_STOPPED", machine_scope(), [{"service": "NHSPortService", "state": "stopped"}]),
            make_finding("CM_NOT_RUNNING", user_scope(HOSTILE, "S-1-5-21-1", 2), [{"session": 2, "user": HOSTILE}]),
        ], "unknown": []},
        "pc-warn": {"findings": [make_finding("PORT_SERVICE_NOT_AUTOMATIC", machine_scope(), [])],
                    "unknown": [{"check": "CM_NOT_RUNNING", "reason": "access denied"}]},
        "pc-waived": {"findings": [make_finding("CM_REBOOT_PENDING", machine_scope(), [])], "unknown": []},
        "pc-down": {"unreachable": True, "msg": "connection refused"},
    }
    waivers = {"pc-waived": {"waivers": [WAIVER], "expired": [], "errors": []}}
    return _report.build_report(results, generated=dt.datetime(2026, 11, 25, 3, 40, tzinfo=dt.UTC),
                                waiver_checks=waivers, checks=CHECKS)


# ---------------------------------------------------------------------------------------------
# findings.csv

def test_csv_columns_come_from_the_finding_shape() -> None:
    columns = _report_formats.finding_columns()
    finding = make_finding("CM_NOT_CONNECTED", user_scope("u", "s", 1), [{"x": 1}], browser="edge")
    for key, value in finding.items():
        if isinstance(value, dict):
            assert {f"{key}.{sub}" for sub in value} <= set(columns)
        else:
            assert key in columns
    assert len(columns) == len(set(columns))


def test_csv_one_row_per_host_and_finding() -> None:
    rows = list(csv.DictReader(io.StringIO(_report_formats.render_csv(sample_report()))))
    got = [(r["host"], r["row"], r["id"], r["severity"]) for r in rows]
    assert got == [
        ("pc-down", "not audited", "", ""),
        ("pc-fault", "finding", "PORT_SERVICE_STOPPED", "error"),
        ("pc-fault", "finding", "CM_NOT_RUNNING", "error"),
        ("pc-waived", "waived", "CM_REBOOT_PENDING", "info"),
        ("pc-warn", "finding", "PORT_SERVICE_NOT_AUTOMATIC", "warning"),
        ("pc-warn", "unknown", "CM_NOT_RUNNING", ""),
    ]
    by_id = {(r["host"], r["id"]): r for r in rows}
    stopped = by_id[("pc-fault", "PORT_SERVICE_STOPPED")]
    assert stopped["faults"] == "1" and stopped["remedy.automatic"] == "true"
    assert stopped["remedy.role"] == CATALOGUE["PORT_SERVICE_STOPPED"].remedy.role
    assert json.loads(stopped["evidence"]) == [{"service": "NHSPortService", "state": "stopped"}]
    assert by_id[("pc-waived", "CM_REBOOT_PENDING")]["waiver.approved_by"] == "IT lead"
    assert by_id[("pc-warn", "CM_NOT_RUNNING")]["reason"] == "access denied"
    assert rows[0]["reason"] == "unreachable: connection refused"
    # Every finding id has its plain-English title from the catalogue, next to the id.
    header = next(csv.reader(io.StringIO(_report_formats.render_csv(sample_report()))))
    assert header[header.index("id") + 1] == "title"
    assert stopped["title"] == "NHS Port Service is stopped" == CATALOGUE["PORT_SERVICE_STOPPED"].title
    assert by_id[("pc-warn", "CM_NOT_RUNNING")]["title"] == CATALOGUE["CM_NOT_RUNNING"].title


def test_csv_host_with_nothing_gets_one_row_and_formulas_are_quoted() -> None:
    report = _report.build_report({"pc-ok": {"findings": []},
                                   "pc-x": {"findings": [make_finding("CM_NOT_RUNNING",
                                                                      user_scope("=HYPERLINK(1)", None, 1), [])]}})
    rows = list(csv.DictReader(io.StringIO(_report_formats.render_csv(report))))
    assert [(r["host"], r["row"]) for r in rows] == [("pc-ok", "none"), ("pc-x", "finding")]
    assert rows[1]["scope.user"] == "'=HYPERLINK(1)"


# ---------------------------------------------------------------------------------------------
# junit.xml

def _cases(xml_text: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(xml_text)
    return {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}


def test_junit_one_case_per_host_and_check() -> None:
    text = _report_formats.render_junit(sample_report())
    root = ET.fromstring(text)
    cases = _cases(text)
    assert len(cases) == 3 * len(CHECKS) + 1  # pc-down: one case
    assert [s.get("name") for s in root.iter("testsuite")] == ["pc-down", "pc-fault", "pc-waived", "pc-warn"]
    kinds = {key: [child.tag for child in case if child.tag != "system-out"] for key, case in cases.items()}
    assert kinds[("pc-fault", "PORT_SERVICE_STOPPED")] == ["failure"]
    assert kinds[("pc-fault", "CM_NOT_RUNNING")] == ["failure"]
    assert kinds[("pc-fault", "CM_NOT_INSTALLED")] == []
    assert kinds[("pc-warn", "PORT_SERVICE_NOT_AUTOMATIC")] == []  # a warning passes ...
    assert "PORT_SERVICE_NOT_AUTOMATIC (warning" in cases[("pc-warn", "PORT_SERVICE_NOT_AUTOMATIC")].findtext(
        "system-out")  # ... and says so
    assert kinds[("pc-warn", "CM_NOT_RUNNING")] == ["error"]  # could not check: never green
    assert kinds[("pc-waived", "CM_REBOOT_PENDING")] == ["skipped"]
    # A host that could not be audited is one error (not one per check), saying why.
    down = [case for (host, _name), case in cases.items() if host == "pc-down"]
    assert len(down) == 1 and [child.tag for child in down[0]] == ["error"]
    assert down[0].find("error").get("message") == "the host could not be audited: unreachable: connection refused"
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "pc-down")
    assert (suite.get("tests"), suite.get("errors")) == ("1", "1")
    failure = cases[("pc-fault", "PORT_SERVICE_STOPPED")].find("failure")
    assert failure is not None and failure.get("message", "").startswith("e-RS fault 1: ")
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("16", "2", "2", "1")
    assert HOSTILE in cases[("pc-fault", "CM_NOT_RUNNING")].find("failure").text  # kept as text, escaped by XML


def test_junit_survives_control_characters() -> None:
    report = _report.build_report({"pc\x01": {"findings": [make_finding("PORT_SERVICE_STOPPED", machine_scope(),
                                                                        [{"data": "bad\x00byte"}])]}})
    ET.fromstring(_report_formats.render_junit(report))


# ---------------------------------------------------------------------------------------------
# report.html (static checks; tests/integration/test_reports_html.py renders it in Chromium)

class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_html_is_self_contained_and_allows_only_its_own_script() -> None:
    text = _report_html.render_html(sample_report())
    page = _parse(text)
    assert [t for t, _attrs in page.tags].count("script") == 1
    assert not [a for _tag, attrs in page.tags for a in ("src", "href") if attrs.get(a)]
    assert not re.search(r"https?://", text)
    csp = next(attrs["content"] for tag, attrs in page.tags
               if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp
    assert _report_html.script_hash(page.scripts[0]) in csp


#: Every element report.html uses; a tag from a host value would be another one.
SAFE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "p", "main", "div",
             "span", "figure", "figcaption", "table", "colgroup", "col", "thead", "tbody", "tr", "th", "td", "small",
             "strong", "br", "wbr", "section", "ul", "ol", "li", "code", "form", "label", "select", "option", "input",
             "footer"}


def test_html_escapes_every_host_value() -> None:
    text = _report_html.render_html(sample_report())
    assert HOSTILE not in text
    assert "<img src=x" not in text
    # in the table and in the evidence, as text (<wbr> only lets a long value wrap; it shows nothing)
    assert html.unescape(text.replace("<wbr>", "")).count(HOSTILE) >= 2
    assert [t for t, _attrs in _parse(text).tags].count("img") == 0
    assert {t for t, _attrs in _parse(text).tags} <= {*SAFE_TAGS, "script"}


def test_html_hosts_carry_what_the_filter_reads() -> None:
    page = _parse(_report_html.render_html(sample_report()))
    hosts = {attrs["data-host"]: attrs for tag, attrs in page.tags if tag == "section" and "data-host" in attrs}
    assert hosts["pc-fault"]["data-faults"] == "1"
    assert hosts["pc-fault"]["data-severities"] == "error"
    assert hosts["pc-warn"]["data-severities"] == "warning unknown"
    assert hosts["pc-waived"]["data-severities"] == "waived"
    assert hosts["pc-down"]["data-status"] == "failed"
    bars = {attrs["data-key"]: int(attrs["data-count"]) for tag, attrs in page.tags
            if attrs.get("class") == "bar" and "data-key" in attrs}
    assert bars["fault-1"] == 1 and bars["no-fault"] == 2 and bars["not-audited"] == 1
    assert bars["PORT_SERVICE_NOT_AUTOMATIC"] == 1 and "CM_REBOOT_PENDING" not in bars


# ---------------------------------------------------------------------------------------------

def test_write_reports_writes_the_formats_asked_for(tmp_path) -> None:
    written = _report_formats.write_reports(sample_report(), str(tmp_path / "out"), ["html", "json"])
    assert sorted(written) == ["html", "json"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["hosts"]["pc-fault"]["faults"] == [1]
    with pytest.raises(ValueError, match="formats must be among json, csv, junit, html, not pdf"):
        _report_formats.write_reports(sample_report(), str(tmp_path), ["pdf"])
