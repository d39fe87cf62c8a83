# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.third_party_cookies (documentation: plugins/modules/third_party_cookies.py).

Reads the host with diagnose's reads (one call), plans with ``_third_party_cookies.plan_cookies``
and, for Local Network Access (option ``localhost_access``), ``_localhost_access.plan_localhost_access``,
and applies both through the write path in one change (``_policy_action.PolicyFixAction``).
"""

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import BROWSERS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import DEFAULT_OPTIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cookies import (
    DEFAULTS,
    HANDLED,
    plan_cookies,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
    DEFAULTS as LNA_DEFAULTS,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
    HANDLED as LNA_HANDLED,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
    origin_errors,
    plan_localhost_access,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_action import PolicyFixAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import SCOPES, PolicyPlan

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "browsers": {"type": "list", "elements": "str", "default": list(DEFAULTS["browsers"]), "choices": list(BROWSERS)},
    "scope": {"type": "str", "default": DEFAULTS["scope"], "choices": list(SCOPES)},
    "allow_all_third_party_cookies": {"type": "bool", "default": DEFAULTS["allow_all_third_party_cookies"]},
    "remove_localhost_block": {"type": "bool", "default": DEFAULTS["remove_localhost_block"]},
    "localhost_access": {"type": "bool", "default": LNA_DEFAULTS["localhost_access"]},
    "localhost_access_origins": {"type": "list", "elements": "str",
                                 "default": list(LNA_DEFAULTS["localhost_access_origins"])},
    "override_gpo": {"type": "bool", "default": DEFAULTS["override_gpo"]},
    "skip_ids": {"type": "list", "elements": "str", "default": []},
    "cm_required": {"type": "bool", "default": DEFAULT_OPTIONS["cm_required"]},
}


class ActionModule(PolicyFixAction):
    ROLE = "nhs_cm.remediation.third_party_cookies"
    SPEC = ARGUMENT_SPEC
    HANDLED = HANDLED + LNA_HANDLED

    def check_options(self, own: dict[str, t.Any]) -> str | None:
        if not own["browsers"]:
            return f"browsers must list at least one of {', '.join(BROWSERS)}"
        if own["localhost_access"] and not own["localhost_access_origins"]:
            return "localhost_access_origins must list at least one site (or set localhost_access to false)"
        errors = origin_errors(own["localhost_access_origins"])
        if errors:
            return "localhost_access_origins: " + "; ".join(errors)
        return None

    def planner(self, facts: dict[str, t.Any], findings: list[dict[str, t.Any]], own: dict[str, t.Any]) -> PolicyPlan:
        cookies = plan_cookies(facts, findings, own)
        access = plan_localhost_access(facts, findings, own)
        return PolicyPlan(cookies.changes + access.changes, cookies.extra_nodes + access.extra_nodes,
                          cookies.notes + access.notes)
