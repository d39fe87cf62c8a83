# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base class of the action plugins of ``third_party_cookies`` and ``intranet_zone``.

``validate(spec, args, *checks)``: the module's options (its ``SPEC``, ``skip_ids`` against the
catalogue, its ``check_options``) and diagnose's ``cm_required``, checked before the host is read.
``PolicyFixAction.fix(own, diagnose)``: read the host with diagnose's reads (ONE call), evaluate,
let the role's pure planner (``planner(facts, findings, own)``) describe the values, plan them with
``_changes.plan`` (Group Policy, idempotence, diff, backup), stop in check mode, else apply them
through ``WriteAction.apply_plan`` (ONE call: backup, writes, read-back, diagnose's reads again) and
report what diagnose still finds of the role's ids afterwards (``still_reported``).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import Check
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import CATALOGUE
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import (
    ChangeError,
    Outcome,
    plan,
    reg_current,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import read_nodes
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.write_action import (
    WriteAction,
    remediation_options,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import ProtocolError

Planner = t.Callable[[dict[str, t.Any], list[dict[str, t.Any]], dict[str, t.Any]], t.Any]
#: diagnose's options these modules accept (whether CM must be there for the checks to apply).
DIAGNOSE_OPTIONS = ("cm_required",)


def _skip_ids_problem(options: dict[str, t.Any]) -> str | None:
    unknown = [i for i in options.get("skip_ids") or [] if i not in CATALOGUE]
    return f"skip_ids must hold finding ids of the catalogue, not {', '.join(unknown)}" if unknown else None


def validate(spec: dict[str, dict[str, t.Any]], args: t.Mapping[str, t.Any], *checks: Check,
             ) -> tuple[dict[str, t.Any] | None, dict[str, t.Any] | None, str | None]:
    """(own options, diagnose options, None) or (None, None, one message naming the fields):
    ``spec``, ``skip_ids`` against the catalogue, then the module's ``checks`` (``remediation_options``)."""
    return remediation_options(spec, args, DIAGNOSE_OPTIONS, _skip_ids_problem, *checks)


def _ids(findings: list[dict[str, t.Any]], handled: t.Iterable[str]) -> list[str]:
    wanted = set(handled)
    return sorted({f["id"] for f in findings if f["id"] in wanted})


class PolicyFixAction(WriteAction):
    """The shared run of the policy remediation modules."""

    SPEC: dict[str, dict[str, t.Any]] = {}
    HANDLED: tuple[str, ...] = ()

    def planner(self, facts: dict[str, t.Any], findings: list[dict[str, t.Any]], own: dict[str, t.Any]) -> t.Any:
        raise NotImplementedError

    def check_options(self, own: dict[str, t.Any]) -> str | None:
        del own
        return None

    def extra_reads(self, own: dict[str, t.Any]) -> list[dict[str, t.Any]]:
        """Reads the role needs besides diagnose's, sent in the same call (none by default)."""
        del own
        return []

    def add_facts(self, facts: dict[str, t.Any], results: list[dict[str, t.Any]], own: dict[str, t.Any]) -> None:
        """Put the results of ``extra_reads(own)`` into the facts the planner gets."""
        del facts, results, own

    def validate(self, args: t.Mapping[str, t.Any]) -> tuple[t.Any, str | None]:
        own, diagnose, error = validate(self.SPEC, args, self.check_options)
        return (None if own is None or diagnose is None else (own, diagnose)), error

    def remediate(self, options: tuple[dict[str, t.Any], dict[str, t.Any]]) -> dict[str, t.Any]:
        return self.fix(*options)

    def failure(self, exc: ProtocolError | ChangeError) -> str:
        return f"{self.ROLE}: {exc}"

    def fix(self, own: dict[str, t.Any], diagnose: dict[str, t.Any]) -> dict[str, t.Any]:
        reads = plan_reads(diagnose)
        results = self.run_ops(reads + self.extra_reads(own))  # ONE read call
        facts = build_facts(results[:len(reads)], diagnose)
        self.add_facts(facts, results[len(reads):], own)
        findings, _unknown = evaluate(facts, diagnose)
        policy_plan = self.planner(facts, findings, own)
        current = reg_current(read_nodes(facts) + policy_plan.extra_nodes)
        the_plan = plan(policy_plan.changes, current, facts=facts, override_gpo=own["override_gpo"])
        before = _ids(findings, self.HANDLED)
        gpo_notes = [f"{item['key']}\\{item['name']} is set by Group Policy ({item.get('gpo') or 'a domain GPO'}): "
                     f"left alone; change {item['policy']} (or set override_gpo)" for item in the_plan.gpo_skipped]
        base: dict[str, t.Any] = {"changed": the_plan.changed, "findings_before": before, "changes": the_plan.summary(),
                                  "gpo_skipped": the_plan.gpo_skipped, "notes": policy_plan.notes + gpo_notes,
                                  "backup_id": None, "still_reported": before}
        warnings = list(the_plan.warnings)
        if self.diff_wanted() and the_plan.changed:
            base["diff"] = the_plan.diff(self.ROLE)
        if not the_plan.changed or self._task.check_mode:
            return {**base, "warnings": warnings} if warnings else base
        after: dict[str, t.Any] = {}

        def verify(done: Outcome, extra: list[dict[str, t.Any]]) -> list[str]:
            del done
            findings_after, _unknown_after = evaluate(build_facts(extra, diagnose), diagnose)
            after["still_reported"] = _ids(findings_after, self.HANDLED)
            return []

        applied = self.apply_plan(the_plan, self.ROLE, extra_reads=reads, verify=verify)
        result = {**base, **applied.as_result(), **after}
        if not applied.failed and result.get("still_reported"):
            warnings.append(f"diagnose still reports {', '.join(result['still_reported'])} afterwards: see notes")
        if warnings:
            result["warnings"] = warnings
        return result
