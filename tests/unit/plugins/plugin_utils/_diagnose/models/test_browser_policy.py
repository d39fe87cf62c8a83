"""Effective Chrome, Edge and Firefox policy: sources, precedence, list policies, conversions."""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import (
    CHROME,
    EDGE,
    FIREFOX,
    SID_A,
    USER_A,
    dword,
    expand_sz,
    facts_for,
    sz,
    user_key,
)

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.browser_policy import (
    auth_allowlist,
    auth_covers_localhost,
    chromium_cookies,
    chromium_policy,
    convert,
    effective_list,
    effective_scalar,
    firefox_cookies,
    localhost_cookies,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    MACHINE_READS,
    READ_VALUE_NAMES,
    USER_READS,
)

U_CHROME = user_key(SID_A, "Software\\Policies\\Google\\Chrome")
U_EDGE = user_key(SID_A, "Software\\Policies\\Microsoft\\Edge")


def view(registry: dict[str, t.Any], browser: str = "chrome", user: bool = True) -> t.Any:
    facts = facts_for(registry, [USER_A])
    return chromium_policy(facts, browser, facts["users"][0] if user else None)


def firefox(registry: dict[str, t.Any]) -> t.Any:
    facts = facts_for(registry, [USER_A])
    return firefox_cookies(facts, facts["users"][0])


# -- reads ----------------------------------------------------------------------------------------

def test_reads_are_declared_for_the_machine_and_each_user() -> None:
    machine = dict(MACHINE_READS)
    user = dict(USER_READS)
    for key in ("SOFTWARE\\Policies\\Google\\Chrome", "SOFTWARE\\Policies\\Microsoft\\Edge"):
        assert machine[f"HKLM\\{key}"] == 0
        assert machine[f"HKLM\\{key}\\CookiesAllowedForUrls"] == 0
        assert machine[f"HKLM\\{key}\\Recommended"] == 0
        assert user["Software" + key[len("SOFTWARE"):] + "\\CookiesBlockedForUrls"] == 0
    assert machine["HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Cookies"] == 1
    assert machine["HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"] == 0
    assert "Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings" not in user
    assert user["Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap\\Ranges"] == 1
    assert all(path.startswith("HKLM\\") for path in machine)
    assert not any(path.startswith(("HK", "\\")) for path in user)
    assert all(depth <= 1 for depth in [*machine.values(), *user.values()])
    # list subkeys are never filtered by value name; the policy keys are
    assert READ_VALUE_NAMES[f"{CHROME}\\Recommended"] == ["BlockThirdPartyCookies"]
    assert not any("ForUrls" in path for path in READ_VALUE_NAMES)


# -- precedence -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("registry", "value", "source"), [
    ({CHROME: {"BlockThirdPartyCookies": dword(1)}, U_CHROME: {"BlockThirdPartyCookies": dword(0)}},
     True, "machine mandatory policy"),
    ({U_CHROME: {"BlockThirdPartyCookies": dword(0)}, f"{CHROME}\\Recommended": {"BlockThirdPartyCookies": dword(1)}},
     False, "user mandatory policy"),
    ({f"{CHROME}\\Recommended": {"BlockThirdPartyCookies": dword(1)},
      f"{U_CHROME}\\Recommended": {"BlockThirdPartyCookies": dword(0)}}, True, "machine recommended policy"),
    ({f"{U_CHROME}\\Recommended": {"BlockThirdPartyCookies": dword(1)}}, True, "user recommended policy"),
    ({}, None, None),
])
def test_mandatory_beats_recommended_then_machine_beats_user(
        registry: dict[str, t.Any], value: bool | None, source: str | None) -> None:
    effective = effective_scalar(view(registry), "BlockThirdPartyCookies", "bool")
    assert effective.value is value
    assert (effective.source.label if effective.source else None) == source


def test_key_paths_and_value_names_are_case_insensitive() -> None:
    registry = {"hklm\\software\\policies\\GOOGLE\\chrome": {"blockthirdpartycookies": dword(1)}}
    effective = effective_scalar(view(registry), "BlockThirdPartyCookies", "bool")
    assert effective.value is True
    assert effective.winner is not None and effective.winner.name == "blockthirdpartycookies"


def test_a_policy_that_cannot_be_recommended_is_ignored_at_the_recommended_level() -> None:
    registry = {f"{CHROME}\\Recommended": {"DefaultCookiesSetting": dword(2)}}
    assert not effective_scalar(view(registry), "DefaultCookiesSetting", "int").is_set


