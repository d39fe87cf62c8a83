# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Local intranet zone as Windows (urlmon) applies it to one user: pure functions over the
facts (see ``models.policy``).

Where each value comes from, highest first (reference nhs-cm-domain.md 5.1-5.6):
- ZoneMap flags ``AutoDetect``, ``IntranetName``, ``ProxyBypass``, ``UNCAsIntranet``: the
  machine policy (``HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet
  Settings\\ZoneMap``), the user's policy (same path in the user's hive), then the user's own
  ``...\\Internet Settings\\ZoneMap``, or, when ``Security_HKLM_only`` = 1 ("Security Zones: Use
  only machine settings"), the machine's ``HKLM\\...\\Internet Settings\\ZoneMap`` instead. Only
  REG_DWORD values count.
- ``Zones\\1`` ``1A00`` (Logon): machine policy, user policy, then the user's ``Zones\\1`` and,
  when the user has none, the machine's (only the machine's under ``Security_HKLM_only``).

Defaults assumed when a value is absent everywhere (Windows' behaviour on a fresh profile;
inference, see nhs-cm-domain.md 5.5 and open question 9):
- ``AutoDetect`` absent = automatic detection ON (the Sites dialog shows the box ticked), so
  ``INTRANET_AUTODETECT_ON`` is reported;
- ``IntranetName``, ``ProxyBypass``, ``UNCAsIntranet`` absent = not 1 (the dialog greys them
  out and leaves the decision to network detection), so their findings are reported;
- ``1A00`` absent = ``0x20000`` (automatic logon only in the Intranet zone), the value of the
  Medium-low template that Windows ships for the Local intranet zone.

