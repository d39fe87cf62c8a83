"""Local Network Access: which policies Chrome and Edge read in each version, what they decide
for the NHS sites' requests to localhost (the vendors' documented precedence and examples,
docs/browser-policy.md), the three LOCALHOST_ACCESS_* findings, and the third_party_cookies
role's fix for them (planned as the action plugin plans it, applied, diagnosed again)."""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import (
    CHROME,
    EDGE,
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
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.browser_policy import chromium_policy
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.local_network import (
    allow_policy_for,
    browser_version,
    loopback_access,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import BROWSER_EXES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import planned_reads
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cookies import DEFAULTS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
    DEFAULTS as LNA_DEFAULTS,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
    HANDLED,
    origin_errors,
    plan_localhost_access,
)

ERS = "https://ers.nhs.uk"
CIS2 = "https://am.nhsidentity.spineservices.nhs.uk"
BASE: dict[str, t.Any] = {**good_zones(SID_A), **good_zones(SID_B)}
OPTIONS = {"cm_required": True}
VENDOR_EXAMPLE = ["http://www.example.com:8080", "[*.]example.edu", "*"]  # every LNA policy page's example value


def entries(*patterns: str) -> dict[str, t.Any]:
    return {str(index): sz(pattern) for index, pattern in enumerate(patterns, 1)}


def lists(browser_key: str, **policies: list[str]) -> dict[str, t.Any]:
    return {f"{browser_key}\\{policy}": entries(*patterns) for policy, patterns in policies.items()}


def facts(registry: dict[str, t.Any], browsers: dict[str, str], gpo: list[dict[str, t.Any]] | None = None,
          **kwargs: t.Any) -> dict[str, t.Any]:
    return facts_for({**BASE, **registry}, [USER_A, USER_B], gpo, browsers=browsers, **kwargs)


def lna(the_facts: dict[str, t.Any]) -> set[tuple[str, str | None, str]]:
    findings, _unknown = evaluate(the_facts, OPTIONS)
    return {(f["id"], f["browser"], f["scope"]["kind"]) for f in findings if f["id"] in HANDLED}


def decisions(registry: dict[str, t.Any], browser: str, major: int, sites: tuple[str, ...] = (ERS, CIS2)
              ) -> list[tuple[str, str | None]]:
    view = chromium_policy(facts_for(registry), browser, None)
    access = loopback_access(view, major, sites)
    return [(d.setting, d.decider.policy if d.decider else None) for d in access.sites]


# -- what the policies decide -------------------------------------------------------------------

@pytest.mark.parametrize(("site", "expected"), [
    ("http://www.example.com:8080", "http://www.example.com:8080"),
    ("https://a.example.edu", "[*.]example.edu"),
    ("https://example.edu", "[*.]example.edu"),
    (ERS, "*"),
])
def test_the_vendors_example_values_match_as_url_patterns(site: str, expected: str) -> None:
    registry = lists(CHROME, LocalNetworkAccessAllowedForUrls=VENDOR_EXAMPLE)
    view = chromium_policy(facts_for(registry), "chrome", None)
    decision = loopback_access(view, 142, (site,)).sites[0]
    assert decision.setting == "allow"
    assert decision.decider is not None and decision.decider.entry.pair.text == expected


@pytest.mark.parametrize(("policies", "major", "expected"), [
    # No policy: the user's own setting, i.e. the prompt.
    ({}, 146, "ask"),
    # Chromium's browser test LocalNetworkAccessBlockedForUrlsPolicy: both lists '*', block wins.
    ({"LocalNetworkAccessAllowedForUrls": ["*"], "LocalNetworkAccessBlockedForUrls": ["*"]}, 142, "block"),
    # The loopback pages' order: LoopbackNetworkAllowedForUrls outranks LocalNetworkAccessBlockedForUrls ...
    ({"LoopbackNetworkAllowedForUrls": [ERS], "LocalNetworkAccessBlockedForUrls": ["*"]}, 146, "allow"),
    # ... but only from 146, where it is read; Chrome 145 applies the block.
    ({"LoopbackNetworkAllowedForUrls": [ERS], "LocalNetworkAccessBlockedForUrls": ["*"]}, 145, "block"),
    # LoopbackNetworkBlockedForUrls outranks everything for loopback.
    ({"LoopbackNetworkBlockedForUrls": ["*"], "LoopbackNetworkAllowedForUrls": [ERS]}, 146, "block"),
    # Policy order, not pattern specificity: the broad block beats the exact allow.
    ({"LocalNetworkAccessBlockedForUrls": ["[*.]nhs.uk"], "LocalNetworkAccessAllowedForUrls": [ERS]}, 143, "block"),
    # Lists that never apply to loopback: the user is asked.
    ({"LocalNetworkAllowedForUrls": [ERS]}, 146, "ask"),
    ({"InsecurePrivateNetworkRequestsAllowedForUrls": [ERS]}, 142, "ask"),
    ({"LoopbackNetworkAllowedForUrls": [ERS]}, 145, "ask"),
    # An entry for another site, or an invalid one, does not match.
    ({"LocalNetworkAccessAllowedForUrls": ["https://ers.nhs.uk.example.com", "*.nhs.uk"]}, 142, "ask"),
])
def test_precedence_and_versions_for_ers(policies: dict[str, list[str]], major: int, expected: str) -> None:
    registry = lists(CHROME, **policies)
    assert decisions(registry, "chrome", major, (ERS,))[0][0] == expected


def test_ignored_allow_entries_say_why() -> None:
    registry = lists(EDGE, LoopbackNetworkAllowedForUrls=[ERS], InsecurePrivateNetworkRequestsAllowedForUrls=[ERS],
                     LocalNetworkAllowedForUrls=[ERS])
    view = chromium_policy(facts_for(registry), "edge", None)
    decision = loopback_access(view, 143, (ERS,)).sites[0]
    assert decision.setting == "ask"
    assert [(m.policy, m.reason) for m in decision.ignored] == [
        ("LoopbackNetworkAllowedForUrls", "LoopbackNetworkAllowedForUrls is read from Edge 146; Edge 143 ignores it"),
        ("LocalNetworkAllowedForUrls", "LocalNetworkAllowedForUrls applies to local network endpoints, not to "
                                       "localhost"),
        ("InsecurePrivateNetworkRequestsAllowedForUrls", "InsecurePrivateNetworkRequestsAllowedForUrls is obsolete "
                                                         "after Edge 137; Edge 143 ignores it"),
    ]


@pytest.mark.parametrize(("browser", "major", "policy"), [
    ("chrome", 142, "LocalNetworkAccessAllowedForUrls"), ("chrome", 145, "LocalNetworkAccessAllowedForUrls"),
    ("chrome", 146, "LoopbackNetworkAllowedForUrls"), ("edge", 143, "LocalNetworkAccessAllowedForUrls"),
    ("edge", 150, "LoopbackNetworkAllowedForUrls")])
def test_the_allow_list_to_add_to_is_the_one_the_version_reads(browser: str, major: int, policy: str) -> None:
    assert allow_policy_for(browser, major) == policy


# -- the installed version -----------------------------------------------------------------------

def test_the_version_is_the_installed_file_version_with_running_processes_noted() -> None:
    the_facts = facts({}, {"chrome": "146.0.7680.72"})
    the_facts["processes"] = [{"pid": 9, "name": "chrome.exe", "image": BROWSER_EXES["chrome"][0], "session": 1,
                               "user": "NHS\\asmith", "version": "145.0.7632.160"}]
    version = browser_version(the_facts, "chrome")
    assert (version.version, version.major, version.error) == ("146.0.7680.72", 146, None)
    assert version.evidence[0]["path"] == BROWSER_EXES["chrome"][0]
    assert version.evidence[1]["version"] == "145.0.7632.160"


def test_a_browser_installed_elsewhere_is_seen_while_it_runs_and_a_missing_one_not_at_all() -> None:
    the_facts = facts({}, {})
    the_facts["processes"] = [{"pid": 9, "name": "msedge.exe", "image": "D:\\Apps\\Edge\\msedge.exe", "session": 1,
                               "user": "NHS\\asmith", "version": "144.0.3719.82"}]
    assert browser_version(the_facts, "edge").major == 144
    assert browser_version(the_facts, "chrome").major is None
    assert browser_version(the_facts, "chrome").error is None


def test_the_read_of_the_browser_files_is_planned_and_normalised() -> None:
    planned = dict(planned_reads({}))
    assert planned["browser_files"] == {"op": "file_info",
                                        "paths": [*BROWSER_EXES["chrome"], *BROWSER_EXES["edge"]]}
    results = []
    for label, op in planned_reads({}):
        if label == "browser_files":
            results.append({"ok": True, "files": [{"path": p, "exists": p.endswith("msedge.exe") and "x86" in p,
                                                   "version": "143.0.3650.66" if "x86" in p and "Edge" in p else None}
                                                  for p in op["paths"]]})
        else:
            results.append({"ok": False, "error": "failed", "message": "not in this test"})
    files = build_facts(results, {})["browser_files"]
    assert [(f["browser"], f["exists"]) for f in files] == [("chrome", False), ("chrome", False), ("edge", True),
                                                            ("edge", False)]
    failed = [{"ok": False, "error": "access_denied", "message": "no"}] * len(planned_reads({}))
    assert build_facts(failed, {})["browser_files"] is None


# -- the findings ---------------------------------------------------------------------------------

def test_no_policy_on_enforcing_versions_asks_every_user_and_older_versions_do_not_ask() -> None:
    assert lna(facts({}, {"chrome": "142.0.7444.60", "edge": "143.0.3650.66"})) == {
        ("LOCALHOST_ACCESS_NOT_ALLOWED", "chrome", "machine"), ("LOCALHOST_ACCESS_NOT_ALLOWED", "edge", "machine")}
    assert lna(facts({}, {"chrome": "141.0.7390.122", "edge": "142.0.3595.94"})) == set()
    assert lna(facts({}, {})) == set()  # neither browser installed nor running: nothing to check


def test_the_allow_policy_the_version_reads_makes_it_healthy() -> None:
    registry = {**lists(CHROME, LoopbackNetworkAllowedForUrls=[ERS, CIS2]),
                **lists(EDGE, LocalNetworkAccessAllowedForUrls=["[*.]nhs.uk"])}
    assert lna(facts(registry, {"chrome": "146.0.7680.72", "edge": "143.0.3650.66"})) == set()


def test_a_block_is_an_error_that_names_the_policy_its_source_and_the_entry() -> None:
    registry = lists(CHROME, LocalNetworkAccessBlockedForUrls=["*"])
    findings, _unknown = evaluate(facts(registry, {"chrome": "146.0.7680.72"}), OPTIONS)
    (finding,) = [f for f in findings if f["id"] in HANDLED]
    assert (finding["id"], finding["severity"], finding["fault"]) == ("LOCALHOST_ACCESS_BLOCKED", "error", 1)
    assert "LocalNetworkAccessBlockedForUrls '*' (machine mandatory policy, " \
           f"{CHROME}\\LocalNetworkAccessBlockedForUrls value 1)" in finding["summary"]
    entry = next(e for e in finding["evidence"] if e.get("name") == "1")
    assert entry["source"] == "machine mandatory policy"
    assert entry["note"].startswith(f"matches {ERS}, {CIS2}; decides for")
    assert finding["evidence"][0] == {"path": BROWSER_EXES["chrome"][0], "version": "146.0.7680.72",
                                      "source": "file version of the installed browser"}
    assert "LoopbackNetworkAllowedForUrls" in finding["remedy"]["action"]


def test_a_block_nothing_outranks_says_to_remove_it() -> None:
    registry = lists(EDGE, LoopbackNetworkBlockedForUrls=[ERS, CIS2])
    findings, _unknown = evaluate(facts(registry, {"edge": "146.0.3856.62"}), OPTIONS)
    (finding,) = [f for f in findings if f["id"] in HANDLED]
    assert finding["remedy"]["action"].startswith("Remove LoopbackNetworkBlockedForUrls 'https://ers.nhs.uk'")


def test_a_policy_the_version_does_not_read_is_its_own_warning() -> None:
    registry = {**lists(CHROME, LoopbackNetworkAllowedForUrls=[ERS, CIS2]),
                **lists(EDGE, InsecurePrivateNetworkRequestsAllowedForUrls=["[*.]nhs.uk"])}
    the_facts = facts(registry, {"chrome": "142.0.7444.60", "edge": "143.0.3650.66"})
    assert lna(the_facts) == {("LOCALHOST_ACCESS_POLICY_NOT_HONOURED", "chrome", "machine"),
                              ("LOCALHOST_ACCESS_POLICY_NOT_HONOURED", "edge", "machine")}
    findings, _unknown = evaluate(the_facts, OPTIONS)
    chrome = next(f for f in findings if f["browser"] == "chrome" and f["id"] in HANDLED)
    assert "LoopbackNetworkAllowedForUrls is read from Chrome 146; Chrome 142 ignores it" in chrome["summary"]
    assert "LocalNetworkAccessAllowedForUrls" in chrome["remedy"]["action"]


def test_the_temporary_opt_out_turns_the_checks_off_from_142() -> None:
    registry = {CHROME: {"LocalNetworkAccessRestrictionsTemporaryOptOut": dword(1)},
                **lists(CHROME, LocalNetworkAccessBlockedForUrls=["*"])}
    assert lna(facts(registry, {"chrome": "142.0.7444.60"})) == set()
    registry[CHROME] = {"LocalNetworkAccessRestrictionsTemporaryOptOut": dword(0)}
    assert lna(facts(registry, {"chrome": "142.0.7444.60"})) == {("LOCALHOST_ACCESS_BLOCKED", "chrome", "machine")}


def test_a_users_own_policy_hive_gives_a_finding_for_that_user_only() -> None:
    registry = lists(user_key(SID_A, "Software\\Policies\\Google\\Chrome"), LocalNetworkAccessBlockedForUrls=[ERS])
    findings, _unknown = evaluate(facts(registry, {"chrome": "143.0.7499.110"}), OPTIONS)
    found = {(f["id"], f["scope"].get("sid")) for f in findings if f["id"] in HANDLED}
    assert found == {("LOCALHOST_ACCESS_BLOCKED", SID_A), ("LOCALHOST_ACCESS_NOT_ALLOWED", SID_A),
                     ("LOCALHOST_ACCESS_NOT_ALLOWED", SID_B)}


def test_a_list_set_by_a_gpo_says_so() -> None:
    registry = lists(EDGE, LocalNetworkAccessAllowedForUrls=["https://other.example"])
    gpo = [{"scope": "machine", "sid": None, "key": f"{EDGE}\\LocalNetworkAccessAllowedForUrls", "name": "1",
            "gpo": "Edge baseline"}]
    findings, _unknown = evaluate(facts(registry, {"edge": "143.0.3650.66"}, gpo), OPTIONS)
    (finding,) = [f for f in findings if f["id"] in HANDLED]
    assert finding["remedy"]["managed_by_gpo"] is True
    assert "Edge baseline" in finding["remedy"]["action"]
    entry = next(e for e in finding["evidence"] if e.get("name") == "1")
    assert (entry["source"], entry["gpo"], entry["data"]) == ("machine mandatory policy", "Edge baseline",
                                                              "https://other.example")


def test_an_unreadable_version_is_unknown_not_healthy() -> None:
    the_facts = facts({}, {"chrome": "146.0.7680.72"})
    the_facts["browser_files"] = None
    the_facts["read_errors"] = {"browser_files": "access_denied: no"}
    findings, unknown = evaluate(the_facts, OPTIONS)
    assert not [f for f in findings if f["id"] in HANDLED]
    assert {u["check"] for u in unknown} >= set(HANDLED)


# -- the fix ---------------------------------------------------------------------------------------

def planned(registry: dict[str, t.Any], versions: dict[str, str], gpo: list[dict[str, t.Any]] | None = None,
            **options: t.Any):
    """What the role plans with ``versions`` installed ({browser: file version})."""
    return planned_fix(plan_localhost_access, {**DEFAULTS, **LNA_DEFAULTS}, facts(registry, versions, gpo),
                       **options)


def writes(the_plan: t.Any) -> list[tuple[str, str, str, t.Any]]:
    return [(op["op"], op["key"], op["name"], op.get("data")) for op in the_plan.write_ops]


def test_not_allowed_adds_the_sites_after_the_last_entry_of_the_list_the_version_reads() -> None:
    registry = {f"{EDGE}\\LocalNetworkAccessAllowedForUrls": {"2": sz("https://other.example"), "x": sz("y")}}
    browsers = {"edge": "143.0.3650.66"}
    assert lna(facts(registry, browsers)) == {("LOCALHOST_ACCESS_NOT_ALLOWED", "edge", "machine")}
    _policy, the_plan = planned(registry, browsers)
    assert writes(the_plan) == [("reg_write", f"{EDGE}\\LocalNetworkAccessAllowedForUrls", "3", ERS),
                                ("reg_write", f"{EDGE}\\LocalNetworkAccessAllowedForUrls", "4", CIS2)]
    after = applied({**BASE, **registry}, the_plan)
    assert after[f"{EDGE}\\LocalNetworkAccessAllowedForUrls"]["2"] == sz("https://other.example")
    assert lna(facts_for(after, [USER_A, USER_B], browsers=browsers)) == set()
    again = planned({k: v for k, v in after.items() if k not in BASE}, browsers)
    assert again[1].changed is False


def test_a_policy_not_read_by_the_version_gets_the_list_it_reads_and_keeps_its_own() -> None:
    registry = lists(CHROME, LoopbackNetworkAllowedForUrls=[ERS, CIS2])
    browsers = {"chrome": "142.0.7444.60"}
    _policy, the_plan = planned(registry, browsers)
    assert writes(the_plan) == [("reg_write", f"{CHROME}\\LocalNetworkAccessAllowedForUrls", "1", ERS),
                                ("reg_write", f"{CHROME}\\LocalNetworkAccessAllowedForUrls", "2", CIS2)]
    after = applied({**BASE, **registry}, the_plan)
    assert after[f"{CHROME}\\LoopbackNetworkAllowedForUrls"] == entries(ERS, CIS2)
    assert lna(facts_for(after, [USER_A, USER_B], browsers=browsers)) == set()
    # Chrome updates to 146: the LocalNetworkAccess list is still read, nothing reported, nothing to do.
    updated = {"chrome": "146.0.7680.72"}
    assert lna(facts_for(after, [USER_A, USER_B], browsers=updated)) == set()


def test_a_block_the_loopback_list_outranks_is_fixed_by_adding_to_it() -> None:
    registry = lists(CHROME, LocalNetworkAccessBlockedForUrls=["*"])
    browsers = {"chrome": "146.0.7680.72"}
    _policy, the_plan = planned(registry, browsers)
    assert writes(the_plan) == [("reg_write", f"{CHROME}\\LoopbackNetworkAllowedForUrls", "1", ERS),
                                ("reg_write", f"{CHROME}\\LoopbackNetworkAllowedForUrls", "2", CIS2)]
    after = applied({**BASE, **registry}, the_plan)
    assert after[f"{CHROME}\\LocalNetworkAccessBlockedForUrls"] == entries("*")  # never removed
    assert lna(facts_for(after, [USER_A, USER_B], browsers=browsers)) == set()


@pytest.mark.parametrize(("policy", "version"), [("LoopbackNetworkBlockedForUrls", "146.0.7680.72"),
                                                 ("LocalNetworkAccessBlockedForUrls", "145.0.7632.160")])
def test_a_block_nothing_outranks_is_left_alone_with_a_note(policy: str, version: str) -> None:
    registry = lists(CHROME, **{policy: [ERS, CIS2]})
    notes, the_plan = planned(registry, {"chrome": version})
    assert the_plan.changed is False
    assert any("LOCALHOST_ACCESS_BLOCKED left alone for 'https://ers.nhs.uk'" in note for note in notes.notes)


def test_a_list_a_gpo_writes_is_reported_not_written() -> None:
    registry = lists(EDGE, LocalNetworkAccessAllowedForUrls=["https://other.example"])
    gpo = [{"scope": "machine", "sid": None, "key": f"{EDGE}\\LocalNetworkAccessAllowedForUrls", "name": "1",
            "gpo": "Edge baseline"}]
    _policy, the_plan = planned(registry, {"edge": "143.0.3650.66"}, gpo)
    assert the_plan.write_ops == []
    assert {item["gpo"] for item in the_plan.gpo_skipped} == {"Edge baseline"}
    _policy, forced = planned(registry, {"edge": "143.0.3650.66"}, gpo, override_gpo=True)
    assert [op["name"] for op in forced.write_ops] == ["2", "3"]


def test_user_scope_writes_each_signed_in_users_list() -> None:
    browsers = {"chrome": "143.0.7499.110"}
    _policy, the_plan = planned({}, browsers, scope="user")
    assert sorted((op["key"], op["name"]) for op in the_plan.write_ops) == sorted(
        (f"HKU\\{sid}\\Software\\Policies\\Google\\Chrome\\LocalNetworkAccessAllowedForUrls", name)
        for sid in (SID_A, SID_B) for name in ("1", "2"))
    after = applied(BASE, the_plan)
    assert lna(facts_for(after, [USER_A, USER_B], browsers=browsers)) == set()


def test_the_toggle_the_browsers_and_waivers_are_obeyed() -> None:
    browsers = {"chrome": "143.0.7499.110", "edge": "143.0.3650.66"}
    policy, the_plan = planned({}, browsers, localhost_access=False)
    assert the_plan.changed is False and any("localhost_access is off" in note for note in policy.notes)
    assert {op["key"].split("\\")[3] for op in planned({}, browsers, browsers=["edge"])[1].write_ops} == {"Microsoft"}
    assert planned({}, browsers, skip_ids=["LOCALHOST_ACCESS_NOT_ALLOWED"])[1].changed is False


def test_configured_origins_are_written_as_given_and_checked() -> None:
    _policy, the_plan = planned({}, {"edge": "143.0.3650.66"}, localhost_access_origins=["[*.]nhs.uk"])
    assert writes(the_plan) == [("reg_write", f"{EDGE}\\LocalNetworkAccessAllowedForUrls", "1", "[*.]nhs.uk")]
    assert origin_errors(["[*.]nhs.uk", ERS]) == []
    assert len(origin_errors(["*", "https://*", "*.nhs.uk", "a,b", ""])) == 5
