"""user_hives_read and gpo_registry_settings: people's hives (loaded and offline) and Group Policy."""

from __future__ import annotations

from typing import Any

import pytest
from emulated_host import host_from, run_op

from nhs_cm_emulator import read_ops
from nhs_cm_emulator.registry import FILE_IN_USE, FILE_NOT_FOUND, HiveError
from nhs_cm_emulator.state import HostState

ON = "S-1-5-21-1004336348-1177238915-682003330-1001"    # logged on, hive loaded
OFF = "S-1-5-21-1004336348-1177238915-682003330-1002"   # not logged on: hive in NTUSER.DAT
AAD = "S-1-12-1-1111111111-2222222222-3333333333-4444444444"  # a Microsoft Entra ID account, offline
SERVICE = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
ZONEMAP = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap"
POLICIES = "Software\\Policies"

HOST = rf"""
hosts:
  - name: pc-hives
    sessions:
      - {{id: 1, user: 'NHS\jsmith', sid: '{ON}'}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{ON}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\akhan', sid: '{OFF}', path: 'D:\Profiles\akhan.NHS', loaded: false}}
      - {{user: 'AzureAD\pat', sid: '{AAD}', path: 'C:\Users\pat', loaded: false}}
      - {{user: 'NT SERVICE\MSSQLSERVER', sid: '{SERVICE}', path: 'C:\Users\MSSQLSERVER', loaded: true}}
    registry:
      'HKU\{ON}\{ZONEMAP}':
        IntranetName: {{type: REG_DWORD, data: 1}}
      'HKU\{OFF}\{ZONEMAP}':
        IntranetName: {{type: REG_DWORD, data: 0}}
      'HKU\{OFF}\{ZONEMAP}\Domains\localhost':
        http: {{type: REG_DWORD, data: 3}}
      'HKU\{OFF}\{POLICIES}\Secret':
        x: {{type: REG_DWORD, data: 1}}
      'HKU\{SERVICE}\{ZONEMAP}':
        IntranetName: {{type: REG_DWORD, data: 1}}
    denied: ['HKU\{OFF}\{POLICIES}\Secret']
    group_policy:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
      'HKLM\SOFTWARE\Policies\Microsoft\EdgeUpdate':
        UpdateDefault: {{type: REG_DWORD, data: 0}}
      'HKLM\SOFTWARE\Policies\Microsoft\Edge\CookiesAllowedForUrls':
        '1': {{type: REG_SZ, data: '[*.]localhost'}}
      'HKU\{ON}\Software\Policies\Microsoft\Windows\CurrentVersion\Internet Settings\ZoneMap':
        IntranetName: {{type: REG_DWORD, data: 1}}
      'HKU\.DEFAULT\Software\Policies\X':
        y: {{type: REG_DWORD, data: 1}}
"""


@pytest.fixture
def host() -> HostState:
    return host_from(HOST, "hives.yml")


def hives(host: HostState, paths: list[list[Any]], include_offline: bool = False) -> dict[str, dict[str, Any]]:
    result = run_op(host, op="user_hives_read", paths=paths, include_offline=include_offline)
    assert result["ok"] is True and set(result) == {"ok", "profiles"}
    for profile in result["profiles"]:
        assert set(profile) == {"sid", "user", "path", "loaded", "mounted_as", "error", "keys"}
    return {profile["sid"]: profile for profile in result["profiles"]}


# -- user_hives_read ---------------------------------------------------------------------------------

def test_lists_people_only_with_their_profile_folders(host: HostState) -> None:
    result = run_op(host, op="user_hives_read", paths=[])
    assert [p["sid"] for p in result["profiles"]] == sorted([ON, OFF, AAD])  # no service, system or _Classes hive
    by_sid = {p["sid"]: p for p in result["profiles"]}
    assert by_sid[OFF]["path"] == "D:\\Profiles\\akhan.NHS"  # from ProfileList, not C:\Users\<name>
    assert (by_sid[ON]["loaded"], by_sid[OFF]["loaded"]) == (True, False)
    assert by_sid[ON]["user"] == "NHS\\jsmith"


