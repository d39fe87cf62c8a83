# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/third_party_cookies.py; this file
# only carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: third_party_cookies
short_description: Let Chrome, Edge and Firefox keep cookies for, and reach, NHS Credential Management on localhost
version_added: 0.2.0
description:
  - Reads the host the way M(nhs_cm.remediation.diagnose) does (one runner call) and fixes the cookie
    and Local Network Access findings of fault 1 with the collection's write path (backup on the host,
    all or nothing, check mode, diff).
  - C(THIRD_PARTY_COOKIES_BLOCKED) and C(COOKIES_BLOCKED_BY_DEFAULT) add C([*.]localhost) to the browser's
    C(CookiesAllowedForUrls) list policy, in machine policy (O(scope=machine)) or in each signed-in user's
    policy (O(scope=user)), at the next free value name (the greatest numeric name plus one). Every existing
    entry keeps its name and data; nothing is added when an entry of that list already covers localhost
    on every port. For Firefox (only when listed in O(browsers)), C(http://localhost:<port>) is added to
    C(Cookies\Allow) for each NHS Port Service port not yet listed; a Firefox origin covers one port,
    so CM's per-session port cannot be listed and Firefox stays reported while its Cookies C(Behavior)
    rejects third-party cookies.
  - C(BlockThirdPartyCookies) is set to 0 (allow all third-party cookies, NHS's other option) only with
    O(allow_all_third_party_cookies=true).
  - C(LOCALHOST_COOKIES_BLOCKED) removes the entries of C(CookiesBlockedForUrls) (Firefox C(Cookies\Block))
    that block localhost, where they are, only with O(remove_localhost_block=true); other entries keep
    their names. Nothing else is touched.
  - "Local Network Access (O(localhost_access), on by default): C(LOCALHOST_ACCESS_NOT_ALLOWED),
    C(LOCALHOST_ACCESS_POLICY_NOT_HONOURED) and C(LOCALHOST_ACCESS_USER_BLOCKED) (a user's Block kept in a browser
    profile, which the allow list overrides) (Chrome or Edge listed in O(browsers)) add each entry of
    O(localhost_access_origins) that the list does not hold yet to the allow list the installed version reads:
    C(LoopbackNetworkAllowedForUrls) from version 146, else C(LocalNetworkAccessAllowedForUrls), where
    O(scope) says, at the next free value names; every existing entry keeps its name and data.
    C(LOCALHOST_ACCESS_BLOCKED) gets the same where that list outranks the blocking entry (a
    C(LocalNetworkAccessBlockedForUrls) entry, version 146 or later); an entry nothing outranks
    (C(LoopbackNetworkBlockedForUrls), or any block before 146) is left alone with a note. A user's own
    answer stored in the browser profile is never changed (docs/browser-policy.md)."
  - A value that domain Group Policy sets is left alone and listed in RV(gpo_skipped) with the GPO setting
    to change; with O(override_gpo=true) it is written and a warning says the next Group Policy refresh
    will revert it. A GPO that sets any entry of a list owns the whole list.
  - Before any change it saves the previous state of every value it touches (including "did not exist")
    on the host and returns RV(backup_id); C(playbooks/rollback.yml -e backup_id=<id>) restores it exactly.
  - Policy precedence is diagnose's. A list written in machine policy hides a user's list of the same
    policy (Chromium takes a list whole from one source); browsers read policy when they start.
options:
  browsers:
    description: The browsers to fix.
    type: list
    elements: str
    choices: [chrome, edge, firefox]
    default: [chrome, edge]
  scope:
    description:
      - C(machine) writes machine policy (C(HKLM\SOFTWARE\Policies\...)), for every user.
      - C(user) writes the policy of each signed-in user (C(HKU\<sid>\Software\Policies\...)); users who are
        not signed in are not changed.
    type: str
    choices: [machine, user]
    default: machine
  allow_all_third_party_cookies:
    description: Also set C(BlockThirdPartyCookies) to 0 where C(THIRD_PARTY_COOKIES_BLOCKED) is reported.
    type: bool
    default: false
  remove_localhost_block:
    description: Remove the entries of the block list that block localhost (C(LOCALHOST_COOKIES_BLOCKED)).
    type: bool
    default: false
  localhost_access:
    description:
      - Fix the Local Network Access findings C(LOCALHOST_ACCESS_BLOCKED), C(LOCALHOST_ACCESS_NOT_ALLOWED),
        C(LOCALHOST_ACCESS_POLICY_NOT_HONOURED) and C(LOCALHOST_ACCESS_USER_BLOCKED) (Chrome and Edge) by adding
        O(localhost_access_origins) to the allow list the installed browser version reads.
    type: bool
    default: true
  localhost_access_origins:
    description:
      - The entries added to the Local Network Access allow list, URL patterns of the sites whose pages call
        NHS Credential Management (Chromium's pattern syntax; a pattern that matches every site is refused).
      - The default is e-RS and CIS2 Authentication, the sites diagnose checks (an inference; docs/browser-policy.md).
        Other entries are written as given; diagnose still checks those two sites afterwards.
    type: list
    elements: str
    default: [https://ers.nhs.uk, https://am.nhsidentity.spineservices.nhs.uk]
notes:
  - Runner calls per host - one to read, one to back up, write and read back (with diagnose's reads, for
    RV(still_reported)), and one more only to put values back after a failure.
extends_documentation_fragment:
  - nhs_cm.remediation.write_path
  - nhs_cm.remediation.write_path.policy_options
author:
  - NHS CM remediation maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Add [*.]localhost to Chrome's and Edge's CookiesAllowedForUrls in machine policy
  nhs_cm.remediation.third_party_cookies:
  register: cookies

- name: Cookies only, without the Local Network Access allow entries
  nhs_cm.remediation.third_party_cookies:
    localhost_access: false

- name: Per signed-in user, Edge only, and remove a localhost block entry
  nhs_cm.remediation.third_party_cookies:
    browsers: [edge]
    scope: user
    remove_localhost_block: true
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
    - "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\CookiesAllowedForUrls\\2: (absent) -> ...\\2: REG_SZ '[*.]localhost'"
backup_id:
  description: The backup saved on the host before the changes, or null when nothing was changed.
  returned: always
  type: str
  sample: 20251125T101500Z-third_party_cookies-1a2b3c4d
backup_path:
  description: The backup file on the host.
  returned: when a backup was saved
  type: str
findings_before:
  description: The cookie and Local Network Access ids diagnose reported before.
  returned: always
  type: list
  elements: str
still_reported:
  description:
    - The cookie and Local Network Access ids diagnose reports afterwards (in check mode or when nothing
      changed, RV(findings_before)).
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
