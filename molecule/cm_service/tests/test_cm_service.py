"""After the cm_service role: what a desktop engineer checks on the PC (fault 1 services, CM per session).

Names that are not public (the Port Service's service name, CM's executable) come from the
inventory: ``nhs_cm_port_service_name`` (default ``NHSPortService``) and the role's own
``cm_service_cm_process_names`` / ``cm_service_cm_executable``.
"""

from __future__ import annotations

import ntpath
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from windows_tools import Windows

SYSTEM_SESSION = "0"
SHELL = "explorer.exe"  # a person is signed in to a session where their desktop shell runs


def port_service(hostvars: dict[str, Any]) -> str:
    return str(hostvars.get("nhs_cm_port_service_name") or "NHSPortService")


def cm_images(hostvars: dict[str, Any]) -> set[str]:
    names = [str(n) for n in hostvars.get("cm_service_cm_process_names") or []]
    if hostvars.get("cm_service_cm_executable"):
        names.append(ntpath.basename(str(hostvars["cm_service_cm_executable"])))
    if not names:
        pytest.skip("CM's executable name is not public: set cm_service_cm_executable or "
                    "cm_service_cm_process_names for this host in the inventory")
    return {n.lower() for n in names}


def test_port_service_is_running(windows: Windows, hostvars: dict[str, Any]) -> None:
    assert windows.sc_field("query", port_service(hostvars), "STATE") == "4  RUNNING"


def test_port_service_starts_automatically(windows: Windows, hostvars: dict[str, Any]) -> None:
    assert windows.sc_field("qc", port_service(hostvars), "START_TYPE").split()[:2] == ["2", "AUTO_START"]


def test_smart_card_service_is_running(windows: Windows) -> None:
    assert windows.sc_field("query", "SCardSvr", "STATE") == "4  RUNNING"


def test_cm_runs_in_every_signed_in_session(windows: Windows, hostvars: dict[str, Any]) -> None:
    images = cm_images(hostvars)
    processes = windows.tasks()
    signed_in = {p["Session#"] for p in processes if p["Image Name"].lower() == SHELL} - {SYSTEM_SESSION}
    with_cm = {p["Session#"] for p in processes if p["Image Name"].lower() in images}
    assert signed_in, "nobody is signed in: CM runs only in a user's session"
    assert signed_in - with_cm == set()


def test_cm_runs_as_the_session_user(windows: Windows, hostvars: dict[str, Any]) -> None:
    images = cm_images(hostvars)
    processes = windows.tasks()
    users = {p["Session#"]: p["User Name"].lower() for p in processes if p["Image Name"].lower() == SHELL}
    for process in processes:
        if process["Image Name"].lower() in images:
            assert process["User Name"].lower() == users.get(process["Session#"]), process
