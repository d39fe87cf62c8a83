# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report in other formats: findings.csv and junit.xml (report.html: ``_report_html``).

Pure functions from a report document (``_report.assemble``) to text. Internal API of the
nhs_cm.remediation collection: it may change in any release.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    CATALOGUE,
    make_finding,
    title_of,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import (
    catalogue_sorted,
    to_json,
    where_text,
    write_text_atomic,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.html import render_html

FORMATS: dict[str, str] = {"json": "report.json", "csv": "findings.csv", "junit": "junit.xml",
                           "html": "report.html"}
WAIVER_COLUMNS = ("waiver.justification", "waiver.approved_by", "waiver.expires", "waiver.source")
#: Columns of a remediation report (empty in an audit's): the finding before and after the fix.
REMEDIATION_COLUMNS = ("before", "after", "outcome")
#: What a row of findings.csv stands for.
ROW_KINDS = ("finding", "waived", "unknown", "none", "not audited", "fixed")
#: The one test case of a host that could not be audited (not one error per check).
JUNIT_NOT_AUDITED = "host could be audited"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: What XML 1.0 cannot hold, even escaped: most control characters, surrogates, U+FFFE and U+FFFF.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _flat_keys(value: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, item in value.items():
        if isinstance(item, Mapping):
            keys += _flat_keys(item, f"{prefix}{key}.")
        else:
            keys.append(prefix + key)
    return keys


def finding_columns() -> list[str]:
    """Columns of one finding, derived from the catalogue's finding shape (``make_finding``)."""
    columns: list[str] = []
    for fid, entry in CATALOGUE.items():
        sample = make_finding(fid, user_scope(None, None, None), [])
        if entry.escalation is None:
            sample["escalation"] = {}
        for key in _flat_keys(sample):
            if key not in columns:
                columns.append(key)
    if not any(column.startswith("escalation.") for column in columns):
        columns.append("escalation")
    columns.insert(columns.index("id") + 1, "title")
    return columns


def csv_columns() -> list[str]:
    """Every column of findings.csv, in order."""
    return ["host", "status", "row", "audited", "faults", *finding_columns(), *WAIVER_COLUMNS, "reason",
            *REMEDIATION_COLUMNS]


def _cell(value: Any) -> str:
    """Text of one CSV cell; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _lookup(record: Mapping[str, Any], column: str) -> Any:
    value: Any = record
    for part in column.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _finding_row(base: dict[str, Any], kind: str, finding: Mapping[str, Any],
                 columns: list[str]) -> dict[str, Any]:
    row = dict(base, row=kind)
    row.update({column: _lookup(finding, column) for column in columns})
    row["title"] = title_of(str(finding.get("id")))
    return row


def _outcomes(entry: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """A remediation's rows by (id, where) (none in an audit)."""
    return {(r["id"], r["where"]): r for r in (entry.get("remediation") or {}).get("findings", [])}


def _with_outcome(row: dict[str, Any], outcomes: Mapping[tuple[str, str], Mapping[str, Any]],
                  finding: Mapping[str, Any]) -> dict[str, Any]:
    found = outcomes.get((str(finding.get("id")), where_text(finding)))
    return dict(row, **{column: found[column] for column in REMEDIATION_COLUMNS}) if found else row


def csv_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per host and finding (waived findings and checks not made too; a host with none
    or not audited gets one row saying so)."""
    columns = finding_columns() + list(WAIVER_COLUMNS)
    rows: list[dict[str, Any]] = []
    for name, entry in report["hosts"].items():
        base = {"host": name, "status": entry["status"], "audited": entry.get("audited"),
                "faults": " ".join(str(n) for n in entry["faults"])}
        if entry["status"] != "ok":
            rows.append(dict(base, row="not audited", reason=entry["error"]))
            continue
        before = len(rows)
        outcomes = _outcomes(entry)
        rows += [_with_outcome(_finding_row(base, "finding", f, columns), outcomes, f) for f in entry["findings"]]
        rows += [_finding_row(base, "waived", f, columns) for f in entry["waived"]]
        rows += [dict(base, row="unknown", id=u.get("check"), title=title_of(str(u.get("check"))),
                      reason=u.get("reason")) for u in entry["unknown"]]
        rows += [dict(base, row="fixed", id=r["id"], title=r["title"], severity=r["severity"],
                      **{column: r[column] for column in REMEDIATION_COLUMNS}, reason=f"fixed ({r['where']})")
                 for r in outcomes.values() if r["outcome"] == "fixed"]
        if len(rows) == before:
            rows.append(dict(base, row="none"))
    return rows


def render_csv(report: Mapping[str, Any]) -> str:
    """The text of findings.csv (UTF-8, CRLF line ends as RFC 4180 has them)."""
    columns = csv_columns()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in csv_rows(report):
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# junit.xml

def _xml_text(value: Any) -> str:
    """Text for an XML attribute or element: what XML cannot hold becomes U+FFFD (ElementTree
    escapes the rest: ``&``, ``<``, quotes, and new lines in attributes)."""
    return _XML_BAD.sub("\ufffd", str(value))


def _finding_text(finding: Mapping[str, Any]) -> str:
    scope = finding.get("scope") or {}
    where = "machine" if scope.get("kind") != "user" else (
        f"user {scope.get('user') or scope.get('sid')} session {scope.get('session')}")
    lines = [f"{finding.get('id')} ({finding.get('severity')}, {where}"
             + (f", {finding['browser']}" if finding.get("browser") else "")
             + (f" profile {scope['browser_profile']}" if scope.get("browser_profile") else "")
             + f"): {finding.get('summary')}"]
    if finding.get("ers_message"):
        lines.append(f"  e-RS shows: {finding['ers_message']}")
    lines += [f"  evidence: {json.dumps(item, ensure_ascii=False)}" for item in finding.get("evidence") or []]
    remedy = finding.get("remedy") or {}
    if remedy:
        how = f"automatic ({remedy.get('role')})" if remedy.get("automatic") else "by hand"
        gpo = "; set by domain Group Policy: change the GPO" if remedy.get("managed_by_gpo") else ""
        lines.append(f"  remedy, {how}: {remedy.get('action')}{gpo}")
    escalation = finding.get("escalation")
    if escalation:
        lines.append(f"  escalate to {escalation.get('to')} ({escalation.get('phone')}): {escalation.get('why')}")
    waiver = finding.get("waiver")
    if waiver:
        lines.append(f"  waived until {waiver.get('expires')} by {waiver.get('approved_by')}: "
                     f"{waiver.get('justification')}")
    return "\n".join(lines)


def _outcome(check: str, entry: Mapping[str, Any]) -> tuple[str | None, str, str]:
    """(element: failure/error/skipped/None, message, details) of one check on one host."""
    if entry["status"] != "ok":
        return "error", f"the host could not be audited: {entry['error']}", str(entry["error"])
    active = [f for f in entry["findings"] if f.get("id") == check]
    waived = [f for f in entry["waived"] if f.get("id") == check]
    unknown = [u for u in entry["unknown"] if u.get("check") == check]
    details = "\n".join([_finding_text(f) for f in active + waived]
                        + [f"{check}: could not check: {u.get('reason')}" for u in unknown])
    errors = [f for f in active if f.get("severity") == "error"]
    if errors:
        faults = sorted({f["fault"] for f in errors if f.get("fault")})
        shows = f"e-RS fault {', '.join(map(str, faults))}: " if faults else ""
        return "failure", shows + "; ".join(str(f.get("summary")) for f in errors), details
    if unknown:
        return "error", "could not check: " + "; ".join(str(u.get("reason")) for u in unknown), details
    if waived:
        waiver = waived[0]["waiver"]
        return "skipped", (f"waived until {waiver.get('expires')} by {waiver.get('approved_by')}: "
                           f"{waiver.get('justification')}"), details
    return None, "", details


def junit_checks(report: Mapping[str, Any]) -> list[str]:
    """Checks to report per host: the report's ``checks`` and any id a host reported."""
    seen = [f["id"] for e in report["hosts"].values() for f in e["findings"] + e["waived"]]
    seen += [u["check"] for e in report["hosts"].values() for u in e["unknown"] if u.get("check")]
    return catalogue_sorted([*report.get("checks", []), *seen])


def _testsuite(name: str, entry: Mapping[str, Any], checks: Iterable[str]) -> tuple[ET.Element, dict[str, int]]:
    suite = ET.Element("testsuite", name=_xml_text(name), hostname=_xml_text(name),
                       timestamp=_xml_text(entry.get("audited") or ""))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    # A host that could not be audited is one error, not one per check it could not make.
    for check in checks if entry["status"] == "ok" else [JUNIT_NOT_AUDITED]:
        element, message, details = _outcome(check, entry)
        case = ET.SubElement(suite, "testcase", classname=_xml_text(name), name=_xml_text(check), time="0")
        counts["tests"] += 1
        if element is not None:
            counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[element]] += 1
            child = ET.SubElement(case, element, message=_xml_text(message))
            if element != "skipped":
                child.set("type", _xml_text(check if entry["status"] == "ok" else "not audited"))
            child.text = _xml_text(details) if details else None
        elif details:
            ET.SubElement(case, "system-out").text = _xml_text(details)
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", "0")
    return suite, counts


def render_junit(report: Mapping[str, Any]) -> str:
    """The text of junit.xml: one testsuite per host, one testcase per host and check."""
    checks = junit_checks(report)
    root = ET.Element("testsuites", name="nhs_cm.remediation audit")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for name, entry in report["hosts"].items():
        suite, counts = _testsuite(name, entry, checks)
        root.append(suite)
        totals = {key: totals[key] + counts[key] for key in totals}
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------

RENDERERS = {"json": to_json, "csv": render_csv, "junit": render_junit, "html": render_html}


def check_formats(formats: Iterable[str]) -> list[str]:
    """The formats asked for, each once in the order of ``FORMATS``; an unknown one is an error."""
    asked = list(formats)
    unknown = [f for f in asked if f not in FORMATS]
    if unknown:
        raise ValueError(f"formats must be among {', '.join(FORMATS)}, not {', '.join(map(str, unknown))}")
    if not asked:
        raise ValueError(f"formats must name at least one of {', '.join(FORMATS)}")
    return [f for f in FORMATS if f in asked]


def write_reports(report: Mapping[str, Any], dest: str, formats: Iterable[str] = tuple(FORMATS)) -> dict[str, str]:
    """Write the report in each format into ``dest``; return ``{format: absolute path}``."""
    written = {}
    for fmt in check_formats(formats):
        path = os.path.join(os.path.abspath(dest), FORMATS[fmt])
        write_text_atomic(path, RENDERERS[fmt](report))
        written[fmt] = path
    return written
