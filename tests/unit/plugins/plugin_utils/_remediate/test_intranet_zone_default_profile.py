"""Planning of nhs_cm.remediation.intranet_zone with include_default_profile: the default profile's
hive (HKU\\.DEFAULT_PROFILE) is read with its own reads, judged on its own (diagnose does not read
it), written where the user scope writes, and a user who signs in later with it gets no finding."""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import (
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
    read,
    sz,
)

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.intranet_zone import (
    DEFAULT_PROFILE_PATHS,
    DEFAULTS,
    HANDLED,
    default_profile_reads,
    default_profile_user,
    plan_intranet_zone,
)

DP = "HKU\\.DEFAULT_PROFILE"
DP_ZONEMAP = f"{DP}\\Software{IS[len('SOFTWARE'):]}\\ZoneMap"
DP_ZONE1 = f"{DP}\\Software{IS[len('SOFTWARE'):]}\\Zones\\1"
DP_POLICY_ZONEMAP = f"{DP}\\Software{IS_POLICY[len('SOFTWARE'):]}\\ZoneMap"
M_ZONEMAP = f"HKLM\\{IS_POLICY}\\ZoneMap"
BASE: dict[str, t.Any] = {**good_zones(SID_A), **good_zones(SID_B)}


def reply(registry: dict[str, t.Any], op: dict[str, t.Any]) -> dict[str, t.Any]:
    """What the runner answers to a reg_read of the simulated registry."""
    node = read(registry, op["key"], op.get("depth", 0))
    names = op.get("names")
    values = {n: v for n, v in node["values"].items() if names is None or n in names}
    return {"ok": True, "exists": node["exists"], "values": values, "subkeys": node["subkeys"]}


def facts_with_profile(registry: dict[str, t.Any]) -> dict[str, t.Any]:
    facts = facts_for(registry, [USER_A, USER_B])
    facts["default_profile"] = default_profile_user([reply(registry, op) for op in default_profile_reads()])
    return facts


def planned(registry: dict[str, t.Any], **options: t.Any):
    return planned_fix(plan_intranet_zone, DEFAULTS, facts_with_profile(registry),
                       **{"include_default_profile": True, **options})


def writes(the_plan: t.Any) -> list[tuple[str, str, t.Any]]:
    return [(op["key"], op["name"], op["data"]) for op in the_plan.write_ops]


def later_user_ids(registry: dict[str, t.Any]) -> set[str]:
    """The fault 4 ids diagnose would report for a user who signs in with the default profile's
    settings (the profile's keys copied into a new user's hive)."""
    sid = "S-1-5-21-2847561937-1930485726-3150942856-1199"
    copied = {key.replace(DP, f"HKU\\{sid}", 1): values for key, values in registry.items() if key.startswith(DP)}
    newcomer = {"sid": sid, "user": "NHS\\newstarter", "session": 3, "source": "session", "hive": "loaded",
                "error": None}
    findings, _unknown = evaluate(facts_for({**registry, **copied}, [newcomer]), {"cm_required": True})
    return {f["id"] for f in findings} & set(HANDLED)


def test_the_reads_name_the_pseudo_hive_and_cover_every_zone_key_a_user_check_needs() -> None:
    reads = default_profile_reads()
    assert reads and all(op["op"] == "reg_read" and op["key"].startswith(DP + "\\") for op in reads)
    assert not any("nhs_cm_" in op["key"] for op in reads)
    profile = default_profile_user([reply(BASE, op) for op in reads])
    assert profile["hive"] == "loaded" and profile["error"] is None
    assert set(profile["keys"]) == {path for path, _depth in DEFAULT_PROFILE_PATHS}
    assert any(path.endswith("ZoneMap\\Ranges") and depth == 1 for path, depth in DEFAULT_PROFILE_PATHS)


def test_a_fresh_default_profile_is_fixed_although_diagnose_reports_nothing() -> None:
    assert later_user_ids(BASE) == {"INTRANET_AUTODETECT_ON", "INTRANET_LOCAL_SITES_OFF",
                                    "INTRANET_PROXY_BYPASS_OFF", "INTRANET_UNC_OFF"}
    policy, the_plan = planned(BASE)
    assert {f["id"] for f in evaluate(facts_for(BASE, [USER_A, USER_B]), {"cm_required": True})[0]} & set(
        HANDLED) == set()
    assert writes(the_plan) == [(DP_ZONEMAP, "AutoDetect", 0), (DP_ZONEMAP, "IntranetName", 1),
                                (DP_ZONEMAP, "ProxyBypass", 1), (DP_ZONEMAP, "UNCAsIntranet", 1)]
    assert policy.notes == []
    after = applied(BASE, the_plan)
    assert later_user_ids(after) == set()
    assert planned(after)[1].changed is False


def test_without_the_option_the_default_profile_is_left_alone() -> None:
    _policy, the_plan = planned(BASE, include_default_profile=False)
    assert the_plan.changed is False


