"""The registry tree: case, implied parents, views, user hives, synthetic keys, denied keys."""

from __future__ import annotations

import pytest

from nhs_cm_emulator.registry import KeyPathError, Registry, split_key
from nhs_cm_emulator.scenario import parse_document, parse_text
from nhs_cm_emulator.state import HostState

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
OFF = "S-1-5-21-1004336348-1177238915-682003330-1002"

HOST = rf"""
hosts:
  - name: pc-reg
    sessions: [{{id: 1, user: 'NHS\jsmith', sid: '{SID}'}}]
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\old', sid: '{OFF}', path: 'C:\Users\old', loaded: false}}
    registry:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
      'hklm\software\policies\MICROSOFT\edge\CookiesAllowedForUrls':
        '1': {{type: REG_SZ, data: '[*.]localhost'}}
      'HKLM\SOFTWARE\WOW6432Node\Vendor\App':
        Bits: {{type: REG_SZ, data: '32'}}
      'HKLM\SOFTWARE\Vendor\App':
        Bits: {{type: REG_SZ, data: '64'}}
      'HKLM\SOFTWARE\Empty': {{}}
      'HKU\{SID}\Software\Microsoft\Windows\CurrentVersion\Internet Settings\ZoneMap':
        AutoDetect: {{type: REG_DWORD, data: 0}}
      'HKU\{OFF}\Software\Offline':
        Here: {{type: REG_SZ, data: 'in NTUSER.DAT'}}
      'HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\{SID}':
        ProfileImagePath: {{type: REG_EXPAND_SZ, data: 'D:\Profiles\jsmith'}}
    denied: ['HKU\{SID}\Software\Policies', 'HKLM\SOFTWARE\Secret']
"""


@pytest.fixture(scope="module")
def host() -> HostState:
    hosts, _ = parse_document(parse_text(HOST, "reg.yml"), "reg.yml")
    return HostState(hosts[0])


def node(host: HostState, path: str, view: str = "64"):
    hive, segments = split_key(path, strict=True)
    return host.registry.lookup(hive, host.registry.map_view(hive, segments, view))


# -- paths ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "strict", "expected"), [
    ("HKLM", True, ("HKLM", [])),
    ("hklm\\Software", True, ("HKLM", ["Software"])),
    ("HKU\\.DEFAULT", True, ("HKU", [".DEFAULT"])),
    ("HKEY_LOCAL_MACHINE\\SOFTWARE\\", False, ("HKLM", ["SOFTWARE"])),
    ("HKEY_USERS\\S-1-5-18", False, ("HKU", ["S-1-5-18"])),
    ("HKLM\\SOFTWARE\\A/B", True, ("HKLM", ["SOFTWARE", "A/B"])),
])
def test_split_key(path: str, strict: bool, expected: tuple[str, list[str]]) -> None:
    assert split_key(path, strict=strict) == expected


@pytest.mark.parametrize(("path", "strict", "message"), [
    ("HKCU\\Software", True, "HKCU is not allowed"),
    ("HKEY_CURRENT_USER\\Software", False, "HKCU is not allowed"),
    ("HKEY_LOCAL_MACHINE\\SOFTWARE", True, "abbreviation HKLM"),
    ("HKCR\\x", False, "only HKLM and HKU"),
    ("HKLM\\SOFTWARE\\", True, "empty key name"),
    ("HKLM\\\\SOFTWARE", False, "one backslash"),
    ("", True, "non-empty"),
])
def test_split_key_refuses(path: str, strict: bool, message: str) -> None:
    with pytest.raises(KeyPathError, match=message.replace("\\", "\\\\")):
        split_key(path, strict=strict)


# -- the tree ---------------------------------------------------------------------------------

def test_case_insensitive_and_first_spelling_kept(host: HostState) -> None:
    edge = node(host, "HKLM\\software\\POLICIES\\microsoft\\EDGE")
    assert edge is not None and edge.name == "Edge"
    assert edge.value("blockthirdpartycookies").data == 1
    allowed = edge.child("cookiesallowedforurls")
    assert allowed is not None and allowed.name == "CookiesAllowedForUrls"


