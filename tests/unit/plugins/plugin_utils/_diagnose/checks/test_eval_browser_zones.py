"""The browser-policy and Local intranet zone checks: each id fires with the exact finding shape,
near misses that must not fire, the machine-or-user scope rule, Group Policy ownership, unknowns.

Scope rule under test: a problem the machine's settings decide for every user is ONE finding with
scope {kind: machine}; a problem a user's own hive decides, or one that does not hit every user,
is one finding per affected user.
"""

from __future__ import annotations

import typing as t

import pytest
from nhs_cm_hostsim import ZONEMAP, healthy_host, results_for
from policy_sim import (
    CHROME,
    EDGE,
    FIREFOX,
    IS,
    IS_POLICY,
    SID_A,
    SID_B,
    USER_A,
    USER_B,
    dword,
    expand_sz,
    facts_for,
    good_zones,
    sz,
    user_key,
)

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import CATALOGUE, FAULT_MESSAGES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import EVALUATORS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import browser as _eval_browser
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import zones as _eval_zones
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.gpo import gpo_owner, gpo_policy_path
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import options_with_defaults

MY_IDS = ["THIRD_PARTY_COOKIES_BLOCKED", "COOKIES_BLOCKED_BY_DEFAULT", "LOCALHOST_COOKIES_BLOCKED",
          "INTRANET_AUTODETECT_ON", "INTRANET_LOCAL_SITES_OFF", "INTRANET_PROXY_BYPASS_OFF", "INTRANET_UNC_OFF",
          "INTRANET_LOGON_NOT_AUTOMATIC", "LOCALHOST_MAPPED_OUTSIDE_INTRANET", "AUTH_ALLOWLIST_EXCLUDES_LOCALHOST"]
MACHINE = {"kind": "machine"}
SCOPE_A = {"kind": "user", "user": "NHS\\asmith", "sid": SID_A, "session": 1}
SCOPE_B = {"kind": "user", "user": "NHS\\bjones", "sid": SID_B, "session": 2}
OPTIONS = {"cm_required": True}
HEALTHY: dict[str, t.Any] = {**good_zones(SID_A), **good_zones(SID_B)}
U_EDGE_A = user_key(SID_A, "Software\\Policies\\Microsoft\\Edge")
U_CHROME_A = user_key(SID_A, "Software\\Policies\\Google\\Chrome")
U_ZONEMAP_A = user_key(SID_A, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap")
U_ZONEMAP_B = user_key(SID_B, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap")
U_ZONE1_A = user_key(SID_A, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1")
U_DOMAINS_A = f"{U_ZONEMAP_A}\\Domains"
M_POLICY_ZONEMAP = f"HKLM\\{IS_POLICY}\\ZoneMap"
M_ZONEMAP = f"HKLM\\{IS}\\ZoneMap"


def run(check_id: str, registry: dict[str, t.Any], users: list[dict[str, t.Any]] | None = None,
        gpo: list[dict[str, t.Any]] | None = None, **kwargs: t.Any) -> tuple[list[dict[str, t.Any]], list[dict]]:
    facts = facts_for({**HEALTHY, **registry}, [USER_A, USER_B] if users is None else users, gpo, **kwargs)
    outcome = EVALUATORS[check_id](facts, dict(OPTIONS, **kwargs.pop("options", {})))
    return outcome.findings, outcome.unknown


def fired(check_id: str, registry: dict[str, t.Any], **kwargs: t.Any) -> list[tuple[dict[str, t.Any], str | None]]:
    findings, unknown = run(check_id, registry, **kwargs)
    assert unknown == []
    return [(finding["scope"], finding["browser"]) for finding in findings]


def finding(check_id: str, scope: dict[str, t.Any], browser: str | None, summary: str,
            evidence: list[dict[str, t.Any]], action: str, managed_by_gpo: bool = False) -> dict[str, t.Any]:
    entry = CATALOGUE[check_id]
    return {"id": check_id, "fault": entry.fault, "ers_message": FAULT_MESSAGES[entry.fault],
            "severity": entry.severity, "scope": scope, "browser": browser, "summary": summary,
            "evidence": evidence,
            "remedy": {"automatic": True, "role": entry.remedy.role, "action": action,
                       "managed_by_gpo": managed_by_gpo},
            "escalation": None}


def test_every_id_of_this_engine_has_an_evaluator() -> None:
    assert set(MY_IDS) <= set(EVALUATORS)
    assert {EVALUATORS[i].__module__.rsplit(".", 1)[-1] for i in MY_IDS} == {"browser", "zones"}


@pytest.mark.parametrize("check_id", MY_IDS)
def test_a_healthy_host_reports_nothing(check_id: str) -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1), "AuthServerAllowlist": sz("localhost,*.nhs.uk")},
                f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost"), "2": sz("[*.]nhs.uk")},
                CHROME: {"BlockThirdPartyCookies": dword(1)},
                f"{CHROME}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")}}
    assert run(check_id, registry) == ([], [])


