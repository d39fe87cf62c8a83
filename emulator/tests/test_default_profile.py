"""The default profile's hive: ``HKU\\.DEFAULT_PROFILE\\...`` in registry operations (runner protocol),
the scenario extension ``default_profile`` and what GET /state shows of it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nhs_cm_emulator import ops, read_ops
from nhs_cm_emulator.scenario import ScenarioError, parse_document, parse_text
from nhs_cm_emulator.state import HostState

ZONEMAP = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap"
PSEUDO = "HKU\\.DEFAULT_PROFILE"
PROFILE_LIST = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList"

HOST = rf"""
hosts:
  - name: pc-default
    default_profile:
      registry:
        '{ZONEMAP}':
          AutoDetect: {{type: REG_DWORD, data: 1}}
        '{ZONEMAP}\Domains\localhost':
          http: {{type: REG_DWORD, data: 3}}
"""


def _host(text: str = HOST) -> HostState:
    hosts, _ = parse_document(parse_text(text, "default.yml"), "default.yml")
    return HostState(hosts[0])


def _run(host: HostState, *op_list: dict[str, Any], stop: bool = False) -> list[dict[str, Any]]:
    request: dict[str, Any] = {"protocol": 1, "ops": list(op_list)}
    if stop:
        request["write_errors"] = "stop"
    reply, code = ops.handle_request(host, json.dumps(request))
    assert code == 0, reply
    return reply["results"]


def test_profile_list_names_the_default_profile_as_windows_does() -> None:
    host = _host()
    result = _run(host, {"op": "reg_read", "key": PROFILE_LIST, "names": ["Default", "ProfilesDirectory"]})[0]
    assert result["values"] == {"Default": {"type": "REG_EXPAND_SZ", "data": "%SystemDrive%\\Users\\Default"},
                                "ProfilesDirectory": {"type": "REG_EXPAND_SZ", "data": "%SystemDrive%\\Users"}}
    assert host.default_profile_file() == "C:\\Users\\Default\\NTUSER.DAT"
    info = _run(host, {"op": "file_info", "paths": ["C:\\Users\\Default\\NTUSER.DAT"]})[0]
    assert info["files"][0]["exists"] is True


def test_reading_loads_the_hive_for_the_request_and_unloads_it_after() -> None:
    host = _host()
    first, second = _run(host, {"op": "reg_read", "key": f"{PSEUDO}\\{ZONEMAP}", "depth": 2},
                         {"op": "reg_read", "key": f"{PSEUDO}\\Software\\Policies"})
    assert first["values"] == {"AutoDetect": {"type": "REG_DWORD", "data": 1}}
    assert first["subkeys"]["Domains"]["subkeys"]["localhost"]["values"]["http"]["data"] == 3
    assert second["exists"] is True  # the skeleton every NTUSER.DAT has
    assert (host.hive_loads, host.hive_unloads, host.mounted()) == (1, 1, [])
    assert host.registry.lookup("HKU", [".DEFAULT_PROFILE"]) is None  # no key of that name exists


def test_the_hive_shows_under_a_mount_point_while_loaded() -> None:
    host = _host()
    segments = read_ops.default_profile_segments(host, "HKU", [".DEFAULT_PROFILE", *ZONEMAP.split("\\")])
    mount = segments[0]
    assert mount.startswith("nhs_cm_") and len(mount) == len("nhs_cm_") + 12 and host.mounted() == [mount]
    assert host.registry.lookup("HKU", segments).value("AutoDetect").data == 1
    read_ops.release_default_profile(host)
    assert host.mounted() == [] and host.registry.lookup("HKU", [mount]) is None


def test_an_empty_default_profile_has_only_the_skeleton() -> None:
    host = _host("hosts:\n  - name: pc-bare\n")
    result = _run(host, {"op": "reg_read", "key": f"{PSEUDO}\\{ZONEMAP}"})[0]
    assert result == {"ok": True, "exists": False, "values": {}, "subkeys": {}}
    assert host.state_dict()["default_profile"] == {"registry": {}}


def test_writes_persist_in_the_file_and_state_shows_them() -> None:
    host = _host()
    results = _run(host, {"op": "backup_save", "id": "b1", "entries": [
                       {"kind": "reg", "key": f"{PSEUDO}\\{ZONEMAP}", "name": "IntranetName", "existed": False},
                       {"kind": "reg", "key": f"{PSEUDO}\\Software\\Microsoft\\Windows\\CurrentVersion\\"
                                              "Internet Settings\\Zones\\1", "name": "1A00", "existed": False}]},
                   {"op": "reg_write", "key": f"{PSEUDO}\\{ZONEMAP}", "name": "IntranetName", "type": "REG_DWORD",
                    "data": 1},
                   {"op": "reg_write", "key": f"{PSEUDO}\\Software\\Microsoft\\Windows\\CurrentVersion\\"
                                              "Internet Settings\\Zones\\1", "name": "1A00", "type": "REG_DWORD",
                    "data": 0x20000}, stop=True)
    assert all(r["ok"] for r in results), results
    # the backup records the key as the controller sent it, never the mount point
    assert results[0]["missing_keys"] == [
        {"key": f"{PSEUDO}\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones", "view": "64"},
        {"key": f"{PSEUDO}\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1", "view": "64"}]
    assert host.mounted() == [] and (host.hive_loads, host.hive_unloads, host.writes) == (1, 1, 3)
    content = host.state_dict()["default_profile"]["registry"]
    assert content[ZONEMAP] == {"AutoDetect": {"type": "REG_DWORD", "data": 1},
                                "IntranetName": {"type": "REG_DWORD", "data": 1}}
    assert content["Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1"] == {
        "1A00": {"type": "REG_DWORD", "data": 0x20000}}
    assert not any(".default_profile" in key.lower() or "nhs_cm_" in key for key in host.state_dict()["registry"])
    # a later request loads the file afresh and finds what was written
    again = _run(host, {"op": "reg_read", "key": f"{PSEUDO}\\{ZONEMAP}", "names": ["IntranetName"]})[0]
    assert again["values"] == {"IntranetName": {"type": "REG_DWORD", "data": 1}}


def test_deleting_values_and_keys_restores_the_file_exactly() -> None:
    host = _host()
    before = host.state_dict()["default_profile"]
    zone1 = f"{PSEUDO}\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1"
    _run(host, {"op": "reg_write", "key": zone1, "name": "1A00", "type": "REG_DWORD", "data": 0})
    results = _run(host, {"op": "reg_delete", "key": zone1, "name": "1A00"},
                   {"op": "reg_delete_key", "key": zone1},
                   {"op": "reg_delete_key", "key": zone1.rsplit("\\", 1)[0]})
    assert [r.get("deleted", r.get("existed")) for r in results] == [True, True, True]
    assert host.state_dict()["default_profile"] == before


def test_the_write_allow_list_applies_to_the_default_profile() -> None:
    host = _host()
    outside = _run(host, {"op": "reg_write", "key": f"{PSEUDO}\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
                          "name": "x", "type": "REG_SZ", "data": "evil.exe"},
                   {"op": "reg_write", "key": "HKU\\.DEFAULT_PROFILEX\\" + ZONEMAP, "name": "x", "type": "REG_DWORD",
                    "data": 1},
                   {"op": "reg_delete_key", "key": f"{PSEUDO}\\Software\\Microsoft"})
    assert [r["error"] for r in outside] == ["forbidden", "forbidden", "forbidden"]
    assert host.writes == 0 and host.hive_loads == 0  # refused before the hive is touched


def test_a_missing_default_folder_fails_every_use_in_the_request_and_changes_nothing() -> None:
    text = (HOST + f"    registry:\n      '{PROFILE_LIST}':\n"
            "        Default: {type: REG_EXPAND_SZ, data: '%SystemDrive%\\Users\\Missing'}\n")
    host = _host(text)
    host.registry.lookup("HKLM", PROFILE_LIST.split("\\")[1:]).values.pop("default")
    results = _run(host, {"op": "reg_read", "key": f"{PSEUDO}\\{ZONEMAP}"},
                   {"op": "reg_write", "key": f"{PSEUDO}\\{ZONEMAP}", "name": "AutoDetect", "type": "REG_DWORD",
                    "data": 1})
    assert [r["error"] for r in results] == ["not_found", "not_found"]
    assert "no value 'Default'" in results[0]["message"]
    assert host.writes == 0 and host.mounted() == []


def test_a_hive_that_cannot_be_loaded_fails_with_reg_exe_s_reason() -> None:
    host = _host()
    host.registry.load_default_profile("other_tool")  # held by another program (not an nhs_cm_* mount)
    result = _run(host, {"op": "reg_read", "key": f"{PSEUDO}\\{ZONEMAP}"})[0]
    assert result["error"] == "failed" and "being used by another process" in result["message"]


@pytest.mark.parametrize("bad, message", [
    ({"registry": {"HKU\\S-1-5-21-1-2-3-4\\Software": {}}}, "relative to the default profile's hive root"),
    ({"registry": {"Software\\\\X": {}}}, "empty key name"),
    ({"hive": {}}, "unknown field 'hive'"),
])
def test_the_scenario_extension_is_checked(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_document({"hosts": [{"name": "x", "default_profile": bad}]}, "bad.yml")


def test_state_round_trips_as_a_scenario() -> None:
    host = _host()
    again, _ = parse_document({"hosts": [host.state_dict()]}, "again.yml")
    assert HostState(again[0]).state_dict()["default_profile"] == host.state_dict()["default_profile"]
