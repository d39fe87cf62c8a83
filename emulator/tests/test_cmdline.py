"""reg query, sc query / qc and tasklist, answered from an emulated host's state as Windows prints them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from nhs_cm_emulator import commands
from nhs_cm_emulator.state import HostState, load_estate

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SID = "S-1-5-21-2847561937-1930485726-3150942856-21877"
KEY_NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value."
ZONEMAP = rf"HKU\{SID}\Software\Microsoft\Windows\CurrentVersion\Internet Settings\ZoneMap"


@pytest.fixture
def host() -> HostState:
    return load_estate([str(SCENARIOS / "port-service-stopped.yml")]).hosts[0]


@pytest.fixture
def rds() -> HostState:
    return load_estate([str(SCENARIOS / "cm-not-running.yml")]).hosts[0]


def run(host: HostState, line: str) -> tuple[str, str, int]:
    out, err, rc = commands.execute(host, line, [], b"")
    return out.decode(), err.decode(), rc


def test_reg_query_prints_one_value_as_windows_does(host: HostState) -> None:
    out, err, rc = run(host, f'reg query "{ZONEMAP}" /v IntranetName')
    assert (out, err, rc) == ("\r\n" + ZONEMAP.replace("HKU", "HKEY_USERS", 1) + "\r\n"
                              "    IntranetName    REG_DWORD    0x1\r\n\r\n", "", 0)


def test_reg_query_matches_value_names_and_keys_case_insensitively(host: HostState) -> None:
    out, _, rc = run(host, r'reg query "hklm\software\policies\microsoft\edge" /v hidefirstrunexperience')
    assert rc == 0
    assert "    HideFirstRunExperience    REG_DWORD    0x1\r\n" in out
    assert out.splitlines()[1] == r"HKEY_LOCAL_MACHINE\software\policies\microsoft\edge"


def test_reg_query_of_a_missing_value_or_key_fails_with_windows_message(host: HostState) -> None:
    missing_value = run(host, r'reg query "HKLM\SOFTWARE\Policies\Microsoft\Edge" /v BlockThirdPartyCookies')
    missing_key = run(host, r'reg query "HKLM\SOFTWARE\Policies\Google\Chrome" /v CookiesAllowedForUrls')
    assert missing_value == ("", KEY_NOT_FOUND + "\r\n", 1)
    assert missing_key == ("", KEY_NOT_FOUND + "\r\n", 1)


def test_reg_query_of_a_key_lists_values_then_subkeys(host: HostState) -> None:
    key = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Zones"
    out, _, rc = run(host, f'reg query "{key}\\1"')
    assert rc == 0
    assert "    Flags    REG_DWORD    0xdb\r\n" in out
    assert "    1A00    REG_DWORD    0x20000\r\n" in out
    parent = run(host, f'reg query "{key}"')[0]
    assert parent.splitlines()[-1] == key.replace("HKLM", "HKEY_LOCAL_MACHINE") + "\\1"


def test_reg_query_s_walks_subkeys_and_formats_strings(host: HostState) -> None:
    root = r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall"
    out, _, rc = run(host, f'reg query "{root}" /s /v DisplayName')
    assert rc == 0
    assert "    DisplayName    REG_SZ    NHS Credential Management\r\n" in out
    assert "    DisplayName    REG_SZ    NHS Smartcard Connect\r\n" in out
    assert out.rstrip().endswith("End of search: 2 match(es) found.")


def test_reg_query_reg32_reads_the_wow64_view(host: HostState) -> None:
    key = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{9E27D0B4-6A15-4C3E-8F71-2B5D8C4A0E93}"
    assert run(host, f'reg query "{key}" /v DisplayVersion')[2] == 1
    out, _, rc = run(host, f'reg query "{key}" /v DisplayVersion /reg:32')
    assert (rc, "    DisplayVersion    REG_SZ    4.1.1.0" in out) == (0, True)


def test_reg_query_follows_writes_to_the_host_state(host: HostState) -> None:
    host.registry.put_values("HKLM", ["SOFTWARE", "Policies", "Microsoft", "Edge"],
                             {"BlockThirdPartyCookies": ("REG_DWORD", 0), "Note": ("REG_MULTI_SZ", ["a", "b"])})
    out = run(host, r'reg query "HKLM\SOFTWARE\Policies\Microsoft\Edge"')[0]
    assert "    BlockThirdPartyCookies    REG_DWORD    0x0\r\n" in out
    assert "    Note    REG_MULTI_SZ    a\\0b\r\n" in out


def test_reg_query_of_a_denied_key_and_bad_options(host: HostState) -> None:
    assert run(host, r"reg query HKLM\SECURITY") == ("", "ERROR: Access is denied.\r\n", 1)
    _, err, rc = run(host, r"reg query HKLM\SOFTWARE /f x")
    assert rc == 1 and "'/f'" in err


def test_sc_query_reports_the_state(host: HostState) -> None:
    out, err, rc = run(host, "sc query NHSPortService")
    assert (err, rc) == ("", 0)
    assert out.splitlines()[1] == "SERVICE_NAME: NHSPortService "
    assert "        STATE              : 1  STOPPED \r\n" in out
    assert "        STATE              : 4  RUNNING \r\n" in run(host, "sc.exe query scardsvr")[0]


def test_sc_query_follows_a_started_service(host: HostState) -> None:
    host.services[0].state = "running"
    assert "        STATE              : 4  RUNNING \r\n" in run(host, "sc query NHSPortService")[0]


def test_sc_qc_reports_start_type_and_binary(host: HostState) -> None:
    out, _, rc = run(host, "sc qc NHSPortService")
    assert rc == 0
    assert out.startswith("[SC] QueryServiceConfig SUCCESS\r\n")
    assert "        START_TYPE         : 2   AUTO_START\r\n" in out
    assert ('        BINARY_PATH_NAME   : "C:\\Program Files (x86)\\NHS Digital\\NHS Credential Management\\'
            'NHSPortService.exe"\r\n') in out
    assert "        START_TYPE         : 3   DEMAND_START\r\n" in run(host, "sc qc SCardSvr")[0]


def test_sc_of_an_unknown_service_fails_with_1060(host: HostState) -> None:
    out, _, rc = run(host, "sc query NoSuchService")
    assert rc == 1060
    assert out.startswith("[SC] EnumQueryServicesStatus:OpenService FAILED 1060:")
    assert "The specified service does not exist as an installed service." in out


def tasks(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_tasklist_csv_lists_processes_with_session_and_user(rds: HostState) -> None:
    out, _, rc = run(rds, "tasklist /v /fo csv")
    rows = tasks(out)
    assert rc == 0
    assert list(rows[0]) == ["Image Name", "PID", "Session Name", "Session#", "Mem Usage", "Status",
                             "User Name", "CPU Time", "Window Title"]
    cm = [(r["Session#"], r["User Name"]) for r in rows if r["Image Name"] == "NHSCredentialManagement.exe"]
    assert cm == [("2", "NHS\\ogreen")]


def test_tasklist_filters_by_session_and_image(rds: HostState) -> None:
    session3 = tasks(run(rds, 'tasklist /v /fo csv /fi "SESSION eq 3"')[0])
    assert {r["Image Name"] for r in session3} == {"csrss.exe", "winlogon.exe", "explorer.exe"}
    none = run(rds, 'tasklist /fo csv /fi "SESSION eq 3" /fi "IMAGENAME eq NHSCredentialManagement.exe"')
    assert none == ("INFO: No tasks are running which match the specified criteria.\r\n", "", 0)
    assert run(rds, 'tasklist /fo csv /fi "WINDOWTITLE eq x"')[2] == 1


def test_tasklist_without_header_and_as_list(rds: HostState) -> None:
    out = run(rds, 'tasklist /fo csv /nh /fi "IMAGENAME eq explorer.exe"')[0]
    assert [line.split(",")[3] for line in out.splitlines()] == ['"2"', '"3"']
    listed = run(rds, 'tasklist /v /fo list /fi "PID eq 4"')[0]
    assert "Image Name:   System\r\n" in listed


def test_other_programs_are_still_not_recognized(host: HostState) -> None:
    assert run(host, "schtasks /query")[2] == 9009
    assert run(host, "reg add HKLM\\SOFTWARE\\X")[2] == 1
