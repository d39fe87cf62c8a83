# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""``evaluate``: run every check of diagnose (``checks.EVALUATORS``) on the facts.

A check that raises is reported as unknown with the error, never as healthy.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import ORDER
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import EVALUATORS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.base import Facts, Options
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import options_with_defaults


def evaluate(facts: Facts, options: Options | None = None) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """Run every evaluator; return (findings in catalogue order, unknown checks)."""
    opts = options_with_defaults(options)
    findings: list[dict[str, t.Any]] = []
    unknowns: list[dict[str, t.Any]] = []
    for check_id, function in EVALUATORS.items():
        try:
            result = function(facts, opts)
        except Exception as exc:  # a bug must not turn into "healthy"
            unknowns.append({"check": check_id, "reason": f"the check failed: {type(exc).__name__}: {exc}"})
            continue
        findings.extend(result.findings)
        unknowns.extend(result.unknown)
    findings.sort(key=lambda finding: ORDER[finding["id"]])
    return findings, unknowns