@pytest.mark.parametrize("check_id", MY_IDS)
def test_nothing_is_checked_where_cm_is_neither_installed_nor_wanted(check_id: str) -> None:
    facts = facts_for({EDGE: {"BlockThirdPartyCookies": dword(1)}}, [USER_A], cm_installed=False)
    outcome = EVALUATORS[check_id](facts, {"cm_required": False})
    assert (outcome.findings, outcome.unknown) == ([], [])


# -- THIRD_PARTY_COOKIES_BLOCKED ------------------------------------------------------------------

def test_third_party_cookies_blocked_by_machine_policy_is_one_machine_finding() -> None:
    findings, unknown = run("THIRD_PARTY_COOKIES_BLOCKED", {EDGE: {"BlockThirdPartyCookies": dword(1)}})
    assert unknown == []
    assert findings == [finding(
        "THIRD_PARTY_COOKIES_BLOCKED", MACHINE, "edge",
        "Edge policy blocks third-party cookies and no allow-list entry covers http://localhost "
        f"(BlockThirdPartyCookies=1 from machine mandatory policy, {EDGE})",
        [{"path": EDGE, "name": "BlockThirdPartyCookies", "type": "REG_DWORD", "data": 1,
          "source": "machine mandatory policy"},
         {"path": f"{EDGE}\\CookiesAllowedForUrls", "exists": False, "source": "machine mandatory policy"}],
        f"Add [*.]localhost to Edge's CookiesAllowedForUrls ({EDGE}\\CookiesAllowedForUrls), then restart Edge")]


def test_third_party_cookies_blocked_by_a_users_own_policy_is_that_users_finding() -> None:
    findings, _unknown = run("THIRD_PARTY_COOKIES_BLOCKED", {
        U_CHROME_A: {"BlockThirdPartyCookies": dword(1)},
        f"{CHROME}\\CookiesAllowedForUrls": {"1": sz("[*.]nhs.uk")},
    })
    assert [(f["scope"], f["browser"]) for f in findings] == [(SCOPE_A, "chrome")]
    evidence = findings[0]["evidence"]
    assert evidence[0] == {"path": U_CHROME_A, "name": "BlockThirdPartyCookies", "type": "REG_DWORD", "data": 1,
                           "source": "user mandatory policy"}
    assert evidence[1] == {"path": f"{CHROME}\\CookiesAllowedForUrls", "name": "1", "type": "REG_SZ",
                           "data": "[*.]nhs.uk", "source": "machine mandatory policy",
                           "note": "does not match http://localhost"}


def test_a_machine_block_that_one_user_fixes_is_reported_for_the_other_user_only() -> None:
    registry = {CHROME: {"BlockThirdPartyCookies": dword(1)},
                f"{U_CHROME_A}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")}}
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", registry) == [(SCOPE_B, "chrome")]


def test_with_nobody_logged_on_a_machine_policy_problem_is_still_reported() -> None:
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", {CHROME: {"BlockThirdPartyCookies": dword(1)}}, users=[]) == \
        [(MACHINE, "chrome")]


@pytest.mark.parametrize("registry", [
    {f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("http://localhost:*")}},
    {f"{EDGE}\\CookiesAllowedForUrls": {"0": sz("[*.]localhost")}},
    {f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.]nhs.uk"), "5": sz("[*.]localhost")}},
    {f"{EDGE}\\CookiesAllowedForUrls": {"1": expand_sz("[*.]localhost")}},
    {f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("localhost")}},
    {f"{EDGE}\\CookiesSessionOnlyForUrls": {"1": sz("[*.]localhost")}},
    {f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost,https://[*.]nhs.uk")}},
    {"hklm\\software\\policies\\microsoft\\edge\\cookiesallowedforurls": {"1": sz("[*.]LOCALHOST")}},
])
def test_third_party_blocking_with_localhost_allowed_does_not_fire(registry: dict[str, t.Any]) -> None:
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", {EDGE: {"BlockThirdPartyCookies": dword(1)}, **registry}) == []


