# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What ``nhs_cm.remediation.intranet_zone`` changes, decided from diagnose's facts and findings.

Pure functions, no I/O. ``plan_intranet_zone(facts, findings, options)`` returns a
``_policy_plan.PolicyPlan`` (docs/remediation.md):

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
- ``include_default_profile``: also the default profile's hive (``HKU\\.DEFAULT_PROFILE``, the
  template of the profiles of users who sign in later; the runner loads it for the request),
  with either scope. Diagnose does not read it, so it is judged on its own, for every id the role
  handles that the play does not skip (Chrome's and Edge's AuthServerAllowlist excepted: a
  machine or user policy): each value as for a user whose hive is that file and whom no machine
  setting decides, written where the user scope writes it (the hive's own user policy when it
  sets the value, else its own ``Internet Settings``). ``default_profile_reads`` are the reads,
  ``default_profile_user`` turns their results into a pseudo-user "Default profile".

Effective values and precedence are diagnose's (``_zones``, ``_browser_policy``).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import ID
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.zones import FLAG_CHECKS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import registry_node
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.browser_policy import (
    auth_allowlist,
    auth_covers_localhost,
    chromium_policy,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    BROWSER_NAMES,
    CHROMIUM_KEYS,
    INTERNET_SETTINGS,
    INTERNET_SETTINGS_POLICY,
    INTRANET_ZONE,
    INTRANET_ZONE_POLICY,
    LOGON_ACTION,
    READ_VALUE_NAMES,
    USER_READS,
    ZONEMAP,
    ZONEMAP_POLICY,
    Hive,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.zones import (
    LOGON_AUTOMATIC,
    OUTSIDE_INTRANET,
    ZoneValue,
    localhost_mappings,
    logon_action,
    zone_flag,
    zone_read_errors,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import RegWrite
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import (
    PolicyPlan,
    finding_ids,
    writable_users,
)

HANDLED = (ID.INTRANET_AUTODETECT_ON, ID.INTRANET_LOCAL_SITES_OFF, ID.INTRANET_PROXY_BYPASS_OFF, ID.INTRANET_UNC_OFF,
           ID.INTRANET_LOGON_NOT_AUTOMATIC, ID.LOCALHOST_MAPPED_OUTSIDE_INTRANET, ID.AUTH_ALLOWLIST_EXCLUDES_LOCALHOST)
#: 0x20000 automatic logon only in the Intranet zone; 0x00000 automatic logon with the current user name and password.
LOGON_ACTIONS = LOGON_AUTOMATIC
DEFAULTS: dict[str, t.Any] = {
    "scope": "machine",
    "logon_action": 0x20000,
    "include_default_profile": False,
    "override_gpo": False,
    "skip_ids": [],
}
#: The default profile's hive in registry operations: the runner loads ``<ProfileList Default>\\NTUSER.DAT``
#: for the request and maps this root to its mount point (docs/runner-protocol.md).
DEFAULT_PROFILE_SID = ".DEFAULT_PROFILE"
DEFAULT_PROFILE_LABEL = "Default profile"
_ZONE_ROOTS = (INTERNET_SETTINGS.casefold(), INTERNET_SETTINGS_POLICY.casefold())
#: (key below the hive root, depth) read in the default profile: diagnose's zone reads of a user's hive.
DEFAULT_PROFILE_PATHS: list[tuple[str, int]] = [(path, depth) for path, depth in USER_READS
                                                if path.casefold().startswith(_ZONE_ROOTS)]
#: Where the runner may write (its allow-list, simplified): machine policy and users' hives.
_WRITABLE = ("hklm\\software\\policies\\", "hku\\")


def _writable(path: str) -> bool:
    return path.casefold().startswith(_WRITABLE)


def _add(out: PolicyPlan, change: RegWrite) -> None:
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
            _add(out, RegWrite(Hive("machine").path(policy_key), name, "REG_DWORD", data))
            continue
        for user in writable_users(facts):
            setting = logon_action(facts, user) if name == LOGON_ACTION else zone_flag(facts, user, name)
            if setting.value == data or (name == LOGON_ACTION and setting.value in LOGON_AUTOMATIC):
                continue
            target = _user_target(setting, user, own_key, name, out)
            if target is not None:
                _add(out, RegWrite(target, name, "REG_DWORD", data))


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
            _add(out, RegWrite(reg.path, reg.name, reg.type if isinstance(data, str) else "REG_DWORD", data))


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
            _add(out, RegWrite(winner.path, winner.name, winner.type, appended(winner.data)))


def default_profile_reads() -> list[dict[str, t.Any]]:
    """The reg_read operations of the default profile's keys (sent with diagnose's reads)."""
    reads = []
    for path, depth in DEFAULT_PROFILE_PATHS:
        op: dict[str, t.Any] = {"op": "reg_read", "key": f"HKU\\{DEFAULT_PROFILE_SID}\\{path}"}
        if depth:
            op["depth"] = depth
        if READ_VALUE_NAMES.get(path) is not None:
            op["names"] = list(READ_VALUE_NAMES[path])
        reads.append(op)
    return reads


def default_profile_user(results: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """The default profile as a pseudo-user of the facts (``facts["default_profile"]``) from the
    results of ``default_profile_reads()``, in order. ``error``: why it could not be read (the
    hive could not be loaded: every read failed), else None."""
    if len(results) != len(DEFAULT_PROFILE_PATHS):
        raise ValueError(f"{len(results)} results for {len(DEFAULT_PROFILE_PATHS)} default profile reads")
    keys = {path: registry_node(result, with_message=True)
            for (path, _depth), result in zip(DEFAULT_PROFILE_PATHS, results, strict=True)}
    errors = [node["error"] for node in keys.values() if node["error"]]
    unreadable = bool(errors) and len(errors) == len(keys)
    return {"sid": DEFAULT_PROFILE_SID, "user": DEFAULT_PROFILE_LABEL, "session": None, "source": "default_profile",
            "hive": "unavailable" if unreadable else "loaded", "error": errors[0] if unreadable else None,
            "keys": {} if unreadable else keys}


def _default_profile(facts: dict[str, t.Any], options: dict[str, t.Any], out: PolicyPlan) -> None:
    """The default profile's own values, judged on the hive alone (no machine setting counts)."""
    profile = facts.get("default_profile")
    if not isinstance(profile, dict):
        return
    alone = {**facts, "policy_keys": {}}  # as for a user whom no machine setting decides
    problems = [profile["error"]] if profile.get("error") else zone_read_errors(alone, profile)
    if problems:
        out.notes.append(f"{DEFAULT_PROFILE_LABEL}: not changed, its hive cannot be read: {problems[0]}")
        return
    wanted = set(HANDLED) - set(options["skip_ids"])
    checks: list[tuple[str, str, str, int]] = [  # (id, value name, own key, value)
        (check_id, name, ZONEMAP, required) for check_id, (name, required, _label) in FLAG_CHECKS.items()]
    checks.append((ID.INTRANET_LOGON_NOT_AUTOMATIC, LOGON_ACTION, INTRANET_ZONE, options["logon_action"]))
    for check_id, name, own_key, data in checks:
        if check_id not in wanted:
            continue
        setting = logon_action(alone, profile) if name == LOGON_ACTION else zone_flag(alone, profile, name)
        if setting.value == data or (name == LOGON_ACTION and setting.value in LOGON_AUTOMATIC):
            continue
        target = _user_target(setting, profile, own_key, name, out)
        if target is not None:
            _add(out, RegWrite(target, name, "REG_DWORD", data))
    if ID.LOCALHOST_MAPPED_OUTSIDE_INTRANET in wanted:
        for mapping in localhost_mappings(alone, profile).effective:
            if mapping.zone in OUTSIDE_INTRANET:
                reg = mapping.value
                data: t.Any = "1" if reg.type in ("REG_SZ", "REG_EXPAND_SZ") else 1
                _add(out, RegWrite(reg.path, reg.name, reg.type if isinstance(data, str) else "REG_DWORD", data))


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
    if options.get("include_default_profile"):
        _default_profile(facts, options, out)
    return out
