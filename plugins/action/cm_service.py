# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.cm_service (documentation: plugins/modules/cm_service.py).

Checks the options (its own, and diagnose's that it passes on) before the host is contacted, then
fixes what diagnose reports (``_remediate.cm_service_action.CmServiceAction``: read, plan with
``_remediate.cm_service.plan_cm_service``, apply through the write path, verify with diagnose).
"""

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import ARGUMENT_SPEC as DIAGNOSE_SPEC
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._paths import DRIVE_PATH
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cm_service import DEFAULTS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cm_service_action import CmServiceAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.write_action import remediation_options

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


def _wait_problem(options: dict[str, t.Any]) -> str | None:
    for name in ("wait_ms", "listen_wait_ms"):
        if not 0 <= options[name] <= 120000:
            return f"{name} must be from 0 to 120000, not {options[name]}"
    return None


def _executables_problem(options: dict[str, t.Any]) -> str | None:
    problems = [p for p in (_path_problem("cm_executable", options["cm_executable"]),
                            _path_problem("ia_executable", options["ia_executable"])) if p]
    if options["ia_executable"] and not DRIVE_PATH.match(options["ia_executable"]):
        problems.append(f"ia_executable must be a full path, not {options['ia_executable']!r}")
    return "; ".join(problems) or None


def validate_options(args: t.Mapping[str, t.Any]
                     ) -> tuple[dict[str, t.Any] | None, dict[str, t.Any] | None, str | None]:
    """(own options, diagnose options, None) or (None, None, one message naming the fields)."""
    own, diagnose, error = remediation_options(ARGUMENT_SPEC, args, DIAGNOSE_OPTIONS,
                                               _wait_problem, _executables_problem)
    if own is None or diagnose is None:
        return None, None, error
    own["cm_process_names"] = diagnose.get("cm_process_names") or []
    own["ia_process_names"] = diagnose.get("ia_process_names") or []
    own["prs_ports"] = list(diagnose.get("prs_ports") or [])
    return own, diagnose, None


class ActionModule(CmServiceAction):
    ROLE = "nhs_cm.remediation.cm_service"

    def validate(self, args: t.Mapping[str, t.Any]) -> tuple[t.Any, str | None]:
        own, diagnose, error = validate_options(args)
        return (None if own is None or diagnose is None else (own, diagnose)), error