@pytest.mark.parametrize("registry", [
    {},
    {EDGE: {"BlockThirdPartyCookies": dword(0)}},
    {f"{EDGE}\\Recommended": {"BlockThirdPartyCookies": dword(1)}, U_EDGE_A: {"BlockThirdPartyCookies": dword(0)},
     user_key(SID_B, "Software\\Policies\\Microsoft\\Edge"): {"BlockThirdPartyCookies": dword(0)}},
])
def test_no_third_party_blocking_does_not_fire(registry: dict[str, t.Any]) -> None:
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", registry) == []


def test_a_recommended_block_is_reported_for_the_users_who_do_not_override_it() -> None:
    registry = {f"{EDGE}\\Recommended": {"BlockThirdPartyCookies": dword(1)},
                U_EDGE_A: {"BlockThirdPartyCookies": dword(0)}}
    findings, _unknown = run("THIRD_PARTY_COOKIES_BLOCKED", registry)
    assert [(f["scope"], f["browser"]) for f in findings] == [(SCOPE_B, "edge")]
    assert "(recommended: the user may have changed it)" in findings[0]["summary"]


@pytest.mark.parametrize(("registry", "why"), [
    ({f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("http://localhost:43485")}}, "one port"),
    ({f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("https://[*.]localhost")}}, "https only"),
    ({f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("*.localhost")}}, "invalid pattern"),
    ({f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.].localhost")}}, "invalid pattern"),
    ({f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("*")}}, "every host"),
    ({f"{EDGE}\\CookiesAllowedForUrls": {"1": {"type": "REG_DWORD", "data": 1}}}, "wrong type"),
    ({f"{EDGE}\\CookiesAllowedForUrls": {"a": sz("[*.]localhost")}}, "non-numeric name: Chromium ignores it"),
    ({f"{EDGE}\\Recommended\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")}}, "lists cannot be recommended"),
])
def test_allow_entries_that_do_not_cover_localhost(registry: dict[str, t.Any], why: str) -> None:
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", {EDGE: {"BlockThirdPartyCookies": dword(1)}, **registry}) == \
        [(MACHINE, "edge")], why


def test_a_winning_block_entry_is_reported_as_blocked_not_as_a_missing_allow_entry() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)},
                f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")},
                f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("[*.]localhost")}}
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", registry) == []
    assert fired("LOCALHOST_COOKIES_BLOCKED", registry) == [(MACHINE, "edge")]
    registry[f"{EDGE}\\CookiesAllowedForUrls"] = {}
    registry[f"{EDGE}\\CookiesBlockedForUrls"] = {"1": sz("http://localhost:43485")}
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", registry) == [(MACHINE, "edge")]
    assert fired("LOCALHOST_COOKIES_BLOCKED", registry) == [(MACHINE, "edge")]


def test_a_user_allow_list_is_ignored_when_the_machine_sets_one_even_with_the_merge_list() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)},
                f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("[*.]nhs.uk")},
                f"{EDGE}\\PolicyListMultipleSourceMergeList": {"1": sz("CookiesAllowedForUrls")},
                f"{U_EDGE_A}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")}}
    findings, _unknown = run("THIRD_PARTY_COOKIES_BLOCKED", registry, users=[USER_A])
    assert [f["scope"] for f in findings] == [MACHINE]
    findings, _unknown = run("THIRD_PARTY_COOKIES_BLOCKED", {**registry, f"{EDGE}\\CookiesAllowedForUrls": {}},
                             users=[USER_A])
    assert [f["scope"] for f in findings] == [MACHINE]


def test_an_ignored_entry_is_shown_with_the_reason() -> None:
    registry = {EDGE: {"BlockThirdPartyCookies": dword(1)},
                f"{EDGE}\\CookiesAllowedForUrls": {"localhost": sz("[*.]localhost")}}
    (found,), _unknown = run("THIRD_PARTY_COOKIES_BLOCKED", registry)
    assert found["evidence"][-1] == {
        "path": f"{EDGE}\\CookiesAllowedForUrls", "name": "localhost", "type": "REG_SZ", "data": "[*.]localhost",
        "source": "machine mandatory policy",
        "note": "ignored: the value name is not a number (Chromium reads only numbered values of a list policy)"}


