# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Documentation shared by the modules that run on the controller only."""

from __future__ import annotations


class ModuleDocFragment:
    # nhs_cm.remediation.controller: the attributes of report, report_merge and waivers. Each module
    # documents check_mode itself (what it does in check mode differs).
    DOCUMENTATION = r"""
attributes:
  diff_mode:
    support: none
    description: Nothing to show as a diff.
  platform:
    support: full
    platforms: all
    description: Runs on the controller.
"""
