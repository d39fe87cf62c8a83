"""Planning of nhs_cm.remediation.intranet_zone: which value goes where for each scope, the wrong
localhost mapping changed in place (and only that one), localhost appended to AuthServerAllowlist,
Group Policy, waivers; and that the planned values make diagnose's fault 4 findings go away."""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import (
    EDGE,
    IS,
    IS_POLICY,
    SID_A,
    SID_B,
    USER_A,
    USER_B,
    applied,
    dword,
    facts_for,
    good_zones,
    planned_fix,
    sz,
    user_key,
)

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.intranet_zone import (
    DEFAULTS,
    HANDLED,
    appended,
    plan_intranet_zone,
)

OPTIONS = {"cm_required": True}
BASE: dict[str, t.Any] = {**good_zones(SID_A), **good_zones(SID_B)}
M_ZONEMAP = f"HKLM\\{IS_POLICY}\\ZoneMap"
M_ZONE1 = f"HKLM\\{IS_POLICY}\\Zones\\1"
U_ZONEMAP_A = user_key(SID_A, f"Software{IS[len('SOFTWARE'):]}\\ZoneMap")
U_ZONEMAP_B = user_key(SID_B, f"Software{IS[len('SOFTWARE'):]}\\ZoneMap")
U_POLICY_ZONEMAP_A = user_key(SID_A, f"Software{IS_POLICY[len('SOFTWARE'):]}\\ZoneMap")


def zone_ids(registry: dict[str, t.Any], gpo: list[dict[str, t.Any]] | None = None) -> set[str]:
    findings, _unknown = evaluate(facts_for(registry, [USER_A, USER_B], gpo), OPTIONS)
    return {f["id"] for f in findings} & set(HANDLED)


def planned(registry: dict[str, t.Any], gpo: list[dict[str, t.Any]] | None = None, **options: t.Any):
    return planned_fix(plan_intranet_zone, DEFAULTS, facts_for(registry, [USER_A, USER_B], gpo), **options)


def writes(the_plan: t.Any) -> list[tuple[str, str, t.Any]]:
    return [(op["key"], op["name"], op["data"]) for op in the_plan.write_ops]


@pytest.mark.parametrize(("name", "bad", "good", "check_id"), [
    ("AutoDetect", 1, 0, "INTRANET_AUTODETECT_ON"), ("IntranetName", 0, 1, "INTRANET_LOCAL_SITES_OFF"),
    ("ProxyBypass", 0, 1, "INTRANET_PROXY_BYPASS_OFF"), ("UNCAsIntranet", 0, 1, "INTRANET_UNC_OFF")])
def test_each_zonemap_flag_goes_to_machine_policy_by_default(name: str, bad: int, good: int, check_id: str) -> None:
    registry = {**BASE, U_ZONEMAP_A: {**BASE[U_ZONEMAP_A], name: dword(bad)}}
    assert zone_ids(registry) == {check_id}
    _policy, the_plan = planned(registry)
    assert writes(the_plan) == [(M_ZONEMAP, name, good)]
    assert the_plan.write_ops[0]["type"] == "REG_DWORD"
    after = applied(registry, the_plan)
    assert zone_ids(after) == set()
    assert planned(after)[1].changed is False


def test_user_scope_fixes_the_users_own_value_only_for_the_users_that_need_it() -> None:
    registry = {**BASE, U_ZONEMAP_A: {**BASE[U_ZONEMAP_A], "IntranetName": dword(0)}}
    _policy, the_plan = planned(registry, scope="user")
    assert writes(the_plan) == [(U_ZONEMAP_A, "IntranetName", 1)]
    assert zone_ids(applied(registry, the_plan)) == set()


def test_user_scope_fixes_a_user_policy_value_where_it_is_and_leaves_a_machine_one_with_a_note() -> None:
    registry = {**BASE, U_POLICY_ZONEMAP_A: {"ProxyBypass": dword(0)}}
    _policy, the_plan = planned(registry, scope="user")
    assert writes(the_plan) == [(U_POLICY_ZONEMAP_A, "ProxyBypass", 1)]
    registry = {**BASE, M_ZONEMAP: {"ProxyBypass": dword(0)}}
    policy, the_plan = planned(registry, scope="user")
    assert the_plan.changed is False
    assert any("use scope machine" in note for note in policy.notes)