def test_machine_scope_writes_machine_policy_and_the_profile_s_own_settings() -> None:
    registry = {**BASE, f"HKU\\{SID_A}\\Software{IS[len('SOFTWARE'):]}\\ZoneMap": {
        **BASE[f"HKU\\{SID_A}\\Software{IS[len('SOFTWARE'):]}\\ZoneMap"], "UNCAsIntranet": dword(0)},
        DP_ZONEMAP: {"AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1),
                     "UNCAsIntranet": dword(0)}}
    _policy, the_plan = planned(registry)
    assert writes(the_plan) == [(M_ZONEMAP, "UNCAsIntranet", 1), (DP_ZONEMAP, "UNCAsIntranet", 1)]
    # a machine policy that already decides does not hide the profile's own wrong value
    decided = {**applied(registry, the_plan), DP_ZONEMAP: registry[DP_ZONEMAP]}
    assert writes(planned(decided)[1]) == [(DP_ZONEMAP, "UNCAsIntranet", 1)]


def test_user_scope_and_the_profile_s_own_policy_value_is_fixed_where_it_is() -> None:
    registry = {**BASE, DP_POLICY_ZONEMAP: {"ProxyBypass": dword(0)},
                DP_ZONEMAP: {"AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1),
                             "UNCAsIntranet": dword(1)}}
    _policy, the_plan = planned(registry, scope="user")
    assert writes(the_plan) == [(DP_POLICY_ZONEMAP, "ProxyBypass", 1)]
    assert later_user_ids(applied(registry, the_plan)) == set()


@pytest.mark.parametrize(("current", "option", "expected"), [
    (0x10000, 0x20000, [(DP_ZONE1, "1A00", 0x20000)]),
    (0x30000, 0, [(DP_ZONE1, "1A00", 0)]),
    (0x00000, 0x20000, []),  # automatic logon already: left as it is
])
def test_logon_in_the_profile(current: int, option: int, expected: list[tuple[str, str, t.Any]]) -> None:
    registry = {**BASE, DP_ZONEMAP: {"AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1),
                                     "UNCAsIntranet": dword(1)}, DP_ZONE1: {"1A00": dword(current)}}
    _policy, the_plan = planned(registry, logon_action=option)
    assert writes(the_plan) == expected


def test_a_wrong_localhost_mapping_in_the_profile_is_changed_in_place_only() -> None:
    good = {"AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1), "UNCAsIntranet": dword(1)}
    registry = {**BASE, DP_ZONEMAP: good, f"{DP_ZONEMAP}\\Domains\\localhost": {"http": dword(3), "https": dword(3)},
                f"{DP_ZONEMAP}\\Domains\\127.0.0.1": {"*": dword(1)}}
    assert "LOCALHOST_MAPPED_OUTSIDE_INTRANET" in later_user_ids(registry)
    _policy, the_plan = planned(registry)
    assert writes(the_plan) == [(f"{DP_ZONEMAP}\\Domains\\localhost", "http", 1)]
    assert later_user_ids(applied(registry, the_plan)) == set()


def test_a_site_to_zone_list_entry_in_the_profile_keeps_its_string_type() -> None:
    good = {"AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1), "UNCAsIntranet": dword(1)}
    zonemapkey = f"{DP}\\Software{IS_POLICY[len('SOFTWARE'):]}\\ZoneMapKey"
    registry = {**BASE, DP_ZONEMAP: good, zonemapkey: {"http://localhost": sz("3")}}
    _policy, the_plan = planned(registry)
    assert [(op["key"], op["name"], op["type"], op["data"]) for op in the_plan.write_ops] == [
        (zonemapkey, "http://localhost", "REG_SZ", "1")]


def test_skipped_ids_are_not_fixed_in_the_profile_either() -> None:
    _policy, the_plan = planned(BASE, skip_ids=["INTRANET_AUTODETECT_ON", "INTRANET_UNC_OFF"])
    assert writes(the_plan) == [(DP_ZONEMAP, "IntranetName", 1), (DP_ZONEMAP, "ProxyBypass", 1)]


def test_an_unloadable_profile_is_a_note_and_changes_nothing() -> None:
    failed = {"ok": False, "error": "failed", "message": "cannot load the default profile hive C:\\Users\\Default"
                                                         "\\NTUSER.DAT: reg.exe load exited with 1: in use"}
    facts = facts_for(BASE, [USER_A, USER_B])
    facts["default_profile"] = default_profile_user([failed for _op in default_profile_reads()])
    policy, the_plan = planned_fix(plan_intranet_zone, DEFAULTS, facts, include_default_profile=True)
    assert the_plan.changed is False
    assert policy.notes == ["Default profile: not changed, its hive cannot be read: failed: cannot load the default "
                            "profile hive C:\\Users\\Default\\NTUSER.DAT: reg.exe load exited with 1: in use"]


def test_the_backup_and_diff_name_the_profile_never_a_mount_point() -> None:
    _policy, the_plan = planned(BASE)
    assert [entry["key"] for entry in the_plan.entries] == [DP_ZONEMAP] * 4
    assert all(entry["existed"] is False for entry in the_plan.entries)
    diff = the_plan.diff("nhs_cm.remediation.intranet_zone")
    assert f"{DP_ZONEMAP}\\AutoDetect: (absent)" in diff["before"]
    assert f"{DP_ZONEMAP}\\AutoDetect: REG_DWORD 0" in diff["after"]
    assert "nhs_cm_" not in diff["before"] + diff["after"]


def test_the_result_count_must_match_the_reads() -> None:
    with pytest.raises(ValueError, match="default profile reads"):
        default_profile_user([])
