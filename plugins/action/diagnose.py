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

import re
import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.utils.display import Display

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.ers_report import (
    MAX_REPORT_CHARS,
    ErsReport,
    order_findings,
    parse_ers_report,
    unknown_report_warning,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import (
    DEFAULT_OPTIONS,
    build_facts,
    plan_reads,
    read_labels,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import (
    LEGACY_GENERATIONS,
    parse_version,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._memo import memo
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import RunnerAction, runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    OPERATIONS,
    ProtocolError,
    build_stdin,
)

_TIMEOUT = OPERATIONS["http_get"]["request"]["timeout_ms"]

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "cm_required": {"type": "bool", "default": DEFAULT_OPTIONS["cm_required"]},
    "cm_process_names": {"type": "list", "elements": "str", "default": list(DEFAULT_OPTIONS["cm_process_names"])},
    "port_service_display_name": {"type": "str", "default": DEFAULT_OPTIONS["port_service_display_name"]},
    "prs_ports": {"type": "list", "elements": "int", "default": list(DEFAULT_OPTIONS["prs_ports"])},
    "probe_timeout_ms": {"type": "int", "default": DEFAULT_OPTIONS["probe_timeout_ms"]},
    "include_offline_profiles": {"type": "bool", "default": DEFAULT_OPTIONS["include_offline_profiles"]},
    "ers_report": {"type": "str", "default": None},
    "ia_paths": {"type": "list", "elements": "str", "default": list(DEFAULT_OPTIONS["ia_paths"])},
    "ia_process_names": {"type": "list", "elements": "str", "default": list(DEFAULT_OPTIONS["ia_process_names"])},
    "ia_min_version": {"type": "str", "default": DEFAULT_OPTIONS["ia_min_version"]},
    "smartcard_reader_required": {"type": "bool", "default": DEFAULT_OPTIONS["smartcard_reader_required"]},
    "return_facts": {"type": "bool", "default": False},
}
display = Display()
_ABSOLUTE_PATH = re.compile(r"^(?:[A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)")


def _range_errors(options: dict[str, t.Any]) -> list[str]:
    errors = []
    low, high = _TIMEOUT["min"], _TIMEOUT["max"]
    if not low <= options["probe_timeout_ms"] <= high:
        errors.append(f"probe_timeout_ms must be from {low} to {high}, not {options['probe_timeout_ms']}")
    ports = options["prs_ports"]
    if not ports:
        errors.append("prs_ports must list at least one port")
    bad = [port for port in ports if not 1 <= port <= 65535]
    if bad:
        errors.append(f"prs_ports must hold ports from 1 to 65535, not {', '.join(map(str, bad))}")
    if not options["port_service_display_name"].strip():
        errors.append("port_service_display_name must not be empty")
    report = options["ers_report"]
    if report is not None and len(report) > MAX_REPORT_CHARS:
        errors.append(f"ers_report must be at most {MAX_REPORT_CHARS} characters (the text of the e-RS "
                      f"configuration check), not {len(report)}")
    relative = [path for path in options["ia_paths"] if not _ABSOLUTE_PATH.match(path)]
    if relative:
        errors.append(f"ia_paths must hold absolute Windows paths (C:\\...\\IdentityAgent.exe), not "
                      f"{', '.join(map(repr, relative))}")
    if parse_version(options["ia_min_version"]) is None:
        errors.append(f"ia_min_version must be a version such as 2.4.10.0, not {options['ia_min_version']!r}")
    return errors


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


def _is_default(name: str, value: t.Any) -> bool:
    """Whether an argument is exactly its default (same type and value): the same as not given."""
    spec = ARGUMENT_SPEC.get(name)
    return spec is not None and type(value) is type(spec["default"]) and value == spec["default"]


def validate_options(args: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    """(options, None) or (None, one readable message naming the fields and what is allowed).

    Worked out once per process and set of arguments (arguments equal to their default left
    out): the plugin validates the defaults before Ansible forks (``prepare_before_fork``), so a
    host whose task passes the defaults, as the audit playbook's does, copies that result.
    """
    given = {name: value for name, value in args.items() if not _is_default(name, value)}
    return _validate_options(given)


@memo(32)
def _validate_options(args: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    result = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(args))
    messages = [
        f"unsupported parameter(s): {error}" if isinstance(error, UnsupportedError) else str(error)
        for error in result.errors
    ]
    if messages:
        return None, "; ".join(messages)
    options = {name: result.validated_parameters[name] for name in ARGUMENT_SPEC}
    options["cm_process_names"] = list(options["cm_process_names"] or [])
    options["prs_ports"] = list(options["prs_ports"] or [])
    options["ia_paths"] = list(options["ia_paths"] or [])
    options["ia_process_names"] = list(options["ia_process_names"] or [])
    errors = _range_errors(options)
    if errors:
        return None, "; ".join(errors)
    return options, None


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
