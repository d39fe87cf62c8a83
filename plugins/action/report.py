# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for nhs_cm.remediation.report: write the estate report on the controller."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.common.json import AnsibleJSONEncoder

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import ControllerAction, play_hosts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import EVALUATORS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.trends import (
    STORE_OPTIONS,
    history_lines,
    record_and_add_history,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import (
    build_report,
    report_result,
    result_fields,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.formats import (
    FORMATS,
    write_reports,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "dest": {"type": "path", "default": "reports"},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": list(FORMATS)},
    "result_var": {"type": "str", "default": "nhs_cm_diagnose"},
    "waivers_var": {"type": "str", "default": "nhs_cm_waiver_check"},
    "changes_var": {"type": "str", "default": "nhs_cm_changes"},
    "backups_var": {"type": "str", "default": "nhs_cm_backups"},
    "hosts": {"type": "list", "elements": "str"},
    "include_facts": {"type": "bool", "default": False},
    **STORE_OPTIONS,  # the results store (docs/history.md)
    "before_var": {"type": "str"},
}


def _plain(value: Any) -> Any:
    """Registered results carry Ansible's tagged types; keep only plain JSON data.

    Tagged str, int, dict and list are subclasses of the built-in types, which the C JSON
    encoder writes as they are, about 15 times faster than AnsibleJSONEncoder (which walks
    the data in Python); anything else (a vaulted value, a date, a set) takes the slow path.
    """
    if not value:
        return None
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, cls=AnsibleJSONEncoder))


def _per_host(check: Any, name: str | None) -> Any:
    """From a waivers result: the ``hosts`` mapping (``name`` None) or one host's part of it."""
    hosts = check.get("hosts") if isinstance(check, Mapping) else None
    if not isinstance(hosts, Mapping):
        return None
    return hosts if name is None else hosts.get(name)


def _raw_host_vars(hostvars: Any, name: str) -> Mapping[str, Any]:
    """One host's variables, not templated: registered results are data, never templates.

    ``hostvars[name][var]`` would run each registered result through the templating engine,
    about 20 ms per host and most of this task's time on a big estate (docs/performance.md).
    """
    raw_get = getattr(hostvars, "raw_get", None)
    found = raw_get(name) if raw_get is not None else hostvars.get(name, {})
    return found if isinstance(found, Mapping) else {}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class ActionModule(ControllerAction):
    """Collect every host's registered diagnose and waivers results and write the report files."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        names = play_hosts(args["hosts"], task_vars)
        hostvars = task_vars.get("hostvars") or {}
        # nhs_cm.remediation.waivers runs once for all hosts (run_once): its result is here already.
        shared = _plain(_per_host(task_vars.get(args["waivers_var"]), None)) or {}
        results, waivers, changes, backups, before = {}, {}, {}, {}, {}
        for name in names:
            host_vars = _raw_host_vars(hostvars, name)
            results[name] = _plain(result_fields(host_vars.get(args["result_var"]), args["include_facts"]))
            if name in shared:
                waivers[name] = shared[name]
            else:  # the waivers module run for this host alone
                waivers[name] = _plain(_per_host(host_vars.get(args["waivers_var"]), name))
            changes[name] = _as_list(_plain(host_vars.get(args["changes_var"])))
            backups[name] = _as_list(_plain(host_vars.get(args["backups_var"])))
            if args["before_var"]:
                before[name] = _plain(result_fields(host_vars.get(args["before_var"])))
        report = build_report(results, waiver_checks=waivers, checks=list(EVALUATORS), changes=changes,
                              backups=backups, include_facts=args["include_facts"],
                              before=before if args["before_var"] else None)
        # The run is recorded in the results store, which adds the trend and each host's history;
        # when the store cannot be used the run waits in a spool file and the files are written anyway.
        store = record_and_add_history(report, args, task_vars) if args["store"] else None
        # The report is written on the controller, also in check mode: an audit run in
        # check mode exists to produce it. Nothing is written on the managed hosts.
        try:
            files = write_reports(report, args["dest"], args["formats"])
        except OSError as exc:
            result.update(failed=True, msg=f"nhs_cm.remediation.report: cannot write into dest {args['dest']}: "
                                           f"{exc.strerror or exc}")
            return result
        result.update(report_result(report, files))
        if store is not None:
            result.update(store=store, summary=result["summary"] + history_lines(report, store))
        return result
