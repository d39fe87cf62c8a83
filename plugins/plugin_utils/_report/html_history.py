# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html's history part: the trend chart, "new since last run", "fixed since last run",
"regressions", and a small timeline per host - from the fields the results store adds
(``trend``, each host's ``since_last_run``, ``regressed`` and ``timeline``; docs/history.md).

Pure functions that return HTML (inline SVG, no script); everything from a host is escaped. A
report without history (no store) gets nothing. Internal API of the nhs_cm.remediation collection.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

#: The fault colours of report.html's charts (``_report_html.FAULT_COLOURS``), kept here to avoid a cycle.
COLOURS = {1: "#b3261e", 2: "#b85c00", 3: "#6a3aa8", 4: "#1f5fa8"}
HEALTHY = "#2e7d32"
WARNING = "#b85c00"

HISTORY_CSS = """
.trend{display:flex;flex-wrap:wrap;gap:18px;margin-top:8px}
table.history{max-width:1100px;margin-bottom:6px}
.timeline{margin:0 0 8px;font-size:12px;color:#444;display:flex;align-items:center;gap:8px}
.regressed{color:#8a1c13;font-weight:700}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _day(time: Any) -> str:
    text = str(time or "")
    return text[:16].replace("T", " ")


def trend_chart(trend: Sequence[Mapping[str, Any]]) -> str:
    """Hosts per e-RS fault over the runs (oldest left), one line per fault, as inline SVG."""
    width, height, left, bottom, top = 660, 230, 44, 40, 12
    faults = sorted({int(f) for point in trend for f in point.get("per_fault") or {}})
    peak = max([1, *[int(c) for point in trend for c in (point.get("per_fault") or {}).values()]])
    span = max(1, len(trend) - 1)
    plot_w, plot_h = width - left - 20, height - top - bottom

    def x(index: int) -> float:
        return left + (plot_w * index / span if len(trend) > 1 else plot_w / 2)

    def y(count: int) -> float:
        return top + plot_h - plot_h * count / peak

    parts = [f'<figure id="chart-trend"><figcaption>Hosts per e-RS fault, last {len(trend)} run(s)</figcaption>'
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="Hosts per e-RS fault over the runs">'
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>'
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>'
             f'<text x="{left - 8}" y="{top + 10}" text-anchor="end">{peak}</text>'
             f'<text x="{left - 8}" y="{top + plot_h}" text-anchor="end">0</text>']
    if trend:
        parts.append(f'<text x="{left}" y="{height - 18}">{_e(_day(trend[0]["time"]))}</text>')
        if len(trend) > 1:
            parts.append(f'<text x="{left + plot_w}" y="{height - 18}" text-anchor="end">'
                         f'{_e(_day(trend[-1]["time"]))}</text>')
    for fault in faults:
        counts = [int((point.get("per_fault") or {}).get(str(fault), 0)) for point in trend]
        colour = COLOURS.get(fault, "#444")
        points = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, c in enumerate(counts))
        dots = "".join(f'<circle cx="{x(i):.1f}" cy="{y(c):.1f}" r="3.5" fill="{colour}"><title>Fault {fault}, '
                       f'{_e(_day(trend[i]["time"]))} ({_e(trend[i].get("playbook"))}): {c} host(s)</title></circle>'
                       for i, c in enumerate(counts))
        parts.append(f'<g class="trend-line" data-fault="{fault}" data-counts="{",".join(map(str, counts))}">'
                     f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>{dots}</g>')
    legend = "".join(f'<tspan fill="{COLOURS.get(f, "#444")}">\u25a0 Fault {f}  </tspan>' for f in faults)
    parts.append(f'<text x="{left}" y="{height - 2}">{legend or "No e-RS fault in these runs"}</text></svg></figure>')
    return "".join(parts)


def _rows(report: Mapping[str, Any], kind: str) -> list[tuple[str, str, str]]:
    rows = []
    for name in sorted(report["hosts"]):
        since = report["hosts"][name].get("since_last_run") or {}
        rows += [(name, fid, since.get("last_run") or "") for fid in since.get(kind) or []]
    return rows


def _table(table_id: str, title: str, head: Sequence[str], rows: list[list[str]], attrs: list[str]) -> str:
    body = "".join(f"<tr {attr}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row, attr in zip(rows, attrs, strict=True))
    empty = "" if rows else '<p class="none">None.</p>'
    return (f'<h3>{_e(title)} ({len(rows)})</h3><table class="history" id="{table_id}"><thead><tr>'
            + "".join(f"<th>{_e(h)}</th>" for h in head) + f"</tr></thead><tbody>{body}</tbody></table>{empty}")


def history_html(report: Mapping[str, Any]) -> str:
    """The history part of the page: the trend chart and the three tables (nothing without ``trend``)."""
    trend = report.get("trend")
    if trend is None:
        return ""
    parts = [f'<h2>Trend and changes</h2><div class="trend">{trend_chart(trend)}</div>']
    for table_id, title, kind in (("new-since-last-run", "New since last run", "new"),
                                  ("fixed-since-last-run", "Fixed since last run", "fixed")):
        rows = _rows(report, kind)
        parts.append(_table(table_id, title, ("Host", "Finding", "Last run"),
                            [[_e(h), f"<code>{_e(f)}</code>", _e(_day(t))] for h, f, t in rows],
                            [f'data-host="{_e(h)}" data-id="{_e(f)}"' for h, f, _t in rows]))
    regressed = [(name, item) for name in sorted(report["hosts"])
                 for item in report["hosts"][name].get("regressed") or []]
    parts.append(_table("regressions", "Regressions: fixed, then back", ("Host", "Finding", "Fixed", "How", "Back"),
                        [[_e(h), f"<code>{_e(r.get('id'))}</code>", _e(_day(r.get("fixed"))), _e(r.get("fixed_by")),
                          _e(_day(r.get("back")))] for h, r in regressed],
                        [f'data-host="{_e(h)}" data-id="{_e(r.get("id"))}"' for h, r in regressed]))
    return "".join(parts)


def host_timeline(entry: Mapping[str, Any]) -> str:
    """A small strip of the host's last results (oldest left): red for an e-RS fault, amber for
    warnings, green for none; each square says when and what (nothing without ``timeline``)."""
    timeline = entry.get("timeline")
    if not timeline:
        return ""
    size, gap = 12, 3
    squares = []
    for index, point in enumerate(timeline):
        faults, problems = point.get("faults") or [], point.get("problems") or []
        colour = COLOURS.get(faults[0], "#444") if faults else WARNING if problems else HEALTHY
        what = ", ".join(problems) if problems else "no fault or warning"
        when = _e(_day(point.get("time")))
        squares.append(f'<rect x="{index * (size + gap)}" y="0" width="{size}" height="{size}" rx="2" '
                       f'fill="{colour}" data-faults="{" ".join(map(str, faults))}"><title>{when}'
                       f' ({_e(point.get("playbook"))}): {_e(what)}</title></rect>')
    regressed = entry.get("regressed") or []
    note = (f' <span class="regressed">regressed: {_e(", ".join(r.get("id", "") for r in regressed))}</span>'
            if regressed else "")
    width = len(timeline) * (size + gap)
    return (f'<div class="timeline" data-points="{len(timeline)}">Last {len(timeline)} result(s): '
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{size}" role="img" '
            f'aria-label="Last results of this host">{"".join(squares)}</svg>{note}</div>')
