# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What nhs_cm.remediation.cm_service does on a host (``CmServiceAction.remediate((own, diagnose))``).

1. Read the host with diagnose's reads (``_facts.plan_reads``, ONE runner call) and evaluate them.
2. Only when a program must be started and install data must be read further to name it: list
   CM's install folder and/or check which of the Identity Agent's install-data paths exist (a
   second, small read call; ``_cm_service.extra_reads``). What is started never comes from a
   running process.
3. Plan (``_cm_service.plan_cm_service`` -> ``_changes.plan``); check mode stops here with the diff.
4. Apply through the write path (``write_action.WriteAction.apply_plan``): ONE call with the
   backup, the writes, the read-back and diagnose's reads again, then verify that diagnose no
   longer reports what was fixed; otherwise put the values back and fail.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import Outcome, plan
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cm_service import (
    extra_reads,
    plan_cm_service,
    refused_starts,
    remaining,
    started_problems,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.write_action import WriteAction


def _services(facts: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    services = facts.get("services") or {}
    return [service for service in (services.get("port_service"), services.get("smartcard")) if service]


def _ids(findings: list[dict[str, t.Any]]) -> list[str]:
    return sorted({finding["id"] for finding in findings})


class CmServiceAction(WriteAction):
    """Starts and fixes what diagnose reports of CM, the Port Service, Smart Card and the IA
    (``remediate((own options, diagnose's options))``)."""

    def remediate(self, options: tuple[dict[str, t.Any], dict[str, t.Any]]) -> dict[str, t.Any]:
        own, diagnose = options
        reads = plan_reads(diagnose)
        facts = build_facts(self.run_ops(reads), diagnose)
        findings, unknown = evaluate(facts, diagnose)
        planning = {**own, "cm_process_names": diagnose["cm_process_names"]}
        listing, ia_check = extra_reads(facts, findings, planning)
        listings = infos = None
        if listing or ia_check:
            results = self.run_ops(listing + ia_check)
            listings = [r for r in results[:len(listing)] if r.get("ok")] if listing else None
            infos = [r for r in results[len(listing):] if r.get("ok")] if ia_check else None
        cm_plan = plan_cm_service(facts, findings, planning, listings, infos)
        base: dict[str, t.Any] = {"changed": False, "findings_before": _ids(findings), "unknown": unknown,
                                  "notes": cm_plan.notes, "cm_executable": cm_plan.cm_executable,
                                  "cm_executable_source": cm_plan.cm_executable_source,
                                  "ia_executable": cm_plan.ia_executable,
                                  "ia_executable_source": cm_plan.ia_executable_source,
                                  "not_started": cm_plan.not_started, "escalations": [],
                                  "changes": [], "backup_id": None}
        if cm_plan.blocked:
            return {**base, "failed": True, "msg": cm_plan.blocked}
        the_plan = plan(cm_plan.changes, services=_services(facts))
        base["changes"] = the_plan.summary()
        if self.diff_wanted() and the_plan.changed:
            base["diff"] = the_plan.diff(self.ROLE)
        if not the_plan.changed or self._task.check_mode:
            return {**base, "changed": the_plan.changed, "findings_after": base["findings_before"]}

        after: dict[str, t.Any] = {}

        def verify(done: Outcome, extra: list[dict[str, t.Any]]) -> list[str]:
            pairs = [pair for item in done.results for pair in zip(item["ops"], item["results"], strict=False)]
            problems = started_problems(pairs)
            facts_after = build_facts(extra, diagnose)
            findings_after, _unknown = evaluate(facts_after, diagnose)
            still, escalations = remaining(findings_after, cm_plan)
            after.update(findings_after=_ids(findings_after), escalations=escalations)
            problems += [f"diagnose still reports {f['id']}: {f['summary']}" for f in still]
            return problems

        applied = self.apply_plan(the_plan, self.ROLE, extra_reads=reads, verify=verify)
        result = {**base, **applied.as_result(), **after}
        if applied.outcome is not None:
            refused = refused_starts([pair for item in applied.outcome.results
                                      for pair in zip(item["ops"], item["results"], strict=False)], facts)
            result["not_started"] = cm_plan.not_started + refused
        if not applied.failed and after.get("escalations"):
            result["warnings"] = [f"{e['to']} ({e['phone']}): {e['why']}" for e in after["escalations"]]
        return result