Mappings of ``localhost`` and ``127.0.0.1`` for ``http`` (CM is called at http://localhost):
- when a Site to Zone Assignment List is configured (policy ``ZoneMapKey``, machine or user),
  it alone decides and the machine's list beats the user's; value name = host with an optional
  scheme (``*://``, ``http://``; ``https://`` entries do not apply to http), data = zone;
- otherwise ``ZoneMap\\Domains\\<host>`` (DWORD ``http`` first, then ``*``) and, for the IP
  literal, ``ZoneMap\\Ranges\\<Range>`` (``:Range`` = address, ``a-b`` or ``*`` octets, or
  ``first-last``), the user's hive first, then the machine's (only the machine's under
  ``Security_HKLM_only``). urlmon never resolves ``localhost`` to ``127.0.0.1``: each host is
  looked up on its own.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import ipaddress
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    DOMAINS,
    HKLM_ONLY,
    INTERNET_SETTINGS_POLICY,
    INTRANET_ZONE,
    INTRANET_ZONE_POLICY,
    LOGON_ACTION,
    MAPPED_HOSTS,
    RANGES,
    ZONEMAP,
    ZONEMAP_POLICY,
    ZONEMAPKEY_POLICY,
    Facts,
    Hive,
    RegRead,
    absent,
    exists,
    value,
)

#: Patterns compiled once, at import (in Ansible's main process, before the forks).
_IPV4_RANGE = re.compile(r"(\d+\.\d+\.\d+\.\d+)\s*-\s*(\d+\.\d+\.\d+\.\d+)")
_IP_LIKE = re.compile(r"[\d.*-]+")
_OCTET_RANGE = re.compile(r"\d+-\d+")
_SCHEME_PREFIX = re.compile(r"^([A-Za-z*][A-Za-z0-9+.*-]*)://")

#: Assumed when the value is absent everywhere (see the module doc).
FLAG_DEFAULTS: dict[str, int | None] = {"AutoDetect": 1, "IntranetName": None, "ProxyBypass": None,
                                        "UNCAsIntranet": None}
LOGON_DEFAULT = 0x20000
LOGON_AUTOMATIC = (0x00000, 0x20000)
LOGON_NAMES = {0x00000: "automatic logon with current user name and password",
               0x10000: "prompt for user name and password",
               0x20000: "automatic logon only in Intranet zone",
               0x30000: "anonymous logon"}
OUTSIDE_INTRANET = (2, 3, 4)
ZONE_NAMES = {0: "My Computer", 1: "Local intranet", 2: "Trusted sites", 3: "Internet", 4: "Restricted sites"}

_DEFAULT_WHY = {
    "AutoDetect": "absent: Windows then detects the intranet automatically (the Sites dialog shows it ticked)",
    "IntranetName": "absent: not 1 (left to automatic intranet detection)",
    "ProxyBypass": "absent: not 1 (left to automatic intranet detection)",
    "UNCAsIntranet": "absent: not 1 (left to automatic intranet detection)",
    LOGON_ACTION: "absent: 0x20000 assumed (Medium-low template of the Local intranet zone)",
}


@dataclass
class ZoneValue:
    """One effective setting: ``value`` as Windows uses it (defaults applied; None = absent and
    no numeric default), the registry value that set it (``winner``), the locations consulted
    (``evidence``, highest first) and whose settings decided it (``decided_by``)."""

    name: str
    value: int | None
    winner: RegRead | None
    evidence: list[dict[str, t.Any]]
    decided_by: str  # "machine" | "user"
    default_used: bool


def _hives(user: dict[str, t.Any] | None) -> tuple[Hive, Hive | None]:
    return Hive("machine"), (Hive("user", user) if user is not None else None)


def hklm_only(facts: Facts) -> RegRead | None:
    """The ``Security_HKLM_only`` value when it is 1 (machine settings only), else None."""
    machine = Hive("machine")
    node, _error = machine.node(facts, INTERNET_SETTINGS_POLICY)
    found = value(node, HKLM_ONLY)
    if found is None:
        return None
    name, item = found
    if item.get("type") == "REG_DWORD" and item.get("data") == 1:
        return RegRead(machine.path(INTERNET_SETTINGS_POLICY), name, item["type"], item["data"],
                       "machine policy")
    return None


def _chain(user: dict[str, t.Any] | None, policy_key: str, key: str, machine_only: bool,
           machine_fallback: bool) -> list[tuple[Hive, str, str]]:
    """(hive, key, source label) in lookup order; for the machine view (user None) the user
    locations are listed with an empty hive (they read as absent and show in no evidence unless
    Windows would take the default there)."""
    machine, person = _hives(user)
    person = person or Hive("user", None)
    chain = [(machine, policy_key, "machine policy"), (person, policy_key, "user policy")]
    if machine_only:
        chain.append((machine, key, "machine (Security_HKLM_only)"))
    else:
        chain.append((person, key, "user"))
        if machine_fallback:
            chain.append((machine, key, "machine"))
    return chain


def _lookup(facts: Facts, chain: list[tuple[Hive, str, str]], name: str, default: int | None,
            decided_default: str) -> ZoneValue:
    evidence: list[dict[str, t.Any]] = []
    for hive, key, label in chain:
        if hive.kind == "user" and hive.user is None:
            continue  # the machine view: as for a user whose hive sets nothing
        node = hive.node(facts, key)[0]
        found = value(node, name)
        if found is None:
            evidence.append(absent(hive.path(key), name, label))
            continue
        stored, item = found
        reg = RegRead(hive.path(key), stored, item.get("type"), item.get("data"), label)
        if item.get("type") != "REG_DWORD" or not isinstance(item.get("data"), int):
            evidence.append(reg.evidence(note="ignored: not a REG_DWORD"))
            continue
        evidence.append(reg.evidence())
        return ZoneValue(name, item["data"], reg, evidence, hive.kind, False)
    last_hive, last_key, last_label = chain[-1]
    if last_hive.kind == "user" and last_hive.user is None:
        evidence.append(absent(last_hive.path(last_key), name, last_label))
    evidence[-1]["assumed"] = default
    evidence[-1]["note"] = _DEFAULT_WHY.get(name, "absent")
    return ZoneValue(name, default, None, evidence, decided_default, True)


def zone_flag(facts: Facts, user: dict[str, t.Any] | None, name: str) -> ZoneValue:
    machine_only = hklm_only(facts) is not None
    chain = _chain(user, ZONEMAP_POLICY, ZONEMAP, machine_only, machine_fallback=False)
    return _lookup(facts, chain, name, FLAG_DEFAULTS[name], "machine" if machine_only else "user")


def logon_action(facts: Facts, user: dict[str, t.Any] | None) -> ZoneValue:
    machine_only = hklm_only(facts) is not None
    chain = _chain(user, INTRANET_ZONE_POLICY, INTRANET_ZONE, machine_only, machine_fallback=True)
    return _lookup(facts, chain, LOGON_ACTION, LOGON_DEFAULT, "machine" if machine_only else "user")


# ---------------------------------------------------------------------------------------------
# localhost / 127.0.0.1 mappings

@dataclass
class Mapping:
    host: str
    zone: int
    value: RegRead
    via: str  # "Site to Zone Assignment List" | "ZoneMap\\Domains" | "ZoneMap\\Ranges"
    decided_by: str


@dataclass
class Mappings:
    effective: list[Mapping]  # the mapping that applies to each host that has one
    shadowed: list[dict[str, t.Any]] = field(default_factory=list)  # mappings seen but not used


def _zone_number(item: dict[str, t.Any]) -> int | None:
    data = item.get("data")
    if item.get("type") == "REG_DWORD" and isinstance(data, int):
        return data
    if item.get("type") in ("REG_SZ", "REG_EXPAND_SZ") and isinstance(data, str) and data.strip().isdigit():
        return int(data.strip())
    return None


def _octet_matches(spec: str, octet: int) -> bool:
    spec = spec.strip()
    if spec == "*":
        return True
    if _OCTET_RANGE.fullmatch(spec):
        low, high = (int(part) for part in spec.split("-"))
        return low <= octet <= high
    return spec.isdigit() and int(spec) == octet


def ip_spec_matches(spec: str, address: str) -> bool:
    """An IE range spec (``127.0.0.1``, ``127.0.0.*``, ``127.0.0.1-20``, ``127.0.0.1-127.0.0.9``)
    against an IPv4 address."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    text = spec.strip()
    whole = _IPV4_RANGE.fullmatch(text)
    if whole:
        try:
            return ipaddress.IPv4Address(whole.group(1)) <= ip <= ipaddress.IPv4Address(whole.group(2))
        except ValueError:
            return False
    parts = text.split(".")
    octets = str(ip).split(".")
    return len(parts) == 4 and all(_octet_matches(part, int(octet)) for part, octet in zip(parts, octets, strict=True))


def zonemapkey_entry_host(name: str) -> tuple[str | None, str]:
    """(scheme or None, host spec) of a Site to Zone Assignment List value name."""
    text = name.strip()
    scheme = None
    match = _SCHEME_PREFIX.match(text)
    if match:
        scheme, text = match.group(1).lower(), text[match.end():]
    text = text.split("/", 1)[0]
    if not _IP_LIKE.fullmatch(text):
        text = text.split(":", 1)[0]
    return scheme, text.lower().rstrip(".")


def _entry_applies(name: str, host: str) -> bool:
    scheme, spec = zonemapkey_entry_host(name)
    if scheme not in (None, "*", "http"):
        return False
    if spec == host:
        return True
    return host[0].isdigit() and ip_spec_matches(spec, host)


def _zonemapkey(facts: Facts, hive: Hive | None) -> tuple[bool, list[RegRead]]:
    """(the list is configured in this hive, its values)."""
    if hive is None:
        return False, []
    node, _error = hive.node(facts, ZONEMAPKEY_POLICY)
    if not exists(node):
        return False, []
    label = f"{hive.kind} policy"
    values = [RegRead(hive.path(ZONEMAPKEY_POLICY), name, item.get("type"), item.get("data"), label)
              for name, item in sorted(((node or {}).get("values") or {}).items()) if isinstance(item, dict)]
    return bool(values), values


def _domain_mapping(facts: Facts, hive: Hive, host: str) -> Mapping | None:
    key = f"{DOMAINS}\\{host}"
    node, _error = hive.node(facts, key)
    for scheme in ("http", "*"):
        found = value(node, scheme)
        if found is None:
            continue
        stored, item = found
        zone = _zone_number(item) if item.get("type") == "REG_DWORD" else None
        if zone is None:
            continue
        reg = RegRead(hive.path(key), stored, item.get("type"), item.get("data"), hive.kind)
        return Mapping(host, zone, reg, "ZoneMap\\Domains", hive.kind)
    return None


def _range_mapping(facts: Facts, hive: Hive, host: str) -> Mapping | None:
    node, _error = hive.node(facts, RANGES)
    if not exists(node):
        return None
    for range_name, child in sorted(((node or {}).get("subkeys") or {}).items()):
        if not isinstance(child, dict):
            continue
        spec = value(child, ":Range")
        if spec is None or not isinstance(spec[1].get("data"), str) or not ip_spec_matches(spec[1]["data"], host):
            continue
        for scheme in ("http", "*"):
            found = value(child, scheme)
            if found is None or found[1].get("type") != "REG_DWORD" or not isinstance(found[1].get("data"), int):
                continue
            path = f"{hive.path(RANGES)}\\{range_name}"
            reg = RegRead(path, found[0], found[1]["type"], found[1]["data"], hive.kind)
            return Mapping(host, found[1]["data"], reg, f"ZoneMap\\Ranges ({spec[1]['data']})", hive.kind)
    return None


def _site_list_mapping(values: list[RegRead], host: str, scope: str) -> Mapping | None:
    for reg in values:
        zone = _zone_number({"type": reg.type, "data": reg.data})
        if zone is not None and _entry_applies(reg.name, host):
            return Mapping(host, zone, reg, "Site to Zone Assignment List", scope)
    return None


def localhost_mappings(facts: Facts, user: dict[str, t.Any] | None) -> Mappings:
    machine, person = _hives(user)
    machine_list, machine_values = _zonemapkey(facts, machine)
    user_list, user_values = _zonemapkey(facts, person)
    result = Mappings([])
    if machine_list or user_list:
        for host in MAPPED_HOSTS:
            mapping = _site_list_mapping(machine_values, host, "machine") \
                or _site_list_mapping(user_values, host, "user")
            if mapping is not None:
                result.effective.append(mapping)
        for hive in ([person] if person else []) + [machine]:
            for host in MAPPED_HOSTS:
                ignored = _domain_mapping(facts, hive, host) or _range_mapping(facts, hive, host)
                if ignored is not None:
                    result.shadowed.append(ignored.value.evidence(
                        zone=ignored.zone, note="ignored: a Site to Zone Assignment List is configured"))
        return result
    machine_only = hklm_only(facts) is not None
    order = [machine] if machine_only or person is None else [person, machine]
    for host in MAPPED_HOSTS:
        found = [m for hive in order for m in (_domain_mapping(facts, hive, host), _range_mapping(facts, hive, host))
                 if m is not None]
        if found:
            result.effective.append(found[0])
            result.shadowed.extend(m.value.evidence(zone=m.zone, note=f"ignored: {found[0].value.path} decides")
                                   for m in found[1:])
    return result


def zone_read_errors(facts: Facts, user: dict[str, t.Any] | None) -> list[str]:
    """Why a zone check cannot be made for this view (unreadable keys), or []."""
    keys = [ZONEMAP_POLICY, ZONEMAPKEY_POLICY, INTRANET_ZONE_POLICY, ZONEMAP, INTRANET_ZONE, RANGES,
            *(f"{DOMAINS}\\{host}" for host in MAPPED_HOSTS)]
    hives: list[Hive] = [Hive("user", user)] if user is not None else [Hive("machine")]
    errors = []
    if user is None:
        errors += [error for error in [Hive("machine").node(facts, INTERNET_SETTINGS_POLICY)[1]] if error]
    for hive in hives:
        errors += [error for key in keys if (error := hive.node(facts, key)[1])]
    return errors


def logon_text(action: int | None) -> str:
    if action is None:
        return "not set"
    return f"0x{action:05X} ({LOGON_NAMES.get(action, 'not a Logon option')})"
