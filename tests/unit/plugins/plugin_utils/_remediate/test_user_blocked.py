"""LOCALHOST_ACCESS_USER_BLOCKED: the answer a user gave when Chrome or Edge asked whether an NHS site
may reach localhost (Local Network Access), kept in the browser profile's Preferences. Reported per
user and browser profile where no policy decides for the site; a policy that allows the site
overrides it; a profile that cannot be read is unknown, never healthy."""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import CHROME, EDGE, SID_A, SID_B, USER_A, USER_B, facts_for, good_zones, sz

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.local_network import (
    MalformedSettings,
    stored_answers,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import (
    SITE_SETTING_TYPES,
    planned_reads,
)

ID = "LOCALHOST_ACCESS_USER_BLOCKED"
ERS = "https://ers.nhs.uk"
BASE: dict[str, t.Any] = {**good_zones(SID_A), **good_zones(SID_B)}
BLOCK = {"setting": 2, "last_modified": "13406718000000000"}
ALLOW = {"setting": 1, "last_modified": "13406718000000000"}
VERSIONS = {"chrome": "142.0.7444.60", "edge": "143.0.3650.66"}


def local_state(sid: str, browser: str, error: str | None = None, exists: bool = True) -> dict[str, t.Any]:
    return {"sid": sid, "browser": browser, "profile": None, "exists": exists, "modified": None, "error": error,
            "exceptions": None, "path": f"C:\\Users\\{sid}\\{browser}\\User Data\\Local State"}


def prefs(sid: str, browser: str, profile: str, exceptions: t.Any, error: str | None = None) -> dict[str, t.Any]:
    return {"sid": sid, "browser": browser, "profile": profile, "exists": True, "error": error,
            "modified": "2025-12-01T08:00:00.0000000Z", "exceptions": exceptions,
            "path": f"C:\\Users\\{sid}\\{browser}\\User Data\\{profile}\\Preferences"}


def files(*extra: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """Both users' Local State for both browsers, then ``extra`` (a Local State in it replaces the default)."""
    given = {(f["sid"], f["browser"]) for f in extra if f["profile"] is None}
    return [local_state(sid, b) for sid in (SID_A, SID_B) for b in ("chrome", "edge") if (sid, b) not in given] \
        + list(extra)


def run(site_files: list[dict[str, t.Any]], registry: dict[str, t.Any] | None = None,
        versions: dict[str, str] | None = None) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    the_facts = facts_for({**BASE, **(registry or {})}, [USER_A, USER_B], [], browsers=versions or VERSIONS,
                          site_files=site_files)
    findings, unknown = evaluate(the_facts, {"cm_required": True})
    return [f for f in findings if f["id"] == ID], [u for u in unknown if u["check"] == ID]


def lna(block: dict[str, t.Any] | None = None, **types: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"local_network_access": block, **types}


def test_a_kept_block_for_ers_is_an_error_for_that_user_and_profile_only() -> None:
    found, unknown = run(files(prefs(SID_A, "edge", "Profile 1", lna({"https://ers.nhs.uk:443,*": BLOCK}))))
    assert unknown == []
    assert len(found) == 1
    (finding,) = found
    assert (finding["severity"], finding["fault"], finding["browser"]) == ("error", 1, "edge")
    assert finding["ers_message"] == "NHS Credential Management cannot be found"
    assert finding["scope"] == {"kind": "user", "user": "NHS\\asmith", "sid": SID_A, "session": 1,
                                "browser_profile": "Profile 1"}
    kept = finding["evidence"][-1]
    assert kept["path"].endswith("Profile 1\\Preferences") and kept["value"] == "block"
    assert kept["setting"] == "profile.content_settings.exceptions.local_network_access['https://ers.nhs.uk:443,*']"
    assert "edge://settings/content/siteDetails?site=https://ers.nhs.uk" in finding["remedy"]["action"]
    assert "LocalNetworkAccessAllowedForUrls" in finding["remedy"]["action"]
    assert "never edits a browser profile" in finding["remedy"]["action"]
    assert finding["remedy"]["role"] == "nhs_cm.remediation.third_party_cookies"


@pytest.mark.parametrize("exceptions", [
    lna({"https://ers.nhs.uk:443,*": ALLOW}),
    lna({"https://[*.]ers.nhs.uk,*": BLOCK, "https://ers.nhs.uk:443,*": ALLOW}),  # the more specific wins
    lna({"https://example.com:443,*": BLOCK}),
    lna(None, local_network={"https://ers.nhs.uk:443,*": BLOCK}),  # local network endpoints, not localhost
    {},
])
def test_no_kept_block_for_an_nhs_site_is_healthy(exceptions: dict[str, t.Any]) -> None:
    assert run(files(prefs(SID_A, "chrome", "Default", exceptions))) == ([], [])


def test_the_split_loopback_type_counts_too() -> None:
    found, _unknown = run(files(prefs(SID_B, "chrome", "Default",
                                      lna(None, loopback_network={"[*.]nhs.uk": BLOCK}))))
    assert [(f["scope"]["sid"], f["browser"]) for f in found] == [(SID_B, "chrome")]


def test_an_allow_policy_overrides_the_users_block_and_a_block_policy_is_its_own_finding() -> None:
    blocked = files(prefs(SID_A, "chrome", "Default", lna({"https://ers.nhs.uk:443,*": BLOCK})))
    allowed = {f"{CHROME}\\LocalNetworkAccessAllowedForUrls": {"1": sz(ERS),
                                                               "2": sz("https://am.nhsidentity.spineservices.nhs.uk")}}
    assert run(blocked, allowed) == ([], [])
    policy_block = {f"{CHROME}\\LocalNetworkAccessBlockedForUrls": {"1": sz("*")}}
    assert run(blocked, policy_block) == ([], [])


def test_versions_that_do_not_ask_keep_no_answer_that_matters() -> None:
    blocked = files(prefs(SID_A, "chrome", "Default", lna({"https://ers.nhs.uk:443,*": BLOCK})))
    assert run(blocked, versions={"chrome": "141.0.7390.122"}) == ([], [])
    opted_out = {CHROME: {"LocalNetworkAccessRestrictionsTemporaryOptOut": {"type": "REG_DWORD", "data": 1}}}
    assert run(blocked, opted_out) == ([], [])


@pytest.mark.parametrize(("site_files", "reason"), [
    (files(local_state(SID_A, "edge", error="failed: not a JSON object")), "Local State: failed: not a JSON object"),
    (files(prefs(SID_A, "edge", "Default", None, error="failed: 6000000 bytes, over the limit of 5242880")),
     "profile 'Default'"),
    (files(prefs(SID_A, "edge", "Default", lna(["not", "an", "object"]))), "is not an object"),
    (files(prefs(SID_A, "edge", "Default", lna({"https://ers.nhs.uk:443,*": {"setting": "2"}}))), "has no setting"),
    ([f for f in files() if f["sid"] != SID_A], "its profile folder was not read"),
])
def test_an_unreadable_or_malformed_profile_is_unknown_never_healthy(site_files: list[dict[str, t.Any]],
                                                                     reason: str) -> None:
    found, unknown = run(site_files)
    assert found == []
    assert unknown and all(reason in u["reason"] for u in unknown if "asmith" in u["reason"])
    assert any("NHS\\asmith" in u["reason"] for u in unknown)


def test_a_failed_read_is_unknown_for_every_enforcing_browser() -> None:
    the_facts = facts_for(BASE, [USER_A], [], browsers=VERSIONS)
    the_facts["browser_site_settings"] = None
    the_facts["read_errors"] = {"browser_site_settings": "access_denied: Access denied"}
    _findings, unknown = evaluate(the_facts, {"cm_required": True})
    reasons = [u["reason"] for u in unknown if u["check"] == ID]
    assert reasons == [f"{name}: NHS\\asmith (session 1): the browser profiles could not be read "
                       "(access_denied: Access denied)" for name in ("Chrome", "Edge")]


def test_a_profile_that_does_not_exist_yet_is_healthy() -> None:
    missing = dict(prefs(SID_A, "chrome", "Default", None), exists=False)
    assert run(files(missing)) == ([], [])


def test_stored_answers_pick_the_most_specific_entry_per_type() -> None:
    answers = stored_answers(lna({"*": ALLOW, "https://ers.nhs.uk:443,*": BLOCK}, loopback_network={"*": ALLOW}),
                             ERS)
    assert [(a.type, a.pattern, a.setting) for a in answers] == [
        ("local_network_access", "https://ers.nhs.uk:443,*", "block"), ("loopback_network", "*", "allow")]
    with pytest.raises(MalformedSettings):
        stored_answers(None, ERS)


def test_diagnose_asks_for_the_three_lna_types_and_follows_include_offline() -> None:
    reads = dict(planned_reads({"include_offline_profiles": True}))
    assert reads["browser_site_settings"] == {"op": "browser_site_settings", "types": list(SITE_SETTING_TYPES),
                                              "include_offline": True}
    assert SITE_SETTING_TYPES == ("local_network_access", "loopback_network", "local_network")


def test_the_role_adds_the_allow_list_for_a_kept_block_even_with_not_allowed_waived_and_never_a_profile() -> None:
    from policy_sim import planned_fix

    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cookies import DEFAULTS
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import DEFAULTS as LNA
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
        plan_localhost_access,
    )

    site_files = files(prefs(SID_A, "edge", "Default", lna({"https://ers.nhs.uk:443,*": BLOCK})))
    the_facts = facts_for(BASE, [USER_A, USER_B], [], browsers={"edge": "143.0.3650.66"}, site_files=site_files)
    waived = ["LOCALHOST_ACCESS_NOT_ALLOWED"]
    _policy, the_plan = planned_fix(plan_localhost_access, {**DEFAULTS, **LNA}, the_facts, skip_ids=waived)
    assert [(op["key"], op["data"]) for op in the_plan.write_ops] == [
        (f"{EDGE}\\LocalNetworkAccessAllowedForUrls", ERS),
        (f"{EDGE}\\LocalNetworkAccessAllowedForUrls", "https://am.nhsidentity.spineservices.nhs.uk")]
    assert all(op["op"] == "reg_write" and op["key"].startswith("HKLM\\") for op in the_plan.write_ops)
    both = ["LOCALHOST_ACCESS_NOT_ALLOWED", ID]
    assert planned_fix(plan_localhost_access, {**DEFAULTS, **LNA}, the_facts, skip_ids=both)[1].changed is False


def test_the_reports_name_the_browser_profile() -> None:
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.formats import _finding_text
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.html import _where

    (finding,), _unknown = run(files(prefs(SID_A, "edge", "Profile 1", lna({"https://ers.nhs.uk:443,*": BLOCK}))))
    assert _finding_text(finding).startswith(
        f"{ID} (error, user NHS\\asmith session 1, edge profile Profile 1): NHS\\asmith (session 1) blocked "
        "https://ers.nhs.uk")
    assert _where(finding) == "user NHS\\asmith, session 1, edge profile Profile 1"
