# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merge reports of several runs or AWX job slices, and build a report from job events.

Merging keeps, per host, the newest result (``audited``; equal times are decided by the entry's
content, so the merge gives the same report in any order and grouping). Internal API of the
nhs_cm.remediation collection: it may change in any release.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import (
    PASS_THROUGH,
    REPORT_SCHEMA,
    assemble,
    build_report,
    faults_of,
)

DIAGNOSE_ACTION = "nhs_cm.remediation.diagnose"
WAIVERS_ACTION = "nhs_cm.remediation.waivers"
_RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")
_ENTRY_DEFAULTS: dict[str, Any] = {"faults": [], "findings": [], "waived": [], "unknown": [], "changes": [],
                                   "backups": [], "expired_waivers": [], "waiver_problems": [], "error": None,
                                   **dict.fromkeys(PASS_THROUGH)}


class ReportError(ValueError):
    """A report file that cannot be merged; the message names the file and the field."""


def parse_time(value: Any, where: str) -> _dt.datetime:
    try:
        moment = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ReportError(f"{where} must be an ISO 8601 time such as 2026-11-25T03:40:00+00:00, "
                          f"not {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


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
        if not isinstance(entry, Mapping) or entry.get("status") not in ("ok", "failed"):
            raise ReportError(f"{where}.hosts.{name}.status must be 'ok' or 'failed'")
        full = {**_ENTRY_DEFAULTS, "audited": generated, **entry}
        parse_time(full["audited"], f"{where}.hosts.{name}.audited")
        findings = full["findings"]
        if not isinstance(findings, list) or not all(isinstance(f, Mapping) for f in findings):
            raise ReportError(f"{where}.hosts.{name}.findings must be a list of finding objects")
        full["faults"] = faults_of(full["findings"]) if full["status"] == "ok" else []
        entries[str(name)] = full
    checks = report.get("checks") or []
    if not isinstance(checks, list) or not all(isinstance(check, str) for check in checks):
        raise ReportError(f"{where}.checks must be a list of finding ids")
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
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from None
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
