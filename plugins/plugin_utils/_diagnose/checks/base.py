# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The frame of diagnose's checks: one small pure function (an evaluator) per finding id.

Each evaluator takes the facts of ``facts.build_facts`` and the task options and returns a
``CheckResult`` (findings and unknown checks); ``@evaluator(<id>)`` registers it in
``EVALUATORS``. A check whose input could not be read goes to ``unknown`` as
``{check: <id>, reason: ...}``; it is never silently healthy.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import Facts

Options = dict[str, t.Any]


@dataclass
class CheckResult:
    """What one evaluator found: findings, and the checks it could not make (``unknown``)."""

    findings: list[dict[str, t.Any]] = field(default_factory=list)
    unknown: list[dict[str, t.Any]] = field(default_factory=list)


Evaluator = t.Callable[[Facts, Options], CheckResult]

#: Evaluators keyed by finding id, in order of registration (``checks/__init__.py`` imports the
#: fault-1 checks first).
EVALUATORS: dict[str, Evaluator] = {}


def evaluator(check_id: str) -> t.Callable[[Evaluator], Evaluator]:
    def register(function: Evaluator) -> Evaluator:
        EVALUATORS[check_id] = function
        return function
    return register


def unknown(check_id: str, reason: str) -> CheckResult:
    return CheckResult(unknown=[{"check": check_id, "reason": reason}])


def found(finding: dict[str, t.Any]) -> CheckResult:
    return CheckResult(findings=[finding])