def test_logon_is_set_to_automatic_only_in_intranet_zone_or_the_configured_value() -> None:
    zone1 = user_key(SID_A, f"Software{IS[len('SOFTWARE'):]}\\Zones\\1")
    registry = {**BASE, zone1: {"1A00": dword(0x10000)}}
    assert zone_ids(registry) == {"INTRANET_LOGON_NOT_AUTOMATIC"}
    assert writes(planned(registry)[1]) == [(M_ZONE1, "1A00", 0x20000)]
    assert writes(planned(registry, logon_action=0)[1]) == [(M_ZONE1, "1A00", 0)]
    assert zone_ids(applied(registry, planned(registry)[1])) == set()


def test_only_the_wrong_localhost_mapping_is_changed_in_place() -> None:
    domains = f"{U_ZONEMAP_A}\\Domains"
    registry = {**BASE, f"{domains}\\localhost": {"http": dword(3), "https": dword(2)},
                f"{U_ZONEMAP_B}\\Domains\\localhost": {"http": dword(1)}}
    assert zone_ids(registry) == {"LOCALHOST_MAPPED_OUTSIDE_INTRANET"}
    the_plan = planned(registry)[1]
    assert writes(the_plan) == [(f"{domains}\\localhost", "http", 1)]
    assert the_plan.write_ops[0]["type"] == "REG_DWORD"
    after = applied(registry, the_plan)
    assert after[f"{domains}\\localhost"]["https"] == dword(2)
    assert zone_ids(after) == set()


def test_a_site_to_zone_list_entry_keeps_its_string_type() -> None:
    registry = {**BASE, f"HKLM\\{IS_POLICY}\\ZoneMapKey": {"127.0.0.1": sz("4"), "*.nhs.uk": sz("1")}}
    assert zone_ids(registry) == {"LOCALHOST_MAPPED_OUTSIDE_INTRANET"}
    the_plan = planned(registry)[1]
    assert [(k, n, d, op["type"]) for (k, n, d), op in zip(writes(the_plan), the_plan.write_ops, strict=True)] == [
        (f"HKLM\\{IS_POLICY}\\ZoneMapKey", "127.0.0.1", "1", "REG_SZ")]
    assert zone_ids(applied(registry, the_plan)) == set()


@pytest.mark.parametrize(("data", "expected"), [
    ("*.nhs.uk", "*.nhs.uk,localhost"), ("*.nhs.uk, ", "*.nhs.uk,localhost"), ("", "localhost"),
    ("a.example,b.example", "a.example,b.example,localhost")])
def test_localhost_is_appended_to_the_allowlist(data: str, expected: str) -> None:
    assert appended(data) == expected


def test_auth_allowlist_gets_localhost_where_it_is_set_and_nowhere_else() -> None:
    registry = {**BASE, EDGE: {"AuthServerAllowlist": sz("*.nhs.uk")}}
    assert zone_ids(registry) == {"AUTH_ALLOWLIST_EXCLUDES_LOCALHOST"}
    the_plan = planned(registry)[1]
    assert writes(the_plan) == [(EDGE, "AuthServerAllowlist", "*.nhs.uk,localhost")]
    assert zone_ids(applied(registry, the_plan)) == set()


def test_waived_ids_are_not_fixed_and_gpo_values_are_left_alone_unless_overridden() -> None:
    registry = {**BASE, U_ZONEMAP_A: {**BASE[U_ZONEMAP_A], "AutoDetect": dword(1)}}
    assert planned(registry, skip_ids=["INTRANET_AUTODETECT_ON"])[1].changed is False
    gpo = [{"gpo": "NHS Zones", "key": M_ZONEMAP, "name": "AutoDetect", "type": "REG_DWORD", "data": 1}]
    registry = {**BASE, M_ZONEMAP: {"AutoDetect": dword(1)}}
    the_plan = planned(registry, gpo)[1]
    assert the_plan.changed is False
    assert [(s["key"], s["name"], s["gpo"]) for s in the_plan.gpo_skipped] == [(M_ZONEMAP, "AutoDetect", "NHS Zones")]
    assert writes(planned(registry, gpo, override_gpo=True)[1]) == [(M_ZONEMAP, "AutoDetect", 0)]
