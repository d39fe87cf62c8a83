"""Planning of nhs_cm.remediation.third_party_cookies: where [*.]localhost goes and under which
value name, no duplicates, the opt-ins, Group Policy, and that the planned values make diagnose's
cookie findings go away (facts built as diagnose builds them, then re-evaluated)."""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import (
    CHROME,
    EDGE,
    FIREFOX,
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
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cookies import (
    DEFAULTS,
    HANDLED,
    plan_cookies,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import next_free_name

OPTIONS = {"cm_required": True}
COOKIE_IDS = {"THIRD_PARTY_COOKIES_BLOCKED", "COOKIES_BLOCKED_BY_DEFAULT", "LOCALHOST_COOKIES_BLOCKED"}
BASE: dict[str, t.Any] = {**good_zones(SID_A), **good_zones(SID_B)}
U_EDGE_A = user_key(SID_A, "Software\\Policies\\Microsoft\\Edge")


def facts(registry: dict[str, t.Any], gpo: list[dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    return facts_for({**BASE, **registry}, [USER_A, USER_B], gpo)


def cookie_ids(the_facts: dict[str, t.Any]) -> set[str]:
    findings, _unknown = evaluate(the_facts, OPTIONS)
    return {f["id"] for f in findings} & COOKIE_IDS


def planned(registry: dict[str, t.Any], gpo: list[dict[str, t.Any]] | None = None, **options: t.Any):
    return planned_fix(plan_cookies, DEFAULTS, facts(registry, gpo), **options)


@pytest.mark.parametrize(("names", "expected"), [
    ([], "1"), (["0"], "1"), (["1", "2"], "3"), (["1", "7"], "8"), (["1", "x", "Default"], "2"),
    (["Default"], "1"), (["-3"], "1"), (["010"], "11")])
def test_next_free_name_is_the_greatest_number_plus_one(names: list[str], expected: str) -> None:
    assert next_free_name(names) == expected


def test_third_party_blocked_gets_localhost_after_the_last_entry_in_machine_policy() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)},
                f"{EDGE}\\CookiesAllowedForUrls": {"0": sz("[*.]nhs.uk"), "4": sz("https://x.nhs.uk"),
                                                   "note": sz("x")}}
    assert cookie_ids(facts(registry)) == {"THIRD_PARTY_COOKIES_BLOCKED"}
    policy, the_plan = planned(registry)
    assert [(op["op"], op["key"], op["name"], op["type"], op["data"]) for op in the_plan.write_ops] == [
        ("reg_write", f"{EDGE}\\CookiesAllowedForUrls", "5", "REG_SZ", "[*.]localhost")]
    after = applied({**BASE, **registry}, the_plan)
    assert after[f"{EDGE}\\CookiesAllowedForUrls"]["0"] == sz("[*.]nhs.uk")  # kept, same number
    assert cookie_ids(facts_for(after, [USER_A, USER_B])) == set()
    # and again: nothing to do (idempotent)
    assert planned({k: v for k, v in after.items() if k not in BASE})[1].changed is False
    assert policy.notes == []


def test_blocked_by_default_creates_the_list_when_there_is_none() -> None:
    registry = {CHROME: {"DefaultCookiesSetting": dword(2)}}
    _policy, the_plan = planned(registry)
    assert [(op["key"], op["name"]) for op in the_plan.write_ops] == [(f"{CHROME}\\CookiesAllowedForUrls", "1")]
    assert the_plan.entries[0]["existed"] is False


def test_an_entry_that_covers_localhost_is_never_duplicated() -> None:
    registry = {CHROME: {"BlockThirdPartyCookies": dword(1)},
                f"{CHROME}\\CookiesAllowedForUrls": {"1": sz("http://localhost")}}
    assert cookie_ids(facts(registry)) == set()
    assert planned(registry)[1].changed is False


def test_allow_all_third_party_cookies_only_when_asked() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)}}
    assert "BlockThirdPartyCookies" not in {op["name"] for op in planned(registry)[1].write_ops}
    ops = planned(registry, allow_all_third_party_cookies=True)[1].write_ops
    assert ("BlockThirdPartyCookies", 0) in {(op["name"], op["data"]) for op in ops}


