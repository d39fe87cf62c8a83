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
  - Reads a Windows desktop over its Ansible connection (WinRM) and reports what causes the four
    faults of the NHS e-Referral Service configuration check (C(NHS Credential Management cannot be
    found), C(... is running on port <port> but is not connected), C(... is connected but cannot
    login to e-RS), a Windows Security credential dialog), as a list of findings with stable ids
    (the finding catalogue).
  - Sends ONE fixed PowerShell runner with a JSON request on standard input; all judging happens
    on the controller. Nothing on the host is changed.
  - Fault 1, installation, services and processes - C(CM_NOT_INSTALLED), C(CM_LEGACY_IDENTITY_HUB),
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
    nobody logged on gets none. The runner finds the sessions from the owners of the processes; when
    those cannot be read (C(process_list) says why), no session found does not mean nobody is logged
    on, so C(CM_NOT_RUNNING), C(IA_NOT_RUNNING) and the e-RS fault checks go to RV(unknown) with that
    reason (C(CM_NOT_RUNNING) also when some sessions were found, as others may be missing).
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
  - "Faults 2 and 3 (the legacy NHS Identity Agent) - C(IA_NOT_INSTALLED), C(IA_NOT_RUNNING),
    C(IA_VERSION_RETIRED), C(CM_NOT_CONNECTED), C(SMARTCARD_SERVICE_STOPPED), C(NO_SMARTCARD_READER),
    C(USER_NOT_LOGGED_IN) - apply only where the Identity Agent is part of the set-up: NHS Credential
    Management before 3.x, or NHS Identity Hub (RV(product) V(cm1) or V(identity_hub)). CM 3.x and later
    ship NHS Smartcard Connect and have no Identity Agent (RV(product) V(cm3plus)): those hosts never get
    them."
  - "Browser policy - C(THIRD_PARTY_COOKIES_BLOCKED), C(COOKIES_BLOCKED_BY_DEFAULT), C(LOCALHOST_COOKIES_BLOCKED)
    (fault 1) for Chrome and Edge, and for Firefox where a Firefox C(Cookies) policy exists;
    C(AUTH_ALLOWLIST_EXCLUDES_LOCALHOST) (fault 4) for Chrome and Edge. Each finding names its C(browser)."
  - "Browser policies are taken as the browser applies them, one policy at a time: mandatory beats recommended
    (C(...\\Recommended); only C(BlockThirdPartyCookies) may be recommended), then the machine (HKLM) beats
    the user's hive. A list policy comes whole from the winning source and is made of every value of its
    subkey whose name is a number (V(0), gaps, any numbering); Chrome and Edge ignore values with other names,
    and so does this check. Machine and user lists are never merged: Chromium merges lists only between
    sources of the same scope, whatever C(PolicyListMultipleSourceMergeList) says. REG_SZ and REG_EXPAND_SZ
    count alike; key paths and value names are compared without case."
  - "A cookie entry covers localhost when it matches C(http://localhost) on every port (CM's port differs per
    session), by Chromium's pattern rules: V([*.]localhost), V(localhost), V(http://localhost),
    V(http://localhost:*) and V(*://localhost) do; V(http://localhost:43485) covers one port; V(https://...)
    entries and the invalid V(*.localhost) and V([*.].localhost) do not. The most specific matching entry
    wins (host, then port, then scheme), so a block entry is reported only where it beats every allow entry,
    and an entry that matches every host (V(*)) does not lift third-party blocking. An entry
    C(site,top-level-site) counts only under the e-RS and CIS2 sites C(https://ers.nhs.uk) and
    C(https://am.nhsidentity.spineservices.nhs.uk) (inference: the pages that call CM)."
  - "Local Network Access - C(LOCALHOST_ACCESS_BLOCKED) (error), C(LOCALHOST_ACCESS_NOT_ALLOWED) and
    C(LOCALHOST_ACCESS_POLICY_NOT_HONOURED) (warnings), fault 1 - for Chrome 142+ and Edge 143+, the versions
    that ask before a public site may reach localhost. The version is the file version of C(chrome.exe) /
    C(msedge.exe) in their system-level install folders (else of a running process); a browser found in
    neither place is not checked. For C(https://ers.nhs.uk) and C(https://am.nhsidentity.spineservices.nhs.uk)
    the first list the version reads with a matching entry decides, in the vendors' order
    C(LoopbackNetworkBlockedForUrls) (146+), C(LoopbackNetworkAllowedForUrls) (146+),
    C(LocalNetworkAccessBlockedForUrls), C(LocalNetworkAccessAllowedForUrls); none means every user is asked.
    C(LocalNetworkAccessRestrictionsTemporaryOptOut) = 1 turns the checks off. Where no list decides, each
    signed-in user's own answer kept in a browser profile is read (C(Local State), then each profile's
    C(Preferences), only its Local Network Access exceptions): a kept Block for an NHS site is
    C(LOCALHOST_ACCESS_USER_BLOCKED) (error), per user and browser profile; a profile that cannot be read is
    unknown (docs/browser-policy.md)."
  - "C(AUTH_ALLOWLIST_EXCLUDES_LOCALHOST) follows Chromium's allowlist rules: V(localhost), V(*localhost), V(*)
    and V(<local>) match localhost; V(.localhost) and V(*.localhost) (subdomains only), V(127.0.0.1) (another
    host) and V(localhost:43487) (one port) do not. Unset, it is not reported."
  - "Local intranet zone (fault 4) - C(INTRANET_AUTODETECT_ON), C(INTRANET_LOCAL_SITES_OFF),
    C(INTRANET_PROXY_BYPASS_OFF), C(INTRANET_UNC_OFF), C(INTRANET_LOGON_NOT_AUTOMATIC),
    C(LOCALHOST_MAPPED_OUTSIDE_INTRANET) - as Windows applies them: the machine policy
    (C(HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings)), the user's policy, then the
    user's own C(Internet Settings) values, or the machine's instead when C(Security_HKLM_only) is 1. The
    Logon action C(Zones\\1) C(1A00) falls back to the machine's value when the user has none."
  - "Defaults assumed for absent values (Windows on a fresh profile; not confirmed by a Microsoft page):
    C(AutoDetect) absent means automatic intranet detection is on, so C(INTRANET_AUTODETECT_ON) is reported;
    C(IntranetName), C(ProxyBypass) and C(UNCAsIntranet) absent are not 1, so their findings are reported;
    C(1A00) absent is C(0x20000) (automatic logon only in the Intranet zone, the Medium-low template
    Windows ships for the zone), so it is not."
  - "C(LOCALHOST_MAPPED_OUTSIDE_INTRANET) looks up C(localhost) and C(127.0.0.1) for C(http): a configured
    Site to Zone Assignment List (policy C(ZoneMapKey), the machine's before the user's) decides alone;
    otherwise C(ZoneMap\\Domains) and C(ZoneMap\\Ranges), the user's before the machine's. Zones 2, 3 and 4
    are reported."
  - "Scope of the browser and zone findings: a problem the machine's settings decide for every user is one
    finding with scope C(kind=machine); a problem a user's own hive decides, or one that does not hit every
    user, is one finding per user. A value that domain Group Policy sets has C(managed_by_gpo) true and the
    remedy names the GPO and the policy to change as the Group Policy editor shows it: a local change would
    be undone at the next refresh. Browser policy and zone mappings are read when the browser starts: a
    fix needs a browser restart."
  - C(IA_NOT_RUNNING) is reported per session where CM runs and C(IdentityAgent.exe) does not;
    C(IA_VERSION_RETIRED) compares the file version of C(IdentityAgent.exe) with O(ia_min_version).
  - Every interactive session (console and RDP, active or disconnected; a Remote Desktop or Citrix host
    has many) is checked for its own user, with that user's own registry hive (C(HKU\<SID>)), processes
    and session id. A host with nobody logged on reports no per-session fault.
    With O(include_offline_profiles), the hives of people who are not logged on are checked too.
  - "O(ers_report) takes the text of an e-RS configuration check report as a user or the service desk
    pastes it: RV(reported_fault) and RV(reported_port) say what it names, the findings that explain that
    fault come first, and C(CM_NOT_CONNECTED) and C(USER_NOT_LOGGED_IN) (which cannot be seen from
    outside the user's session) are raised only from such a report."
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
      - When the task does not give it, the host's variable C(nhs_cm_cm_required) is used if it is set (the
        playbooks' variable; reading it in the plugin spares every host's task a template).
    type: bool
    default: true
  cm_process_names:
    description:
      - File names of CM processes (for example V(NHSCredentialManagement.exe)), compared without
        case and with or without C(.exe).
      - A process whose file name is listed counts as CM in addition to those found by install
        folder. Set it when the Uninstall entry records no install folder.
      - When the task does not give it, the host's variable C(nhs_cm_cm_process_names) is used if it is set (the
        playbooks' variable; reading it in the plugin spares every host's task a template).
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
  include_offline_profiles:
    description:
      - Also check the people whose profile is on the host but who are not logged on (their findings
        have a user scope with C(session) null).
      - Each such hive (C(NTUSER.DAT) in the profile folder that C(ProfileList) records, never
        C(C:\Users\<name>)) is loaded under a unique C(HKU\nhs_cm_<random>) mount point, read through
        read-only handles and unloaded afterwards, also when reading fails. Service accounts and
        C(<SID>_Classes) hives are skipped. A hive that cannot be loaded or unloaded is named in
        RV(facts.users) with the reason.
      - Loading a hive needs the backup and restore privileges of a local administrator.
      - While a hive is loaded (well under a second per profile) its owner cannot log on with it; Windows
        would give someone who logs on at that moment a temporary profile. Prefer audit windows when
        few people log on.
      - When the task does not give it, the host's variable C(nhs_cm_include_offline_profiles) is used if it is set (the
        playbooks' variable; reading it in the plugin spares every host's task a template).
    type: bool
    default: false
  ers_report:
    description:
      - The text of an e-RS configuration check report, as a user copies it, in any layout, with or
        without the C(NHS Identity Hub/Credential Management (v1.4.2.0)) prefix and the port. Fault 4 may be
        described in people's words (C(Windows Security pop-up), C(keeps asking for my password)).
      - "It is parsed into RV(reported_fault) and RV(reported_port); findings of that fault are listed
        first, then the rest in catalogue order. When several faults are named, the configuration check's
        own messages win over a description of fault 4, and the furthest stage wins (3, then 2, then 1)."
      - Text that names none of the four faults is not an error; a warning names this option and the
        messages that are understood, and the findings stay in catalogue order.
      - At most 20000 characters.
      - When the task does not give it, the host's variable C(nhs_cm_ers_report) is used if it is set (the
        playbooks' variable; reading it in the plugin spares every host's task a template).
    type: str
  ia_paths:
    description:
      - Where C(IdentityAgent.exe) may be installed; each existing file counts as an installed Identity
        Agent and its file version is checked. The Identity Agent's folder is not published by NHS; the
        default is where estates have it.
    type: list
    elements: str
    default:
      - C:\Program Files (x86)\HSCIC\Identity Agent\IdentityAgent.exe
      - C:\Program Files\HSCIC\Identity Agent\IdentityAgent.exe
  ia_process_names:
    description:
      - File names of the Identity Agent's process, compared without case and with or without C(.exe).
    type: list
    elements: str
    default: [IdentityAgent.exe]
  ia_min_version:
    description:
      - The oldest Identity Agent version NHS still allows; older ones are reported as C(IA_VERSION_RETIRED)
        (NHS retired every version before 2.4.10.0).
    type: str
    default: 2.4.10.0
  smartcard_reader_required:
    description:
      - Whether a host with the Identity Agent must have a smartcard reader registered with Windows
        (C(HKLM\SOFTWARE\Microsoft\Cryptography\Calais\Readers)) to avoid C(NO_SMARTCARD_READER).
      - Set it to V(false) on Remote Desktop hosts whose readers are redirected from the client (such
        readers are not listed there).
    type: bool
    default: true
  return_facts:
    description:
      - Also return RV(facts), everything that was read, normalised (about 14 KB per host, nine tenths of the
        result).
      - Off by default because nothing else needs them - the findings carry their own evidence, and the report,
        the remediation roles and the playbooks of this collection read only RV(findings), RV(unknown),
        RV(product), RV(reported_fault) and RV(reported_port). Every host's result crosses from its worker to
        Ansible's main process, which cleans, copies and keeps it until the play ends, so the facts cost the
        controller CPU and memory on every host (docs/performance.md).
      - Turn it on to look at what was read, or for the report's C(include_facts).
    type: bool
    default: false
    version_added: 0.2.0
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same reads.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  platform:
    support: full
    platforms: windows
    description: Windows hosts over the winrm connection (psrp and ssh with the powershell shell are untested).
