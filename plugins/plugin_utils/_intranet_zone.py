# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What ``nhs_cm.remediation.intranet_zone`` changes, decided from diagnose's facts and findings.

Pure functions, no I/O. ``plan_intranet_zone(facts, findings, options)`` returns a
``_third_party_cookies.PolicyPlan`` (docs/remediation.md):

- INTRANET_AUTODETECT_ON / _LOCAL_SITES_OFF / _PROXY_BYPASS_OFF / _UNC_OFF: ZoneMap
  ``AutoDetect`` 0, ``IntranetName`` 1, ``ProxyBypass`` 1, ``UNCAsIntranet`` 1 (REG_DWORD);
  INTRANET_LOGON_NOT_AUTOMATIC: ``Zones\\1`` ``1A00`` = ``logon_action`` (0x20000, automatic
  logon only in the Intranet zone, by default). ``scope: machine`` writes the machine policy
  key (``HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings``), which
  wins over every user's settings; ``scope: user`` writes, for each signed-in user, the value
  that decides it for that user when it is in the user's hive, else the user's own Internet
  Settings (a value the machine decides is noted, not changed).
- LOCALHOST_MAPPED_OUTSIDE_INTRANET: the mapping that puts localhost (or 127.0.0.1) outside
  the intranet zone is set to zone 1 where it is, with its type; no other mapping is touched.
- AUTH_ALLOWLIST_EXCLUDES_LOCALHOST: ``,localhost`` appended to the AuthServerAllowlist (or the
  legacy AuthServerWhitelist) value that is in force, where it is.

