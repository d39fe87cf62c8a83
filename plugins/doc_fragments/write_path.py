# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Documentation shared by the modules that fix a host through the collection's write path."""

from __future__ import annotations


class ModuleDocFragment:
    # nhs_cm.remediation.write_path: the attributes and see-also of every module that reads the host
    # the way diagnose does and fixes it (third_party_cookies, intranet_zone, cm_service). A module
    # overrides an attribute by documenting it itself (cm_service's diff_mode).
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    description: Reads the host and reports what would change; writes nothing.
  diff_mode:
    support: full
    description: Each registry value before and after.
  platform:
    support: full
    platforms: windows
    description: Windows hosts over the winrm connection (psrp and ssh with the powershell shell are untested).
notes:
  - When the host or the network fails half-way, nothing is lost - when the runner's cleanup fails after the
    writes, the task fails with RV(cleanup_error), exactly the writes that happened (RV(writes_done)), the diff
    and RV(backup_id); when the connection fails after the write request was sent, it fails with
    RV(changed_unknown) and the backup to roll back with. When another run of the collection holds the host
    (the runner's host-wide lock), the task fails with one line saying so and nothing is done.
seealso:
  - module: nhs_cm.remediation.diagnose
  - module: nhs_cm.remediation.restore
"""

    # nhs_cm.remediation.write_path.policy_options: the options of the modules that write policy
    # values planned from diagnose's findings (third_party_cookies, intranet_zone).
    POLICY_OPTIONS = r"""
options:
  override_gpo:
    description: Write values that domain Group Policy sets (the next Group Policy refresh reverts them).
    type: bool
    default: false
  skip_ids:
    description: Finding ids not to fix (waived findings).
    type: list
    elements: str
    default: []
  cm_required:
    description:
      - As for M(nhs_cm.remediation.diagnose) - the checks apply only where NHS Credential Management is
        installed unless this is true.
    type: bool
    default: true
"""
