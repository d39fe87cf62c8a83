# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.cm_service (documentation: plugins/modules/cm_service.py).

1. Read the host with diagnose's reads (``_facts.plan_reads``, ONE runner call) and evaluate them.
2. Only when a program must be started and install data must be read further to name it: list
   CM's install folder and/or check which of the Identity Agent's install-data paths exist (a
   second, small read call; ``_cm_service.extra_reads``). What is started never comes from a
   running process.
3. Plan (``_cm_service.plan_cm_service`` -> ``_changes.plan``); check mode stops here with the diff.
4. Apply through the write path (``_write_action.WriteAction.apply_plan``): ONE call with the
   backup, the writes, the read-back and diagnose's reads again, then verify that diagnose no
   longer reports what was fixed; otherwise put the values back and fail.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import ARGUMENT_SPEC as DIAGNOSE_SPEC
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import (
    validate_options as validate_diagnose,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import ChangeError, Outcome, plan
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cm_service import (
    DEFAULTS,
    extra_reads,
    plan_cm_service,
    refused_starts,
    remaining,
    started_problems,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.write_action import WriteAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import ProtocolError

ROLE = "nhs_cm.remediation.cm_service"
OWN_SPEC: dict[str, dict[str, t.Any]] = {
    "cm_executable": {"type": "str", "default": None},
    "ia_executable": {"type": "str", "default": None},
    "port_service": {"type": "bool", "default": DEFAULTS["port_service"]},
    "port_service_automatic": {"type": "bool", "default": DEFAULTS["port_service_automatic"]},
    "smartcard_service": {"type": "bool", "default": DEFAULTS["smartcard_service"]},
    "start_cm": {"type": "bool", "default": DEFAULTS["start_cm"]},
    "start_identity_agent": {"type": "bool", "default": DEFAULTS["start_identity_agent"]},
    "reconnect": {"type": "bool", "default": DEFAULTS["reconnect"]},
    "wait_ms": {"type": "int", "default": DEFAULTS["wait_ms"]},
    "listen_wait_ms": {"type": "int", "default": DEFAULTS["listen_wait_ms"]},
}
#: diagnose's options that this module passes on (what CM, the Port Service and the IA are).
DIAGNOSE_OPTIONS = ("cm_process_names", "port_service_display_name", "prs_ports", "probe_timeout_ms", "ers_report",
                    "ia_paths", "ia_process_names")
_PASSED_SPEC = {name: dict(DIAGNOSE_SPEC[name]) for name in DIAGNOSE_OPTIONS if name in DIAGNOSE_SPEC}
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {**OWN_SPEC, **_PASSED_SPEC}


def _path_problem(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or any(ch in value for ch in '<>"|?*'):
        return f"{name} must be a full path (C:\\...\\x.exe) or a file name, not {value!r}"
    if not value.lower().endswith(".exe"):
        return f"{name} must name a .exe, not {value!r}"
    return None


def validate_options(args: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, dict[str, t.Any] | None, str | None]:
    """(own options, diagnose options, None) or (None, None, one message naming the fields)."""
    result = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(args))
    messages = [f"unsupported parameter(s): {e}" if isinstance(e, UnsupportedError) else str(e) for e in result.errors]
    if messages:
        return None, None, "; ".join(messages)
    own = {name: result.validated_parameters[name] for name in OWN_SPEC}
    if not 0 <= own["wait_ms"] <= 120000:
        return None, None, f"wait_ms must be from 0 to 120000, not {own['wait_ms']}"
    if not 0 <= own["listen_wait_ms"] <= 120000:
        return None, None, f"listen_wait_ms must be from 0 to 120000, not {own['listen_wait_ms']}"
    problems = [p for p in (_path_problem("cm_executable", own["cm_executable"]),
                            _path_problem("ia_executable", own["ia_executable"])) if p]
    if own["ia_executable"] and own["ia_executable"][1:3] != ":\\":
        problems.append(f"ia_executable must be a full path, not {own['ia_executable']!r}")
    if problems:
        return None, None, "; ".join(problems)
    passed = {name: result.validated_parameters[name] for name in DIAGNOSE_OPTIONS if name in ARGUMENT_SPEC}
    diagnose, error = validate_diagnose(passed)
    if diagnose is None:
        return None, None, error
    own["cm_process_names"] = diagnose.get("cm_process_names") or []
    own["ia_process_names"] = diagnose.get("ia_process_names") or []
    own["prs_ports"] = list(diagnose.get("prs_ports") or [])
    return own, diagnose, None


def _services(facts: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    services = facts.get("services") or {}
    return [service for service in (services.get("port_service"), services.get("smartcard")) if service]


def _ids(findings: list[dict[str, t.Any]]) -> list[str]:
    return sorted({finding["id"] for finding in findings})


class ActionModule(WriteAction):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        own, diagnose, error = validate_options(self._task.args)
        if own is None or diagnose is None:
            result.update(failed=True, msg=f"{ROLE}: {error}")
            return result
        try:
            result.update(self._remediate(own, diagnose))
        except (ProtocolError, ChangeError) as exc:
            result.update(failed=True, msg=str(exc))
        return result

    def _remediate(self, own: dict[str, t.Any], diagnose: dict[str, t.Any]) -> dict[str, t.Any]:
        reads = plan_reads(diagnose)
        facts = build_facts(self.run_ops(reads), diagnose)
        findings, unknown = evaluate(facts, diagnose)
        options = {**own, "cm_process_names": diagnose["cm_process_names"]}
        listing, ia_check = extra_reads(facts, findings, options)
        listings = infos = None
        if listing or ia_check:
            results = self.run_ops(listing + ia_check)
            listings = [r for r in results[:len(listing)] if r.get("ok")] if listing else None
            infos = [r for r in results[len(listing):] if r.get("ok")] if ia_check else None
        cm_plan = plan_cm_service(facts, findings, options, listings, infos)
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
            base["diff"] = the_plan.diff(ROLE)
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

        applied = self.apply_plan(the_plan, ROLE, extra_reads=reads, verify=verify)
        result = {**base, **applied.as_result(), **after}
        if applied.outcome is not None:
            refused = refused_starts([pair for item in applied.outcome.results
                                      for pair in zip(item["ops"], item["results"], strict=False)], facts)
            result["not_started"] = cm_plan.not_started + refused
        if not applied.failed and after.get("escalations"):
            result["warnings"] = [f"{e['to']} ({e['phone']}): {e['why']}" for e in after["escalations"]]
        return result