def test_localhost_block_is_removed_only_when_the_play_opts_in() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)},
                f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")},
                f"{U_EDGE_A}\\CookiesBlockedForUrls": {"1": sz("localhost"), "2": sz("[*.]ads.example")}}
    assert cookie_ids(facts(registry)) == {"LOCALHOST_COOKIES_BLOCKED"}
    policy, the_plan = planned(registry)
    assert the_plan.changed is False
    assert any("remove_localhost_block" in note for note in policy.notes)
    _policy, the_plan = planned(registry, remove_localhost_block=True)
    assert [(op["op"], op["key"], op["name"]) for op in the_plan.write_ops] == [
        ("reg_delete", f"{U_EDGE_A}\\CookiesBlockedForUrls", "1")]
    after = applied({**BASE, **registry}, the_plan)
    assert after[f"{U_EDGE_A}\\CookiesBlockedForUrls"] == {"2": sz("[*.]ads.example")}
    assert cookie_ids(facts_for(after, [USER_A, USER_B])) == set()


def test_user_scope_writes_each_signed_in_users_policy() -> None:
    registry = {CHROME: {"BlockThirdPartyCookies": dword(1)}}
    _policy, the_plan = planned(registry, scope="user", browsers=["chrome"])
    assert sorted(op["key"] for op in the_plan.write_ops) == sorted(
        f"HKU\\{sid}\\Software\\Policies\\Google\\Chrome\\CookiesAllowedForUrls" for sid in (SID_A, SID_B))
    after = applied({**BASE, **registry}, the_plan)
    assert cookie_ids(facts_for(after, [USER_A, USER_B])) == set()


def test_browsers_not_listed_are_not_touched_and_firefox_only_when_listed() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)}, FIREFOX: {"Behavior": sz("reject-foreign")}}
    assert planned(registry, browsers=["chrome"])[1].changed is False
    ops = planned(registry)[1].write_ops
    assert {op["key"] for op in ops} == {f"{EDGE}\\CookiesAllowedForUrls"}
    ops = planned(registry, browsers=["firefox"])[1].write_ops
    # one origin per NHS Port Service port: an origin covers one port (docs/browser-policy.md)
    assert [(op["key"], op["name"], op["data"]) for op in ops] == [
        (f"{FIREFOX}\\Allow", str(index), f"http://localhost:{port}")
        for index, port in enumerate([43487, 44213, 45031, 46478, 48853], 1)]
    the_plan = planned(registry, browsers=["edge", "firefox"])[1]
    after = applied({**BASE, **registry}, the_plan)
    # Edge is fixed; Firefox stays reported: CM's per-session port cannot be listed as an origin
    findings, _unknown = evaluate(facts_for(after, [USER_A, USER_B]), OPTIONS)
    assert {(f["id"], f["browser"]) for f in findings if f["id"] in HANDLED} == \
        {("THIRD_PARTY_COOKIES_BLOCKED", "firefox")}
    second = planned_fix(plan_cookies, DEFAULTS, facts_for(after, [USER_A, USER_B]), browsers=["edge", "firefox"])
    assert second[1].changed is False


def test_firefox_keeps_its_entries_and_adds_only_the_ports_missing() -> None:
    registry = {FIREFOX: {"Behavior": sz("reject-foreign")},
                f"{FIREFOX}\\Allow": {"1": sz("http://localhost:44213"), "7": sz("https://ers.nhs.uk")}}
    ops = planned(registry, browsers=["firefox"])[1].write_ops
    assert [(op["name"], op["data"]) for op in ops] == [
        ("8", "http://localhost:43487"), ("9", "http://localhost:45031"), ("10", "http://localhost:46478"),
        ("11", "http://localhost:48853")]


def test_skipped_ids_are_not_fixed() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)}}
    assert planned(registry, skip_ids=["THIRD_PARTY_COOKIES_BLOCKED"])[1].changed is False


GPO = [{"gpo": "NHS Browsers", "key": f"{EDGE}\\CookiesAllowedForUrls", "name": "1", "type": "REG_SZ",
        "data": "[*.]nhs.uk"}]


def test_a_gpo_owned_list_is_left_alone_unless_overridden() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)}, f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.]nhs.uk")}}
    _policy, the_plan = planned(registry, gpo=GPO)
    assert the_plan.changed is False
    assert [(s["key"], s["gpo"]) for s in the_plan.gpo_skipped] == [(f"{EDGE}\\CookiesAllowedForUrls", "NHS Browsers")]
    _policy, the_plan = planned(registry, gpo=GPO, override_gpo=True)
    assert [op["name"] for op in the_plan.write_ops] == ["2"]
    assert any("Group Policy refresh" in w for w in the_plan.warnings)
