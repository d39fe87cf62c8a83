# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a backup may restore: exactly the values and services the collection's roles can plan.

A backup is a file on the host (``%ProgramData%\\nhs_cm\\backups\\<id>.json``), and
``nhs_cm.remediation.restore`` writes what it says **as an administrator**. The runner's write
allow-list is a safety net against controller bugs, not a boundary (docs/remediation.md): so a
backup planted or edited on the host must not be able to make restore write anything a role
could not have written. This table is that boundary. Pure functions, no I/O.

``RULES`` is the one table, built from the planners' own constants (``cookies``,
``intranet_zone`` and what they read in ``_diagnose.models.policy``; ``cm_service``'s services):
for each registry key a role can write (relative to a hive root: the machine ``HKLM``, a
person's ``HKU\\<SID>``, the default profile ``HKU\\.DEFAULT_PROFILE``), which roots, which
value names, and what the backup's entry may say:

- a new entry of an allow list (``CookiesAllowedForUrls``, Firefox ``Cookies\\Allow``, the Local
  Network Access lists ``LocalNetworkAccessAllowedForUrls`` and ``LoopbackNetworkAllowedForUrls``) is only
  ever added under a free name, so its backup entry says ``existed: false`` (restore deletes it);
- an entry of a block list is only ever deleted when it blocks localhost, so its backup entry says
  ``existed: true`` and holds a string that blocks localhost;
- a ``ZoneMapKey`` (Site to Zone Assignment List) value is only ever one that maps ``localhost``
  or ``127.0.0.1``; ``ZoneMap\\Domains`` only ``localhost`` and ``127.0.0.1``; a
  ``ZoneMap\\Ranges\\<range>`` only when that range's ``:Range`` on the host matches 127.0.0.1
  (``host_problems``);
- services: ``SCardSvr``, and the service whose display name on the host (read now, never what
  the backup says) is ``NHS Port Service``.

``backup_problem(backup)`` names the first entry (or missing key) outside the table, or returns
None; ``host_problems`` does the checks that need what the host holds now. Restore refuses the
whole backup on the first one, before it writes anything.
``tests/unit/plugins/plugin_utils/_remediate/test_restorable.py``
checks that every change each planner can plan is in the table, and that every rule is used.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.zones import FLAG_CHECKS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.gpo import normalise_key
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.local_network import (
    LNA_ALLOWED,
    LOOPBACK_ALLOWED,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    CHROMIUM_KEYS,
    DOMAINS,
    FIREFOX_COOKIES_KEY,
    INTRANET_ZONE,
    INTRANET_ZONE_POLICY,
    LOGON_ACTION,
    MAPPED_HOSTS,
    RANGES,
    ZONEMAP,
    ZONEMAP_POLICY,
    ZONEMAPKEY_POLICY,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import (
    firefox_matches_localhost_some_port,
    matches_localhost_some_port,
    parse_firefox_origin,
    parse_pattern_pair,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.zones import (
    _entry_applies,
    ip_spec_matches,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import DEFAULT_OPTIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import SMARTCARD_SERVICE
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cookies import ALLOW_LIST
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import is_numeric_name
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import WRITE_REG_TYPES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import USER_SID_PATTERN

MACHINE, USER, DEFAULT_PROFILE = "machine", "user", "default_profile"
COOKIES_ROLE = "nhs_cm.remediation.third_party_cookies"
ZONE_ROLE = "nhs_cm.remediation.intranet_zone"
SERVICE_ROLE = "nhs_cm.remediation.cm_service"
BLOCK_LIST = "CookiesBlockedForUrls"
#: The NHS Port Service as the runner's allow-list names it (by display name), and SCardSvr.
PORT_SERVICE_DISPLAY_NAME = str(DEFAULT_OPTIONS["port_service_display_name"])
SERVICES = (SMARTCARD_SERVICE,)
_STRINGS = ("REG_SZ", "REG_EXPAND_SZ")

#: One element of a backup's ``entries`` (``kind`` ``reg`` or ``service``).
BackupEntry = dict[str, t.Any]


def _chromium_blocks_localhost(data: t.Any) -> bool:
    return isinstance(data, str) and matches_localhost_some_port(parse_pattern_pair(data).primary)


def _firefox_blocks_localhost(data: t.Any) -> bool:
    return isinstance(data, str) and firefox_matches_localhost_some_port(parse_firefox_origin(data))


def _maps_localhost(name: str) -> bool:
    return any(_entry_applies(name, host) for host in MAPPED_HOSTS)


@dataclass(frozen=True)
class RestoreRule:
    """Registry values a role can write under ``key`` (relative to the hive root, ``*`` standing
    for any one key name) in the hives of ``roots``.

    ``names``: the value names (case-insensitive); or ``name_kind`` ``list`` (a numbered list
    entry), ``any``, ``maps_localhost`` (a Site to Zone Assignment List entry for localhost or
    127.0.0.1). ``existed``: what the backup entry must say (None: either). ``data``: a test the
    data of an entry that existed must pass. ``range_check``: the key's ``:Range`` on the host
    must match 127.0.0.1.
    """

    role: str
    roots: frozenset[str]
    key: str
    names: tuple[str, ...] = ()
    name_kind: str = "exact"
    existed: bool | None = None
    data: t.Callable[[t.Any], bool] | None = None
    range_check: bool = False

    def matches_key(self, relative: str) -> bool:
        want, have = normalise_key(self.key).split("\\"), relative.split("\\")
        return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))

    def allows_name(self, name: str) -> bool:
        if self.name_kind == "list":
            return is_numeric_name(name)
        if self.name_kind == "any":
            return True
        if self.name_kind == "maps_localhost":
            return _maps_localhost(name)
        return name.casefold() in {n.casefold() for n in self.names}


def _rules() -> tuple[RestoreRule, ...]:
    both = frozenset({MACHINE, USER})
    every = frozenset({MACHINE, USER, DEFAULT_PROFILE})
    hives = frozenset({USER, DEFAULT_PROFILE})  # the machine's own Internet Settings are never written
    flags = tuple(name for name, _required, _label in FLAG_CHECKS.values())
    rules: list[RestoreRule] = []
    for key in CHROMIUM_KEYS.values():
        rules += [
            RestoreRule(COOKIES_ROLE, both, f"{key}\\{ALLOW_LIST}", name_kind="list", existed=False),
            RestoreRule(COOKIES_ROLE, both, key, ("BlockThirdPartyCookies",)),
            RestoreRule(COOKIES_ROLE, both, f"{key}\\{BLOCK_LIST}", name_kind="list", existed=True,
                        data=_chromium_blocks_localhost),
            RestoreRule(ZONE_ROLE, both, key, ("AuthServerAllowlist", "AuthServerWhitelist")),
            *(RestoreRule(COOKIES_ROLE, both, f"{key}\\{allow}", name_kind="list", existed=False)
              for allow in (LNA_ALLOWED, LOOPBACK_ALLOWED)),
        ]
    rules += [
        RestoreRule(COOKIES_ROLE, both, f"{FIREFOX_COOKIES_KEY}\\Allow", name_kind="list", existed=False),
        RestoreRule(COOKIES_ROLE, both, f"{FIREFOX_COOKIES_KEY}\\Block", name_kind="any", existed=True,
                    data=_firefox_blocks_localhost),
        RestoreRule(ZONE_ROLE, every, ZONEMAP_POLICY, flags),
        RestoreRule(ZONE_ROLE, hives, ZONEMAP, flags),
        RestoreRule(ZONE_ROLE, every, INTRANET_ZONE_POLICY, (LOGON_ACTION,)),
        RestoreRule(ZONE_ROLE, hives, INTRANET_ZONE, (LOGON_ACTION,)),
        RestoreRule(ZONE_ROLE, every, ZONEMAPKEY_POLICY, name_kind="maps_localhost"),
        *(RestoreRule(ZONE_ROLE, hives, f"{DOMAINS}\\{host}", ("http", "*")) for host in MAPPED_HOSTS),
        RestoreRule(ZONE_ROLE, hives, f"{RANGES}\\*", ("http", "*"), range_check=True),
    ]
    return tuple(rules)


RULES = _rules()


# ---------------------------------------------------------------------------------------------
# Checking a backup

def split_root(key: str) -> tuple[str | None, str, str]:
    """(root kind or None when no role writes there, the root as written, the key relative to
    it, case folded). ``HKU\\<SID>`` is a person's hive only (``USER_SID_PATTERN``)."""
    parts = normalise_key(key).split("\\")
    if parts[0] == "hklm":
        return MACHINE, "HKLM", "\\".join(parts[1:])
    if parts[0] == "hku" and len(parts) > 1:
        if parts[1] == ".default_profile":
            return DEFAULT_PROFILE, "HKU\\.DEFAULT_PROFILE", "\\".join(parts[2:])
        if re.fullmatch(USER_SID_PATTERN, parts[1], re.IGNORECASE):
            return USER, f"HKU\\{parts[1].upper()}", "\\".join(parts[2:])
    return None, parts[0].upper(), "\\".join(parts[1:])


def rule_for(entry: BackupEntry) -> RestoreRule | None:
    """The rule that allows this registry entry's key and value name, or None."""
    root, _shown, relative = split_root(str(entry.get("key") or ""))
    name = str(entry.get("name"))
    return next((rule for rule in RULES if root in rule.roots and rule.matches_key(relative)
                 and rule.allows_name(name)), None)


def describe_entry(entry: BackupEntry) -> str:
    if entry.get("kind") == "service":
        return f"service {entry.get('name')!r}"
    if entry.get("kind") == "reg":
        return f"{entry.get('key')}\\{entry.get('name')} (view {entry.get('view')})"
    return f"an entry of kind {entry.get('kind')!r}"


def _reg_problem(entry: BackupEntry) -> str | None:
    if not isinstance(entry.get("key"), str) or not isinstance(entry.get("name"), str):
        return "its key and name must be strings"
    if entry.get("view", "64") != "64":
        return "no role writes the 32-bit registry view"
    if not isinstance(entry.get("existed"), bool):
        return "'existed' must be true or false"
    if entry["existed"] and entry.get("type") not in WRITE_REG_TYPES:
        return f"type must be one of {', '.join(WRITE_REG_TYPES)}, not {entry.get('type')!r}"
    rule = rule_for(entry)
    if rule is None:
        return "no role of this collection writes that value"
    if rule.existed is not None and entry["existed"] is not rule.existed:
        return (f"{rule.role} only ever {'removes existing' if rule.existed else 'adds new'} entries there, so its "
                f"backup cannot say existed: {str(entry['existed']).lower()}")
    if rule.data is not None and not (entry.get("type") in _STRINGS and rule.data(entry.get("data"))):
        return f"{rule.role} only ever removes entries there that block localhost, not {entry.get('data')!r}"
    return None


def entry_problem(entry: BackupEntry) -> str | None:
    """Why this backup entry is not one a role of the collection could have written, or None."""
    if not isinstance(entry, dict):
        return "it is not an object"
    if entry.get("kind") == "service":
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            return "its name must be a string"
        return None  # which service it is, is checked against the host (host_problems)
    if entry.get("kind") == "reg":
        return _reg_problem(entry)
    return "a backup holds only 'reg' and 'service' entries"


def _missing_key_problem(item: t.Any, keys: list[str]) -> str | None:
    if not isinstance(item, dict) or not isinstance(item.get("key"), str):
        return "it is not {key, view}"
    if item.get("view", "64") != "64":
        return "no role writes the 32-bit registry view"
    root, _shown, relative = split_root(item["key"])
    folded = normalise_key(item["key"])
    if root is None or relative.count("\\") < 1:
        return "it is not below a key a role writes"
    if not any(key == folded or key.startswith(folded + "\\") for key in keys):
        return "it is not the key (or a parent of the key) of a value the backup restores"
    return None


def backup_problem(backup: t.Any) -> str | None:
    """Why ``backup`` cannot be restored (its first entry, or missing key, that no role of the
    collection could have written, named), or None when every one is in the table."""
    if not isinstance(backup, dict):
        return "the backup is not an object"
    entries, missing = backup.get("entries"), backup.get("missing_keys", [])
    if not isinstance(entries, list) or not isinstance(missing, list):
        return "the backup's entries and missing_keys must be lists"
    for index, entry in enumerate(entries):
        problem = entry_problem(entry)
        if problem:
            shown = describe_entry(entry) if isinstance(entry, dict) else repr(entry)[:80]
            return f"entries[{index}] {shown}: {problem}"
    keys = [normalise_key(e["key"]) for e in entries if e.get("kind") == "reg"]
    for index, item in enumerate(missing):
        problem = _missing_key_problem(item, keys)
        if problem:
            shown = item.get("key") if isinstance(item, dict) else repr(item)[:80]
            return f"missing_keys[{index}] {shown}: {problem}"
    return None


def host_problems(backup: dict[str, t.Any], services: list[dict[str, t.Any]],
                  nodes: dict[str, dict[str, t.Any]]) -> str | None:
    """The checks that need what the host holds now: each service entry is SCardSvr or the
    service whose display name on the host is the NHS Port Service's; each ``ZoneMap\\Ranges``
    entry's range on the host (``:Range`` of its key, ``nodes``: normalised key -> reg_read
    result) matches 127.0.0.1. The first problem, named, or None."""
    on_host = {str(s.get("name")).casefold(): s for s in services}
    for index, entry in enumerate(backup.get("entries") or []):
        if entry.get("kind") == "service":
            name = str(entry["name"])
            if name.casefold() in {s.casefold() for s in SERVICES}:
                continue
            display = (on_host.get(name.casefold()) or {}).get("display_name")
            if display != PORT_SERVICE_DISPLAY_NAME:
                return (f"entries[{index}] service {name!r}: {SERVICE_ROLE} only changes {', '.join(SERVICES)} and "
                        f"the service named '{PORT_SERVICE_DISPLAY_NAME}', and this service's display name on the "
                        f"host is {display!r}")
            continue
        rule = rule_for(entry) if entry.get("kind") == "reg" else None
        if rule is None or not rule.range_check:
            continue
        node = nodes.get(normalise_key(entry["key"])) or {}
        spec = {n.casefold(): v for n, v in (node.get("values") or {}).items()}.get(":range") or {}
        data = spec.get("data") if isinstance(spec, dict) else None
        if not (isinstance(data, str) and any(ip_spec_matches(data, host) for host in MAPPED_HOSTS
                                              if host[0].isdigit())):
            return (f"entries[{index}] {describe_entry(entry)}: {rule.role} only changes a ZoneMap range that maps "
                    f"127.0.0.1, and this key's :Range on the host is {data!r}")
    return None
