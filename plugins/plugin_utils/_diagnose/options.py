# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""diagnose's options: their defaults (``DEFAULT_OPTIONS``), the task arguments' spec
(``ARGUMENT_SPEC``) and their validation (``validate_options``).

The remediation modules that read the host with diagnose's reads validate the diagnose options
they pass on with the same function. ``validate_options`` returns every option, defaults
included; ``options_with_defaults`` completes options given in code (tests, the planners).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import validate_args
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.ers_report import MAX_REPORT_CHARS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import (
    IA_EXE,
    IA_MIN_VERSION,
    IA_PATHS,
    PRS_PORTS,
    parse_version,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._memo import memo
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._paths import ABSOLUTE_PATH
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import OPERATIONS

DEFAULT_OPTIONS: dict[str, t.Any] = {
    "cm_required": True,
    "cm_process_names": [],
    "port_service_display_name": "NHS Port Service",
    "prs_ports": list(PRS_PORTS),
    "probe_timeout_ms": 1000,
    "include_offline_profiles": False,
    "ers_report": None,
    "ia_paths": list(IA_PATHS),
    "ia_process_names": [IA_EXE],
    "ia_min_version": IA_MIN_VERSION,
    "smartcard_reader_required": True,
}

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

_TIMEOUT = OPERATIONS["http_get"]["request"]["timeout_ms"]


#: The options a host's variables set when the task does not give them (the playbooks' variables,
#: docs/user-guide.md). Read by the plugin, not templated by Ansible for every host's task: a task
#: argument that is a template costs each host's fork about 13 ms, the first template of a fork
#: being the dear one (docs/performance.md).
OPTION_VARIABLES: dict[str, str] = {
    "cm_required": "nhs_cm_cm_required",
    "cm_process_names": "nhs_cm_cm_process_names",
    "include_offline_profiles": "nhs_cm_include_offline_profiles",
    "ers_report": "nhs_cm_ers_report",
}


def _holds_template(value: t.Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, (list, tuple)):
        return any(_holds_template(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_template(item) for item in value.values())
    return False


def args_with_variables(args: t.Mapping[str, t.Any], variables: t.Mapping[str, t.Any],
                        template: t.Callable[[t.Any], t.Any]) -> dict[str, t.Any]:
    """``args`` with each option of ``OPTION_VARIABLES`` the task does not give taken from the
    host's variable, when it is set (``template`` renders a value that holds a template; a
    variable set to null counts as not set). What the task gives wins."""
    merged = dict(args)
    for option, variable in OPTION_VARIABLES.items():
        if option in merged or variable not in variables:
            continue
        value = variables[variable]
        if _holds_template(value):
            value = template(value)
        if value is not None:
            merged[option] = value
    return merged


def options_with_defaults(options: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """``options`` with every option not given (or None) at its default."""
    merged = dict(DEFAULT_OPTIONS)
    merged.update({key: value for key, value in (options or {}).items() if value is not None})
    return merged


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
    relative = [path for path in options["ia_paths"] if not ABSOLUTE_PATH.match(path)]
    if relative:
        errors.append(f"ia_paths must hold absolute Windows paths (C:\\...\\IdentityAgent.exe), not "
                      f"{', '.join(map(repr, relative))}")
    if parse_version(options["ia_min_version"]) is None:
        errors.append(f"ia_min_version must be a version such as 2.4.10.0, not {options['ia_min_version']!r}")
    return errors


def _is_default(name: str, value: t.Any) -> bool:
    """Whether an argument is exactly its default (same type and value): the same as not given."""
    spec = ARGUMENT_SPEC.get(name)
    return spec is not None and type(value) is type(spec["default"]) and value == spec["default"]


def validate_options(args: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    """(options, None) or (None, one readable message naming the fields and what is allowed).

    Worked out once per process and set of arguments (arguments equal to their default left
    out): diagnose validates the defaults before Ansible forks (``prepare_before_fork``), so a
    host whose task passes the defaults, as the audit playbook's does, copies that result.
    """
    given = {name: value for name, value in args.items() if not _is_default(name, value)}
    return _validate_options(given)


@memo(32)
def _validate_options(args: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    options, error = validate_args(ARGUMENT_SPEC, args)  # the one argument check of every module
    if options is None:
        return None, error
    for name in ("cm_process_names", "prs_ports", "ia_paths", "ia_process_names"):
        options[name] = list(options[name] or [])
    errors = _range_errors(options)
    if errors:
        return None, "; ".join(errors)
    return options, None
