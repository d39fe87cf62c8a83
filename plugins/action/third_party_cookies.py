# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.third_party_cookies (documentation: plugins/modules/third_party_cookies.py).

Reads the host with diagnose's reads (one call), plans with ``_third_party_cookies.plan_cookies``
and applies through the write path (``_policy_action.PolicyFixAction``).
"""

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._facts import DEFAULT_OPTIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._policy_action import PolicyFixAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._policy_fix import SCOPES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._third_party_cookies import (
    BROWSERS,
    DEFAULTS,
    HANDLED,
    PolicyPlan,
    plan_cookies,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "browsers": {"type": "list", "elements": "str", "default": list(DEFAULTS["browsers"]), "choices": list(BROWSERS)},
    "scope": {"type": "str", "default": DEFAULTS["scope"], "choices": list(SCOPES)},
    "allow_all_third_party_cookies": {"type": "bool", "default": DEFAULTS["allow_all_third_party_cookies"]},
    "remove_localhost_block": {"type": "bool", "default": DEFAULTS["remove_localhost_block"]},
    "override_gpo": {"type": "bool", "default": DEFAULTS["override_gpo"]},
    "skip_ids": {"type": "list", "elements": "str", "default": []},
    "cm_required": {"type": "bool", "default": DEFAULT_OPTIONS["cm_required"]},
}


class ActionModule(PolicyFixAction):
    ROLE = "nhs_cm.remediation.third_party_cookies"
    SPEC = ARGUMENT_SPEC
    HANDLED = HANDLED

    def check_options(self, own: dict[str, t.Any]) -> str | None:
        if not own["browsers"]:
            return f"browsers must list at least one of {', '.join(BROWSERS)}"
        return None

    def planner(self, facts: dict[str, t.Any], findings: list[dict[str, t.Any]], own: dict[str, t.Any]) -> PolicyPlan:
        return plan_cookies(facts, findings, own)