def test_a_group_policy_owned_value_says_which_policy_to_change() -> None:
    gpo = [{"scope": "machine", "sid": None, "key": "HKLM\\Software\\Policies\\Microsoft\\Edge",
            "name": "BlockThirdPartyCookies", "gpo": "NHS Edge baseline"}]
    (found,), _unknown = run("THIRD_PARTY_COOKIES_BLOCKED", {EDGE: {"BlockThirdPartyCookies": dword(1)}}, gpo=gpo)
    assert found["remedy"]["managed_by_gpo"] is True
    assert found["remedy"]["action"].endswith(
        f"; domain Group Policy sets {EDGE} BlockThirdPartyCookies (GPO 'NHS Edge baseline'): change 'Computer "
        "Configuration > Administrative Templates > Microsoft Edge > Content settings > Block third party cookies' "
        "in that GPO; a local change is undone at the next Group Policy refresh")
    (local,), _unknown = run("THIRD_PARTY_COOKIES_BLOCKED", {EDGE: {"BlockThirdPartyCookies": dword(1)}}, gpo=[])
    assert local["remedy"]["managed_by_gpo"] is False


# -- COOKIES_BLOCKED_BY_DEFAULT -------------------------------------------------------------------

def test_cookies_blocked_by_default() -> None:
    findings, unknown = run("COOKIES_BLOCKED_BY_DEFAULT", {CHROME: {"DefaultCookiesSetting": dword(2)}})
    assert unknown == []
    assert findings == [finding(
        "COOKIES_BLOCKED_BY_DEFAULT", MACHINE, "chrome",
        "Chrome policy blocks all cookies by default and no allow-list entry covers http://localhost "
        f"(DefaultCookiesSetting=2 from machine mandatory policy, {CHROME})",
        [{"path": CHROME, "name": "DefaultCookiesSetting", "type": "REG_DWORD", "data": 2,
          "source": "machine mandatory policy", "note": "2 = block all cookies"},
         {"path": f"{CHROME}\\CookiesAllowedForUrls", "exists": False, "source": "machine mandatory policy"}],
        f"Add [*.]localhost to Chrome's CookiesAllowedForUrls ({CHROME}\\CookiesAllowedForUrls), then restart Chrome")]


@pytest.mark.parametrize("registry", [
    {CHROME: {"DefaultCookiesSetting": dword(1)}},
    {CHROME: {"DefaultCookiesSetting": dword(4)}},
    {CHROME: {"DefaultCookiesSetting": dword(2)}, f"{CHROME}\\CookiesAllowedForUrls": {"1": sz("[*.]localhost")}},
    {f"{CHROME}\\Recommended": {"DefaultCookiesSetting": dword(2)}},
])
def test_cookies_not_blocked_by_default(registry: dict[str, t.Any]) -> None:
    assert fired("COOKIES_BLOCKED_BY_DEFAULT", registry) == []


def test_a_one_port_allow_entry_names_the_ports_left_uncovered() -> None:
    registry = {CHROME: {"DefaultCookiesSetting": dword(2)},
                f"{CHROME}\\CookiesAllowedForUrls": {"1": sz("http://localhost:43485")}}
    (found,), _unknown = run("COOKIES_BLOCKED_BY_DEFAULT", registry)
    assert "no allow-list entry covers http://localhost on every port (only on 43485)" in found["summary"]
    assert found["evidence"][1]["note"] == "matches http://localhost on one port only"


# -- LOCALHOST_COOKIES_BLOCKED --------------------------------------------------------------------

def test_localhost_cookies_blocked() -> None:
    findings, unknown = run("LOCALHOST_COOKIES_BLOCKED",
                            {f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("[*.]example.com"), "2": sz("[*.]localhost")}})
    assert unknown == []
    entry = f"'[*.]localhost' ({EDGE}\\CookiesBlockedForUrls value 2)"
    assert findings == [finding(
        "LOCALHOST_COOKIES_BLOCKED", MACHINE, "edge",
        f"Edge policy blocks cookies for http://localhost: CookiesBlockedForUrls {entry}",
        [{"path": f"{EDGE}\\CookiesBlockedForUrls", "name": "2", "type": "REG_SZ", "data": "[*.]localhost",
          "source": "machine mandatory policy",
          "note": "covers http://localhost on every port; wins over every allow entry"}],
        f"Remove {entry} from Edge's CookiesBlockedForUrls (only when the play opts in), then restart Edge")]


