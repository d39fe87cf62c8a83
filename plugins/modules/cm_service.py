# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/cm_service.py; this file only
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: cm_service
short_description: Start the NHS Port Service, Smart Card, NHS Credential Management and the Identity Agent
version_added: 0.2.0
description:
  - Reads the host the way M(nhs_cm.remediation.diagnose) does (one runner call) and fixes what it
    reports, with the collection's write path (backup on the host, all or nothing, check mode, diff).
  - C(PORT_SERVICE_STOPPED) starts the NHS Port Service, C(PORT_SERVICE_NOT_AUTOMATIC) sets its start
    mode to Automatic, C(PORT_SERVICE_NOT_LISTENING) restarts it.
  - C(SMARTCARD_SERVICE_STOPPED) (CM 1.x and Identity Hub hosts) starts the Smart Card service (SCardSvr).
  - C(CM_NOT_RUNNING) starts NHS Credential Management in that interactive session, as that session's
    user, through a one-off scheduled task (interactive principal given by the user's SID, no stored
    password, a unique C(nhs_cm_*) name, deleted afterwards even on failure), then waits (O(wait_ms)) and
    verifies that the process runs in that session. A session whose user's SID is not known is not started
    (RV(not_started) says so). On CM 1.x the Identity Agent is started there too when it does not run;
    C(IA_NOT_RUNNING) starts the Identity Agent.
  - C(CM_NOT_CONNECTED) stops the Identity Agent and CM in that session and starts them again, once. Whether
    CM is connected cannot be read from outside the session; when diagnose still reports it afterwards the
    module returns the escalation (National Service Desk, 0300 303 5035) in RV(escalations) instead of
    retrying.
  - A host with nobody logged on is left unchanged; RV(notes) says that CM starts at the next logon. When the
    owners of the processes cannot be read, nobody being logged on cannot be told; nothing is started and
    RV(notes) says why.
  - What is started comes only from the options or machine-wide install data (the products' Uninstall
    entries under HKLM, both registry views), never from a running process, HKCU or a user's profile - any
    user can run a program named C(IdentityAgent.exe) from their own folders. The runner also refuses a
    program in a folder that non-administrators can write; RV(not_started) gives the reason per session.
  - "CM's executable name is not public. It is taken from O(cm_executable) when set; otherwise from the
    Uninstall entry's C(DisplayIcon), or from the only program in CM's C(InstallLocation) that is not the
    NHS Port Service (an extra read call, made only then; when that folder holds several programs, a CM
    process running in another session may pick one of them). When none of these gives one answer, the
    module fails, says why, and changes nothing."
  - "The Identity Agent's executable is O(ia_executable) when set; otherwise C(<folder>\\IdentityAgent.exe)
    (each name of O(ia_process_names)) for the folders its Uninstall entry records (C(InstallLocation), the
    C(DisplayIcon)'s folder) when that file exists (checked in the extra read call); otherwise the first file
    of O(ia_paths) that exists. When none is known, it is not started and RV(not_started) says why."
  - Before any change it saves the previous start mode and state of every service it touches on the host
    (C(%ProgramData%\nhs_cm\backups\<id>.json)) and returns RV(backup_id). C(playbooks/rollback.yml) puts
    them back. Programs it started are not stopped by a rollback.
  - All or nothing per host - when a change fails, or diagnose still reports what was fixed, everything this
    run changed is put back from the backup and the task fails with the reason.
  - The runner changes only what its allow-list names (the NHS Port Service by display name, SCardSvr,
    scheduled tasks named C(nhs_cm_*), programs outside the Windows folder), whatever it is asked.
options:
  port_service:
    description: Start the NHS Port Service when stopped; restart it when it does not listen.
    type: bool
    default: true
  port_service_automatic:
    description: Set the NHS Port Service's start mode to Automatic when it is not.
    type: bool
    default: true
  smartcard_service:
    description: Start the Smart Card service on CM 1.x and Identity Hub hosts.
    type: bool
    default: true
  start_cm:
    description: Start NHS Credential Management in each interactive session that lacks it.
    type: bool
    default: true
  start_identity_agent:
    description: Start the Identity Agent in sessions where CM 1.x needs it.
    type: bool
    default: true
  reconnect:
    description: For C(CM_NOT_CONNECTED), restart the Identity Agent and CM once.
    type: bool
    default: true
  cm_executable:
    description:
      - CM's executable, a full path (C(C:\...\x.exe)) or a file name in CM's install folder.
    type: str
  ia_executable:
    description:
      - Full path of the Identity Agent's executable, when its Uninstall entry does not record its folder and
        it is not in O(ia_paths).
    type: str
  wait_ms:
    description: How long to wait for a started program to appear in its session, 0 to 120000 ms.
    type: int
    default: 15000
  listen_wait_ms:
    description:
      - After starting or restarting the NHS Port Service, how long to wait (polling) for it to listen
        on one of O(prs_ports) before reading it back, 0 to 120000 ms; 0 does not wait.
      - A service that still does not listen then is reported by the read-back, not as a failure of the start.
    type: int
    default: 10000
  cm_process_names:
    description: File names of CM processes, as for M(nhs_cm.remediation.diagnose).
    type: list
    elements: str
    default: []
  port_service_display_name:
    description: Display name of the NHS Port Service.
    type: str
    default: NHS Port Service
  prs_ports:
    description: Ports of the NHS Port Service.
    type: list
    elements: int
    default: [43487, 44213, 45031, 46478, 48853]
  probe_timeout_ms:
    description: Timeout of each C(/PRS/GetPortNumber) probe, 100 to 30000 ms.
    type: int
    default: 1000
  ers_report:
    description: The text of the e-RS configuration check (fault 2 makes diagnose report C(CM_NOT_CONNECTED)).
    type: str
  ia_paths:
    description: Where the Identity Agent's executable may be, as for M(nhs_cm.remediation.diagnose).
    type: list
    elements: str
    default:
      - C:\Program Files (x86)\HSCIC\Identity Agent\IdentityAgent.exe
      - C:\Program Files\HSCIC\Identity Agent\IdentityAgent.exe
  ia_process_names:
    description: File names of Identity Agent processes.
    type: list
    elements: str
    default: [IdentityAgent.exe]
attributes:
  # check_mode is the fragment's too; it stands here so that check_mode comes before diff_mode.
  check_mode:
    support: full
    description: Reads the host and reports what would change; writes nothing.
  diff_mode:
    support: full
    description: Each service and session, before and after.
notes:
  - Runner calls per host - one to read, one more only when CM's install folder must be listed or the Identity
    Agent's install folder checked, one to back up, change and read back, and one more only to put values back
    after a failure.
extends_documentation_fragment:
  - nhs_cm.remediation.write_path
author:
  - NHS CM remediation maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Start what should run
  nhs_cm.remediation.cm_service:
  register: cm_service

- name: Show the backup to roll back to
  ansible.builtin.debug:
    msg: "rollback: ansible-playbook playbooks/rollback.yml -e backup_id={{ cm_service.backup_id }}"
  when: cm_service.backup_id

- name: Only the NHS Port Service, with a known CM executable name
  nhs_cm.remediation.cm_service:
    start_cm: false
    cm_executable: NHSCredentialManagement.exe
"""

RETURN = r"""
changed:
  description: Whether anything was (in check mode, would be) changed.
  returned: always
  type: bool
changes:
  description: One line per change, C(<before> -> <after>).
  returned: always
  type: list
  elements: str
  sample:
    - "service NHSPortService: state stopped, start mode auto -> service NHSPortService: state running, start mode auto"
backup_id:
  description: The backup saved on the host before the changes, or null when nothing was changed.
  returned: always
  type: str
  sample: 20251125T101500Z-cm_service-1a2b3c4d
backup_path:
  description: The backup file on the host.
  returned: when a backup was saved
  type: str
findings_before:
  description: The ids diagnose reported before.
  returned: always
  type: list
  elements: str
findings_after:
  description: The ids diagnose reports afterwards (in check mode, the same as RV(findings_before)).
  returned: success
  type: list
  elements: str
escalations:
  description:
    - For C(CM_NOT_CONNECTED) that persists after the one restart, whom to call, V({session, user, to, phone, why}).
  returned: always
  type: list
  elements: dict
notes:
  description: What was not changed and why (nobody logged on, an executable that is not known).
  returned: always
  type: list
  elements: str
cm_executable:
  description: CM's executable used to start it, and RV(cm_executable_source) where that came from.
  returned: always
  type: str
cm_executable_source:
  description: Where RV(cm_executable) came from.
  returned: always
  type: str
ia_executable:
  description: The Identity Agent's executable used to start it, when one had to be started; RV(ia_executable_source)
    says where that came from.
  returned: always
  type: str
ia_executable_source:
  description: Where RV(ia_executable) came from (C(option ia_executable), C(the Identity Agent's Uninstall entry),
    C(option ia_paths)).
  returned: always
  type: str
not_started:
  description:
    - Each session where a program should have been started (or restarted) but was not, V({session, user,
      program, reason}) - its user's SID is not known, the program's path is not known from install data or
      options, or the runner refused it (for example a program in a folder non-administrators can write).
  returned: always
  type: list
  elements: dict
unknown:
  description: diagnose's checks that could not be made.
  returned: always
  type: list
  elements: dict
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
