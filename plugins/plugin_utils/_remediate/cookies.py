# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What ``nhs_cm.remediation.third_party_cookies`` changes, decided from diagnose's facts and findings.

Pure functions, no I/O. ``plan_cookies(facts, findings, options)`` returns a ``PolicyPlan``: the
``_changes.RegWrite`` changes for the write path, the extra known-empty keys it plans values in,
and notes for people (docs/remediation.md):

- THIRD_PARTY_COOKIES_BLOCKED / COOKIES_BLOCKED_BY_DEFAULT (for a browser listed in
  ``browsers``): add ``[*.]localhost`` to the browser's ``CookiesAllowedForUrls`` in machine
  policy (``scope: machine``) or in each signed-in user's policy (``scope: user``), at the next
  free value name; nothing when an entry of that list already covers localhost on every port.
  Firefox (only when listed): ``http://localhost:<port>`` in ``Cookies\\Allow`` for each NHS
  Port Service port not yet listed; an origin covers one port (Firefox keys the permission by
  origin, port included), so CM's per-session port cannot be covered and a note says so.
- ``allow_all_third_party_cookies``: also ``BlockThirdPartyCookies`` = 0 where the list goes
  (for THIRD_PARTY_COOKIES_BLOCKED only).
- LOCALHOST_COOKIES_BLOCKED with ``remove_localhost_block``: delete the very entries of
  ``CookiesBlockedForUrls`` (Firefox: ``Cookies\\Block``) that block localhost, where they are;
  other entries keep their names. Without the option: a note, nothing changed.

