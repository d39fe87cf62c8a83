# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.diagnose (documentation: plugins/modules/diagnose.py).

Validates its arguments (``_diagnose.options``) and makes one call, ``_diagnose.run.diagnose``:
ONE runner call reads the host, and the facts are normalised and judged on the controller. It
never changes the host, so check mode runs exactly the same reads. With ``ers_report`` (the text
of an e-RS configuration check), the findings that explain the fault it names come first; a text
that names no fault is a warning, not a failure.
"""

from __future__ import annotations

import typing as t

from ansible.utils.display import Display

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import (
    args_with_variables,
    validate_options,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.run import diagnose, prepare_before_fork
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import RunnerAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import ProtocolError

display = Display()


class ActionModule(RunnerAction):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        # cm_required, cm_process_names, include_offline_profiles and ers_report come from the host's
        # nhs_cm_* variables when the task does not give them (OPTION_VARIABLES).
        args = args_with_variables(self._task.args, task_vars or {}, self._template)
        options, error = validate_options(args)
        if options is None:
            result.update(failed=True, msg=f"nhs_cm.remediation.diagnose: {error}")
            return result
        try:
            diagnosis = diagnose(options, self.run_ops)
        except ProtocolError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        # Shown, not returned in ``warnings``: ansible-core 2.19 keeps returned warnings in the
        # registered result as objects that cannot be read back as plain variables.
        host = (task_vars or {}).get("inventory_hostname", "this host")
        for warning in diagnosis["warnings"]:
            display.warning(f"{host}: {warning}")
        result.update(changed=False, findings=diagnosis["findings"], unknown=diagnosis["unknown"],
                      product=diagnosis["product"], reported_fault=diagnosis["reported_fault"],
                      reported_port=diagnosis["reported_port"])
        if options["return_facts"]:
            # About nine tenths of the result: every host's result crosses from the fork to the
            # main process, is cleaned and registered there (docs/performance.md).
            result["facts"] = diagnosis["facts"]
        return result

    def _template(self, value: t.Any) -> t.Any:
        """A variable's value that holds a template, rendered with the host's variables."""
        return self._templar.template(value)


# Ansible imports this plugin in its main process, before it forks a worker per host: the work
# that is the same for every host is done here once (``_diagnose.run.prepare_before_fork``).
prepare_before_fork()
