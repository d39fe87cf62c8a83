# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for nhs_cm.remediation.report: write the estate report on the controller."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.action import ActionBase

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import (
    build_report,
    summary_lines,
    write_json_atomic,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "dest": {"type": "path", "default": "reports"},
    "result_var": {"type": "str", "default": "nhs_cm_diagnose"},
    "hosts": {"type": "list", "elements": "str"},
}


def _plain(value: Any) -> Any:
    """Registered results carry Ansible's tagged types; keep only plain JSON data."""
    return json.loads(json.dumps(value, cls=AnsibleJSONEncoder))


class ActionModule(ActionBase):
    """Collect every host's registered diagnose result and write report.json."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        names = args["hosts"] or list(task_vars.get("ansible_play_hosts_all") or [])
        hostvars = task_vars.get("hostvars") or {}
        results = {}
        for name in names:
            registered = hostvars[name].get(args["result_var"]) if name in hostvars else None
            results[name] = _plain(registered) if registered else None
        report = build_report(results)
        path = os.path.join(os.path.abspath(args["dest"]), "report.json")
        # The report is written on the controller, also in check mode: an audit run in
        # check mode exists to produce it. Nothing is written on the managed hosts.
        write_json_atomic(path, report)
        result.update(changed=False, path=path, summary=summary_lines(report),
                      hosts_failed=sorted(n for n, e in report["hosts"].items()
                                          if e["status"] != "ok"))
        return result