@pytest.mark.parametrize(("registry", "fires"), [
    ({f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("http://localhost:43485")}}, True),
    ({f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("*")}}, True),
    ({f"{U_EDGE_A}\\CookiesBlockedForUrls": {"1": sz("localhost")}}, True),
    ({f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("https://localhost")}}, False),
    ({f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("*.localhost")}}, False),
    ({f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("127.0.0.1")}}, False),
    ({f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("[*.]localhost")},
      f"{EDGE}\\CookiesAllowedForUrls": {"1": sz("http://localhost:*")}}, False),
    ({f"{EDGE}\\CookiesBlockedForUrls": {"1": sz("[*.]localhost,https://example.com")}}, False),
])
def test_localhost_cookies_blocked_near_misses(registry: dict[str, t.Any], fires: bool) -> None:
    assert bool(fired("LOCALHOST_COOKIES_BLOCKED", registry)) is fires


def test_a_block_in_one_users_hive_is_that_users_finding() -> None:
    assert fired("LOCALHOST_COOKIES_BLOCKED", {f"{U_EDGE_A}\\CookiesBlockedForUrls": {"1": sz("localhost")}}) == \
        [(SCOPE_A, "edge")]


# -- Firefox --------------------------------------------------------------------------------------

def test_firefox_is_checked_only_where_its_policy_says_so() -> None:
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", {FIREFOX: {"Behavior": sz("reject-foreign")}}) == \
        [(MACHINE, "firefox")]
    assert fired("COOKIES_BLOCKED_BY_DEFAULT", {FIREFOX: {"Behavior": sz("reject")}}) == [(MACHINE, "firefox")]
    assert fired("LOCALHOST_COOKIES_BLOCKED", {f"{FIREFOX}\\Block": {"1": sz("http://localhost")}}) == \
        [(MACHINE, "firefox")]
    # an Allow origin covers one port (http://localhost: port 80 only), never CM's per-session port
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", {FIREFOX: {"Behavior": sz("reject-foreign")},
                                                 f"{FIREFOX}\\Allow": {"1": sz("http://localhost")}}) == \
        [(MACHINE, "firefox")]
    assert fired("THIRD_PARTY_COOKIES_BLOCKED", {FIREFOX: {"Behavior": sz("reject-tracker")}}) == []


# -- AUTH_ALLOWLIST_EXCLUDES_LOCALHOST ------------------------------------------------------------

def test_auth_allowlist_excludes_localhost() -> None:
    findings, unknown = run("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", {EDGE: {"AuthServerAllowlist": sz("*.nhs.uk")}})
    assert unknown == []
    assert findings == [finding(
        "AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", MACHINE, "edge",
        "Edge's AuthServerAllowlist is set and no entry matches localhost, so Edge never sends Windows credentials "
        f"to NHS Credential Management (machine mandatory policy, {EDGE})",
        [{"path": EDGE, "name": "AuthServerAllowlist", "type": "REG_SZ", "data": "*.nhs.uk",
          "source": "machine mandatory policy", "note": "no entry matches http://localhost on every port"}],
        f"Add localhost to Edge's AuthServerAllowlist ({EDGE}), then restart Edge")]


@pytest.mark.parametrize(("value", "fires"), [
    ("localhost", False), ("*localhost", False), ("*", False), ("*.nhs.uk,localhost", False), ("<local>", False),
    (".localhost", True), ("*.localhost", True), ("127.0.0.1", True), ("localhost:43487", True),
    ("https://localhost", True), ("", True),
])
def test_auth_allowlist_near_misses(value: str, fires: bool) -> None:
    assert bool(fired("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", {CHROME: {"AuthServerAllowlist": sz(value)}})) is fires


def test_auth_allowlist_unset_does_not_fire() -> None:
    assert fired("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", {CHROME: {"BlockThirdPartyCookies": dword(0)}}) == []