@pytest.mark.parametrize(("kind", "item", "expected"), [
    ("bool", dword(1), (True, True)), ("bool", dword(0), (True, False)), ("bool", dword(7), (True, True)),
    ("bool", sz("1"), (True, True)), ("bool", sz("0"), (True, False)), ("bool", sz("yes"), (False, None)),
    ("bool", {"type": "REG_QWORD", "data": 1}, (False, None)),
    ("int", dword(2), (True, 2)), ("int", sz("2"), (True, 2)), ("int", dword(0xFFFFFFFF), (True, -1)),
    ("str", sz("localhost"), (True, "localhost")), ("str", expand_sz("localhost"), (True, "localhost")),
    ("str", dword(1), (False, None)), ("str", {"type": "REG_MULTI_SZ", "data": ["localhost"]}, (False, None)),
])
def test_values_convert_as_chromium_converts_them(
        kind: str, item: dict[str, t.Any], expected: tuple[bool, t.Any]) -> None:
    assert convert(kind, item) == expected


def test_an_unconvertible_value_is_skipped_and_the_next_source_decides() -> None:
    registry = {CHROME: {"BlockThirdPartyCookies": {"type": "REG_BINARY", "data": "01"}},
                U_CHROME: {"BlockThirdPartyCookies": dword(1)}}
    effective = effective_scalar(view(registry), "BlockThirdPartyCookies", "bool")
    assert (effective.value, effective.source.label if effective.source else None) == (True, "user mandatory policy")
    assert effective.ignored[0]["path"] == CHROME and "REG_BINARY" in effective.ignored[0]["note"]


# -- list policies --------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [
    {"1": sz("[*.]localhost")},
    {"0": sz("[*.]localhost")},
    {"1": sz("[*.]nhs.uk"), "7": sz("[*.]localhost")},
    {"3": expand_sz("[*.]localhost")},
    {"-1": sz("[*.]localhost")},
])
def test_every_numbered_value_counts(values: dict[str, t.Any]) -> None:
    effective = effective_list(view({f"{CHROME}\\CookiesAllowedForUrls": values}), "CookiesAllowedForUrls")
    assert "[*.]localhost" in effective.value


def test_values_with_non_numeric_names_or_wrong_types_are_ignored_with_a_reason() -> None:
    values = {"a": sz("[*.]localhost"), "1": dword(1), "2": sz("[*.]nhs.uk")}
    effective = effective_list(view({f"{CHROME}\\CookiesAllowedForUrls": values}), "CookiesAllowedForUrls")
    assert effective.value == ["[*.]nhs.uk"]
    notes = {item["name"]: item["note"] for item in effective.ignored}
    assert "not a number" in notes["a"] and "must be REG_SZ" in notes["1"]


def test_a_list_comes_whole_from_the_winning_source() -> None:
    registry = {f"{CHROME}\\CookiesAllowedForUrls": {"1": sz("[*.]nhs.uk")},
                f"{U_CHROME}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")},
                f"{CHROME}\\PolicyListMultipleSourceMergeList": {"1": sz("CookiesAllowedForUrls")}}
    effective = effective_list(view(registry), "CookiesAllowedForUrls")
    assert effective.value == ["[*.]nhs.uk"]
    assert effective.source is not None and effective.source.label == "machine mandatory policy"


def test_an_empty_list_key_of_a_higher_source_hides_the_lower_ones() -> None:
    registry = {f"{CHROME}\\CookiesAllowedForUrls": {}, f"{U_CHROME}\\CookiesAllowedForUrls": {"1": sz("localhost")}}
    assert effective_list(view(registry), "CookiesAllowedForUrls").value == []


def test_a_user_list_applies_when_the_machine_sets_none() -> None:
    registry = {f"{U_CHROME}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")}}
    effective = effective_list(view(registry), "CookiesAllowedForUrls")
    assert effective.value == ["[*.]localhost"] and effective.from_user
    assert effective_list(view(registry, user=False), "CookiesAllowedForUrls").value is None


def test_a_list_may_be_a_json_string_value() -> None:
    registry = {CHROME: {"CookiesAllowedForUrls": sz('["[*.]localhost", "[*.]nhs.uk"]')}}
    assert effective_list(view(registry), "CookiesAllowedForUrls").value == ["[*.]localhost", "[*.]nhs.uk"]


def test_recommended_lists_are_ignored() -> None:
    registry = {f"{CHROME}\\Recommended\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")}}
    assert effective_list(view(registry), "CookiesAllowedForUrls").value is None


# -- cookies for localhost -------------------------------------------------------------------------

def lists(allowed: list[str] | None = None, blocked: list[str] | None = None,
          session: list[str] | None = None) -> t.Any:
    registry: dict[str, t.Any] = {}
    for name, entries in (("CookiesAllowedForUrls", allowed), ("CookiesBlockedForUrls", blocked),
                          ("CookiesSessionOnlyForUrls", session)):
        if entries is not None:
            registry[f"{CHROME}\\{name}"] = {str(i + 1): sz(entry) for i, entry in enumerate(entries)}
    return localhost_cookies(chromium_cookies(view(registry)).lists)


