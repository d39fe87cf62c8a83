# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merge reports of several runs or AWX job slices, and build a report from job events.

Merging keeps, per host, the newest result (``audited``; equal times are decided by the entry's
content, so the merge gives the same report in any order and grouping). A report read for the
merge is checked first (``normalise``): whatever a file holds, the merge either refuses it with
a message naming the file and the field, or writes every format. Internal API of the
nhs_cm.remediation collection: it may change in any release.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    BROWSERS,
    CATALOGUE,
    FAULT_MESSAGES,
    SEVERITIES,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import (
    OUTCOMES,
    PASS_THROUGH_FIELDS,
    REPORT_SCHEMA,
    assemble,
    build_report,
    faults_of,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._text import replace_surrogates

DIAGNOSE_ACTION = "nhs_cm.remediation.diagnose"
WAIVERS_ACTION = "nhs_cm.remediation.waivers"
_RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")
_ENTRY_DEFAULTS: dict[str, Any] = {"faults": [], "findings": [], "waived": [], "unknown": [], "changes": [],
                                   "backups": [], "expired_waivers": [], "waiver_problems": [], "error": None,
                                   **dict.fromkeys(PASS_THROUGH_FIELDS)}


#: A host name as a report may hold it: printable, on one line.
_HOST_NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,255}")


class ReportError(ValueError):
    """A report file that cannot be merged; the message names the file and the field."""


def _shown(value: Any) -> str:
    """A value of a report in a message: short, one line."""
    text = " ".join(repr(value if not isinstance(value, str) else value[:80]).split())
    return text if len(text) <= 80 else text[:77] + "..."


def parse_time(value: Any, where: str) -> _dt.datetime:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{where} must be an ISO 8601 time such as 2026-11-25T03:40:00+00:00, "
                          f"not {_shown(value)}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_fault(value: Any) -> bool:
    return _is_int(value) and value in FAULT_MESSAGES


def _need(ok: bool, where: str, what: str, value: Any) -> None:
    if not ok:
        raise ReportError(f"{where} must be {what}, not {_shown(value)}")


def _check_id(where: str, value: Any) -> None:
    _need(isinstance(value, str) and value in CATALOGUE, where,
          "a finding id of the catalogue (docs/findings.md)", value)


def _check_finding(where: str, finding: Any, waived: bool) -> None:
    """One finding as the catalogue makes it (``make_finding``): what every format relies on."""
    _need(isinstance(finding, Mapping), where, "a finding object", finding)
    _check_id(f"{where}.id", finding.get("id"))
    fault = finding.get("fault")
    _need(fault is None or _is_fault(fault), f"{where}.fault", "1, 2, 3, 4 or null", fault)
    _need(finding.get("severity") in SEVERITIES, f"{where}.severity", " or ".join(SEVERITIES),
          finding.get("severity"))
    browser = finding.get("browser")
    _need(browser is None or browser in BROWSERS, f"{where}.browser", f"{', '.join(BROWSERS)} or null", browser)
    for name in ("summary", "ers_message"):
        _need(finding.get(name) is None or isinstance(finding[name], str), f"{where}.{name}", "a text or null",
              finding.get(name))
    for name in ("scope", "remedy", "escalation"):
        _need(finding.get(name) is None or isinstance(finding[name], Mapping), f"{where}.{name}",
              "an object or null", finding.get(name))
    evidence = finding.get("evidence")
    _need(evidence is None or isinstance(evidence, list), f"{where}.evidence", "a list or null", evidence)
    if waived:
        _need(isinstance(finding.get("waiver"), Mapping), f"{where}.waiver", "an object", finding.get("waiver"))


def _check_list(where: str, value: Any, item: str, item_ok: Callable[[Any], bool]) -> None:
    """A list whose every element is ``item`` (a finding object, a text, ...)."""
    _need(isinstance(value, list), where, f"a list (of: {item})", value)
    for index, element in enumerate(value):
        _need(item_ok(element), f"{where}[{index}]", item, element)


_STATES = ("found", "not found", "not checked")


