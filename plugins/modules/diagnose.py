# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/diagnose.py; this file only
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: diagnose
short_description: Find why the e-RS configuration check cannot reach NHS Credential Management
version_added: 0.1.0
description:
  - Reads a Windows desktop over its Ansible connection (WinRM) and reports the faults that make
    the NHS e-Referral Service configuration check say C(NHS Credential Management cannot be
    found), as a list of findings with stable ids (the finding catalogue).
  - Sends ONE fixed PowerShell runner with a JSON request on standard input; all judging happens
    on the controller. Nothing on the host is changed.
  - Checks in this release (fault 1) - C(CM_NOT_INSTALLED), C(CM_LEGACY_IDENTITY_HUB),
    C(CM_MULTIPLE_VERSIONS), C(DOTNET48_MISSING), C(PORT_SERVICE_MISSING),
    C(PORT_SERVICE_STOPPED), C(PORT_SERVICE_NOT_AUTOMATIC), C(PORT_SERVICE_NOT_LISTENING),
    C(CM_NOT_RUNNING), C(CM_REBOOT_PENDING).
  - NHS Credential Management (CM) is an Uninstall entry (64- and 32-bit registry views) whose
    DisplayName starts with C(NHS Credential Management); NHS Identity Hub one that starts with
    C(NHS Identity Hub).
  - A CM process is one whose image lies under the CM or Identity Hub entry's InstallLocation (or
    the folder of its DisplayIcon when InstallLocation is empty), excluding the NHS Port
    Service's own image, or whose file name is in O(cm_process_names).
  - C(CM_NOT_RUNNING) is reported once per interactive session (console or RDP, active or
    disconnected) with no CM process, and only when CM or Identity Hub is installed; a host with
    nobody logged on gets none.
  - C(DOTNET48_MISSING) uses C(HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full) C(Release)
    below 528040. When that key is absent, .NET Framework 4.8 counts as present on OS build 18362
    or later (Windows 10 1903+, Windows 11, Server 2022, where it is part of the OS) and as missing
    on older builds.
  - C(CM_MULTIPLE_VERSIONS) counts distinct DisplayName and DisplayVersion pairs among entries shown
    in Add/Remove Programs (a setup bundle hides the entry of its own MSI).
  - C(PORT_SERVICE_NOT_LISTENING) is reported when the service runs but nothing listens on any of
    O(prs_ports) and no C(/PRS/GetPortNumber) probe of those ports was answered. A probe from the
    WinRM session is expected to get an error answer (no CM for the WinRM account); any HTTP
    answer counts as listening.
  - When a check cannot be made (access denied, a read that failed), it is listed in RV(unknown)
    with the reason; it is never reported as healthy.
  - Needs an account in the host's local Administrators group (process images and owners, the
    Uninstall keys). PowerShell 5.1 in FullLanguage mode.
