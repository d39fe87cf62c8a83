# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.intranet_zone (documentation: plugins/modules/intranet_zone.py).

Reads the host with diagnose's reads (one call; with ``include_default_profile`` also the default
profile's zone keys, ``_intranet_zone.default_profile_reads``), plans with ``_intranet_zone.plan_intranet_zone``
and applies through the write path (``_policy_action.PolicyFixAction``).
"""

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import DEFAULT_OPTIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.intranet_zone import (
    DEFAULTS,
    HANDLED,
    LOGON_ACTIONS,
    default_profile_reads,
    default_profile_user,
    plan_intranet_zone,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_action import PolicyFixAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import SCOPES, PolicyPlan

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "scope": {"type": "str", "default": DEFAULTS["scope"], "choices": list(SCOPES)},
    "logon_action": {"type": "int", "default": DEFAULTS["logon_action"]},
    "include_default_profile": {"type": "bool", "default": DEFAULTS["include_default_profile"]},
    "override_gpo": {"type": "bool", "default": DEFAULTS["override_gpo"]},
    "skip_ids": {"type": "list", "elements": "str", "default": []},
    "cm_required": {"type": "bool", "default": DEFAULT_OPTIONS["cm_required"]},
}


class ActionModule(PolicyFixAction):
    ROLE = "nhs_cm.remediation.intranet_zone"
    SPEC = ARGUMENT_SPEC
    HANDLED = HANDLED

    def check_options(self, own: dict[str, t.Any]) -> str | None:
        if own["logon_action"] not in LOGON_ACTIONS:
            allowed = " or ".join(f"{value} (0x{value:05X})" for value in LOGON_ACTIONS)
            return f"logon_action must be {allowed}, not {own['logon_action']}"
        return None

    def extra_reads(self, own: dict[str, t.Any]) -> list[dict[str, t.Any]]:
        return default_profile_reads() if own["include_default_profile"] else []

    def add_facts(self, facts: dict[str, t.Any], results: list[dict[str, t.Any]], own: dict[str, t.Any]) -> None:
        if own["include_default_profile"]:
            facts["default_profile"] = default_profile_user(results)

    def planner(self, facts: dict[str, t.Any], findings: list[dict[str, t.Any]], own: dict[str, t.Any]) -> PolicyPlan:
        return plan_intranet_zone(facts, findings, own)