# -- zones ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("check_id", "name", "bad"), [
    ("INTRANET_AUTODETECT_ON", "AutoDetect", 1),
    ("INTRANET_LOCAL_SITES_OFF", "IntranetName", 0),
    ("INTRANET_PROXY_BYPASS_OFF", "ProxyBypass", 0),
    ("INTRANET_UNC_OFF", "UNCAsIntranet", 0),
])
def test_zonemap_flags_fire_per_user(check_id: str, name: str, bad: int) -> None:
    zonemap = dict(good_zones(SID_A)[U_ZONEMAP_A])
    zonemap[name] = dword(bad)
    assert fired(check_id, {U_ZONEMAP_A: zonemap}) == [(SCOPE_A, None)]
    del zonemap[name]
    assert fired(check_id, {U_ZONEMAP_A: zonemap}) == [(SCOPE_A, None)]  # absent: the default is not what NHS needs


def test_intranet_autodetect_on_exact_shape() -> None:
    zonemap = dict(good_zones(SID_A)[U_ZONEMAP_A], AutoDetect=dword(1))
    findings, _unknown = run("INTRANET_AUTODETECT_ON", {U_ZONEMAP_A: zonemap})
    policy_a = user_key(SID_A, "Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap")
    assert findings == [finding(
        "INTRANET_AUTODETECT_ON", SCOPE_A, None,
        "Local intranet Sites: 'Automatically detect intranet network' is ticked (ZoneMap AutoDetect = 1 in the "
        "user's own settings; NHS requires 0)",
        [{"path": M_POLICY_ZONEMAP, "name": "AutoDetect", "exists": False, "source": "machine policy"},
         {"path": policy_a, "name": "AutoDetect", "exists": False, "source": "user policy"},
         {"path": U_ZONEMAP_A, "name": "AutoDetect", "type": "REG_DWORD", "data": 1, "source": "user"}],
        f"Set AutoDetect to 0 (REG_DWORD) in {U_ZONEMAP_A}")]


def test_a_machine_zone_policy_is_one_machine_finding_owned_by_its_gpo() -> None:
    gpo = [{"scope": "machine", "sid": None, "key": M_POLICY_ZONEMAP, "name": "IntranetName", "gpo": "Zones"}]
    findings, _unknown = run("INTRANET_LOCAL_SITES_OFF", {M_POLICY_ZONEMAP: {"IntranetName": dword(0)}}, gpo=gpo)
    assert [f["scope"] for f in findings] == [MACHINE]
    assert findings[0]["remedy"]["managed_by_gpo"] is True
    assert "'Computer Configuration > Administrative Templates > Windows Components > Internet Explorer > Internet " \
           "Control Panel > Security Page > Intranet Sites: Include all local (intranet) sites not listed in other " \
           "zones'" in findings[0]["remedy"]["action"]


def test_security_hklm_only_makes_the_machine_values_decide() -> None:
    hklm_only = {f"HKLM\\{IS_POLICY}": {"Security_HKLM_only": dword(1)}}
    good_machine = {M_ZONEMAP: {"AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1),
                                "UNCAsIntranet": dword(1)}}
    bad_users = {U_ZONEMAP_A: {"AutoDetect": dword(1)}, U_ZONEMAP_B: {"AutoDetect": dword(1)}}
    assert fired("INTRANET_AUTODETECT_ON", {**hklm_only, **good_machine, **bad_users}) == []
    findings, _unknown = run("INTRANET_AUTODETECT_ON", hklm_only)
    assert [f["scope"] for f in findings] == [MACHINE]
    assert findings[0]["evidence"][0] == {
        "path": f"HKLM\\{IS_POLICY}", "name": "Security_HKLM_only", "type": "REG_DWORD", "data": 1,
        "source": "machine policy", "note": "only the machine's zone settings apply"}


def test_logon_not_automatic() -> None:
    findings, _unknown = run("INTRANET_LOGON_NOT_AUTOMATIC", {U_ZONE1_A: {"1A00": dword(0x10000)}})
    assert [(f["scope"], f["summary"]) for f in findings] == [
        (SCOPE_A, "Local intranet zone Logon is 0x10000 (prompt for user name and password), not automatic "
                  "(Zones\\1 1A00)")]
    assert findings[0]["remedy"]["action"] == \
        f"Set 1A00 to 0x20000 (automatic logon only in Intranet zone) in {U_ZONE1_A}"
    assert fired("INTRANET_LOGON_NOT_AUTOMATIC", {U_ZONE1_A: {"1A00": dword(0x30000)}}) == [(SCOPE_A, None)]
    assert fired("INTRANET_LOGON_NOT_AUTOMATIC", {U_ZONE1_A: {"1A00": dword(0)}}) == []
    assert fired("INTRANET_LOGON_NOT_AUTOMATIC", {U_ZONE1_A: {}}) == []  # absent: 0x20000 assumed