notes:
  - The module never changes the host; RV(changed) is always false.
  - The command line is under 3 KB (far below the 8,191-character limit); the runner itself travels on standard input.
seealso:
  - name: NHS Credential Management troubleshooting (e-RS)
    description: The e-RS page that lists the four configuration-check faults.
    link: "https://digital.nhs.uk/services/e-referral-service/document-library/\
      check-whether-your-computer-is-correctly-configured-for-e-rs/\
      troubleshoot-incorrect-configurations/nhs-credential-management"
author:
  - NHS CM remediation maintainers (!UNKNOWN)
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

- name: Explain the fault a user reported, checking people who are not logged on too
  nhs_cm.remediation.diagnose:
    ers_report: >-
      NHS Identity Hub/Credential Management (v1.4.2.0) is running on port 43485 but is not connected
    include_offline_profiles: true
  register: cm

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
        - "Machine scope is exactly V({kind: machine}); user scope is V({kind: user, user, sid, session}), and
          for C(LOCALHOST_ACCESS_USER_BLOCKED) also C(browser_profile), the browser profile's folder name (for
          example V(Default))."
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
          sessions V({session, user, processes}); probes V({url, status, error}).
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
product:
  description:
    - Which set-up the host has - V(cm3plus) (NHS Credential Management 3.x or later, with NHS Smartcard
      Connect), V(cm1) (CM before 3.x, with the legacy Identity Agent), V(identity_hub) (only the deprecated
      NHS Identity Hub, with the Identity Agent), V(none); null when it cannot be told
      (RV(facts.product) says why).
    - With several CM versions installed, the newest decides.
  returned: success
  type: str
  sample: cm1
