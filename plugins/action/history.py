# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for nhs_cm.remediation.history: ask the results store about the estate's history."""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import ControllerAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import EVALUATORS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.records import (
    KEEP_DAYS_DEFAULT,
    StoreError,
    changes_since,
    iso,
    parse_store_url,
    run_info,
    selection,
    utc,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.store import open_store
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.trends import estate_report, history_of
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import report_result, timestamp
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.formats import FORMATS, write_reports

QUERIES = ("report", "runs", "trend", "new", "fixed", "regressed", "host", "rollbacks", "prune", "record_rollback")
ARGUMENT_SPEC: dict[str, Any] = {
    "store": {"type": "str", "required": True},
    "store_password": {"type": "str", "no_log": True},
    "query": {"type": "str", "choices": list(QUERIES), "default": "report"},
    "run": {"type": "str"},
    "awx_job": {"type": "int"},
    "since": {"type": "str"},
    "up_to": {"type": "str"},
    "days": {"type": "int"},
    "host": {"type": "str"},
    "dest": {"type": "path"},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": list(FORMATS)},
    "keep_days": {"type": "int", "default": KEEP_DAYS_DEFAULT},
    "result_var": {"type": "str", "default": "nhs_cm_restore"},
    "hosts": {"type": "list", "elements": "str"},
}


def _by_host(report: Mapping[str, Any], kind: str, since: _dt.datetime | None) -> dict[str, list[Any]]:
    """``{host: [ids]}`` new or fixed since the last run, or ``{host: [regressions]}`` (back since ``since``)."""
    out: dict[str, list[Any]] = {}
    for name, entry in report["hosts"].items():
        if kind == "regressed":
            found = [r for r in entry.get("regressed") or []
                     if since is None or utc(_dt.datetime.fromisoformat(r["back"])) >= since]
        else:
            found = list((entry.get("since_last_run") or {}).get(kind) or [])
        if found:
            out[name] = found
    return out


class ActionModule(ControllerAction):
    """Read (or prune) the results store; writes the estate report files when asked."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            where = parse_store_url(args["store"], args["store_password"])
            store = open_store(args["store"], args["store_password"])
        except StoreError as exc:
            return dict(result, failed=True, msg=f"nhs_cm.remediation.history: {exc}")
        result["store"] = where.shown
        try:
            result.update(self._answer(store, args, task_vars))
        except StoreError as exc:
            return dict(result, failed=True, msg=f"nhs_cm.remediation.history: {exc}")
        except OSError as exc:
            return dict(result, failed=True, msg=f"nhs_cm.remediation.history: cannot write into dest "
                                                 f"{args['dest']}: {exc.strerror or exc}")
        finally:
            store.close()
        return result

    def _answer(self, store: Any, args: Mapping[str, Any], task_vars: Mapping[str, Any]) -> dict[str, Any]:
        now = _dt.datetime.now(_dt.UTC)
        query = args["query"]
        if query == "prune":
            if args["keep_days"] < 1:
                raise StoreError(f"keep_days must be 1 or more, not {args['keep_days']}")
            before = now - _dt.timedelta(days=args["keep_days"])
            pruned = store.prune(before, dry_run=self._task.check_mode)
            return {"changed": pruned["runs"] > 0, "pruned": pruned, "before": iso(before)}
        if query == "record_rollback":
            return self._record_rollback(store, args, task_vars, now)
        if query == "rollbacks":
            since = selection(args, now).get("since") if any(args[k] for k in ("since", "up_to", "days")) else None
            return {"rollbacks": store.rollbacks(since)}
        chosen = selection(args, now)
        if query == "runs":
            if chosen["kind"] == "window":
                return {"runs": store.runs(chosen["since"], chosen["until"])}
            run_ids = set(store.select_runs(chosen)[0])
            return {"runs": [r for r in store.runs() if r["run_id"] in run_ids]}
        run_ids, as_of, what = store.select_runs(chosen)
        if query == "host":
            return self._host(store, args, as_of)
        if query == "trend":
            trend, _hosts = history_of(store, [], as_of, {})
            return {"trend": trend, "selected": what}
        report = estate_report(store, run_ids, as_of, list(EVALUATORS))
        if args["hosts"]:
            wanted = set(args["hosts"])
            report["hosts"] = {n: e for n, e in report["hosts"].items() if n in wanted}
        if query in ("new", "fixed", "regressed"):
            since = chosen.get("since") if query == "regressed" else None
            by_host = _by_host(report, query, since)
            ids: dict[str, list[str]] = {}
            for name, found in by_host.items():
                for item in found:
                    ids.setdefault(item["id"] if isinstance(item, Mapping) else item, []).append(name)
            return {"hosts": by_host, "ids": dict(sorted(ids.items())), "count": len(by_host), "selected": what}
        out: dict[str, Any] = {"selected": what, "runs": sorted(run_ids), "trend": report["trend"],
                               "changes_since_last_run": changes_since(report)}
        if args["dest"]:
            files = write_reports(report, args["dest"], args["formats"])
            out.update(report_result(report, files))
            found = {kind: len({h for hosts in ids.values() for h in hosts})
                     for kind, ids in out["changes_since_last_run"].items()}
            out["summary"] = [*out["summary"], f"From the store: {what} ({len(run_ids)} run(s)); since the last run: "
                              f"{found['new']} host(s) with new findings, {found['fixed']} with findings fixed, "
                              f"{found['regressed']} regressed"]
        else:
            out.update(report=report, estate=report["estate"])
        return out

    def _host(self, store: Any, args: Mapping[str, Any], as_of: _dt.datetime) -> dict[str, Any]:
        name = args["host"]
        if not name:
            raise StoreError("query=host needs host: the inventory name of one host")
        timeline = store.timeline(name, as_of)
        if not timeline:
            raise StoreError(f"results store {store.where.shown}: no recorded result of host {name!r}")
        return {"host": name, "timeline": timeline}

    def _record_rollback(self, store: Any, args: Mapping[str, Any], task_vars: Mapping[str, Any],
                         now: _dt.datetime) -> dict[str, Any]:
        if self._task.check_mode:
            return {"changed": False, "recorded": 0, "msg": "check mode: a rollback that changed nothing is not kept"}
        hostvars = task_vars.get("hostvars") or {}
        names = args["hosts"] or list(task_vars.get("ansible_play_hosts_all") or [])
        results = {}
        for name in names:
            found = (hostvars.get(name) or {}).get(args["result_var"])
            if isinstance(found, Mapping) and found:
                results[name] = {k: found.get(k) for k in ("backup_id", "failed", "unreachable", "msg", "changed",
                                                           "saved_at", "changes") if k in found}
        run = run_info({"playbook": "rollback"}, task_vars, now, uuid.uuid4().hex)
        count = store.record_rollback(run, results)
        return {"changed": False, "recorded": count, "run": run["run_id"], "generated": timestamp(now)}