options:
  cm_required:
    description:
      - Whether NHS Credential Management should be installed on the host.
      - When V(false), C(CM_NOT_INSTALLED) is never reported, and the .NET and NHS Port Service
        checks apply only where CM or Identity Hub is installed.
    type: bool
    default: true
  cm_process_names:
    description:
      - File names of CM processes (for example V(NHSCredentialManagement.exe)), compared without
        case and with or without C(.exe).
      - A process whose file name is listed counts as CM in addition to those found by install
        folder. Set it when the Uninstall entry records no install folder.
    type: list
    elements: str
    default: []
  port_service_display_name:
    description:
      - Display name of the NHS Port Service (compared without case).
    type: str
    default: NHS Port Service
  prs_ports:
    description:
      - Ports of the NHS Port Service (port redirection service) that are checked for a listener
        and probed with C(GET http://localhost:<port>/PRS/GetPortNumber).
      - Each from 1 to 65535.
    type: list
    elements: int
    default: [43487, 44213, 45031, 46478, 48853]
  probe_timeout_ms:
    description:
      - Timeout of each C(/PRS/GetPortNumber) probe, in milliseconds, from 100 to 30000.
    type: int
    default: 1000
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same reads.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  platform:
    platforms: windows
    description: Windows hosts over the winrm connection (psrp and ssh with the powershell shell are untested).
notes:
  - The module never changes the host; RV(changed) is always false.
  - The command line is under 3 KB (far below the 8,191-character limit); the runner itself travels on standard input.
seealso:
  - name: NHS Credential Management troubleshooting (e-RS)
    description: The e-RS page that lists the four configuration-check faults.
    link: https://digital.nhs.uk/services/e-referral-service/document-library/check-whether-your-computer-is-correctly-configured-for-e-rs/troubleshoot-incorrect-configurations/nhs-credential-management
author:
  - NHS CM remediation maintainers
"""

EXAMPLES = r"""
- name: Diagnose NHS Credential Management on every desktop
  nhs_cm.remediation.diagnose:
  register: cm

- name: Show the findings
  ansible.builtin.debug:
    msg: "{{ item.id }} ({{ item.severity }}): {{ item.summary }}"
  loop: "{{ cm.findings }}"

- name: Fail when an error-level finding is present
  ansible.builtin.assert:
    that: cm.findings | selectattr('severity', 'equalto', 'error') | list | length == 0
    fail_msg: "{{ cm.findings | selectattr('severity', 'equalto', 'error') | map(attribute='id') | list }}"

- name: Desktops where CM is optional, with a known CM executable name
  nhs_cm.remediation.diagnose:
    cm_required: false
    cm_process_names:
      - NHSCredentialManagement.exe
    probe_timeout_ms: 2000
"""

RETURN = r"""
changed:
  description: Always false; the module only reads.
  returned: always
  type: bool
  sample: false
findings:
  description:
    - What is wrong on the host, one entry per finding, in catalogue order. Empty on a healthy host.
    - Every field is present; fields that do not apply are null.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Stable finding id from the catalogue (never renamed).
      type: str
      sample: CM_NOT_RUNNING
    fault:
      description: The e-RS fault (1 to 4) this explains, or null for a related risk.
      type: int
      sample: 1
    ers_message:
      description: The e-RS configuration check message of that fault (C(<port>) when unknown), or null.
      type: str
      sample: NHS Credential Management cannot be found
    severity:
      description: V(error) causes the e-RS message now; V(warning) is a risk or partial cause; V(info).
      type: str
      sample: error
    scope:
      description:
        - "Where the finding applies: C(kind=machine), or for a user C(kind=user) with C(user), C(sid) and C(session)."
        - "Machine scope is exactly V({kind: machine}); user scope is V({kind: user, user, sid, session})."
      type: dict
      sample: {kind: user, user: "NHS\\jsmith", sid: "S-1-5-21-1-2-3-1001", session: 2}
    browser:
      description: V(chrome), V(edge), V(firefox), or null when no browser is concerned.
      type: str
      sample: null
    summary:
      description: One line for people.
      type: str
      sample: NHS Credential Management is not running in session 2 (NHS\jsmith)
    evidence:
      description:
        - What was read, exactly, so a person can check it by hand. Registry values are
          V({path, name, type, data}); services V({service, display_name, state, start_mode, image});
          sessions V({session, user, state, processes}); probes V({url, status, error}).
      type: list
      elements: dict
      sample:
        - {path: 'HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full', name: Release, type: REG_DWORD,
           data: 461814}
    remedy:
      description: How to fix it.
      type: dict
      contains:
        automatic:
          description: Whether a role of this collection can fix it.
          type: bool
        role:
          description: The role that fixes it, or null.
          type: str
          sample: nhs_cm.remediation.cm_service
        action:
          description: What to do.
          type: str
          sample: Start the NHS Port Service
        managed_by_gpo:
          description: True when domain Group Policy re-applies the value (a local fix would be undone).
          type: bool
    escalation:
      description:
        - Null, or V({to, phone, why}) when the fix is to call someone.
        - C(CM_NOT_CONNECTED) goes to the National Service Desk, 0300 303 5035.
      type: dict
      sample: null
unknown:
  description: Checks that could not be made, with the reason. Never treat these as healthy.
  returned: success
  type: list
  elements: dict
  contains:
    check:
      description: The finding id of the check.
      type: str
      sample: CM_NOT_RUNNING
    reason:
      description: Why it could not be made.
      type: str
      sample: "cannot list sessions: access_denied: Access is denied"
  sample: []
facts:
  description: The normalised facts the findings were made from (what was read, in one runner call).
  returned: success
  type: dict
  contains:
    products:
      description:
        - NHS products found in the Uninstall keys of both registry views, by kind
          (V(cm), V(identity_hub), V(identity_agent), V(port_service)).
        - Each entry has C(kind), C(name), C(version), C(publisher), C(install_location), C(display_icon),
          C(system_component), C(key) (the Uninstall subkey read), C(view) (V(64) or V(32)) and
          C(values) (the registry values read, by value name, each with C(type) and C(data)).
      type: dict
    uninstall_keys:
      description: Each Uninstall key read, V({path, exists, subkeys}) or V({path, error}).
      type: list
      elements: dict
    dotnet:
      description:
        - V({path, exists, release, release_type, version}) of C(NDP\v4\Full), or null when it could not be read.
      type: dict
    services:
      description:
        - V({port_service, smartcard}); each null when absent, else V({name, display_name, state,
          start_mode, image, pid}); port_service also has C(binary), its executable.
        - Null when services could not be queried.
      type: dict
    listeners:
      description: TCP listeners on O(prs_ports), V({address, port, pid}); null when they could not be listed.
      type: list
      elements: dict
    prs_probes:
      description: One V({port, url, ran, answered, status, body, error}) per port of O(prs_ports).
      type: list
      elements: dict
    processes:
      description: Every process, V({pid, name, image, session, user, version}); null when they could not be listed.
      type: list
      elements: dict
    sessions:
      description: Interactive sessions with a user, V({id, user, sid, state}); null when they could not be listed.
      type: list
      elements: dict
    reboot:
      description:
        - V({pending, indicators, unreadable}); each indicator names the registry key or value that
          shows a pending reboot.
      type: dict
    os:
      description: V({product, version, build, computer_name, emulated}); null when it could not be read.
      type: dict
    read_errors:
      description: "Reads that failed, by read label; each is the string C(<kind>: <message>)."
      type: dict
msg:
  description: Why the module failed (a bad option, or the runner could not be run or answered badly), one line.
  returned: failure
  type: str
  sample: "the runner's reply is not JSON (exit code 1): 'The term ...'"
"""