reported_fault:
  description: The e-RS fault (1 to 4) that O(ers_report) names, or null (no report, or none of the four).
  returned: success
  type: int
  sample: 2
reported_port:
  description: The port that O(ers_report) names for fault 2 or 3, or null.
  returned: success
  type: int
  sample: 43485
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
  returned: success, when O(return_facts=true)
  type: dict
  contains:
    products:
      description:
        - NHS products found in the Uninstall keys of both registry views, by kind
          (V(cm), V(identity_hub), V(identity_agent), V(port_service), V(smartcard_connect)).
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
      description:
        - TCP listeners on O(prs_ports) and on the port O(ers_report) names, V({address, port, pid}); null when
          they could not be listed.
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
      description:
        - Interactive sessions with a user, V({id, user, sid}); null when they could not be listed. The runner
          finds them in the process list (the owner of each session's C(explorer.exe), else of a person's
          process in it), so whether a session is active or disconnected is not known.
      type: list
      elements: dict
    process_owners_error:
      description:
        - Why the owners of the processes could not be read (C(process_list) C(user_error)), or null. When set,
          every process's C(user) is null and means unknown, and an empty RV(facts.sessions) does not mean
          that nobody is logged on.
      type: str
    reboot:
      description:
        - V({pending, indicators, unreadable}); each indicator names the registry key or value that
          shows a pending reboot.
      type: dict
    os:
      description: V({product, version, build, computer_name, emulated}); null when it could not be read.
      type: dict
    product:
      description:
        - V({generation, name, version, reason}) - the generation of RV(product), the Uninstall entry that
          decided it and, when the generation cannot be told, why.
      type: dict
    smartcard_readers:
      description:
        - V({path, exists, readers}), the reader names under
          C(HKLM\SOFTWARE\Microsoft\Cryptography\Calais\Readers); null when it could not be read.
      type: dict
    ia_files:
      description: One V({path, exists, version}) per O(ia_paths); null when they could not be checked.
      type: list
      elements: dict
    browser_files:
      description:
        - One V({browser, path, exists, version}) per system-level install path of Chrome and Edge (the Local
          Network Access checks go by its file version); null when they could not be checked.
      type: list
      elements: dict
    policy_keys:
      description:
        - The machine registry keys the browser and zone checks read, by full key path; each a node
          V({exists, values, subkeys, error}) where C(values) maps a value name to V({type, data}),
          C(subkeys) maps a name to a node (null below the depth read) and C(error) is null or the reason
          the key could not be read (for example V(access_denied)).
      type: dict
    users:
      description:
        - One entry per interactive session's user and, with O(include_offline_profiles), one per other
          person's profile, each V({sid, user, session, source, hive, error, keys}).
        - C(source) is V(session) or V(offline_profile) (then C(session) is null); C(hive) is V(loaded)
          (the user's own C(HKU\<SID>)), V(mounted) (loaded from C(NTUSER.DAT) for this run and unloaded) or
          V(unavailable) (C(error) says why); C(keys) maps each key read (relative to the hive root) to a node
          as in RV(facts.policy_keys).
      type: list
      elements: dict
    gpo:
      description:
        - "Registry-based Group Policy in effect under the keys read, from Resultant Set of Policy:
          V({available, error, settings}), each setting V({scope, sid, key, name, gpo}) with C(scope)
          V(machine) or V(user), the full key path and the GPO's display name. C(available) is false (and
          C(error) says why) when RSoP could not be read, for example when RSoP logging is turned off."
      type: dict
    browser_site_settings:
      description:
        - "The Local Network Access site exceptions people keep in Chrome and Edge (the runner operation
          C(browser_site_settings)): one V({sid, browser, profile, path, exists, modified, error, exceptions})
          per person and browser for its C(Local State) (C(profile) null) and one per browser profile it lists
          for its C(Preferences), of which only C(profile.content_settings.exceptions.<type>) is read into
          C(exceptions). People not logged on only with O(include_offline_profiles). Null when the read failed."
      type: list
      elements: dict
    ers_report:
      description:
        - What O(ers_report) names, V({fault, port, version, message, matched}) (C(matched) is the part of the
          text that named the fault), or null.
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
