# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for nhs_cm.remediation.waivers: check the hosts' waivers on the controller."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.common.json import AnsibleJSONEncoder

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import ControllerAction, play_hosts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.waivers import (
    EXPIRED_POLICIES,
    check_waivers,
    parse_today,
    waiver_variables,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "hosts": {"type": "list", "elements": "str"},
    "today": {"type": "str"},
    "expired": {"type": "str", "default": "error", "choices": list(EXPIRED_POLICIES)},
}


def _plain(value: Any) -> Any:
    """Inventory values carry Ansible's tagged types; keep only plain data."""
    return json.loads(json.dumps(value, cls=AnsibleJSONEncoder))


def host_sources(host_vars: Mapping[str, Any]) -> dict[str, Any]:
    """The waiver variables one host sees (``nhs_cm_waivers``, ``nhs_cm_waivers__*``), templated."""
    return {name: _plain(host_vars[name]) for name in waiver_variables(host_vars)}


class ActionModule(ControllerAction):
    """Validate the waiver variables of every host of the play at once; never contacts a host."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            today = parse_today(args["today"])
        except ValueError as exc:
            return dict(result, failed=True, msg=f"nhs_cm.remediation.waivers: {exc}")
        names = play_hosts(args["hosts"], task_vars)
        hostvars = task_vars.get("hostvars") or {}
        checked = {name: check_waivers(host_sources(hostvars.get(name, {})), today, args["expired"])
                   for name in names}  # each host's variables are read once
        errors = [f"{name}: {error}" for name, check in checked.items() for error in check["errors"]]
        result.update(changed=False, hosts=checked, today=today.isoformat(), errors=errors,
                      hosts_with_problems=[name for name, check in checked.items() if check["errors"]])
        if errors:
            result.update(failed=True, msg="nhs_cm.remediation.waivers: " + "; ".join(errors))
        return result