def test_localhost_mapped_outside_intranet() -> None:
    findings, _unknown = run("LOCALHOST_MAPPED_OUTSIDE_INTRANET", {f"{U_DOMAINS_A}\\localhost": {"http": dword(3)}})
    assert [(f["scope"], f["summary"]) for f in findings] == [
        (SCOPE_A, "localhost -> zone 3 (Internet) by ZoneMap\\Domains: outside the Local intranet zone, so the "
                  "browser will not log on silently")]
    assert findings[0]["evidence"] == [
        {"path": f"{U_DOMAINS_A}\\localhost", "name": "http", "type": "REG_DWORD", "data": 3, "source": "user",
         "zone": 3, "host": "localhost", "via": "ZoneMap\\Domains"}]
    assert findings[0]["remedy"]["action"] == \
        f"Map localhost to zone 1 (Local intranet): map localhost to zone 1 in {U_DOMAINS_A}\\localhost " \
        "(value http); then restart the browser (urlmon reads zone mappings when it starts)"


@pytest.mark.parametrize(("registry", "scopes"), [
    ({f"{U_DOMAINS_A}\\localhost": {"http": dword(1)}}, []),
    ({f"{U_DOMAINS_A}\\localhost": {"https": dword(3)}}, []),
    ({f"{U_ZONEMAP_A}\\Ranges\\Range1": {":Range": sz("127.0.0.1"), "*": dword(3)}}, [SCOPE_A]),
    ({f"HKLM\\{IS_POLICY}\\ZoneMapKey": {"localhost": sz("4")}}, [MACHINE]),
    ({f"HKLM\\{IS_POLICY}\\ZoneMapKey": {"localhost": sz("1")}}, []),
    ({f"{M_ZONEMAP}\\Domains\\localhost": {"*": dword(2)}}, [MACHINE]),
])
def test_localhost_mappings_near_misses(registry: dict[str, t.Any], scopes: list[dict[str, t.Any]]) -> None:
    assert [scope for scope, _browser in fired("LOCALHOST_MAPPED_OUTSIDE_INTRANET", registry)] == scopes


# -- checks that cannot be made -------------------------------------------------------------------

def test_an_unreadable_machine_key_makes_the_check_unknown_not_healthy() -> None:
    findings, unknown = run("THIRD_PARTY_COOKIES_BLOCKED", {}, denied=(EDGE,))
    assert findings == []
    assert unknown == [{"check": "THIRD_PARTY_COOKIES_BLOCKED", "reason": f"Edge: cannot read {EDGE}: access_denied"}]


def test_an_unavailable_hive_is_unknown_for_that_user() -> None:
    offline = dict(USER_B, hive="unavailable", error="NTUSER.DAT is locked", session=None)
    findings, unknown = run("INTRANET_AUTODETECT_ON", {}, users=[USER_A, offline])
    assert findings == []
    assert unknown == [{"check": "INTRANET_AUTODETECT_ON",
                        "reason": "NHS\\bjones (not logged on): NTUSER.DAT is locked"}]


def test_an_unreadable_user_key_is_unknown_for_that_user_only() -> None:
    findings, unknown = run("INTRANET_AUTODETECT_ON", {U_ZONEMAP_B: {"AutoDetect": dword(1)}}, denied=(U_ZONEMAP_A,))
    assert [f["scope"] for f in findings] == [SCOPE_B]
    assert unknown == [{"check": "INTRANET_AUTODETECT_ON",
                        "reason": f"NHS\\asmith (session 1): cannot read {U_ZONEMAP_A}: access_denied"}]


def test_reads_missing_from_the_facts_are_unknown() -> None:
    outcome = _eval_zones.check_intranet_unc_off({"users": [], "products": {}}, OPTIONS)
    assert (outcome.findings, outcome.unknown) == (
        [], [{"check": "INTRANET_UNC_OFF", "reason": "the policy keys of HKLM were not read"}])
    outcome = _eval_browser.check_third_party_cookies_blocked({"users": [], "products": {}}, OPTIONS)
    assert {item["reason"].split(":")[0] for item in outcome.unknown} == {"Chrome", "Edge", "Firefox"}