def test_flat_keys_imply_parents(host: HostState) -> None:
    assert node(host, "HKLM\\SOFTWARE\\Vendor") is not None
    assert node(host, "HKLM\\SOFTWARE\\Vendor").values == {}
    dump = host.registry.dump()
    assert "HKLM\\SOFTWARE\\Vendor" not in dump
    assert dump["HKLM\\SOFTWARE\\Empty"] == {}


def test_views(host: HostState) -> None:
    assert Registry.map_view("HKLM", ["SOFTWARE", "X"], "32") == ["SOFTWARE", "WOW6432Node", "X"]
    assert Registry.map_view("HKLM", ["software", "wow6432node", "X"], "32") == ["software", "wow6432node", "X"]
    assert Registry.map_view("HKLM", ["SYSTEM", "X"], "32") == ["SYSTEM", "X"]
    assert Registry.map_view("HKU", ["SOFTWARE", "X"], "32") == ["SOFTWARE", "X"]
    assert node(host, "HKLM\\SOFTWARE\\Vendor\\App", "32").value("Bits").data == "32"
    assert node(host, "HKLM\\SOFTWARE\\Vendor\\App", "64").value("Bits").data == "64"
    assert node(host, "HKLM\\SOFTWARE", "32").name == "WOW6432Node"


def test_loaded_and_offline_user_hives(host: HostState) -> None:
    hku = {k.name for k in host.registry.roots["HKU"].children.values()}
    assert hku == {".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20", SID, SID + "_Classes"}
    assert node(host, f"HKU\\{SID}\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap")
    assert node(host, f"HKU\\{OFF}") is None
    offline = host.registry.offline[OFF.lower()]
    assert offline.child("Software").child("Offline").value("Here").data == "in NTUSER.DAT"
    assert host.registry.dump()[f"HKU\\{OFF}\\Software\\Offline"] == {"Here": {"type": "REG_SZ",
                                                                              "data": "in NTUSER.DAT"}}


def test_profile_list_is_synthetic(host: HostState) -> None:
    plist = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList"
    names = {k.name for k in node(host, plist).children.values()}
    assert names == {"S-1-5-18", "S-1-5-19", "S-1-5-20", SID, OFF}
    assert node(host, f"{plist}\\{OFF}").value("ProfileImagePath").data == "C:\\Users\\old"
    assert node(host, f"{plist}\\{SID}").value("ProfileImagePath").data == "D:\\Profiles\\jsmith"  # scenario wins
    assert node(host, f"{plist}\\S-1-5-18").value("ProfileImagePath").type == "REG_EXPAND_SZ"
    dump = host.registry.dump()
    assert f"{plist}\\{OFF}" not in dump
    assert dump[f"{plist}\\{SID}"] == {"ProfileImagePath": {"type": "REG_EXPAND_SZ", "data": "D:\\Profiles\\jsmith"}}


def test_skeleton_keys_exist(host: HostState) -> None:
    assert node(host, "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall") is not None
    assert node(host, "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall", "32") is not None
    assert node(host, f"HKU\\{SID}_Classes") is not None
    assert not any(path.startswith("HKU\\.DEFAULT") for path in host.registry.dump())


def test_denied(host: HostState) -> None:
    reg = host.registry
    assert reg.is_denied("HKU", [SID.lower(), "software", "policies"])
    assert reg.is_denied("HKU", [SID, "Software", "Policies", "Microsoft", "Edge"])
    assert not reg.is_denied("HKU", [SID, "Software"])
    assert not reg.is_denied("HKU", [SID, "Software", "PoliciesX"])
    assert reg.is_denied("HKLM", ["SECURITY", "Policy"])
    assert reg.is_denied("HKLM", ["SAM", "SAM"])
    assert not reg.is_denied("HKLM", ["SAM"])
    assert reg.denied == [f"HKU\\{SID}\\Software\\Policies", "HKLM\\SOFTWARE\\Secret"]