def test_reads_each_loaded_hive_and_leaves_offline_ones_alone_by_default(host: HostState) -> None:
    found = hives(host, [[ZONEMAP, 1], ["Software\\Nothing", 0]])
    assert found[ON]["keys"][ZONEMAP] == {"exists": True, "values": {"IntranetName": {"type": "REG_DWORD", "data": 1}},
                                          "subkeys": {}, "error": None}
    assert found[ON]["keys"]["Software\\Nothing"] == {"exists": False, "values": {}, "subkeys": {}, "error": None}
    assert (found[OFF]["keys"], found[OFF]["mounted_as"], found[OFF]["error"]) == ({}, None, None)
    assert host.hive_loads == 0


def test_an_offline_hive_is_loaded_read_and_unloaded(host: HostState) -> None:
    before = host.state_dict()
    found = hives(host, [[ZONEMAP, 2], [f"{POLICIES}\\Secret", 0]], include_offline=True)
    offline = found[OFF]
    assert offline["mounted_as"].startswith("nhs_cm_") and offline["error"] is None
    zonemap = offline["keys"][ZONEMAP]
    assert zonemap["values"] == {"IntranetName": {"type": "REG_DWORD", "data": 0}}
    assert zonemap["subkeys"]["Domains"]["subkeys"]["localhost"]["values"]["http"]["data"] == 3
    # a key denied in the file stays denied under the mount point
    assert offline["keys"][f"{POLICIES}\\Secret"]["error"] == "access_denied"
    assert found[AAD]["mounted_as"] is not None and found[AAD]["keys"][ZONEMAP]["exists"] is False
    assert found[ON]["mounted_as"] is None  # a loaded hive is read where it is
    # every hive loaded is unloaded again; loading to read is not a write
    assert (host.hive_loads, host.hive_unloads, host.mounted(), host.writes) == (2, 2, [], 0)
    assert host.registry.lookup("HKU", [offline["mounted_as"]]) is None
    assert host.registry.lookup("HKU", [OFF]) is None  # still only in NTUSER.DAT
    assert host.state_dict() == before


def test_mount_points_are_new_each_time(host: HostState) -> None:
    first = hives(host, [[ZONEMAP, 0]], include_offline=True)[OFF]["mounted_as"]
    second = hives(host, [[ZONEMAP, 0]], include_offline=True)[OFF]["mounted_as"]
    assert first != second and host.hive_loads == 4 and host.mounted() == []


def test_nothing_is_loaded_when_no_key_is_asked_for(host: HostState) -> None:
    found = hives(host, [], include_offline=True)
    assert all(p["mounted_as"] is None and p["keys"] == {} for p in found.values())
    assert host.hive_loads == 0


def test_the_hive_is_unloaded_when_reading_fails(host: HostState, monkeypatch: pytest.MonkeyPatch) -> None:
    read = read_ops.read_user_keys

    def broken(reg: Any, root: str, paths: Any) -> dict[str, Any]:
        if not root.startswith("nhs_cm_"):
            return read(reg, root, paths)
        assert host.registry.mounted() == [root]  # the hive is loaded while it is read
        raise RuntimeError("disk error")

    monkeypatch.setattr(read_ops, "read_user_keys", broken)
    found = hives(host, [[ZONEMAP, 0]], include_offline=True)
    assert found[OFF]["error"] == "failed: RuntimeError: disk error" and found[OFF]["keys"] == {}
    assert (host.hive_loads, host.hive_unloads, host.mounted()) == (2, 2, [])


def test_a_hive_that_cannot_be_loaded_says_why(host: HostState, monkeypatch: pytest.MonkeyPatch) -> None:
    def in_use(sid: str, mount: str) -> None:
        raise HiveError(FILE_IN_USE)

    monkeypatch.setattr(host.registry, "load_hive", in_use)
    found = hives(host, [[ZONEMAP, 0]], include_offline=True)
    assert found[OFF]["error"] == f"failed: cannot load D:\\Profiles\\akhan.NHS\\NTUSER.DAT: {FILE_IN_USE}"
    assert found[OFF]["mounted_as"] is None and host.hive_loads == 0