@pytest.mark.parametrize(("allowed", "blocked", "session", "covered", "blocking"), [
    (["[*.]localhost"], None, None, True, []),
    (["http://localhost:*"], None, None, True, []),
    (["localhost"], None, None, True, []),
    (["http://localhost:43485"], None, None, False, []),
    (["https://localhost"], None, None, False, []),
    (["*.localhost"], None, None, False, []),
    (["*"], None, None, False, []),
    (["http://*"], None, None, False, []),
    (None, None, ["[*.]localhost"], True, []),
    (["[*.]localhost"], ["[*.]localhost"], None, True, ["[*.]localhost"]),
    (["http://localhost:*"], ["[*.]localhost"], None, True, []),
    (["[*.]localhost"], ["http://localhost:43485"], None, True, ["http://localhost:43485"]),
    (None, ["http://localhost:43485"], None, False, ["http://localhost:43485"]),
    (["[*.]localhost"], ["https://localhost"], None, True, []),
    (None, ["*"], None, True, ["*"]),
    (["[*.]localhost,https://[*.]nhs.uk"], None, None, True, []),
    (["[*.]localhost,https://ers.nhs.uk"], None, None, False, []),
    (["[*.]localhost,https://example.com"], None, None, False, []),
    (["[*.]localhost"], ["[*.]localhost,https://example.com"], None, True, []),
])
def test_localhost_cookie_rules(allowed: list[str] | None, blocked: list[str] | None, session: list[str] | None,
                                covered: bool, blocking: list[str]) -> None:
    result = lists(allowed, blocked, session)
    assert result.covered is covered
    assert [rule.entry.pair.text for rule in result.blocking] == blocking


# -- AuthServerAllowlist ----------------------------------------------------------------------------

def test_auth_server_allowlist_new_name_beats_the_deprecated_one() -> None:
    registry = {EDGE: {"AuthServerAllowlist": sz("*.nhs.uk"), "AuthServerWhitelist": sz("localhost")}}
    allowlist = auth_allowlist(view(registry, "edge"))
    assert allowlist.value == "*.nhs.uk" and not auth_covers_localhost(allowlist)
    legacy = auth_allowlist(view({EDGE: {"AuthServerWhitelist": sz("localhost")}}, "edge"))
    assert legacy.policy == "AuthServerWhitelist" and auth_covers_localhost(legacy)


def test_auth_server_allowlist_from_the_user_hive() -> None:
    allowlist = auth_allowlist(view({U_EDGE: {"AuthServerAllowlist": sz("*.nhs.uk")}}, "edge"))
    assert allowlist.from_user and allowlist.value == "*.nhs.uk"


# -- Firefox --------------------------------------------------------------------------------------

U_FIREFOX = user_key(SID_A, "Software\\Policies\\Mozilla\\Firefox\\Cookies")


@pytest.mark.parametrize(("registry", "rejects", "ports"), [
    ({FIREFOX: {"Behavior": sz("reject-foreign")}}, "foreign", []),
    ({FIREFOX: {"Behavior": sz("reject")}}, "all", []),
    ({FIREFOX: {"Behavior": sz("reject-tracker")}}, None, []),
    # an origin covers one port: http://localhost is port 80 only (docs/browser-policy.md)
    ({FIREFOX: {"Behavior": sz("reject-foreign")}, f"{FIREFOX}\\Allow": {"1": sz("http://localhost")}}, "foreign",
     [80]),
    ({FIREFOX: {"Behavior": sz("reject-foreign")}, f"{FIREFOX}\\AllowSession": {"1": sz("http://localhost:43487")}},
     "foreign", [43487]),
    ({FIREFOX: {"Behavior": sz("reject-foreign")}, f"{FIREFOX}\\Allow": {"1": sz("https://localhost")}}, "foreign",
     []),
    ({FIREFOX: {"Default": dword(0)}}, "all", []),
    ({FIREFOX: {"AcceptThirdParty": sz("never")}}, "foreign", []),
    ({FIREFOX: {"Behavior": sz("accept"), "AcceptThirdParty": sz("never")}}, None, []),
    ({U_FIREFOX: {"Behavior": sz("reject-foreign")}, FIREFOX: {"Behavior": sz("accept")}}, None, []),
    ({U_FIREFOX: {"Behavior": sz("reject-foreign")}}, "foreign", []),
])
def test_firefox_cookies(registry: dict[str, t.Any], rejects: str | None, ports: list[int]) -> None:
    cookies = firefox(registry)
    assert cookies.present
    assert cookies.rejects == rejects
    assert cookies.covered_ports == ports
    assert len(cookies.covering) == len(ports)


def test_firefox_lists_come_from_the_machine_before_the_user() -> None:
    registry = {f"{FIREFOX}\\Block": {"1": sz("http://example.com")}, f"{U_FIREFOX}\\Block": {"1": sz("http://localhost")}}
    cookies = firefox(registry)
    assert [entry.value.data for entry in cookies.block] == ["http://example.com"] and not cookies.blocking
    assert not firefox({}).present