# -- Group Policy table and ownership ---------------------------------------------------------------

@pytest.mark.parametrize(("key", "name", "policy"), [
    (CHROME, "BlockThirdPartyCookies", "Computer Configuration > Administrative Templates > Google Chrome > "
                                       "Content settings > Block third party cookies"),
    (f"{CHROME}\\Recommended", "blockthirdpartycookies", "Computer Configuration > Administrative Templates > "
     "Google Chrome - Default Settings (users can override) > Content settings > Block third party cookies"),
    (f"{U_EDGE_A}\\CookiesAllowedForUrls", "3", "User Configuration > Administrative Templates > Microsoft Edge > "
                                                "Content settings > Allow cookies on specific sites"),
    (f"HKLM\\{IS_POLICY}\\Zones\\1", "1A00", "Computer Configuration > Administrative Templates > Windows "
     "Components > Internet Explorer > Internet Control Panel > Security Page > Intranet Zone > Logon options"),
    (f"HKLM\\{IS_POLICY}\\ZoneMapKey", "localhost", "Computer Configuration > Administrative Templates > Windows "
     "Components > Internet Explorer > Internet Control Panel > Security Page > Site to Zone Assignment List"),
    (f"{FIREFOX}\\Block", "1", "Computer Configuration > Administrative Templates > Firefox > Cookies > "
                               "Blocked Sites"),
    (M_ZONEMAP, "AutoDetect", None),  # not a policy key: Group Policy Preferences or a script wrote it
])
def test_the_policy_that_writes_a_value(key: str, name: str, policy: str | None) -> None:
    assert gpo_policy_path(key, name) == policy


def test_gpo_ownership_needs_the_same_key_and_value() -> None:
    settings = [{"scope": "machine", "sid": None, "key": "HKEY_LOCAL_MACHINE\\software\\policies\\google\\chrome",
                 "name": "BLOCKTHIRDPARTYCOOKIES", "gpo": "Chrome"},
                {"scope": "user", "sid": SID_A, "key": f"{U_EDGE_A}\\CookiesBlockedForUrls", "name": "**delvals.",
                 "gpo": "Edge user"}]
    facts = {"gpo": {"available": True, "error": None, "settings": settings}}
    assert gpo_owner(facts, CHROME, "BlockThirdPartyCookies") is settings[0]
    assert gpo_owner(facts, CHROME, "DefaultCookiesSetting") is None
    assert gpo_owner(facts, f"{U_EDGE_A}\\CookiesBlockedForUrls", "7") is settings[1]
    assert gpo_owner(facts, f"{user_key(SID_B, 'Software')}\\CookiesBlockedForUrls", "7") is None
    assert gpo_owner({"gpo": {"available": False, "error": "rsop failed", "settings": settings}}, CHROME,
                     "BlockThirdPartyCookies") is None


# -- through diagnose's own reads (plan_reads -> runner results -> build_facts -> evaluate) ----------

def test_the_checks_run_on_the_facts_diagnose_builds() -> None:
    host = healthy_host()
    options = options_with_defaults({})
    assert [f["id"] for f in evaluate(build_facts(results_for(host, options), options), options)[0]
            if f["id"] in MY_IDS] == []
    host["registry"][EDGE] = {"BlockThirdPartyCookies": dword(1)}
    host["user_keys"][ZONEMAP] = dict(host["user_keys"][ZONEMAP], AutoDetect=dword(1))
    host["gpo_settings"] = [{"scope": "machine", "sid": None, "key": EDGE, "name": "BlockThirdPartyCookies",
                             "gpo": "Edge baseline"}]
    findings, unknown = evaluate(build_facts(results_for(host, options), options), options)
    assert unknown == []
    mine = [(f["id"], f["scope"]["kind"], f["scope"].get("session"), f["browser"], f["remedy"]["managed_by_gpo"])
            for f in findings if f["id"] in MY_IDS]
    assert mine == [("THIRD_PARTY_COOKIES_BLOCKED", "machine", None, "edge", True),
                    ("INTRANET_AUTODETECT_ON", "user", 1, None, False),
                    ("INTRANET_AUTODETECT_ON", "user", 2, None, False)]
