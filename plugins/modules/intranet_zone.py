# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/intranet_zone.py; this file only
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: intranet_zone
short_description: Put NHS Credential Management on localhost in the Local intranet zone with automatic logon
version_added: 0.2.0
description:
  - Reads the host the way M(nhs_cm.remediation.diagnose) does (one runner call) and fixes the Local intranet
    zone findings of fault 4 with the collection's write path (backup on the host, all or nothing, check
    mode, diff).
  - C(INTRANET_AUTODETECT_ON), C(INTRANET_LOCAL_SITES_OFF), C(INTRANET_PROXY_BYPASS_OFF) and C(INTRANET_UNC_OFF)
    set ZoneMap C(AutoDetect) 0, C(IntranetName) 1, C(ProxyBypass) 1 and C(UNCAsIntranet) 1;
    C(INTRANET_LOGON_NOT_AUTOMATIC) sets C(Zones\1) C(1A00) to O(logon_action) (REG_DWORD).
  - With O(scope=machine) those go to machine policy
    (C(HKLM\SOFTWARE\Policies\Microsoft\Windows\CurrentVersion\Internet Settings)), which applies to every
    user and wins over each user's settings. With O(scope=user) they go, for each signed-in user, to the value
    that decides it for that user when it is in the user's hive, else to the user's own Internet Settings; a
    value the machine decides is listed in RV(notes) and not changed.
  - C(LOCALHOST_MAPPED_OUTSIDE_INTRANET) sets the mapping that puts localhost outside the intranet zone to
    zone 1, where it is and with its type; no other mapping is touched.
  - C(AUTH_ALLOWLIST_EXCLUDES_LOCALHOST) appends C(,localhost) to the C(AuthServerAllowlist) value in force
    (Chrome or Edge), where it is.
  - A value that domain Group Policy sets is left alone and listed in RV(gpo_skipped) with the GPO setting to
    change; with O(override_gpo=true) it is written and a warning says the next Group Policy refresh will
    revert it.
  - Before any change it saves the previous state of every value it touches (including "did not exist") on
    the host and returns RV(backup_id); C(playbooks/rollback.yml -e backup_id=<id>) restores it exactly.
  - With O(include_default_profile=true) it also fixes the default profile (C(<ProfileList Default>\NTUSER.DAT),
    the template of the profiles of users who sign in later), with either O(scope); see O(include_default_profile).
options:
  scope:
    description: C(machine) (machine policy, every user) or C(user) (each signed-in user's hive).
    type: str
    choices: [machine, user]
    default: machine
  logon_action:
    description:
      - The C(1A00) (Logon) value of the Local intranet zone - C(131072) (0x20000, automatic logon only in
        Intranet zone, NHS's setting) or C(0) (automatic logon with current user name and password).
    type: int
    default: 131072
  include_default_profile:
    description:
      - Also fix the default profile's hive, loaded by the runner for the read call and the write call
        (and unloaded at the end of each, even on failure). Diagnose does not read it, so it is judged on its
        own, for every id above that O(skip_ids) does not list (not C(AUTH_ALLOWLIST_EXCLUDES_LOCALHOST)) - as
        for a user whose hive is that file and whom no machine setting decides.
      - Each value goes where O(scope=user) puts it for a user whose hive has no policy - the hive's own
        C(Software\Microsoft\Windows\CurrentVersion\Internet Settings\{ZoneMap,Zones\1}), or the hive's
        C(Software\Policies\...) value when that hive sets it there.
      - Diff, RV(changes) and the backup show these values under C(HKU\.DEFAULT_PROFILE\...), never under the
        temporary mount point, so a rollback loads the hive afresh.
      - With O(scope=machine) the machine policy already decides for users who sign in later; this keeps their
        own settings right too, should that policy be removed.
    type: bool
    default: false
notes:
  - Runner calls per host - one to read, one to back up, write and read back (with diagnose's reads, for
    RV(still_reported)), and one more only to put values back after a failure.
  - Browsers read zone mappings and policies when they start - restart them afterwards.
extends_documentation_fragment:
  - nhs_cm.remediation.write_path
  - nhs_cm.remediation.write_path.policy_options
author:
  - NHS CM remediation maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Fix the Local intranet zone in machine policy, for every user
  nhs_cm.remediation.intranet_zone:
  register: zone

- name: Fix each signed-in user's own settings instead, and the default profile for users who sign in later
  nhs_cm.remediation.intranet_zone:
    scope: user
    include_default_profile: true
"""

RETURN = r"""
changed:
  description: Whether anything was (in check mode, would be) changed.
  returned: always
  type: bool
changes:
  description: One line per value, C(<before> -> <after>).
  returned: always
  type: list
  elements: str
  sample:
    - "HKLM\\...\\ZoneMap\\AutoDetect: (absent) -> HKLM\\...\\ZoneMap\\AutoDetect: REG_DWORD 0"
backup_id:
  description: The backup saved on the host before the changes, or null when nothing was changed.
  returned: always
  type: str
  sample: 20251125T101500Z-intranet_zone-1a2b3c4d
backup_path:
  description: The backup file on the host.
  returned: when a backup was saved
  type: str
findings_before:
  description: The fault 4 ids diagnose reported before.
  returned: always
  type: list
  elements: str
still_reported:
  description: The fault 4 ids diagnose reports afterwards (in check mode or when nothing changed, RV(findings_before)).
  returned: success
  type: list
  elements: str
gpo_skipped:
  description: Values left alone because domain Group Policy sets them, V({key, name, gpo, policy}).
  returned: always
  type: list
  elements: dict
notes:
  description: What was not changed and why.
  returned: always
  type: list
  elements: str
# >>> shared: write_failure (tools/gen_module_docs.py writes this block: edit it there)
restored:
  description: After a failure, whether everything this run changed was put back from the backup.
  returned: failure after a change
  type: bool
changed_unknown:
  description:
    - "True when a write request was sent but its answer never came back (the connection dropped, a timeout while
      waiting), so whether the host was changed is unknown. The message starts C(changed: unknown) and names the
      backup to roll back with. A failure before the request was sent is an ordinary failure and has no such field."
  returned: when a write request's answer never came back
  type: bool
cleanup_error:
  description: The runner ran every operation but could not clean up afterwards (a registry hive it loaded and
    could not unload); the task fails with it.
  returned: when the runner's cleanup failed after the writes
  type: str
writes_done:
  description: With RV(cleanup_error), exactly the writes that happened, in order (C(backup_save <id>),
    C(reg_write <key> '<name>'), C(service_set <name>), C(start <program> in session <n>), ...).
  returned: when the runner's cleanup failed after the writes
  type: list
  elements: str
msg:
  description: Why the module failed, one line.
  returned: failure
  type: str
# <<< shared: write_failure
"""