Policy precedence is diagnose's (``_browser_policy``), not re-implemented here.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import ID
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.browser_policy import (
    chromium_cookies,
    chromium_policy,
    firefox_cookies,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    BROWSER_NAMES,
    CHROMIUM_KEYS,
    FIREFOX_COOKIES_KEY,
    Hive,
    subkey,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import (
    covers_localhost_any_port,
    firefox_localhost_port,
    parse_firefox_origin,
    parse_pattern_pair,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import PRS_PORTS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import RegWrite
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import (
    PolicyPlan,
    absent_subkey,
    all_names,
    chromium_list_node,
    finding_ids,
    next_free_name,
    string_entries,
    targets,
    writable_users,
)

HANDLED = (ID.THIRD_PARTY_COOKIES_BLOCKED, ID.COOKIES_BLOCKED_BY_DEFAULT, ID.LOCALHOST_COOKIES_BLOCKED)
CHROMIUM_ENTRY = "[*.]localhost"
#: Firefox: one origin per NHS Port Service port (an origin covers one port; CM's own port
#: differs per session and cannot be listed in advance).
FIREFOX_ORIGIN = "http://localhost:{port}"
ALLOW_LIST = "CookiesAllowedForUrls"
DEFAULTS: dict[str, t.Any] = {
    "browsers": ["chrome", "edge"],
    "scope": "machine",
    "allow_all_third_party_cookies": False,
    "remove_localhost_block": False,
    "override_gpo": False,
    "skip_ids": [],
}
_NEEDS_ALLOW = (ID.THIRD_PARTY_COOKIES_BLOCKED, ID.COOKIES_BLOCKED_BY_DEFAULT)


def chromium_entry_covers(data: str) -> bool:
    """An allow entry that covers http://localhost on every port, under every top-level site."""
    pair = parse_pattern_pair(data)
    return pair.valid and pair.secondary is None and covers_localhost_any_port(pair.primary.text)


def _chromium_allow(facts: dict[str, t.Any], hive: Hive, browser: str, out: PolicyPlan) -> None:
    found = chromium_list_node(facts, hive, browser, ALLOW_LIST, CHROMIUM_ENTRY, out.notes)
    if found is None:
        return
    node, where = found
    if any(chromium_entry_covers(data) for data in string_entries(node).values()):
        out.notes.append(f"{BROWSER_NAMES[browser]}: {where} already covers localhost; diagnose's finding comes "
                         "from another policy source")
        return
    out.changes.append(RegWrite(where, next_free_name(all_names(node)), "REG_SZ", CHROMIUM_ENTRY, list_key=True))


def _prs_ports(facts: dict[str, t.Any]) -> list[int]:
    """The NHS Port Service ports diagnose probed (the defaults when it probed none)."""
    ports = [probe.get("port") for probe in facts.get("prs_probes") or [] if isinstance(probe, dict)]
    return sorted({port for port in ports if isinstance(port, int)}) or list(PRS_PORTS)


def _firefox_allow(facts: dict[str, t.Any], hive: Hive, out: PolicyPlan) -> None:
    node, error = hive.node(facts, FIREFOX_COOKIES_KEY)
    if error:
        out.notes.append(f"Firefox: {error}; nothing added there")
        return
    allow = subkey(node, "Allow")
    entries = string_entries(allow)
    have = {firefox_localhost_port(parse_firefox_origin(data)) for data in entries.values()}
    missing = [port for port in _prs_ports(facts) if port not in have]
    where = f"{hive.path(FIREFOX_COOKIES_KEY)}\\Allow"
    out.notes.append("Firefox: an Allow origin covers one port, so CM's own per-session port cannot be listed; "
                     "THIRD_PARTY_COOKIES_BLOCKED stays for Firefox until its Cookies Behavior stops rejecting "
                     "third-party cookies (a decision for the trust, not made here)")
    if not missing:
        out.notes.append(f"Firefox: {where} already lists every NHS Port Service port")
        return
    out.extra_nodes += absent_subkey(facts, hive, FIREFOX_COOKIES_KEY, "Allow")
    names = all_names(allow)
    for port in missing:
        name = next_free_name(names)
        names.append(name)
        out.changes.append(RegWrite(where, name, "REG_SZ", FIREFOX_ORIGIN.format(port=port), list_key=True))


def _views(facts: dict[str, t.Any]) -> list[dict[str, t.Any] | None]:
    return [None, *writable_users(facts)]


def _block_removals(facts: dict[str, t.Any], browser: str) -> list[RegWrite]:
    """The block entries that block localhost, in every view diagnose judges, where they are."""
    found: dict[tuple[str, str], RegWrite] = {}
    for user in _views(facts):
        if browser == "firefox":
            items = [(e.value.path, e.value.name) for e in firefox_cookies(facts, user).blocking]
        else:
            rules = chromium_cookies(chromium_policy(facts, browser, user)).localhost.blocking
            items = [(r.entry.value.path, r.entry.value.name) for r in rules
                     if r.entry.value.path.casefold().endswith("\\cookiesblockedforurls")]
        for path, name in items:
            found.setdefault((path.casefold(), name.casefold()), RegWrite(path, name, None, list_key=True))
    return list(found.values())


def plan_cookies(facts: dict[str, t.Any], findings: list[dict[str, t.Any]], options: dict[str, t.Any]) -> PolicyPlan:
    """The value changes that fix the cookie findings for the listed browsers."""
    out = PolicyPlan()
    hives = targets(facts, options["scope"])
    if options["scope"] == "user" and not hives:
        out.notes.append("scope user: nobody is signed in, so no user's hive can be written")
    for browser in options["browsers"]:
        ids = finding_ids(findings, options["skip_ids"], browser)
        if ids & set(_NEEDS_ALLOW):
            for hive in hives:
                if browser == "firefox":
                    _firefox_allow(facts, hive, out)
                    continue
                _chromium_allow(facts, hive, browser, out)
                if options["allow_all_third_party_cookies"] and ID.THIRD_PARTY_COOKIES_BLOCKED in ids:
                    out.changes.append(RegWrite(hive.path(CHROMIUM_KEYS[browser]), "BlockThirdPartyCookies",
                                                "REG_DWORD", 0))
        if ID.LOCALHOST_COOKIES_BLOCKED in ids:
            if options["remove_localhost_block"]:
                out.changes += _block_removals(facts, browser)
            else:
                out.notes.append(f"{BROWSER_NAMES[browser]}: LOCALHOST_COOKIES_BLOCKED left alone; set "
                                 "remove_localhost_block to remove the localhost entries of its block list")
    return out
