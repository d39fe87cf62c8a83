# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.diagnose (documentation: plugins/modules/diagnose.py).

Reads the host with ONE runner call (``_facts.plan_reads``), normalises what came back
(``_facts.build_facts``) and evaluates it (``_evaluate.evaluate``) on the controller. It never
changes the host, so check mode runs exactly the same reads. With ``ers_report`` (the text of an
e-RS configuration check), the findings that explain the fault it names come first
(``_ers_report.order_findings``); a text that names no fault is a warning, not a failure.
"""

from __future__ import annotations

import typing as t

from ansible.utils.display import Display

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.ers_report import (
    ErsReport,
    order_findings,
    parse_ers_report,
    unknown_report_warning,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import validate_options
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import LEGACY_GENERATIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads, read_labels
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import RunnerAction, runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    ProtocolError,
    build_stdin,
)

display = Display()


def report_warnings(report: ErsReport | None, text: str | None, generation: str | None) -> list[str]:
    """What a person should know about the e-RS report text given (none when none was given)."""
    if not text or not text.strip():
        return []
    if report is None:
        return [unknown_report_warning(text)]
    if report.fault in (2, 3) and generation not in LEGACY_GENERATIONS and generation is not None:
        installed = "NHS Credential Management 3.x or later (NHS Smartcard Connect)" if generation == "cm3plus" \
            else "no NHS Credential Management"
        return [f"ers_report names e-RS fault {report.fault} ('{report.message}'), which concerns the legacy NHS "
                f"Identity Agent, but this host has {installed}: was the report made on another computer?"]
    return []


class ActionModule(RunnerAction):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        options, error = validate_options(self._task.args)
        if options is None:
            result.update(failed=True, msg=f"nhs_cm.remediation.diagnose: {error}")
            return result
        try:
            results = self.run_ops(plan_reads(options))
        except ProtocolError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        facts = build_facts(results, options)
        findings, unknown = evaluate(facts, options)
        report = parse_ers_report(options["ers_report"])
        generation = facts["product"]["generation"]
        # Shown, not returned in ``warnings``: ansible-core 2.19 keeps returned warnings in the
        # registered result as objects that cannot be read back as plain variables.
        host = (task_vars or {}).get("inventory_hostname", "this host")
        for warning in report_warnings(report, options["ers_report"], generation):
            display.warning(f"{host}: {warning}")
        result.update(changed=False, findings=order_findings(findings, report.fault if report else None),
                      unknown=unknown, product=generation,
                      reported_fault=report.fault if report else None, reported_port=report.port if report else None)
        if options["return_facts"]:
            # About nine tenths of the result: every host's result crosses from the fork to the
            # main process, is cleaned and registered there (docs/performance.md).
            result["facts"] = facts
        return result


def prepare_before_fork() -> bool:
    """Fill this process's caches once, at import, before Ansible forks a worker per host.

    Ansible imports this plugin in its main process and forks one worker per host and task; a
    worker inherits what the main process had computed, and whatever it computes itself is lost
    when it exits. So the work that is the same for every host (validating the default options,
    planning the reads, reading the runner, cutting it to diagnose's operations and compressing
    it with the request: the caches of ``validate_options``, ``_facts.planned_reads`` and
    ``_protocol.build_stdin``) is done here once instead of once per host (docs/performance.md).
    Only an optimisation: when it fails, each call reports the problem itself. True when done.
    """
    options, _error = validate_options({})
    if options is None:  # pragma: no cover - the defaults are valid (tests/unit)
        return False
    try:
        build_stdin(runner_text(), plan_reads(options))
        read_labels(options)
    except (ProtocolError, OSError):
        return False
    return True


prepare_before_fork()