def _check_remediation(where: str, done: Any) -> None:
    """A remediation report's before and after (what the page, the CSV and the totals read)."""
    _need(isinstance(done, Mapping), where, "an object {before, findings, totals}", done)
    before = done.get("before")
    _need(isinstance(before, Mapping) and before.get("status") in ("ok", "failed"), f"{where}.before",
          "an object whose status is 'ok' or 'failed'", before)
    _check_list(f"{where}.findings", done.get("findings"), "a finding's outcome", lambda r: isinstance(r, Mapping))
    for index, row in enumerate(done["findings"]):
        _check_id(f"{where}.findings[{index}].id", row.get("id"))
        for field in ("before", "after"):
            _need(row.get(field) in _STATES, f"{where}.findings[{index}].{field}", " or ".join(_STATES),
                  row.get(field))
        _need(row.get("outcome") in OUTCOMES, f"{where}.findings[{index}].outcome", " or ".join(OUTCOMES),
              row.get("outcome"))
        for field in ("title", "where"):
            _need(isinstance(row.get(field), str), f"{where}.findings[{index}].{field}", "a text", row.get(field))
    totals = done.get("totals")
    _need(isinstance(totals, Mapping) and all(_is_int(totals.get(k)) for k in OUTCOMES.values()),
          f"{where}.totals", "an object of counts " + ", ".join(OUTCOMES.values()), totals)


def _check_entry(where: str, full: dict[str, Any]) -> None:
    """The fields of one host entry that the formats and the estate counts rely on."""
    parse_time(full["audited"], f"{where}.audited")
    for name in ("findings", "waived"):
        _check_list(f"{where}.{name}", full[name], "a finding object", lambda item: isinstance(item, Mapping))
        for index, finding in enumerate(full[name]):
            _check_finding(f"{where}.{name}[{index}]", finding, name == "waived")
    _check_list(f"{where}.unknown", full["unknown"], "an object {check, reason}",
                lambda item: isinstance(item, Mapping))
    for index, item in enumerate(full["unknown"]):
        _check_id(f"{where}.unknown[{index}].check", item.get("check"))
        reason = item.get("reason")
        _need(reason is None or isinstance(reason, str), f"{where}.unknown[{index}].reason", "a text or null", reason)
    _check_list(f"{where}.waiver_problems", full["waiver_problems"], "a text", lambda item: isinstance(item, str))
    _check_list(f"{where}.expired_waivers", full["expired_waivers"], "a waiver object",
                lambda item: isinstance(item, Mapping))
    _check_list(f"{where}.changes", full["changes"], "a change", lambda item: True)
    _check_list(f"{where}.backups", full["backups"], "a backup id", lambda item: isinstance(item, str))
    _need(full["error"] is None or isinstance(full["error"], str), f"{where}.error", "a text or null", full["error"])
    if full.get("remediation") is not None:
        _check_remediation(f"{where}.remediation", full["remediation"])
    reported = full["reported_fault"]
    _need(reported is None or _is_fault(reported), f"{where}.reported_fault", "1, 2, 3, 4 or null", reported)
    port = full["reported_port"]
    _need(port is None or (_is_int(port) and 0 < port < 65536), f"{where}.reported_port",
          "a port number or null", port)


def normalise(report: Any, where: str = "report") -> dict[str, Any]:
    """A report document in the current layout; schema 1 reports (0.1.0) are upgraded."""
    if not isinstance(report, Mapping):
        raise ReportError(f"{where} must be a JSON object with schema, generated and hosts")
    schema = report.get("schema")
    if schema not in (1, REPORT_SCHEMA):
        raise ReportError(f"{where}.schema must be 1 or {REPORT_SCHEMA}, not {schema!r}")
    generated = report.get("generated")
    parse_time(generated, f"{where}.generated")
    hosts = report.get("hosts")
    if not isinstance(hosts, Mapping):
        raise ReportError(f"{where}.hosts must be an object mapping host names to results")
    entries = {}
    for name, entry in hosts.items():
        if not isinstance(name, str) or not _HOST_NAME.fullmatch(name):
            raise ReportError(f"{where}.hosts has a host name that is empty, too long or holds a control "
                              f"character: {_shown(name)}")
        if not isinstance(entry, Mapping) or entry.get("status") not in ("ok", "failed"):
            raise ReportError(f"{where}.hosts.{name}.status must be 'ok' or 'failed'")
        full = {**_ENTRY_DEFAULTS, "audited": generated, **entry}
        _check_entry(f"{where}.hosts.{name}", full)
        full["faults"] = faults_of(full["findings"]) if full["status"] == "ok" else []
        entries[name] = full
    checks = report.get("checks") or []
    _need(isinstance(checks, list), f"{where}.checks", "a list of finding ids", checks)
    for index, check in enumerate(checks):
        _check_id(f"{where}.checks[{index}]", check)
    return {"generated": generated, "checks": list(checks), "hosts": entries}


