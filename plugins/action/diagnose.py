# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.diagnose (documentation: plugins/modules/diagnose.py).

Reads the host with ONE runner call (``_facts.plan_reads``), normalises what came back
(``_facts.build_facts``) and evaluates it (``_evaluate.evaluate``) on the controller. It never
changes the host, so check mode runs exactly the same reads.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._facts import (
    DEFAULT_OPTIONS,
    build_facts,
    plan_reads,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._protocol import (
    OPERATIONS,
    ProtocolError,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner_action import RunnerAction

_TIMEOUT = OPERATIONS["http_get"]["request"]["timeout_ms"]

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "cm_required": {"type": "bool", "default": DEFAULT_OPTIONS["cm_required"]},
    "cm_process_names": {"type": "list", "elements": "str", "default": list(DEFAULT_OPTIONS["cm_process_names"])},
    "port_service_display_name": {"type": "str", "default": DEFAULT_OPTIONS["port_service_display_name"]},
    "prs_ports": {"type": "list", "elements": "int", "default": list(DEFAULT_OPTIONS["prs_ports"])},
    "probe_timeout_ms": {"type": "int", "default": DEFAULT_OPTIONS["probe_timeout_ms"]},
}


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
    return errors


def validate_options(args: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    """(options, None) or (None, one readable message naming the fields and what is allowed)."""
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
        result.update(changed=False, findings=findings, facts=facts, unknown=unknown)
        return result
