"""The e-RS configuration check report text: which fault, port and version it names."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import FAULT_MESSAGES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.ers_report import (
    normalise_text,
    order_findings,
    parse_ers_report,
    understood_messages,
    unknown_report_warning,
)

HUB = "NHS Identity Hub/Credential Management"

# (text as a user or the service desk pastes it, fault, port, version)
TABLE: list[tuple[str, int, int | None, str | None]] = [
    # fault 1
    ("NHS Credential Management cannot be found", 1, None, None),
    ("nhs credential management cannot be found.", 1, None, None),
    (f"{HUB} cannot be found", 1, None, None),
    ("Configuration check\n\nNHS Credential Management\ncannot be found\n\nPlease contact your IT department", 1, None,
     None),
    ("NHS Credential Management Error: Not Installed or Running", 1, None, None),
    ("Credential Management could not be found", 1, None, None),
    ("«NHS Credential Management cannot be found»", 1, None, None),
    ("<p>NHS&nbsp;Credential&nbsp;Management cannot be found</p>", 1, None, None),
    ("NHS CM can't be found on this PC", 1, None, None),
    # fault 2
    ("NHS Credential Management is running on port 43485 but is not connected", 2, 43485, None),
    (f"{HUB} (v1.4.2.0) is running on port 43485 but is not connected", 2, 43485, "1.4.2.0"),
    (f"{HUB} (v1.3.1.0) is running on port 43485 but is not connected", 2, 43485, "1.3.1.0"),
    ("NHS Credential Management is running on port\r\n43485\r\nbut is not connected", 2, 43485, None),
    ("NHS Credential Management is running on port: 43485 but is not connected", 2, 43485, None),
    ("NHS Credential Management is running on port\u00a0:\u00a043485 but is not connected", 2, 43485, None),
    ("NHS Credential Management is running on port \u201c43490\u201d but is not connected", 2, 43490, None),
    ("\uff2e\uff28\uff33 Credential Management is running on port \uff14\uff13\uff14\uff18\uff15 but is not "
     "connected", 2, 43485, None),  # full-width characters
    ("Hi, a user gets this in e-RS: 'NHS Credential Management is running on port 43485 but is not connected' -"
     " can you help? Ticket 1234567", 2, 43485, None),
    ("NHS Credential Management is running but is not connected", 2, None, None),
    ("Port 43485 - NHS CM running, not connected", 2, 43485, None),
    ("NHS Credential Management is running on port 99999 but is not connected", 2, None, None),  # no such port
    # fault 3
    ("NHS Credential Management is running on port 55000 and is connected but cannot login to e-RS", 3, 55000, None),
    (f"{HUB} (v1.4.2.0) is running on port 55000 and is connected but cannot login to Care Identity "
     "Authentication", 3, 55000, "1.4.2.0"),
    ("NHS Credential Management is running on port 55000 and is connected, but cannot log in to e-RS", 3, 55000,
     None),
    ("NHS Credential Management is running on port 55000 and is connected but can\u2019t log-in to e-RS", 3, 55000,
     None),
    ("NHS Credential Management is running on port 55000\nand is connected but cannot\nlogin to e-RS", 3, 55000,
     None),
    ("Configuration check results: NHS Credential Management (v1.4.2.0) is running on port 55000 and is "
     "connected but cannot login to e-RS. Java: cannot be found.", 3, 55000, "1.4.2.0"),
    # fault 4, in people's words
    ("A Windows Security dialog pops up in e-RS", 4, None, None),
    ("Windows Security box keeps appearing when I open e-RS", 4, None, None),
    ("e-RS keeps asking for my password", 4, None, None),
    ("e-RS keeps asking me for my username and password", 4, None, None),
    ("Getting a credential prompt when logging into e-RS", 4, None, None),
    ("credentials pop-up in Chrome on the e-RS page", 4, None, None),
    ("a login box pops up on e-RS asking for user name", 4, None, None),
    ("Users are prompted for their Windows credentials by e-RS", 4, None, None),
    ("NTLM prompt in Edge", 4, None, None),
    ("WINDOWS SECURITY - enter your credentials", 4, None, None),
]


@pytest.mark.parametrize(("text", "fault", "port", "version"), TABLE, ids=[row[0][:50] for row in TABLE])
def test_the_fault_port_and_version_a_text_names(text: str, fault: int, port: int | None,
                                                 version: str | None) -> None:
    report = parse_ers_report(text)
    assert report is not None
    assert (report.fault, report.port, report.version) == (fault, port, version)
    assert report.message == (FAULT_MESSAGES[fault].replace("<port>", str(port)) if port else FAULT_MESSAGES[fault])
    assert report.matched and report.matched in normalise_text(text)


@pytest.mark.parametrize("text", [
    "",
    "   \n\t ",
    "hello",
    "e-RS is slow today",
    "The smartcard reader is not connected",
    "I cannot log in to e-RS",  # says nothing the configuration check says
    "NHS Credential Management est en cours d'ex\u00e9cution sur le port 43485 mais n'est pas connect\u00e9",
    "Port 43485",
    None,
])
def test_text_that_names_no_fault(text: str | None) -> None:
    assert parse_ers_report(text) is None


def test_the_configuration_checks_own_message_wins_over_a_description() -> None:
    text = ("NHS Credential Management is running on port 43485 but is not connected. Before that a Windows "
            "Security box kept popping up.")
    report = parse_ers_report(text)
    assert report is not None and (report.fault, report.port) == (2, 43485)


def test_the_furthest_stage_wins() -> None:
    text = ("Yesterday: NHS Credential Management cannot be found. Today: NHS Credential Management is running "
            "on port 55000 and is connected but cannot login to e-RS")
    report = parse_ers_report(text)
    assert report is not None and (report.fault, report.port) == (3, 55000)


def test_a_long_paste_is_parsed_quickly() -> None:
    text = ("lorem ipsum " * 2000) + "NHS Credential Management is running on port 43485 but is not connected"
    report = parse_ers_report(text)
    assert report is not None and report.fault == 2


def test_the_warning_names_the_option_and_every_message() -> None:
    warning = unknown_report_warning("e-RS is\nbroken again " + "x" * 200)
    assert warning.startswith("ers_report names none of the four e-RS configuration check faults ('e-RS is broken "
                              "again xxx")
    assert "...'" in warning and "\n" not in warning
    for fault, message in FAULT_MESSAGES.items():
        assert f"fault {fault}: '{message}'" in warning
    assert understood_messages() in warning


def test_as_dict_is_what_facts_carry() -> None:
    report = parse_ers_report(f"{HUB} (v1.4.2.0) is running on port 43485 but is not connected")
    assert report is not None
    assert report.as_dict() == {
        "fault": 2, "port": 43485, "version": "1.4.2.0",
        "message": "NHS Credential Management is running on port 43485 but is not connected",
        "matched": "Identity Hub/Credential Management (v1.4.2.0) is running on port 43485 but is not connected"}


def _finding(id_: str, fault: int | None) -> dict[str, t.Any]:
    return {"id": id_, "fault": fault}


FINDINGS = [_finding("CM_NOT_RUNNING", 1), _finding("IA_NOT_RUNNING", 2), _finding("SMARTCARD_SERVICE_STOPPED", 3),
            _finding("INTRANET_AUTODETECT_ON", 4), _finding("INTRANET_UNC_OFF", 4), _finding("OTHER", None)]


@pytest.mark.parametrize(("fault", "order"), [
    (None, ["CM_NOT_RUNNING", "IA_NOT_RUNNING", "SMARTCARD_SERVICE_STOPPED", "INTRANET_AUTODETECT_ON",
            "INTRANET_UNC_OFF", "OTHER"]),
    (4, ["INTRANET_AUTODETECT_ON", "INTRANET_UNC_OFF", "CM_NOT_RUNNING", "IA_NOT_RUNNING",
         "SMARTCARD_SERVICE_STOPPED", "OTHER"]),
    (2, ["IA_NOT_RUNNING", "CM_NOT_RUNNING", "SMARTCARD_SERVICE_STOPPED", "INTRANET_AUTODETECT_ON",
         "INTRANET_UNC_OFF", "OTHER"]),
    (1, ["CM_NOT_RUNNING", "IA_NOT_RUNNING", "SMARTCARD_SERVICE_STOPPED", "INTRANET_AUTODETECT_ON",
         "INTRANET_UNC_OFF", "OTHER"]),
])
def test_findings_of_the_reported_fault_come_first(fault: int | None, order: list[str]) -> None:
    assert [f["id"] for f in order_findings(FINDINGS, fault)] == order
