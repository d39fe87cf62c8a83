"""The Local intranet zone as urlmon applies it: sources, Security_HKLM_only, defaults, mappings."""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import IS, IS_POLICY, SID_A, USER_A, dword, facts_for, good_zones, sz, user_key

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.zones import (
    hklm_only,
    ip_spec_matches,
    localhost_mappings,
    logon_action,
    zone_flag,
    zone_read_errors,
    zonemapkey_entry_host,
)

M_ZONEMAP = f"HKLM\\{IS}\\ZoneMap"
M_POLICY_ZONEMAP = f"HKLM\\{IS_POLICY}\\ZoneMap"
U_ZONEMAP = user_key(SID_A, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap")
U_POLICY_ZONEMAP = user_key(SID_A, "Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap")
M_ZONE1 = f"HKLM\\{IS}\\Zones\\1"
U_ZONE1 = user_key(SID_A, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1")
M_POLICY_ZONE1 = f"HKLM\\{IS_POLICY}\\Zones\\1"
HKLM_ONLY = {f"HKLM\\{IS_POLICY}": {"Security_HKLM_only": dword(1)}}


def facts(registry: dict[str, t.Any]) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    built = facts_for(registry, [USER_A])
    return built, built["users"][0]


def flag(registry: dict[str, t.Any], name: str, user: bool = True) -> t.Any:
    built, person = facts(registry)
    return zone_flag(built, person if user else None, name)


@pytest.mark.parametrize(("registry", "value", "source", "decided_by"), [
    (good_zones(SID_A), 0, "user", "user"),
    ({**good_zones(SID_A), M_POLICY_ZONEMAP: {"AutoDetect": dword(1)}}, 1, "machine policy", "machine"),
    ({**good_zones(SID_A), U_POLICY_ZONEMAP: {"AutoDetect": dword(1)}}, 1, "user policy", "user"),
    ({M_POLICY_ZONEMAP: {"AutoDetect": dword(0)}, U_POLICY_ZONEMAP: {"AutoDetect": dword(1)}}, 0, "machine policy",
     "machine"),
    ({M_ZONEMAP: {"AutoDetect": dword(0)}}, 1, None, "user"),  # HKLM's ZoneMap is not read without HKLM_only
    ({**HKLM_ONLY, **good_zones(SID_A), M_ZONEMAP: {"AutoDetect": dword(1)}}, 1, "machine (Security_HKLM_only)",
     "machine"),
    ({**HKLM_ONLY, **good_zones(SID_A)}, 1, None, "machine"),
    ({}, 1, None, "user"),
    ({U_ZONEMAP: {"AutoDetect": sz("0")}}, 1, None, "user"),  # only REG_DWORD counts
])
def test_autodetect_sources(registry: dict[str, t.Any], value: int, source: str | None, decided_by: str) -> None:
    setting = flag(registry, "AutoDetect")
    assert setting.value == value
    assert (setting.winner.source if setting.winner else None) == source
    assert setting.decided_by == decided_by
    assert setting.default_used is (source is None)


@pytest.mark.parametrize("name", ["IntranetName", "ProxyBypass", "UNCAsIntranet"])
def test_include_flags_default_to_not_set(name: str) -> None:
    setting = flag({}, name)
    assert setting.value is None and setting.default_used
    assert setting.evidence[-1] == {"path": U_ZONEMAP, "name": name, "exists": False, "source": "user",
                                    "assumed": None, "note": "absent: not 1 (left to automatic intranet detection)"}
    assert flag(good_zones(SID_A), name).value == 1


def test_the_evidence_lists_each_place_looked_at_in_order() -> None:
    setting = flag(good_zones(SID_A), "IntranetName")
    assert [item["path"] for item in setting.evidence] == [M_POLICY_ZONEMAP, U_POLICY_ZONEMAP, U_ZONEMAP]
    assert setting.evidence[-1]["data"] == 1 and setting.evidence[-1]["type"] == "REG_DWORD"


def test_security_hklm_only_needs_a_dword_1() -> None:
    assert hklm_only(facts(HKLM_ONLY)[0]) is not None
    assert hklm_only(facts({f"HKLM\\{IS_POLICY}": {"Security_HKLM_only": dword(0)}})[0]) is None
    assert hklm_only(facts({f"HKLM\\{IS_POLICY}": {"Security_HKLM_only": sz("1")}})[0]) is None


@pytest.mark.parametrize(("registry", "value", "decided_by"), [
    ({}, 0x20000, "user"),
    ({U_ZONE1: {"1A00": dword(0x10000)}}, 0x10000, "user"),
    ({M_ZONE1: {"1A00": dword(0x30000)}}, 0x30000, "machine"),  # the user has none: the machine's applies
    ({M_ZONE1: {"1A00": dword(0x30000)}, U_ZONE1: {"1A00": dword(0)}}, 0, "user"),
    ({M_POLICY_ZONE1: {"1A00": dword(0x10000)}, U_ZONE1: {"1A00": dword(0)}}, 0x10000, "machine"),
    ({**HKLM_ONLY, U_ZONE1: {"1A00": dword(0x10000)}}, 0x20000, "machine"),
    ({**HKLM_ONLY, M_ZONE1: {"1A00": dword(0x10000)}}, 0x10000, "machine"),
])
def test_logon_action(registry: dict[str, t.Any], value: int, decided_by: str) -> None:
    built, person = facts(registry)
    setting = logon_action(built, person)
    assert (setting.value, setting.decided_by) == (value, decided_by)


# -- mappings ----------------------------------------------------------------------------------

U_DOMAINS = user_key(SID_A, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap\\Domains")
U_RANGES = user_key(SID_A, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap\\Ranges")
M_DOMAINS = f"{M_ZONEMAP}\\Domains"
M_ZONEMAPKEY = f"HKLM\\{IS_POLICY}\\ZoneMapKey"
U_ZONEMAPKEY = user_key(SID_A, "Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMapKey")


def mapped(registry: dict[str, t.Any]) -> dict[str, tuple[int, str]]:
    built, person = facts(registry)
    return {m.host: (m.zone, m.decided_by) for m in localhost_mappings(built, person).effective}


@pytest.mark.parametrize(("registry", "expected"), [
    ({}, {}),
    ({f"{U_DOMAINS}\\localhost": {"http": dword(3)}}, {"localhost": (3, "user")}),
    ({f"{U_DOMAINS}\\LocalHost": {"*": dword(4)}}, {"localhost": (4, "user")}),
    ({f"{U_DOMAINS}\\localhost": {"https": dword(3)}}, {}),
    ({f"{U_DOMAINS}\\localhost": {"http": dword(1), "*": dword(3)}}, {"localhost": (1, "user")}),
    ({f"{U_DOMAINS}\\localhost": {"http": sz("3")}}, {}),  # only DWORD data counts
    ({f"{M_DOMAINS}\\localhost": {"http": dword(3)}}, {"localhost": (3, "machine")}),
    ({f"{M_DOMAINS}\\localhost": {"http": dword(3)}, f"{U_DOMAINS}\\localhost": {"http": dword(1)}},
     {"localhost": (1, "user")}),
    ({f"{U_RANGES}\\Range1": {":Range": sz("127.0.0.1"), "http": dword(3)}}, {"127.0.0.1": (3, "user")}),
    ({f"{U_RANGES}\\Range1": {":Range": sz("127.0.0.*"), "*": dword(2)}}, {"127.0.0.1": (2, "user")}),
    ({f"{U_RANGES}\\Range1": {":Range": sz("10.0.0.1"), "http": dword(3)}}, {}),
    ({f"{U_DOMAINS}\\127.0.0.1": {"http": dword(3)}}, {"127.0.0.1": (3, "user")}),
    ({M_ZONEMAPKEY: {"localhost": sz("3")}}, {"localhost": (3, "machine")}),
    ({M_ZONEMAPKEY: {"http://localhost": sz("1")}, U_ZONEMAPKEY: {"localhost": sz("3")}},
     {"localhost": (1, "machine")}),
    ({U_ZONEMAPKEY: {"*://127.0.0.1": sz("4")}}, {"127.0.0.1": (4, "user")}),
    ({U_ZONEMAPKEY: {"https://localhost": sz("3")}}, {}),
    # a configured Site to Zone Assignment List replaces the Domains lists
    ({M_ZONEMAPKEY: {"*.nhs.uk": sz("1")}, f"{U_DOMAINS}\\localhost": {"http": dword(3)}}, {}),
    ({**HKLM_ONLY, f"{U_DOMAINS}\\localhost": {"http": dword(3)}}, {}),
])
def test_localhost_mappings(registry: dict[str, t.Any], expected: dict[str, tuple[int, str]]) -> None:
    assert mapped(registry) == expected


@pytest.mark.parametrize(("spec", "address", "matches"), [
    ("127.0.0.1", "127.0.0.1", True), ("127.0.0.*", "127.0.0.1", True), ("127.0.0.1-20", "127.0.0.5", True),
    ("127.0.0.2-20", "127.0.0.1", False), ("127.0.0.0-127.0.0.255", "127.0.0.1", True), ("127.0.0", "127.0.0.1", False),
    ("10.*.*.*", "127.0.0.1", False), ("127.0.0.1", "localhost", False),
])
def test_ip_range_specs(spec: str, address: str, matches: bool) -> None:
    assert ip_spec_matches(spec, address) is matches


@pytest.mark.parametrize(("name", "expected"), [
    ("localhost", (None, "localhost")), ("HTTP://LocalHost/", ("http", "localhost")),
    ("http://localhost:43485", ("http", "localhost")), ("*://127.0.0.1", ("*", "127.0.0.1")),
    ("127.0.0.1-127.0.0.9", (None, "127.0.0.1-127.0.0.9")),
])
def test_site_to_zone_entry_names(name: str, expected: tuple[str | None, str]) -> None:
    assert zonemapkey_entry_host(name) == expected


def test_unreadable_keys_make_the_view_unknown() -> None:
    built = facts_for({}, [USER_A], denied=(U_ZONEMAP,))
    assert zone_read_errors(built, built["users"][0]) == [f"cannot read {U_ZONEMAP}: access_denied"]
    assert zone_read_errors(built, None) == []
