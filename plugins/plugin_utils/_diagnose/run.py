# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""diagnose from options to result: ``diagnose(options, run_ops)`` reads the host with ONE call of
``run_ops`` (the read plan, ``reads.plan_reads``), normalises what came back
(``facts.build_facts``), runs the checks (``evaluate.evaluate``) and orders the findings for the
e-RS report given, if any. It never changes the host, so check mode runs exactly the same reads.

The action plugin validates its arguments (``options.validate_options``), makes this one call
and shows the warnings. ``prepare_before_fork`` fills this process's caches before Ansible forks.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.base import Facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.ers_report import (
    order_findings,
    unknown_report_warning,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import validate_options
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import LEGACY_GENERATIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads, read_labels
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._memo import memo, same
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import ProtocolError
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import build_stdin


class RunOps(t.Protocol):
    """``RunnerAction.run_ops``: send ``ops`` (as ``stdin``, when given) and return their results."""

    def __call__(self, ops: list[dict[str, t.Any]], *, stdin: bytes | None = None) -> list[dict[str, t.Any]]:
        ...


class Diagnosis(t.TypedDict):
    """What diagnose found on one host: the module's return values, the warnings to show and the facts."""

    findings: list[dict[str, t.Any]]
    unknown: list[dict[str, t.Any]]
    product: str | None
    reported_fault: int | None
    reported_port: int | None
    warnings: list[str]
    facts: Facts


def report_warnings(report: dict[str, t.Any] | None, text: str | None, generation: str | None) -> list[str]:
    """What a person should know about the e-RS report text given (none when none was given);
    ``report`` is ``facts["ers_report"]``."""
    if not text or not text.strip():
        return []
    if report is None:
        return [unknown_report_warning(text)]
    if report["fault"] in (2, 3) and generation not in LEGACY_GENERATIONS and generation is not None:
        installed = "NHS Credential Management 3.x or later (NHS Smartcard Connect)" if generation == "cm3plus" \
            else "no NHS Credential Management"
        return [f"ers_report names e-RS fault {report['fault']} ('{report['message']}'), which concerns the legacy "
                f"NHS Identity Agent, but this host has {installed}: was the report made on another computer?"]
    return []


def judge(results: list[dict[str, t.Any]], options: dict[str, t.Any]) -> Diagnosis:
    """The diagnosis made of the results of ``plan_reads(options)`` (validated options)."""
    facts = build_facts(results, options)
    findings, unknown = evaluate(facts, options)
    report = facts["ers_report"]
    fault = report["fault"] if report else None
    generation = facts["product"]["generation"]
    return {
        "findings": order_findings(findings, fault),
        "unknown": unknown,
        "product": generation,
        "reported_fault": fault,
        "reported_port": report["port"] if report else None,
        "warnings": report_warnings(report, options["ers_report"], generation),
        "facts": facts,
    }


def diagnose(options: dict[str, t.Any], run_ops: RunOps) -> Diagnosis:
    """Read the host with ONE call of ``run_ops`` and judge what came back (``judge``).

    ``options`` are validated (``options.validate_options``); ``run_ops`` sends operations to the
    host and returns their results in the same order (``RunnerAction.run_ops``); its
    ``ProtocolError`` is the caller's to report.
    """
    ops, stdin = request_for(options)
    return judge(run_ops(ops, stdin=stdin), options)


@memo(8, fresh=same)
def request_for(options: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], bytes]:
    """diagnose's operations for ``options`` and the runner's standard input that carries them,
    kept per set of options (the same for every host of a play: ``prepare_before_fork``). Shared,
    not copied: nobody changes them (``run_ops`` and ``parse_reply`` only read the operations)."""
    ops = plan_reads(options)
    return ops, build_stdin(runner_text(), ops)


def prepare_before_fork() -> bool:
    """Fill this process's caches once, before Ansible forks a worker per host.

    Ansible imports the diagnose plugin in its main process and forks one worker per host and
    task; a worker inherits what the main process had computed, and whatever it computes itself
    is lost when it exits. So the work that is the same for every host (validating the default
    options, planning the reads and keeping their labels, reading the runner, cutting it to
    diagnose's operations and compressing it with the request: the caches of ``validate_options``,
    ``reads.planned_reads`` / ``read_labels`` and ``_runner.protocol.build_stdin``) is done once
    instead of once per host (docs/performance.md). Only an optimisation: when it fails, each
    call reports the problem itself. True when done.
    """
    options, _error = validate_options({})
    if options is None:  # pragma: no cover - the defaults are valid (tests/unit)
        return False
    try:
        request_for(options)
        read_labels(options)
    except (ProtocolError, OSError):
        return False
    return True
