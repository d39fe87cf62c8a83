# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html: the estate at a glance, one self-contained file (inline CSS and JS; the charts are CSS bars).

Everything that comes from a host is escaped (``html.escape``) and the page's Content Security
Policy allows only its own inline script (by hash), so text such as ``<script>`` in a value can
neither run nor load anything. The page loads nothing from the network. Internal API of the
nhs_cm.remediation collection: it may change in any release.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    FAULT_MESSAGES,
    SEVERITIES,
    title_of,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import estate_summary, where_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.html_history import (
    HISTORY_CSS,
    history_html,
    host_timeline,
)

#: Values of the severity filter: the catalogue's severities, then what the report adds.
SEVERITY_FILTERS = (*SEVERITIES, "unknown", "waived")
FAULT_COLOURS = {1: "#b3261e", 2: "#b85c00", 3: "#6a3aa8", 4: "#1f5fa8"}
NO_FAULT_COLOUR = "#2e7d32"
NOT_AUDITED_COLOUR = "#6b6b6b"
FINDING_COLOUR = "#8a4b08"

_CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 "Segoe UI",Arial,Helvetica,sans-serif;margin:0;color:#1d1d1d;background:#f4f6f8}
header{background:#005eb8;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;opacity:.95}
main{padding:18px 28px;max-width:1400px}
h2{font-size:19px;margin:26px 0 10px}
.tiles{display:flex;flex-wrap:wrap;gap:12px}
.tile{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:10px 16px;min-width:150px}
.tile .n{display:block;font-size:28px;font-weight:700}
.tile.bad .n{color:#b3261e}.tile.good .n{color:#2e7d32}.tile.grey .n{color:#555}
.charts{display:flex;flex-wrap:wrap;gap:18px;margin-top:16px}
.legend{list-style:none;margin:6px 0 0;padding:0;font-size:12px;color:#444;max-width:540px}
figure{margin:0;background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:12px 16px}
figcaption{font-weight:700;margin-bottom:6px}
table.bars{width:auto;font-size:13px}
table.bars th,table.bars td{border:0;padding:2px 8px 2px 0;vertical-align:middle;background:none}
table.bars th{font-weight:400;white-space:nowrap}
table.bars th small{display:block;color:#555;font:11px Consolas,"Courier New",monospace}
table.bars td.track{width:240px;min-width:240px}
table.bars .fill{display:block;height:18px;border-radius:2px;min-width:0}
table.bars td.count{white-space:nowrap}
.filters{display:flex;flex-wrap:wrap;gap:16px;align-items:end;background:#fff;border:1px solid #d5dbe1;
 border-radius:6px;padding:12px 16px;position:sticky;top:0;z-index:2}
.filters label{display:flex;flex-direction:column;font-weight:600;font-size:13px}
.filters select,.filters input{font:inherit;padding:4px 6px;min-width:180px}
#shown{margin:0 0 0 auto;font-weight:600}
section.host{background:#fff;border:1px solid #d5dbe1;border-left:6px solid #2e7d32;border-radius:6px;
 margin:12px 0;padding:10px 16px}
section.host.fault{border-left-color:#b3261e}section.host.warn{border-left-color:#b85c00}
section.host.failed{border-left-color:#6b6b6b}
section.host h3{margin:0 0 4px;font-size:17px}
.tag{display:inline-block;font-size:12px;font-weight:600;color:#fff;border-radius:10px;padding:1px 9px;
 margin-left:6px;vertical-align:middle}
.meta{margin:0 0 8px;color:#444;font-size:13px}
.problem{color:#8a1c13;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}
.wide{overflow-x:auto}
table.findings,table.before-after{table-layout:fixed;min-width:900px}
th,td{text-align:left;vertical-align:top;border-top:1px solid #e3e7eb;padding:5px 8px;overflow-wrap:break-word}
th{background:#eef2f5}
thead th{font-size:12px}
td code{font:12px/1.4 Consolas,"Courier New",monospace}
td.evidence li{margin-bottom:4px}
td.evidence code{display:block}
td ul{margin:0;padding-left:16px}
.fid{font:11px Consolas,"Courier New",monospace;color:#444}
h4{margin:10px 0 4px;font-size:14px}
.outcome-fixed{color:#2e7d32;font-weight:600}.outcome-still{color:#b3261e;font-weight:600}
.outcome-person{color:#8a4b08;font-weight:600}.outcome-unverified{color:#555;font-weight:600}
tr.sev-error td:first-child{border-left:4px solid #b3261e}
tr.sev-warning td:first-child{border-left:4px solid #b85c00}
tr.sev-info td:first-child{border-left:4px solid #1f5fa8}
tr.sev-unknown td:first-child{border-left:4px solid #6b6b6b}
tr.sev-waived{color:#555}tr.sev-waived td:first-child{border-left:4px dashed #6b6b6b}
[hidden]{display:none!important}
footer{padding:12px 28px 30px;color:#555;font-size:12px}
"""

_JS = """(function () {
  "use strict";
  var fault = document.getElementById("f-fault");
  var severity = document.getElementById("f-severity");
  var host = document.getElementById("f-host");
  var shown = document.getElementById("shown");
  var hosts = document.querySelectorAll("section.host");
  function words(element, name) {
    return (element.getAttribute(name) || "").split(" ").filter(function (w) { return w !== ""; });
  }
  function wanted(element, f, s, h) {
    var faults = words(element, "data-faults");
    var status = element.getAttribute("data-status");
    var okFault = f === "" || (f === "failed" ? status === "failed" :
      (f === "none" ? status === "ok" && faults.length === 0 : faults.indexOf(f) >= 0));
    var okSeverity = s === "" || words(element, "data-severities").indexOf(s) >= 0;
    var okHost = h === "" || (element.getAttribute("data-host") || "").toLowerCase().indexOf(h) >= 0;
    return okFault && okSeverity && okHost;
  }
  function apply() {
    var f = fault.value;
    var s = severity.value;
    var h = host.value.trim().toLowerCase();
    var count = 0;
    for (var i = 0; i < hosts.length; i++) {
      var show = wanted(hosts[i], f, s, h);
      hosts[i].hidden = !show;
      if (show) {
        count++;
      }
      var rows = hosts[i].querySelectorAll("tr[data-severity]");
      for (var j = 0; j < rows.length; j++) {
        rows[j].hidden = s !== "" && rows[j].getAttribute("data-severity") !== s;
      }
    }
    shown.textContent = "Showing " + count + " of " + hosts.length + " hosts";
    shown.setAttribute("data-shown", String(count));
    document.body.setAttribute("data-filter", [f, s, h].join("|"));
  }
  function choose(select, value) {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === value) {
        select.value = value;
      }
    }
  }
  function fromLocation() {
    var text = window.location.hash.replace(/^#/, "") || window.location.search.replace(/^\\?/, "");
    var params = new URLSearchParams(text);
    choose(fault, params.get("fault") || "");
    choose(severity, params.get("severity") || "");
    host.value = params.get("host") || "";
  }
  function toLocation() {
    var params = new URLSearchParams();
    if (fault.value) { params.set("fault", fault.value); }
    if (severity.value) { params.set("severity", severity.value); }
    if (host.value.trim()) { params.set("host", host.value.trim()); }
    try {
      window.history.replaceState(null, "", "#" + params.toString());
    } catch (ignored) {
      window.location.hash = params.toString();
    }
  }
  function changed() {
    apply();
    toLocation();
  }
  fault.addEventListener("change", changed);
  severity.addEventListener("change", changed);
  host.addEventListener("input", changed);
  window.addEventListener("hashchange", function () { fromLocation(); apply(); });
  fromLocation();
  apply();
}());
"""


def e(value: Any) -> str:
    """Escape text for HTML content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def script_hash(script: str = _JS) -> str:
    """The CSP source that allows exactly this inline script."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _csp() -> str:
    return ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src {script_hash()}; base-uri 'none'; form-action 'none'")


# ---------------------------------------------------------------------------------------------
# Charts

#: A bar: (key, label, count, colour), optionally with a detail shown under the label (a finding id).
Bar = tuple[str, str, int, str] | tuple[str, str, int, str, str]


def bar_chart(chart_id: str, title: str, bars: list[Bar], total: int, legend: str = "") -> str:
    """Horizontal bar chart as a small table: labels are text the page lays out (never cut), the bars
    are scaled to ``total`` (or the biggest count)."""
    scale = max([total, *[count for _key, _label, count, *_rest in bars], 1])
    rows = []
    for key, label, count, colour, *detail in bars:
        width = 100 * count / scale
        small = f"<small>{e(detail[0])}</small>" if detail else ""
        rows.append(f'<tr class="bar" data-key="{e(key)}" data-count="{count}" title="{e(label)}: {count}">'
                    f'<th scope="row" class="label">{e(label)}{small}</th>'
                    f'<td class="track"><span class="fill" style="width:{width:.1f}%;background:{colour}"></span></td>'
                    f'<td class="count">{count}</td></tr>')
    body = "".join(rows) or '<tr><td>none</td></tr>'
    return (f'<figure id="{e(chart_id)}"><figcaption>{e(title)}</figcaption>'
            f'<table class="bars" aria-label="{e(title)}"><tbody>{body}</tbody></table>{legend}</figure>')


def fault_legend() -> str:
    """What e-RS shows for each fault, under the fault chart."""
    items = "".join(f"<li>Fault {n}: {e(message)}</li>" for n, message in FAULT_MESSAGES.items())
    return f'<ol class="legend">{items}</ol>'


def fault_bars(estate: Mapping[str, Any]) -> list[Bar]:
    """Bars of the e-RS fault chart: each fault, then hosts with none and hosts not audited."""
    bars = [(f"fault-{n}", f"Fault {n}", int(estate["per_fault"].get(str(n), 0)), FAULT_COLOURS[n])
            for n in FAULT_MESSAGES]
    no_fault = estate["audited"] - estate["with_fault"]
    bars.append(("no-fault", "No e-RS fault", no_fault, NO_FAULT_COLOUR))
    bars.append(("not-audited", "Could not be audited", estate["not_audited"], NOT_AUDITED_COLOUR))
    return bars


def finding_bars(estate: Mapping[str, Any]) -> list[Bar]:
    """A bar per finding id: its plain-English title, with the id under it."""
    return [(fid, title_of(fid), count, FINDING_COLOUR, fid) for fid, count in estate["per_finding"].items()]


# ---------------------------------------------------------------------------------------------
# Host sections

def _where(finding: Mapping[str, Any]) -> str:
    return e(where_text(finding))


def _breakable(text: str) -> str:
    """Escaped text that may wrap after a path separator, dot or underscore (an id, a role, a registry path)."""
    escaped = e(text)
    for mark in ("\\", "/", "_", ",", "."):
        escaped = escaped.replace(mark, mark + "<wbr>")
    return escaped


def _finding_name(fid: Any) -> str:
    """The plain-English title of a finding id, with the id under it."""
    return f'<strong>{e(title_of(str(fid)))}</strong><br><span class="fid">{_breakable(str(fid))}</span>'


def _plain_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _evidence(items: Iterable[Any]) -> str:
    """One list item per piece of evidence, one line per field (wrapping between words)."""
    lines = []
    for item in items or []:
        fields = ([f"{key}: {_plain_text(value)}" for key, value in item.items()] if isinstance(item, Mapping)
                  else [str(item)])
        lines.append("<li>" + "".join(f"<code>{_breakable(text)}</code>" for text in fields) + "</li>")
    return f"<ul>{''.join(lines)}</ul>" if lines else ""


def _remedy(finding: Mapping[str, Any]) -> str:
    remedy = finding.get("remedy") or {}
    how = f"Automatic: {remedy.get('role')}" if remedy.get("automatic") else "By hand"
    gpo = "<br><strong>Set by domain Group Policy: change the GPO</strong>" if remedy.get("managed_by_gpo") else ""
    return f"{e(remedy.get('action'))}<br><small>{_breakable(how)}</small>{gpo}"


def _escalation(finding: Mapping[str, Any]) -> str:
    escalation = finding.get("escalation")
    if not escalation:
        return ""
    return f"{e(escalation.get('to'))} ({e(escalation.get('phone'))})<br><small>{e(escalation.get('why'))}</small>"


def _finding_row(finding: Mapping[str, Any], waived: bool) -> str:
    severity = "waived" if waived else str(finding.get("severity"))
    label = f"waived ({finding.get('severity')})" if waived else severity
    summary = e(finding.get("summary"))
    if waived:
        waiver = finding.get("waiver") or {}
        summary += (f"<br><small>Waived until {e(waiver.get('expires'))} by {e(waiver.get('approved_by'))}: "
                    f"{e(waiver.get('justification'))}</small>")
    fault = finding.get("fault")
    return (f'<tr class="sev-{e(severity)}" data-severity="{e(severity)}" data-id="{e(finding.get("id"))}">'
            f'<td>{_finding_name(finding.get("id"))}'
            + (f"<br><small>e-RS fault {e(fault)}</small>" if fault else "") + "</td>"
            f"<td>{e(label)}</td><td>{_where(finding)}</td><td>{summary}</td>"
            f'<td class="evidence">{_evidence(finding.get("evidence") or [])}</td><td>{_remedy(finding)}</td>'
            f"<td>{_escalation(finding)}</td></tr>")


def _unknown_row(item: Mapping[str, Any]) -> str:
    return (f'<tr class="sev-unknown" data-severity="unknown" data-id="{e(item.get("check"))}">'
            f'<td>{_finding_name(item.get("check"))}</td><td>could not check</td><td></td>'
            f'<td>{e(item.get("reason"))}</td><td class="evidence"></td><td></td><td></td></tr>')


def host_severities(entry: Mapping[str, Any]) -> list[str]:
    """The severity filter values a host matches."""
    found = {str(f.get("severity")) for f in entry["findings"]}
    if entry["unknown"]:
        found.add("unknown")
    if entry["waived"]:
        found.add("waived")
    return [s for s in SEVERITY_FILTERS if s in found]


def host_class(entry: Mapping[str, Any]) -> str:
    if entry["status"] != "ok":
        return "failed"
    if entry["faults"]:
        return "fault"
    if any(f.get("severity") == "warning" for f in entry["findings"]) or entry["unknown"]:
        return "warn"
    return "ok"


def _tags(entry: Mapping[str, Any]) -> str:
    if entry["status"] != "ok":
        return f'<span class="tag" style="background:{NOT_AUDITED_COLOUR}">not audited</span>'
    tags = [f'<span class="tag" style="background:{FAULT_COLOURS.get(n, "#333")}">e-RS fault {e(n)}</span>'
            for n in entry["faults"]]
    if not entry["faults"]:
        tags.append(f'<span class="tag" style="background:{NO_FAULT_COLOUR}">no e-RS fault</span>')
    return "".join(tags)


def _meta(entry: Mapping[str, Any]) -> str:
    parts = [f"audited {e(entry.get('audited'))}"]
    if entry.get("product"):
        parts.append(f"product {e(_plain_text(entry['product']))}")
    if entry.get("reported_fault"):
        port = f" on port {e(entry['reported_port'])}" if entry.get("reported_port") else ""
        parts.append(f"the e-RS report given names fault {e(entry['reported_fault'])}{port}")
    if entry.get("changes"):
        parts.append(f"{len(entry['changes'])} change(s) made")
    if entry.get("backups"):
        parts.append("backups " + ", ".join(e(b) for b in entry["backups"]))
    text = "; ".join(parts)
    for problem in entry.get("waiver_problems") or []:
        text += f'<br><span class="problem">Waiver problem: {e(problem)}</span>'
    for waiver in entry.get("expired_waivers") or []:
        text += (f"<br>Expired waiver of {e(waiver.get('id'))} (until {e(waiver.get('expires'))}): "
                 "its finding is reported again")
    return f'<p class="meta">{text}</p>'


#: Column widths of a host's table of findings (fixed, so no column is squeezed to a sliver).
FINDING_TABLE_COLUMNS = (("Finding", 14), ("Severity", 8), ("Where", 9), ("Summary", 17), ("Evidence", 25),
                         ("Remedy", 17), ("Escalation", 10))
#: The CSS class of each remediation outcome.
OUTCOME_CLASS = {"fixed": "outcome-fixed", "still failing": "outcome-still", "needs a person": "outcome-person",
                 "not verified": "outcome-unverified"}


def _table(css: str, columns: Iterable[tuple[str, int]], rows: Iterable[str]) -> str:
    cols = "".join(f'<col style="width:{width}%">' for _name, width in columns)
    head = "".join(f"<th>{e(name)}</th>" for name, _width in columns)
    return (f'<div class="wide"><table class="{css}"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def before_after(entry: Mapping[str, Any]) -> str:
    """A remediated host: each finding before and after the fix, and what became of it."""
    done = entry.get("remediation")
    if not done:
        return ""
    rows = [f'<tr data-outcome="{e(r["outcome"])}" data-id="{e(r["id"])}"><td>{_finding_name(r["id"])}</td>'
            f'<td>{e(r["where"])}</td><td>{e(r["before"])}</td><td>{e(r["after"])}</td>'
            f'<td class="{OUTCOME_CLASS.get(r["outcome"], "")}">{e(r["outcome"])}</td></tr>'
            for r in done["findings"]]
    before = done.get("before") or {}
    note = (f'<p class="problem">Before the fix the host could not be audited: {e(before.get("error"))}</p>'
            if before.get("status") == "failed" else "")
    if not rows:
        return f"<h4>Before and after the fix</h4>{note}<p>No error or warning before or after the fix.</p>"
    columns = (("Finding", 34), ("Where", 22), ("Before", 13), ("After", 13), ("Outcome", 18))
    return f"<h4>Before and after the fix</h4>{note}{_table('before-after', columns, rows)}"


def host_section(index: int, name: str, entry: Mapping[str, Any]) -> str:
    """One host: its e-RS faults, then a table of findings with evidence, remedy and escalation."""
    attrs = (f'id="host-{index}" class="host {host_class(entry)}" data-host="{e(name)}" '
             f'data-status="{e(entry["status"])}" data-faults="{e(" ".join(str(n) for n in entry["faults"]))}" '
             f'data-severities="{" ".join(host_severities(entry))}"')
    head = f"<h3>{e(name)}{_tags(entry)}</h3>{_meta(entry)}{host_timeline(entry)}{before_after(entry)}"
    if entry["status"] != "ok":
        return f'<section {attrs}>{head}<p class="problem">Could not be audited: {e(entry["error"])}</p></section>'
    rows = ([_finding_row(f, False) for f in entry["findings"]] + [_finding_row(f, True) for f in entry["waived"]]
            + [_unknown_row(u) for u in entry["unknown"]])
    now = "<h4>Found now</h4>" if entry.get("remediation") else ""
    if not rows:
        return f"<section {attrs}>{head}{now}<p>No finding: every check passed.</p></section>"
    return f"<section {attrs}>{head}{now}{_table('findings', FINDING_TABLE_COLUMNS, rows)}</section>"


def _host_order(item: tuple[str, Mapping[str, Any]]) -> tuple[int, str]:
    rank = {"fault": 0, "failed": 1, "warn": 2, "ok": 3}[host_class(item[1])]
    return rank, item[0]


# ---------------------------------------------------------------------------------------------
# Page

def _tiles(estate: Mapping[str, Any]) -> str:
    warnings_only = estate["with_findings"] - estate["with_fault"]
    tiles = [("hosts", "Hosts", estate["hosts"], ""), ("with_fault", "With an e-RS fault", estate["with_fault"], "bad"),
             ("warnings_only", "Warnings only", warnings_only, ""),
             ("no_fault_or_warning", "No fault or warning", estate["no_fault_or_warning"], "good"),
             ("not_audited", "Could not be audited", estate["not_audited"], "grey"),
             ("with_unknown", "With checks not made", estate["with_unknown"], "grey"),
             ("with_waived", "With waived findings", estate["with_waived"], "grey")]
    done = estate.get("remediation")
    if done:
        tiles += [("fixed", "Findings fixed", done["fixed"], "good"),
                  ("still_failing", "Still failing", done["still_failing"], "bad"),
                  ("needs_person", "Need a person", done["needs_person"], "bad"),
                  ("not_verified", "Not verified after the fix", done["not_verified"], "grey")]
    return "".join(f'<div class="tile {cls}" data-key="{key}"><span class="n">{count}</span>{e(label)}</div>'
                   for key, label, count, cls in tiles)


def _filters() -> str:
    faults = "".join(f'<option value="{n}">Fault {n}</option>' for n in FAULT_MESSAGES)
    severities = "".join(f'<option value="{s}">{s}</option>' for s in SEVERITY_FILTERS)
    return ('<form class="filters" id="filters" role="search">'
            f'<label for="f-fault">e-RS fault<select id="f-fault"><option value="">any</option>{faults}'
            '<option value="none">no e-RS fault</option><option value="failed">could not be audited</option>'
            "</select></label>"
            f'<label for="f-severity">Severity<select id="f-severity"><option value="">any</option>{severities}'
            "</select></label>"
            '<label for="f-host">Host name contains<input id="f-host" type="search" autocomplete="off"></label>'
            '<p id="shown" aria-live="polite"></p></form>')


def render_html(report: Mapping[str, Any]) -> str:
    """The text of report.html."""
    hosts = report["hosts"]
    estate = report.get("estate") or estate_summary(hosts)
    sections = [host_section(i, name, entry)
                for i, (name, entry) in enumerate(sorted(hosts.items(), key=_host_order), start=1)]
    generated = e(report.get("generated"))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(_csp())}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>NHS Credential Management estate report {generated}</title><style>{_CSS}{HISTORY_CSS}</style></head>"
        f'<body data-generated="{generated}"><header><h1>NHS Credential Management estate report</h1>'
        f"<p>Generated {generated} for {estate['hosts']} host(s): which PCs would show which NHS e-Referral "
        "Service configuration check fault, and why.</p></header><main>"
        f'<h2>Estate at a glance</h2><div class="tiles" id="tiles">{_tiles(estate)}</div>'
        '<div class="charts">'
        + bar_chart("chart-faults", "Hosts per e-RS fault", fault_bars(estate), estate["hosts"], fault_legend())
        + bar_chart("chart-findings", "Hosts per finding (errors and warnings, not waived)",
                    finding_bars(estate), estate["hosts"])
        + "</div>" + history_html(report)  # the results store's trend and changes (docs/history.md)
        + f'<h2>Hosts</h2>{_filters()}<div id="hosts">{"".join(sections)}</div></main>'
        "<footer>Written by the nhs_cm.remediation collection. This page is one file: it loads nothing "
        "from the network. Finding ids and remedies: the collection's docs/findings.md.</footer>"
        f"<script>{_JS}</script></body></html>\n"
    )
