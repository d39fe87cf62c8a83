"""The checks: one pure function per finding id, grouped by fault area (docs/findings.md).

``base`` is the frame (``CheckResult``, ``@evaluator``, ``EVALUATORS``); ``cm`` the fault-1
checks (CM, the NHS Port Service, .NET, reboot), ``agent`` the Identity Agent, smart card and
connection checks, ``browser`` the browser policies and ``zones`` the Local intranet zone.
Importing this package registers every check, fault 1 first: that is the order of
``EVALUATORS``, and so of the unknown checks diagnose returns.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this package are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

from __future__ import annotations

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import cm  # isort: split

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import agent, browser, zones
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.base import EVALUATORS

#: The modules that register checks, in registration order.
CHECK_MODULES = (cm, agent, browser, zones)

__all__ = ["CHECK_MODULES", "EVALUATORS"]
