# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/restore.py; this file only
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: restore
short_description: Put back what a remediation run changed, from the backup it saved on the host
version_added: 0.2.0
description:
  - Loads a backup that a remediation module (M(nhs_cm.remediation.cm_service) and the other roles' modules)
    saved on the host before it changed anything (C(%ProgramData%\nhs_cm\backups\<id>.json)) and restores
    exactly that state - registry values with the same type and data, values that did not exist removed,
    keys the run created removed when they are empty again, services back to their start mode and state.
    Nothing else is touched.
  - Only what differs is written, so a second run reports no change.
  - A backup is a file on the host and is restored as an administrator, so it may hold only what a role of
    this collection writes - the exact keys and value names the roles plan (their browser policy and Local
    intranet zone values, the NHS Port Service and SCardSvr). A backup with any other entry, or whose own
    C(id) is not the name of its file, is refused whole, naming the first offending entry, before anything
    is read or written.
  - Programs a run started in users' sessions are not stopped.
  - Three runner calls - load the backup, read what it covers, write and read back (one more for
    V(latest), which lists the backups first).
  - Restoring saves no backup of its own, so C(latest) keeps naming the run being undone.
options:
  backup_id:
    description:
      - The backup's id, as returned by the remediation module (RV(nhs_cm.remediation.cm_service#module:backup_id)),
        or V(latest) for the newest usable backup on that host, by the time the host's file system gives its
        file (never by what a file says). A backup file that cannot be used is skipped and named in
        RV(unusable_backups) and a warning.
    type: str
    required: true
attributes:
  check_mode:
    support: full
    description: Reads the backup and the host and reports what would be restored; writes nothing.
  diff_mode:
    support: full
    description: Each value and service, now and after the restore.
  platform:
    support: full
    platforms: windows
    description: Windows hosts over the winrm connection (psrp and ssh with the powershell shell are untested).
seealso:
  - module: nhs_cm.remediation.cm_service
author:
  - NHS CM remediation maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Undo the last remediation on these hosts
  nhs_cm.remediation.restore:
    backup_id: latest
"""

RETURN = r"""
changed:
  description: Whether anything was (in check mode, would be) put back.
  returned: always
  type: bool
backup_id:
  description: The id of the backup that was restored.
  returned: success
  type: str
saved_at:
  description: When the backup was saved (UTC, ISO 8601).
  returned: success
  type: str
unusable_backups:
  description:
    - With O(backup_id=latest), the backup files on the host that cannot be used and were skipped,
      V({id, path, error}).
  returned: always
  type: list
  elements: dict
changes:
  description: One line per value or service put back, C(<now> -> <as in the backup>).
  returned: success
  type: list
  elements: str
changed_unknown:
  description:
    - "True when a write request was sent but its answer never came back (the connection dropped, a timeout while
      waiting), so whether the host was changed is unknown. The message starts C(changed: unknown); running the
      same restore again writes only what still differs. A failure before the request was sent is an ordinary
      failure and has no such field."
  returned: when a write request's answer never came back
  type: bool
# >>> shared: cleanup (tools/gen_module_docs.py writes this block: edit it there)
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
# <<< shared: cleanup
msg:
  description: Why the restore failed, one line.
  returned: failure
  type: str
"""
