# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Estate report: pure functions that turn per-host ``diagnose`` results into a report.

Internal API of the nhs_cm.remediation collection: it may change in any release.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections import Counter
from collections.abc import Mapping
from typing import Any

REPORT_SCHEMA = 1
FAULT_MESSAGES = {
    1: "NHS Credential Management cannot be found",
    2: "NHS Credential Management is running on port <port> but is not connected",
    3: "NHS Credential Management is running on port <port> and is connected but cannot login to e-RS",
    4: "A Windows Security (credential) dialog pops up in e-RS",
}
_PROBLEM_SEVERITIES = ("error", "warning")


def _one_line(text: Any) -> str:
    """Collapse a failure reason to one readable line."""
    line = " ".join(str(text or "unknown failure").split())
    return line if len(line) <= 400 else line[:397] + "..."


def host_entry(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """Report entry for one host from its registered ``diagnose`` result."""
    if not result:
        return {"status": "failed", "faults": [], "findings": [], "unknown": [],
                "error": "no result: the host was not audited in this run"}
    if result.get("unreachable") or result.get("failed"):
        prefix = "unreachable: " if result.get("unreachable") else ""
        return {"status": "failed", "faults": [], "findings": [], "unknown": [],
                "error": prefix + _one_line(result.get("msg"))}
    findings = list(result.get("findings") or [])
    faults = sorted({f["fault"] for f in findings
                     if f.get("fault") and f.get("severity") == "error"})
    return {"status": "ok", "faults": faults, "findings": findings,
            "unknown": list(result.get("unknown") or []), "error": None}


def build_report(results: Mapping[str, Mapping[str, Any] | None],
                 generated: _dt.datetime | None = None) -> dict[str, Any]:
    """Whole report from ``{host: diagnose result}``; hosts keep the given order."""
    generated = generated or _dt.datetime.now(_dt.UTC)
    return {
        "schema": REPORT_SCHEMA,
        "generated": generated.isoformat(timespec="seconds"),
        "hosts": {name: host_entry(result) for name, result in results.items()},
    }


def _finding_label(finding: Mapping[str, Any]) -> str:
    scope = finding.get("scope") or {}
    if scope.get("kind") == "user":
        who = scope.get("user") or scope.get("sid") or "?"
        session = scope.get("session")
        where = f"{who}, session {session}" if session is not None else who
        return f"{finding['id']} ({where})"
    browser = finding.get("browser")
    return f"{finding['id']} ({browser})" if browser else finding["id"]


def host_line(name: str, entry: Mapping[str, Any]) -> str:
    """One summary line for a host."""
    if entry["status"] != "ok":
        return f"{name}: FAILED - {entry['error']}"
    problems = [f for f in entry["findings"] if f.get("severity") in _PROBLEM_SEVERITIES]
    unknown = f"; {len(entry['unknown'])} check(s) could not be made" if entry["unknown"] else ""
    if not problems:
        return f"{name}: no e-RS fault found{unknown}"
    labels = "; ".join(f"{_finding_label(f)}: {f.get('summary') or ''}".rstrip(": ")
                       for f in problems)
    if not entry["faults"]:
        return f"{name}: warnings only, no e-RS fault now - {labels}{unknown}"
    faults = ", ".join(str(n) for n in entry["faults"])
    return f"{name}: e-RS fault {faults} - {labels}{unknown}"


def estate_lines(report: Mapping[str, Any]) -> list[str]:
    """Summary lines for the estate: counts per fault and per finding id."""
    hosts = report["hosts"]
    ok = [e for e in hosts.values() if e["status"] == "ok"]
    failed = len(hosts) - len(ok)
    healthy = sum(1 for e in ok if not any(f.get("severity") in _PROBLEM_SEVERITIES
                                           for f in e["findings"]))
    lines = [f"Estate: {len(hosts)} host(s) - {healthy} with no fault or warning, "
             f"{len(ok) - healthy} with findings, {failed} could not be audited"]
    per_fault = Counter(n for e in ok for n in e["faults"])
    for fault in sorted(per_fault):
        lines.append(f"  fault {fault} ('{FAULT_MESSAGES[fault]}'): {per_fault[fault]} host(s)")
    per_id = Counter(fid for e in ok for fid in {f["id"] for f in e["findings"]
                                                  if f.get("severity") in _PROBLEM_SEVERITIES})
    for fid, count in sorted(per_id.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {fid}: {count} host(s)")
    return lines


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """Per-host lines followed by the estate lines."""
    return [host_line(n, e) for n, e in sorted(report["hosts"].items())] + estate_lines(report)


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON so that a reader never sees a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