Effective values and precedence are diagnose's (``_zones``, ``_browser_policy``).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._browser_policy import (
    auth_allowlist,
    auth_covers_localhost,
    chromium_policy,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._catalogue import ID
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._changes import RegValue
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._eval_zones import FLAG_CHECKS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._policy_facts import (
    BROWSER_NAMES,
    CHROMIUM_KEYS,
    INTRANET_ZONE,
    INTRANET_ZONE_POLICY,
    LOGON_ACTION,
    ZONEMAP,
    ZONEMAP_POLICY,
    Hive,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._policy_fix import finding_ids, writable_users
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._third_party_cookies import PolicyPlan
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._zones import (
    LOGON_AUTOMATIC,
    OUTSIDE_INTRANET,
    ZoneValue,
    localhost_mappings,
    logon_action,
    zone_flag,
)

HANDLED = (ID.INTRANET_AUTODETECT_ON, ID.INTRANET_LOCAL_SITES_OFF, ID.INTRANET_PROXY_BYPASS_OFF, ID.INTRANET_UNC_OFF,
           ID.INTRANET_LOGON_NOT_AUTOMATIC, ID.LOCALHOST_MAPPED_OUTSIDE_INTRANET, ID.AUTH_ALLOWLIST_EXCLUDES_LOCALHOST)
#: 0x20000 automatic logon only in the Intranet zone; 0x00000 automatic logon with the current user name and password.
LOGON_ACTIONS = LOGON_AUTOMATIC
DEFAULTS: dict[str, t.Any] = {
    "scope": "machine",
    "logon_action": 0x20000,
    "override_gpo": False,
    "skip_ids": [],
}
#: Where the runner may write (its allow-list, simplified): machine policy and users' hives.
_WRITABLE = ("hklm\\software\\policies\\", "hku\\")


def _writable(path: str) -> bool:
    return path.casefold().startswith(_WRITABLE)


def _add(out: PolicyPlan, change: RegValue) -> None:
    """Add a change once (several views may find the same value)."""
    if all(c.location() != change.location() for c in out.changes):
        out.changes.append(change)


def _user_target(setting: ZoneValue, user: dict[str, t.Any], own_key: str, label: str,
                 out: PolicyPlan) -> str | None:
    """Where a user's value goes: the value deciding it when it is in the user's hive, else the
    user's own key; None (noted) when the machine decides it."""
    root = f"HKU\\{user['sid']}\\".casefold()
    if setting.winner is None:
        return Hive("user", user).path(own_key)
    if setting.winner.path.casefold().startswith(root):
        return setting.winner.path
    out.notes.append(f"{label} for {user.get('user') or user['sid']} is decided by {setting.winner.path}: "
                     "use scope machine")
    return None


def _settings(facts: dict[str, t.Any], ids: set[str], options: dict[str, t.Any], out: PolicyPlan) -> None:
    wanted: list[tuple[str, str, str, int]] = [  # (id, value name, which key, value)
        (check_id, name, "zonemap", required) for check_id, (name, required, _label) in FLAG_CHECKS.items()]
    wanted.append((ID.INTRANET_LOGON_NOT_AUTOMATIC, LOGON_ACTION, "zone1", options["logon_action"]))
    keys = {"zonemap": (ZONEMAP_POLICY, ZONEMAP), "zone1": (INTRANET_ZONE_POLICY, INTRANET_ZONE)}
    for check_id, name, which, data in wanted:
        if check_id not in ids:
            continue
        policy_key, own_key = keys[which]
        if options["scope"] == "machine":
            _add(out, RegValue(Hive("machine").path(policy_key), name, "REG_DWORD", data))
            continue
        for user in writable_users(facts):
            setting = logon_action(facts, user) if name == LOGON_ACTION else zone_flag(facts, user, name)
            if setting.value == data or (name == LOGON_ACTION and setting.value in LOGON_AUTOMATIC):
                continue
            target = _user_target(setting, user, own_key, name, out)
            if target is not None:
                _add(out, RegValue(target, name, "REG_DWORD", data))


def _views(facts: dict[str, t.Any]) -> list[dict[str, t.Any] | None]:
    return [None, *writable_users(facts)]


def _mappings(facts: dict[str, t.Any], out: PolicyPlan) -> None:
    for user in _views(facts):
        for mapping in localhost_mappings(facts, user).effective:
            if mapping.zone not in OUTSIDE_INTRANET:
                continue
            reg = mapping.value
            if not _writable(reg.path):
                out.notes.append(f"{mapping.host} is mapped to zone {mapping.zone} in {reg.path} (value {reg.name}), "
                                 "which this collection does not write: map it to zone 1 by hand")
                continue
            data: t.Any = "1" if reg.type in ("REG_SZ", "REG_EXPAND_SZ") else 1
            _add(out, RegValue(reg.path, reg.name, reg.type if isinstance(data, str) else "REG_DWORD", data))


def appended(data: t.Any) -> str:
    """The allow-list string with ``localhost`` appended (commas kept as they are)."""
    text = str(data or "").strip().rstrip(",").rstrip()
    return f"{text},localhost" if text else "localhost"


def _auth(facts: dict[str, t.Any], findings: list[dict[str, t.Any]], skip: list[str], out: PolicyPlan) -> None:
    for browser in CHROMIUM_KEYS:
        if ID.AUTH_ALLOWLIST_EXCLUDES_LOCALHOST not in finding_ids(findings, skip, browser):
            continue
        for user in _views(facts):
            allowlist = auth_allowlist(chromium_policy(facts, browser, user))
            winner = allowlist.winner
            if not allowlist.is_set or winner is None or auth_covers_localhost(allowlist):
                continue
            if winner.type not in ("REG_SZ", "REG_EXPAND_SZ"):
                out.notes.append(f"{BROWSER_NAMES[browser]}: {winner.path}\\{winner.name} is {winner.type}; "
                                 "add localhost by hand")
                continue
            _add(out, RegValue(winner.path, winner.name, winner.type, appended(winner.data)))


def plan_intranet_zone(facts: dict[str, t.Any], findings: list[dict[str, t.Any]],
                       options: dict[str, t.Any]) -> PolicyPlan:
    """The value changes that fix the Local intranet zone findings (fault 4)."""
    out = PolicyPlan()
    ids = finding_ids(findings, options["skip_ids"])
    if options["scope"] == "user" and not writable_users(facts) and ids - {ID.AUTH_ALLOWLIST_EXCLUDES_LOCALHOST}:
        out.notes.append("scope user: nobody is signed in, so no user's hive can be written")
    _settings(facts, ids, options, out)
    if ID.LOCALHOST_MAPPED_OUTSIDE_INTRANET in ids:
        _mappings(facts, out)
    _auth(facts, findings, options["skip_ids"], out)
    return out
