"""Waivers: what a trust writes in its inventory, and what the audit does with it."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import waivers as _waivers

TODAY = dt.date(2026, 11, 25)


def _waiver(**overrides: object) -> dict:
    base = {"id": "CM_NOT_INSTALLED", "justification": "Kiosk PCs never run e-RS (CAB-1234)",
            "approved_by": "J Smith, IG lead", "expires": "2027-03-31"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def _finding(fid: str, severity: str = "error", **scope: object) -> dict:
    return {"id": fid, "fault": 1, "severity": severity, "scope": scope or {"kind": "machine"}, "summary": fid}


def test_a_valid_waiver_applies_until_its_last_day() -> None:
    on_last_day = _waivers.check_waivers({"nhs_cm_waivers": [_waiver()]}, dt.date(2027, 3, 31))
    assert on_last_day["errors"] == [] and on_last_day["expired"] == []
    assert on_last_day["waivers"] == [dict(_waiver(), source="nhs_cm_waivers[0]")]
    day_after = _waivers.check_waivers({"nhs_cm_waivers": [_waiver()]}, dt.date(2027, 4, 1), expired="lapse")
    assert day_after["waivers"] == [] and day_after["errors"] == []
    assert [w["id"] for w in day_after["expired"]] == ["CM_NOT_INSTALLED"]


@pytest.mark.parametrize(("entry", "expected"), [
    (_waiver(justification=...), "nhs_cm_waivers[0].justification is missing"),
    (_waiver(justification="   "), "nhs_cm_waivers[0].justification must be a non-empty text"),
    (_waiver(approved_by=...), "nhs_cm_waivers[0].approved_by is missing"),
    (_waiver(expires=...), "nhs_cm_waivers[0].expires is missing"),
    (_waiver(expires="31/03/2027"), "nhs_cm_waivers[0].expires must be a date written YYYY-MM-DD, not '31/03/2027'"),
    (_waiver(expires="2027-02-30"), "nhs_cm_waivers[0].expires must be a real date"),
    (_waiver(id="cm_not_installed"), "nhs_cm_waivers[0].id 'cm_not_installed' is not a finding id of the catalogue"),
    (_waiver(id=...), "nhs_cm_waivers[0].id is missing"),
    (_waiver(host="pc-1"), "nhs_cm_waivers[0] has unknown key(s) host: allowed are id, justification"),
    ("CM_NOT_INSTALLED", "nhs_cm_waivers[0] must be a mapping"),
])
def test_a_malformed_waiver_is_an_error_naming_the_field(entry: object, expected: str) -> None:
    checked = _waivers.check_waivers({"nhs_cm_waivers": [entry]}, TODAY)
    assert checked["waivers"] == []
    assert len(checked["errors"]) == 1
    assert checked["errors"][0].startswith(expected), checked["errors"][0]


def test_a_date_in_the_past_is_an_error_unless_lapse_is_asked_for() -> None:
    old = _waiver(expires="2026-11-24")
    strict = _waivers.check_waivers({"nhs_cm_waivers__radiology": [old]}, TODAY)
    assert strict["waivers"] == []
    assert strict["errors"] == [
        "nhs_cm_waivers__radiology[0].expires 2026-11-24 is in the past (today is 2026-11-25): the waiver of "
        "CM_NOT_INSTALLED no longer applies; renew it with a new date or remove it"]
    lapse = _waivers.check_waivers({"nhs_cm_waivers__radiology": [old]}, TODAY, expired="lapse")
    assert lapse["errors"] == [] and len(lapse["expired"]) == 1
    with pytest.raises(ValueError, match="expired must be one of error, lapse"):
        _waivers.check_waivers({}, TODAY, expired="ignore")


def test_a_waiver_list_that_is_not_a_list_is_named() -> None:
    checked = _waivers.check_waivers({"nhs_cm_waivers": {"id": "CM_NOT_INSTALLED"}}, TODAY)
    assert checked["errors"] == ["nhs_cm_waivers must be a list of waivers ({id, justification, approved_by, "
                                 "expires}), not dict"]


def test_group_and_host_lists_add_up_and_bad_entries_do_not_hide_good_ones() -> None:
    checked = _waivers.check_waivers({
        "nhs_cm_waivers": [_waiver(id="NO_SMARTCARD_READER"), _waiver(approved_by="")],
        "nhs_cm_waivers__estate": [_waiver(id="CM_REBOOT_PENDING")],
    }, TODAY)
    assert [(w["id"], w["source"]) for w in checked["waivers"]] == [
        ("NO_SMARTCARD_READER", "nhs_cm_waivers[0]"), ("CM_REBOOT_PENDING", "nhs_cm_waivers__estate[0]")]
    assert checked["errors"] == ["nhs_cm_waivers[1].approved_by must be a non-empty text: who agreed the waiver, "
                                 "not ''"]


def test_variable_names() -> None:
    names = ["nhs_cm_waivers__b", "nhs_cm_waiver_check", "nhs_cm_waivers", "nhs_cm_waivers__a", "nhs_cm_waivers_x",
             "other"]
    assert _waivers.waiver_variables(names) == ["nhs_cm_waivers", "nhs_cm_waivers__a", "nhs_cm_waivers__b"]


def test_apply_waivers_keeps_the_others_and_marks_every_scope() -> None:
    findings = [_finding("CM_NOT_RUNNING", kind="user", user="NHS\\a", session=1),
                _finding("PORT_SERVICE_STOPPED"),
                _finding("CM_NOT_RUNNING", kind="user", user="NHS\\b", session=2)]
    waiver = dict(_waiver(id="CM_NOT_RUNNING"), source="nhs_cm_waivers[0]")
    longer = dict(waiver, expires="2028-01-01", source="nhs_cm_waivers__x[0]")
    active, waived = _waivers.apply_waivers(findings, [waiver, longer])
    assert [f["id"] for f in active] == ["PORT_SERVICE_STOPPED"]
    assert [f["scope"]["user"] for f in waived] == ["NHS\\a", "NHS\\b"]
    assert all(f["waiver"]["source"] == "nhs_cm_waivers__x[0]" for f in waived)
    assert "waiver" not in findings[0]  # the input is not changed


def test_parse_today() -> None:
    assert _waivers.parse_today(None, TODAY) == TODAY
    assert _waivers.parse_today("2027-01-02") == dt.date(2027, 1, 2)
    assert _waivers.parse_today(None) == dt.date.today()
    with pytest.raises(ValueError, match="today must be a date written YYYY-MM-DD"):
        _waivers.parse_today("tomorrow")