def test_a_loaded_hive_cannot_be_loaded_twice(host: HostState) -> None:
    with pytest.raises(HiveError, match="being used by another process"):
        host.registry.load_hive(ON, "nhs_cm_a")  # its user is logged on
    host.registry.load_hive(OFF, "nhs_cm_a")
    with pytest.raises(HiveError, match="being used by another process"):
        host.registry.load_hive(OFF, "nhs_cm_b")
    with pytest.raises(HiveError, match="cannot be a mount point"):
        host.registry.load_hive(AAD, "nhs_cm_a")
    host.registry.unload_hive("nhs_cm_a")
    with pytest.raises(HiveError, match="unable to find"):
        host.registry.unload_hive("nhs_cm_a")
    with pytest.raises(HiveError) as caught:
        host.registry.load_hive("S-1-5-21-1-2-3-4", "nhs_cm_c")
    assert str(caught.value) == FILE_NOT_FOUND
    assert host.registry.mounted() == []


@pytest.mark.parametrize(("op", "field"), [
    ({"op": "user_hives_read"}, "paths"),
    ({"op": "user_hives_read", "paths": "Software"}, "paths"),
    ({"op": "user_hives_read", "paths": [["Software"]]}, "paths"),
    ({"op": "user_hives_read", "paths": [["HKU\\Software", 0]]}, "paths"),
    ({"op": "user_hives_read", "paths": [["Software\\", 0]]}, "paths"),
    ({"op": "user_hives_read", "paths": [["Software", 5]]}, "paths"),
    ({"op": "user_hives_read", "paths": [["Software", True]]}, "paths"),
    ({"op": "user_hives_read", "paths": [], "include_offline": "yes"}, "include_offline"),
    ({"op": "gpo_registry_settings", "key_prefixes": "SOFTWARE"}, "key_prefixes"),
    ({"op": "gpo_registry_settings", "key_prefixes": ["HKLM\\SOFTWARE"]}, "key_prefixes"),
])
def test_invalid_requests_name_the_field(host: HostState, op: dict[str, Any], field: str) -> None:
    result = run_op(host, **op)
    assert result["ok"] is False and result["error"] == "invalid_request"
    assert f"{op['op']}: {field}:" in result["message"]


# -- gpo_registry_settings ---------------------------------------------------------------------------

def test_group_policy_by_scope_with_the_gpo_name(host: HostState) -> None:
    result = run_op(host, op="gpo_registry_settings")
    assert set(result) == {"ok", "settings", "errors"} and result["errors"] == []
    settings = {(s["scope"], s["sid"], s["key"], s["name"]) for s in result["settings"]}
    assert settings == {
        ("machine", None, "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge", "BlockThirdPartyCookies"),
        ("machine", None, "HKLM\\SOFTWARE\\Policies\\Microsoft\\EdgeUpdate", "UpdateDefault"),
        ("machine", None, "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\CookiesAllowedForUrls", "1"),
        ("user", ON, f"HKU\\{ON}\\Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap",
         "IntranetName"),
    }  # HKU\.DEFAULT is nobody's user policy
    assert {s["gpo"] for s in result["settings"]} == {read_ops.GPO_NAME}


def test_group_policy_below_the_key_prefixes_only(host: HostState) -> None:
    result = run_op(host, op="gpo_registry_settings", key_prefixes=["software\\policies\\microsoft\\edge"])
    assert sorted((s["key"], s["name"]) for s in result["settings"]) == [
        ("HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge", "BlockThirdPartyCookies"),
        ("HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\CookiesAllowedForUrls", "1"),
    ]  # not EdgeUpdate: a prefix matches whole key names
    assert run_op(host, op="gpo_registry_settings", key_prefixes=[])["settings"] == []