def _newest_key(entry: Mapping[str, Any]) -> tuple[_dt.datetime, str]:
    return parse_time(entry["audited"], "audited"), json.dumps(entry, sort_keys=True, default=str)


def merge_reports(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from several: per host the newest entry; ``generated`` is the newest input's."""
    docs = [normalise(report, f"report {index + 1}") for index, report in enumerate(reports)]
    if not docs:
        raise ReportError("nothing to merge: give at least one report")
    hosts: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for name, entry in doc["hosts"].items():
            if name not in hosts or _newest_key(entry) > _newest_key(hosts[name]):
                hosts[name] = entry
    generated = max((doc["generated"] for doc in docs), key=lambda g: parse_time(g, "generated"))
    checks = [check for doc in docs for check in doc["checks"]]
    return assemble(hosts, checks, generated)


def load_report(path: str) -> Any:
    """Read and check one report.json; errors name the file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            data = replace_surrogates(json.load(handle))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from None
    except RecursionError:
        raise ReportError(f"{path}: not a report: its JSON is nested too deeply") from None
    normalise(data, path)
    return data


# ---------------------------------------------------------------------------------------------
# ansible-runner / AWX job events

def _action(event_data: Mapping[str, Any]) -> str:
    return str(event_data.get("resolved_action") or event_data.get("task_action") or "")


def results_from_events(events: Iterable[Mapping[str, Any]], diagnose_action: str = DIAGNOSE_ACTION,
                        waivers_action: str = WAIVERS_ACTION) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``{host: diagnose result}``, ``{host: waivers result}``) from a run's job events.

    Hosts of the play that never got a diagnose result (seen in ``playbook_on_stats`` or in the
    waivers task's ``hosts``) map to ``None``, as in the report plugin.
    """
    results: dict[str, Any] = {}
    waivers: dict[str, Any] = {}
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") == "playbook_on_stats":
            for counts in ("ok", "failures", "dark", "skipped", "ignored", "rescued", "processed"):
                for host in data.get(counts) or {}:
                    results.setdefault(host, None)
            continue
        if event.get("event") not in _RESULT_EVENTS or not data.get("host"):
            continue
        res = dict(data.get("res") or {})
        if event.get("event") == "runner_on_unreachable":
            res["unreachable"] = True
        if _action(data) == diagnose_action:
            results[data["host"]] = res
        elif _action(data) == waivers_action and isinstance(res.get("hosts"), Mapping):
            waivers.update(res["hosts"])  # one result for all hosts (the task runs once)
            for host in res["hosts"]:
                results.setdefault(host, None)
    return results, waivers


def report_from_events(events: Iterable[Mapping[str, Any]], generated: _dt.datetime | None = None,
                       checks: Iterable[str] = (), **actions: str) -> dict[str, Any]:
    """The report the audit playbook writes, rebuilt from the job events of its run."""
    results, waivers = results_from_events(list(events), **actions)
    return build_report(results, generated=generated, waiver_checks=waivers, checks=checks)


#: What a report says about other runs (the results store's history, docs/history.md), not about its own.
HISTORY_FIELDS = ("trend", "since_last_run", "regressed", "timeline")


def without_times(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report with ``generated``, every host's ``audited`` and the history removed, to compare two runs."""
    drop = ("audited", *HISTORY_FIELDS)
    hosts = {name: {k: v for k, v in entry.items() if k not in drop} for name, entry in report["hosts"].items()}
    return {**{k: v for k, v in report.items() if k not in ("generated", *HISTORY_FIELDS)}, "hosts": hosts}
