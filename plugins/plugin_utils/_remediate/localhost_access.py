# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What ``nhs_cm.remediation.third_party_cookies`` changes for Local Network Access, decided from
diagnose's facts and findings (the ``localhost_access`` part of the role, its own toggle).

Pure functions, no I/O. ``plan_localhost_access(facts, findings, options)`` returns a
``PolicyPlan`` (docs/remediation.md, docs/browser-policy.md):

- LOCALHOST_ACCESS_NOT_ALLOWED, LOCALHOST_ACCESS_POLICY_NOT_HONOURED, LOCALHOST_ACCESS_USER_BLOCKED
  (a user's Block kept in a browser profile, which the allow list overrides; Chrome or Edge listed in
  ``browsers``): add each of ``localhost_access_origins`` (default: the NHS sites, e-RS and CIS2
  Authentication) that the list does not hold yet to the allow list the installed version reads
  (``_local_network.allow_policy_for``: ``LoopbackNetworkAllowedForUrls`` from 146, else
  ``LocalNetworkAccessAllowedForUrls``), in machine policy or each signed-in user's, at the next
  free value names; every existing entry keeps its name.
- LOCALHOST_ACCESS_BLOCKED: the same where the allow list outranks every blocking entry (a
  ``LocalNetworkAccessBlockedForUrls`` entry, version 146 or later); a blocking entry nothing
  outranks (``LoopbackNetworkBlockedForUrls``, or any block before 146) is left alone with a note:
  removing it is the trust's decision.

A user's own answer kept in the browser profile is never touched. Group Policy (a list key a GPO
writes is reported, not written, unless ``override_gpo``), idempotence, diff and backup are the
write path's (``_changes.plan``), as for the cookie fixes.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import ID
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.browser_policy import chromium_policy
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.local_network import (
    LNA_BLOCKED,
    LOOPBACK_ALLOWED,
    SITES,
    allow_policy_for,
    browser_version,
    loopback_access,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    BROWSER_NAMES,
    CHROMIUM_KEYS,
    Hive,
    exists,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import parse_pattern_pair
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import RegWrite
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import (
    PolicyPlan,
    all_names,
    chromium_list_node,
    finding_ids,
    next_free_name,
    string_entries,
    targets,
    writable_users,
)

HANDLED = (ID.LOCALHOST_ACCESS_BLOCKED, ID.LOCALHOST_ACCESS_NOT_ALLOWED, ID.LOCALHOST_ACCESS_POLICY_NOT_HONOURED,
           ID.LOCALHOST_ACCESS_USER_BLOCKED)
DEFAULTS: dict[str, t.Any] = {
    "localhost_access": True,
    "localhost_access_origins": list(SITES),
}


def origin_errors(origins: list[str]) -> list[str]:
    """Why configured entries cannot go into a Local Network Access list (empty: they can)."""
    errors = []
    for origin in origins:
        pair = parse_pattern_pair(origin.strip())
        if not origin.strip() or not pair.valid or pair.secondary is not None or "," in origin:
            errors.append(f"{origin!r} is not one URL pattern ({pair.error or 'a single pattern is needed'})")
        elif pair.primary.matches_all_hosts:
            errors.append(f"{origin!r} matches every site: it would let any site reach localhost")
    return errors


def _blocks_left(facts: dict[str, t.Any], browser: str, major: int) -> list[str]:
    """The blocking entries (in any view diagnose judges) that the allow list does not outrank."""
    target = allow_policy_for(browser, major)
    left: dict[tuple[str, str], str] = {}
    for user in [None, *writable_users(facts)]:
        access = loopback_access(chromium_policy(facts, browser, user), major)
        for decision in access.with_setting("block"):
            match = decision.decider
            if match is None or (match.policy == LNA_BLOCKED and target == LOOPBACK_ALLOWED):
                continue
            reg = match.entry.value
            left.setdefault((reg.path.casefold(), reg.name.casefold()),
                            f"'{match.entry.pair.text}' ({reg.path} value {reg.name})")
    return list(left.values())


def _add_origins(facts: dict[str, t.Any], hive: Hive, browser: str, target: str, origins: list[str],
                 out: PolicyPlan) -> None:
    name = BROWSER_NAMES[browser]
    key = CHROMIUM_KEYS[browser]
    found = chromium_list_node(facts, hive, browser, target, ", ".join(origins), out.notes)
    if found is None:
        return
    node, where = found
    have = {data.strip().casefold() for data in string_entries(node).values()}
    names = all_names(node)
    for origin in origins:
        if origin.strip().casefold() in have:
            continue
        value_name = next_free_name(names)
        names.append(value_name)
        have.add(origin.strip().casefold())
        out.changes.append(RegWrite(where, value_name, "REG_SZ", origin.strip(), list_key=True))
    if hive.kind == "user":
        relative = f"{key}\\{target}"
        machine, _error = Hive("machine").node(facts, relative)
        if exists(machine):
            out.notes.append(f"{name}: {Hive('machine').path(relative)} exists and hides every user's {target} "
                             "(lists are never merged): use scope machine")


def plan_localhost_access(facts: dict[str, t.Any], findings: list[dict[str, t.Any]],
                          options: dict[str, t.Any]) -> PolicyPlan:
    """The value changes that fix the Local Network Access findings for the listed browsers."""
    out = PolicyPlan()
    origins = [origin.strip() for origin in options["localhost_access_origins"]]
    hives = targets(facts, options["scope"])
    for browser in options["browsers"]:
        ids = finding_ids(findings, options["skip_ids"], browser) & set(HANDLED)
        if not ids or browser not in CHROMIUM_KEYS:
            continue
        name = BROWSER_NAMES[browser]
        if not options["localhost_access"]:
            out.notes.append(f"{name}: {', '.join(sorted(ids))} left alone (localhost_access is off)")
            continue
        version = browser_version(facts, browser)
        if version.major is None:
            out.notes.append(f"{name}: its version could not be read ({version.error}); nothing added")
            continue
        target = allow_policy_for(browser, version.major)
        left = _blocks_left(facts, browser, version.major) if ID.LOCALHOST_ACCESS_BLOCKED in ids else []
        if left:
            out.notes.append(f"{name} {version.major}: LOCALHOST_ACCESS_BLOCKED left alone for {', '.join(left)}: no "
                             f"allow list {name} {version.major} reads outranks it; removing it is the trust's "
                             "decision")
        if ids == {ID.LOCALHOST_ACCESS_BLOCKED} and left and not _outranked_blocks(facts, browser, version.major):
            continue
        if options["scope"] == "user" and not hives:
            out.notes.append(f"{name}: scope user: nobody is signed in, so no user's hive can be written")
        for hive in hives:
            _add_origins(facts, hive, browser, target, origins, out)
    out.notes = list(dict.fromkeys(out.notes))
    return out


def _outranked_blocks(facts: dict[str, t.Any], browser: str, major: int) -> bool:
    """Whether some blocking entry is one the allow list outranks (so adding to it helps)."""
    if allow_policy_for(browser, major) != LOOPBACK_ALLOWED:
        return False
    for user in [None, *writable_users(facts)]:
        access = loopback_access(chromium_policy(facts, browser, user), major)
        if any(d.decider is not None and d.decider.policy == LNA_BLOCKED for d in access.with_setting("block")):
            return True
    return False
