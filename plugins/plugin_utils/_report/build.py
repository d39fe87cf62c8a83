# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Estate report: pure functions that turn per-host ``diagnose`` results into a report.

The layout of ``report.json`` is documented in ``docs/report.md``; ``REPORT_SCHEMA`` is its
version. Internal API of the nhs_cm.remediation collection: it may change in any release.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    FAULT_MESSAGES,
    ORDER,
    title_of,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.waivers import apply_waivers
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._text import replace_surrogates

REPORT_SCHEMA = 2
#: Severities that count as a problem on a host (``per_finding``, the remediation's before and after, the history's).
PROBLEM_SEVERITIES = ("error", "warning")
#: Fields of a diagnose result copied into the host entry as they are (``None`` when absent).
PASS_THROUGH_FIELDS = ("product", "reported_fault", "reported_port")
NOT_AUDITED = "no result: the host was not audited in this run"
#: Surrogate code points: no UTF-8 file can hold one (``replace_surrogates`` makes them U+FFFD).
_SURROGATES = re.compile("[\ud800-\udfff]")


#: What the report reads from a registered diagnose result (``facts`` only with include_facts).
RESULT_FIELDS = ("failed", "unreachable", "msg", "findings", "unknown", *PASS_THROUGH_FIELDS)


def result_fields(result: Any, include_facts: bool = False) -> dict[str, Any] | None:
    """The part of a registered diagnose result the report uses.

    Leaves out what it does not use: the big ``facts`` (unless asked for), and a failed task's
    ``exception`` summary, which is no JSON data.
    """
    if not isinstance(result, Mapping) or not result:
        return None
    fields = (*RESULT_FIELDS, "facts") if include_facts else RESULT_FIELDS
    return {name: result[name] for name in fields if name in result}


def _one_line(text: Any) -> str:
    """Collapse a failure reason to one readable line."""
    line = " ".join(_SURROGATES.sub("\ufffd", str(text or "unknown failure")).split())
    return line if len(line) <= 400 else line[:397] + "..."


def timestamp(moment: _dt.datetime | None = None) -> str:
    """ISO 8601 in UTC to the second: the form of ``generated`` and ``audited``."""
    moment = moment or _dt.datetime.now(_dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC).isoformat(timespec="seconds")


def faults_of(findings: Iterable[Mapping[str, Any]]) -> list[int]:
    """The e-RS faults a host shows now: the faults of its error findings."""
    return sorted({f["fault"] for f in findings if f.get("fault") and f.get("severity") == "error"})


