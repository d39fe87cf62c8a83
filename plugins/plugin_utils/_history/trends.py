# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recording a report's run in the results store, and the history a report shows (docs/history.md).

``record_and_add_history`` is what ``nhs_cm.remediation.report`` does with its ``store`` option:
record any spooled runs, record this run, then add ``trend`` and each host's
``since_last_run`` and ``regressed`` to the report. When the store cannot be used, the run is
kept in a spool file instead and the error is returned as one line; the report files are
written either way. ``estate_report`` builds a whole report from the store (for the
``history`` module). Internal API of the nhs_cm.remediation collection.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

from __future__ import annotations

import datetime as _dt
import os
import uuid
from collections.abc import Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.records import (
    TREND_RUNS,
    StoreError,
    add_history,
    changes_since,
    host_history,
    parse_store_url,
    problem_ids,
    read_spool,
    run_info,
    spool_document,
    spool_files,
    spool_path,
    trend_points,
    utc,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.store import open_store
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import (
    assemble,
    timestamp,
    write_json_atomic,
)

#: Options the report module takes for the store (merged into its argument spec).
STORE_OPTIONS: dict[str, Any] = {
    "store": {"type": "str"},
    "store_password": {"type": "str", "no_log": True},
    "spool_dir": {"type": "path"},
    "run": {"type": "dict"},
}


def history_of(store: Any, run_ids: list[str], as_of: _dt.datetime,
               entries: Mapping[str, tuple[str, Mapping[str, Any]]],
               playbooks: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(trend, per host ``since_last_run``/``regressed``) for hosts whose current result is in ``entries``.

    ``playbooks`` names the playbook of each run in ``entries`` (for hosts not audited in it).
    """
    points = store.points(run_ids, as_of)
    per_host: dict[str, Any] = {}
    for name, (run_id, entry) in entries.items():
        mine = points.get(name, [])
        own = next((p for p, rid in mine if rid == run_id), None)
        if own is not None:
            now, playbook = own.time, own.playbook
        else:  # not audited in that run: its time is its result's, or the report's time
            now = utc(_dt.datetime.fromisoformat(entry["audited"])) if entry.get("audited") else as_of
            playbook = playbooks.get(run_id, "audit") if playbooks else "audit"
        earlier = [p for p, rid in mine if rid != run_id and p.time < now]
        per_host[name] = host_history(earlier, problem_ids(entry), entry.get("status") == "ok", now, playbook)
    return trend_points(*store.trend(as_of, TREND_RUNS)), per_host


def _spool(directory: str, run: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    path = spool_path(directory, run["run_id"])
    earlier = None
    if os.path.exists(path):
        try:
            earlier = read_spool(path)
        except StoreError:
            earlier = None
    document = spool_document(run, report["hosts"], report.get("checks") or [],
                              {"hosts": earlier[1]} if earlier else None)
    write_json_atomic(path, document)
    return path


def _record_spooled(store: Any, directory: str, skip: str) -> list[str]:
    """Record the runs spooled in ``directory`` (then remove their files); returns their run ids."""
    done = []
    for path in spool_files(directory):
        try:
            run, hosts = read_spool(path)
        except StoreError:  # never retried, never in the way of the others: kept aside for a person to look at
            os.replace(path, path + ".unreadable")
            continue
        if run.get("run_id") == skip:
            continue  # this run's earlier batches: recorded with it below
        store.record(run, hosts)
        os.unlink(path)
        done.append(str(run["run_id"]))
    return done


def record_and_add_history(report: dict[str, Any], args: Mapping[str, Any], task_vars: Mapping[str, Any],
                           now: _dt.datetime | None = None) -> dict[str, Any]:
    """Record the report's run in ``args['store']`` and add its history to ``report``.

    Returns what the task says about the store: ``{store, recorded, run, group, spooled_recorded}``
    and, when the store could not be used, ``error`` (one line) and ``spool`` (the file the run
    waits in). Never raises for a store problem.
    """
    now = now or _dt.datetime.fromisoformat(report["generated"])
    spool_dir = args.get("spool_dir") or args.get("dest") or "."
    info: dict[str, Any] = {"store": None, "recorded": False}
    run: dict[str, Any] | None = None
    try:
        run = run_info(args.get("run"), task_vars, now, uuid.uuid4().hex)
        info.update(run=run["run_id"], group=run["grp"])
        where = parse_store_url(args["store"], args.get("store_password"))
        info["store"] = where.shown
        store = open_store(args["store"], args.get("store_password"))
        try:
            own_spool = spool_path(spool_dir, run["run_id"])
            if os.path.exists(own_spool):  # earlier batches of this run that could not be recorded
                _run, hosts = read_spool(own_spool)
                rest = {k: v for k, v in hosts.items() if k not in report["hosts"]}
                store.record(dict(_run, ended=run["ended"]), rest)
            spooled = _record_spooled(store, spool_dir, run["run_id"])
            store.record(run, report["hosts"])
            if os.path.exists(own_spool):
                os.unlink(own_spool)
            as_of = max(_dt.datetime.now(_dt.UTC), utc(run["started"]), utc(now))  # ``generated`` is to the second
            trend, per_host = history_of(store, [run["run_id"]], as_of, {
                name: (run["run_id"], entry) for name, entry in report["hosts"].items()},
                {run["run_id"]: run["playbook"]})
        finally:
            store.close()
        add_history(report, trend, per_host)
        info.update(recorded=True, spooled_recorded=spooled)
    except (StoreError, OSError) as exc:
        info["error"] = str(exc)
        if run is not None:
            try:
                info["spool"] = _spool(spool_dir, run, report)
            except OSError as spool_exc:
                info["error"] += f"; the spool file could not be written either: {spool_exc.strerror or spool_exc}"
        info["failure"] = store_failure_line(info)
    return info


def history_lines(report: Mapping[str, Any], info: Mapping[str, Any]) -> list[str]:
    """Summary lines about the store: what changed since the last run, or why nothing was recorded."""
    if not info.get("recorded"):
        return [info.get("failure") or store_failure_line(info)]
    found = changes_since(report)
    count = {kind: len({h for hosts in ids.values() for h in hosts}) for kind, ids in found.items()}
    return [f"Since the last run: {count['new']} host(s) with new findings, {count['fixed']} with findings fixed, "
            f"{count['regressed']} regressed; run {info['run']} recorded in {info['store']}"]


def store_failure_line(info: Mapping[str, Any]) -> str:
    """The one line a play ends with when its results could not be recorded."""
    kept = (f"the results are kept in {info['spool']} and will be recorded by the next run that can reach the store"
            if info.get("spool") else "the results could not be kept")
    return f"Results not recorded: {info['error']}; the report files are written and {kept}"


def estate_report(store: Any, run_ids: list[str], as_of: _dt.datetime, checks: list[str]) -> dict[str, Any]:
    """A report document from the store: per host its newest result in these runs, with history."""
    entries = store.entries(run_ids)
    hosts = {name: entry for name, (_run, entry) in entries.items()}
    newest = max((entry["audited"] for entry in hosts.values() if entry.get("audited")), default=timestamp(as_of))
    report = assemble(hosts, checks, newest)
    trend, per_host = history_of(store, run_ids, as_of, entries)
    return add_history(report, trend, per_host)