def _waiver_fields(check: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(waivers that apply, expired waivers, problems) from a registered waivers result."""
    if not check:
        return [], [], []
    problems = [str(e) for e in check.get("errors") or []]
    if not problems and check.get("failed") and check.get("msg"):
        problems = [_one_line(check["msg"])]
    return list(check.get("waivers") or []), list(check.get("expired") or []), problems


def host_entry(result: Mapping[str, Any] | None, waiver_check: Mapping[str, Any] | None = None,
               audited: str | None = None, changes: Iterable[Any] | None = None,
               backups: Iterable[Any] | None = None, include_facts: bool = False) -> dict[str, Any]:
    """Report entry for one host from its registered ``diagnose`` (and ``waivers``) result."""
    waivers, expired, problems = _waiver_fields(waiver_check)
    entry: dict[str, Any] = {
        "status": "ok", "audited": audited or timestamp(), "faults": [], "findings": [], "waived": [],
        "unknown": [], "changes": list(changes or []), "backups": list(backups or []),
        "expired_waivers": expired, "waiver_problems": problems, "error": None,
    }
    entry.update({name: None for name in PASS_THROUGH_FIELDS})
    if not result:
        return dict(entry, status="failed", error=NOT_AUDITED)
    if result.get("unreachable") or result.get("failed"):
        prefix = "unreachable: " if result.get("unreachable") else ""
        return dict(entry, status="failed", error=prefix + _one_line(result.get("msg")))
    active, waived = apply_waivers(result.get("findings") or [], waivers)
    entry.update(faults=faults_of(active), findings=active, waived=waived,
                 unknown=list(result.get("unknown") or []))
    entry.update({name: result.get(name) for name in PASS_THROUGH_FIELDS})
    if include_facts:
        entry["facts"] = result.get("facts")
    return entry


#: What became of a finding in a remediation run, and the key of its total in ``estate.remediation``.
OUTCOMES = {"fixed": "fixed", "still failing": "still_failing", "needs a person": "needs_person",
            "not verified": "not_verified"}


def where_text(finding: Mapping[str, Any]) -> str:
    """Where a finding is: the machine, or a user and session; and the browser."""
    scope = finding.get("scope") or {}
    if scope.get("kind") == "user":
        who = scope.get("user") or scope.get("sid") or "unknown user"
        text = f"user {who}" + (f", session {scope['session']}" if scope.get("session") is not None else "")
    else:
        text = "machine"
    text += f", {finding['browser']}" if finding.get("browser") else ""
    return text + (f" profile {scope['browser_profile']}" if scope.get("browser_profile") else "")


def _same_finding(finding: Mapping[str, Any]) -> tuple[str, str, str]:
    """What makes a finding before the fix the same as one after: id, user (not the session), browser."""
    scope = finding.get("scope") or {}
    who = (scope.get("sid") or scope.get("user") or "") if scope.get("kind") == "user" else ""
    return str(finding.get("id")), str(who), str(finding.get("browser") or "")


def needs_person(finding: Mapping[str, Any]) -> bool:
    """A finding no role fixes: remedy by hand, a value Group Policy owns, or one to escalate."""
    remedy = finding.get("remedy") or {}
    return not remedy.get("automatic") or bool(remedy.get("managed_by_gpo")) or bool(finding.get("escalation"))


def _problems(entry: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    return {_same_finding(f): f for f in entry["findings"] if f.get("severity") in PROBLEM_SEVERITIES}


def _state(entry: Mapping[str, Any], found: bool) -> str:
    return "not checked" if entry["status"] != "ok" else "found" if found else "not found"


def finding_outcome(after: Mapping[str, Any] | None, after_ok: bool) -> str:
    """fixed, still failing, needs a person or not verified: a finding found before the fix, or after it.

    ``after`` is the finding after the fix (None: gone); ``after_ok``: the host was read after the fix.
    """
    if not after_ok:
        return "not verified"
    if after is None:
        return "fixed"
    return "needs a person" if needs_person(after) else "still failing"


def remediation(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Before and after per finding (errors and warnings that are not waived) of one host, with totals."""
    found_before, found_after = _problems(before), _problems(after)
    keys = sorted({*found_before, *found_after}, key=lambda k: (ORDER.get(k[0], len(ORDER)), k))
    rows = []
    for key in keys:
        was, now = found_before.get(key), found_after.get(key)
        finding = now or was or {}
        rows.append({"id": key[0], "title": title_of(key[0]), "severity": finding.get("severity"),
                     "where": where_text(finding), "before": _state(before, was is not None),
                     "after": _state(after, now is not None),
                     "outcome": finding_outcome(now, after["status"] == "ok")})
    totals = Counter(OUTCOMES[row["outcome"]] for row in rows)
    return {"before": {"status": before["status"], "audited": before.get("audited"), "faults": before["faults"],
                       "error": before["error"]},
            "findings": rows, "totals": {key: totals[key] for key in OUTCOMES.values()}}


def remediation_totals(hosts: Mapping[str, Mapping[str, Any]]) -> dict[str, int] | None:
    """Findings fixed, still failing, needing a person and not verified over the estate; None for an audit."""
    done = [e["remediation"] for e in hosts.values() if e.get("remediation")]
    if not done:
        return None
    counts = Counter(OUTCOMES.get(row.get("outcome"), "") for r in done for row in r.get("findings") or [])
    return {key: counts[key] for key in OUTCOMES.values()}


def _count_by_id(entries: Iterable[Mapping[str, Any]], field: str) -> dict[str, int]:
    """Hosts per finding id in ``entry[field]``; active findings count when error or warning."""
    counts: Counter[str] = Counter()
    for entry in entries:
        counts.update({f["id"] for f in entry[field]
                       if field == "waived" or f.get("severity") in PROBLEM_SEVERITIES})
    return {fid: counts[fid] for fid in sorted(counts, key=lambda i: (-counts[i], ORDER.get(i, len(ORDER)), i))}


def has_problem(entry: Mapping[str, Any]) -> bool:
    """An audited host with an error or warning finding that is not waived."""
    return any(f.get("severity") in PROBLEM_SEVERITIES for f in entry["findings"])


def estate_summary(hosts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Counts for the estate, derived from the host entries (recomputed after every merge)."""
    ok = [e for e in hosts.values() if e["status"] == "ok"]
    per_fault = Counter(n for e in ok for n in e["faults"])
    return {
        "hosts": len(hosts),
        "audited": len(ok),
        "not_audited": len(hosts) - len(ok),
        "with_fault": sum(1 for e in ok if e["faults"]),
        "with_findings": sum(1 for e in ok if has_problem(e)),
        "no_fault_or_warning": sum(1 for e in ok if not has_problem(e)),
        "with_unknown": sum(1 for e in ok if e["unknown"]),
        "with_waived": sum(1 for e in ok if e["waived"]),
        "with_waiver_problems": sum(1 for e in hosts.values() if e["waiver_problems"]),
        "per_fault": {str(n): per_fault[n] for n in sorted(per_fault)},
        "per_finding": _count_by_id(ok, "findings"),
        "waived_per_finding": _count_by_id(ok, "waived"),
        **({"remediation": totals} if (totals := remediation_totals(hosts)) else {}),
    }


def catalogue_sorted(ids: Iterable[str]) -> list[str]:
    """Ids once each, catalogue order first, then any unknown id by name."""
    return sorted(set(ids), key=lambda i: (ORDER.get(i, len(ORDER)), i))


def assemble(hosts: Mapping[str, Mapping[str, Any]], checks: Iterable[str], generated: str) -> dict[str, Any]:
    """A report document from host entries: hosts sorted by name, estate counts derived."""
    ordered = {name: dict(hosts[name]) for name in sorted(hosts)}
    return {"schema": REPORT_SCHEMA, "generated": generated, "checks": catalogue_sorted(checks),
            "estate": estate_summary(ordered), "hosts": ordered}


def build_report(results: Mapping[str, Mapping[str, Any] | None],
                 generated: _dt.datetime | None = None,
                 waiver_checks: Mapping[str, Mapping[str, Any] | None] | None = None,
                 checks: Iterable[str] = (),
                 changes: Mapping[str, Iterable[Any]] | None = None,
                 backups: Mapping[str, Iterable[Any]] | None = None,
                 include_facts: bool = False,
                 before: Mapping[str, Mapping[str, Any] | None] | None = None) -> dict[str, Any]:
    """Whole report from ``{host: diagnose result}`` (and each host's waivers result).

    ``before``: for a remediation, each host's diagnose result before the fix (``results`` are
    after it); each host entry then has ``remediation``, the estate its totals.
    """
    stamp = timestamp(generated)
    waiver_checks, changes, backups = waiver_checks or {}, changes or {}, backups or {}
    hosts = {name: host_entry(result, waiver_checks.get(name), stamp, changes.get(name),
                              backups.get(name), include_facts)
             for name, result in results.items()}
    if before is not None:
        for name, entry in hosts.items():
            entry["remediation"] = remediation(host_entry(before.get(name), waiver_checks.get(name), stamp), entry)
    return assemble(hosts, checks, stamp)


def _finding_label(finding: Mapping[str, Any]) -> str:
    scope = finding.get("scope") or {}
    if scope.get("kind") == "user":
        who = scope.get("user") or scope.get("sid") or "?"
        session = scope.get("session")
        where = f"{who}, session {session}" if session is not None else who
        return f"{finding['id']} ({where})"
    browser = finding.get("browser")
    return f"{finding['id']} ({browser})" if browser else finding["id"]


def _host_notes(entry: Mapping[str, Any]) -> str:
    notes = []
    if entry["unknown"]:
        notes.append(f"{len(entry['unknown'])} check(s) could not be made")
    if entry["waived"]:
        notes.append("waived: " + ", ".join(sorted({f["id"] for f in entry["waived"]})))
    if entry["waiver_problems"]:
        notes.append(f"{len(entry['waiver_problems'])} waiver problem(s)")
    rows = (entry.get("remediation") or {}).get("findings", [])
    for what in ("fixed", "still failing", "needs a person"):
        ids = [r["id"] for r in rows if r["outcome"] == what]
        if ids:
            notes.append(f"{what}: " + ", ".join(dict.fromkeys(ids)))
    return "".join(f"; {note}" for note in notes)


def host_line(name: str, entry: Mapping[str, Any]) -> str:
    """One summary line for a host."""
    if entry["status"] != "ok":
        return f"{name}: FAILED - {entry['error']}"
    problems = [f for f in entry["findings"] if f.get("severity") in PROBLEM_SEVERITIES]
    notes = _host_notes(entry)
    if not problems:
        return f"{name}: no e-RS fault found{notes}"
    labels = "; ".join(f"{_finding_label(f)}: {f.get('summary') or ''}".rstrip(": ")
                       for f in problems)
    if not entry["faults"]:
        return f"{name}: warnings only, no e-RS fault now - {labels}{notes}"
    faults = ", ".join(str(n) for n in entry["faults"])
    return f"{name}: e-RS fault {faults} - {labels}{notes}"


def estate_lines(report: Mapping[str, Any]) -> list[str]:
    """Summary lines for the estate: counts per fault and per finding id."""
    estate = report.get("estate") or estate_summary(report["hosts"])
    lines = [f"Estate: {estate['hosts']} host(s) - {estate['no_fault_or_warning']} with no fault or warning, "
             f"{estate['with_findings']} with findings, {estate['not_audited']} could not be audited"]
    for fault, count in estate["per_fault"].items():
        lines.append(f"  fault {fault} ('{FAULT_MESSAGES[int(fault)]}'): {count} host(s)")
    lines += [f"  {fid} ({title_of(fid)}): {count} host(s)" for fid, count in estate["per_finding"].items()]
    lines += [f"  waived {fid} ({title_of(fid)}): {count} host(s)"
              for fid, count in estate["waived_per_finding"].items()]
    if estate["with_unknown"]:
        lines.append(f"  {estate['with_unknown']} host(s) with checks that could not be made")
    if estate["with_waiver_problems"]:
        lines.append(f"  {estate['with_waiver_problems']} host(s) with waiver problems (see their lines)")
    done = estate.get("remediation")
    if done:
        lines.append(f"Remediation: {done['fixed']} finding(s) fixed, {done['still_failing']} still failing, "
                     f"{done['needs_person']} need a person, {done['not_verified']} not verified")
    return lines


def waiver_problem_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per waiver problem, naming the host."""
    return [f"{name}: waiver problem - {problem}"
            for name, entry in sorted(report["hosts"].items()) for problem in entry["waiver_problems"]]


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """Per-host lines, waiver problems, then the estate lines."""
    return ([host_line(n, e) for n, e in sorted(report["hosts"].items())]
            + waiver_problem_lines(report) + estate_lines(report))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def report_result(report: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, Any]:
    """What the report and report_merge tasks return.

    A surrogate code point that a host sent (in a host name, a reason, a user name) is U+FFFD
    here, as in the files (``write_text_atomic``): Ansible shows and registers this result.
    """
    hosts = report["hosts"]
    return replace_surrogates(json.loads(json.dumps({
        "changed": False,
        "path": files.get("json") or next(iter(files.values())),
        "files": dict(files),
        "summary": summary_lines(report),
        "estate": report["estate"],
        "hosts_failed": sorted(n for n, e in hosts.items() if e["status"] != "ok"),
        "hosts_with_waiver_problems": sorted(n for n, e in hosts.items() if e["waiver_problems"]),
    }, ensure_ascii=False)))


def write_text_atomic(path: str, text: str) -> None:
    """Write a file (UTF-8) so that a reader never sees it half-written.

    Text that UTF-8 cannot hold (a surrogate code point) is written as U+FFFD: writing never
    fails on what the text says.
    """
    text = _SURROGATES.sub("\ufffd", text)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_json(data: Any) -> str:
    """The text of report.json."""
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON so that a reader never sees a half-written file."""
    write_text_atomic(path, to_json(data))
