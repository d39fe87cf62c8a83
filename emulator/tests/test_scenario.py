"""Loading and validating scenario files; spreading an estate; state round trips."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhs_cm_emulator.scenario import ScenarioError, parse_document, parse_text
from nhs_cm_emulator.state import Estate, HostState, load_estate

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
OFF = "S-1-5-21-1004336348-1177238915-682003330-1002"
SRC = "scenarios/bad.yml"
PREFIX = f"{SRC}: hosts[0] (pc-bad): "
LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"


def base_host() -> dict[str, Any]:
    return {
        "name": "pc-bad",
        "os": {"product": "Windows 10 Enterprise", "version": "10.0.19045"},
        "winrm": {"auth": ["basic", "ntlm"], "users": {"ansible": "Passw0rd!"}},
        "sessions": [{"id": 1, "user": "NHS\\jsmith", "sid": SID, "state": "active"}],
        "profiles": [{"user": "NHS\\jsmith", "sid": SID, "path": "C:\\Users\\jsmith", "loaded": True},
                     {"user": "NHS\\old", "sid": OFF, "path": "C:\\Users\\old", "loaded": False}],
        "registry": {"HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge": {
            "BlockThirdPartyCookies": {"type": "REG_DWORD", "data": 1}}},
        "denied": [f"HKU\\{SID}\\Software\\Policies"],
        "services": [{"name": "NHSPortService", "display_name": "NHS Port Service", "state": "running",
                      "start_mode": "auto", "image": "C:\\Program Files (x86)\\NHS\\PortService.exe",
                      "listens": [43487]}],
        "processes": [{"image": "C:\\Windows\\explorer.exe", "session": 1, "user": "NHS\\jsmith"}],
        "files": [{"path": "C:\\x\\IdentityAgent.exe", "version": "2.4.10.0"}],
        "group_policy": {},
        "behaviour": {"starts_on_logon_task": True, "port_service_start_fails": False,
                      "port_service_ports": [43487]},
        "transport": {"fail": None},
    }


def patched(**fields: Any) -> dict[str, Any]:
    host = base_host()
    for name, value in fields.items():
        if value is DELETE:
            host.pop(name, None)
        else:
            host[name] = value
    return host


DELETE = object()
SESSION = {"id": 1, "user": "NHS\\jsmith", "sid": SID}
PROFILE = {"user": "NHS\\jsmith", "sid": SID, "path": "C:\\Users\\jsmith", "loaded": True}
HKLM_X = "HKLM\\SOFTWARE\\X"


def reg(path: str, name: str = "v", vtype: str = "REG_SZ", data: Any = "x") -> dict[str, Any]:
    return {"registry": {path: {name: {"type": vtype, "data": data}}}}


def svc(**fields: Any) -> dict[str, Any]:
    return {"services": [{"name": "S", **fields}]}


def proc(**fields: Any) -> dict[str, Any]:
    return {"processes": [{"image": "C:\\a.exe", **fields}]}


# (patch, field named in the message, words of the problem)
BAD_HOSTS: list[tuple[dict[str, Any], str, str]] = [
    ({"unknown": 1}, "host", "unknown field 'unknown'"),
    ({"template": 3}, "template", "expected a string"),
    ({"os": "win10"}, "os", "expected a mapping"),
    ({"os": {"version": 10.0}}, "os.version", "quote it"),
    ({"os": {"edition": "x"}}, "os", "unknown field 'edition'"),
    ({"winrm": {"auth": ["credssp"]}}, "winrm.auth", "'credssp' is not one of"),
    ({"winrm": {"clock_offset_seconds": "5 min"}}, "winrm.clock_offset_seconds", "expected an integer"),
    ({"winrm": {"auth": []}}, "winrm.auth", "non-empty list"),
    ({"winrm": {"auth": ["basic", "basic"]}}, "winrm.auth", "twice"),
    ({"winrm": {"users": {"ansible": 1234}}}, "winrm.users.ansible", "password must be a string"),
    ({"winrm": {"users": {}}}, "winrm.users", "non-empty mapping"),
    ({"sessions": {"id": 1}}, "sessions", "expected a list"),
    ({"sessions": [{**SESSION, "id": 0}]}, "sessions[0].id", "session 0 is implicit"),
    ({"sessions": [{**SESSION, "id": "one"}]}, "sessions[0].id", "expected an integer"),
    ({"sessions": [SESSION, SESSION]}, "sessions[1].id", "listed twice"),
    ({"sessions": [{**SESSION, "sid": SID[:-1] + "9"}]}, "sessions[0] (id 1).sid", "matches no profile"),
    ({"sessions": [{**SESSION, "user": "NHS\\other"}]}, "sessions[0] (id 1).user", "differs from the user"),
    ({"sessions": [{**SESSION, "sid": OFF, "user": None}]}, "sessions[0] (id 1)", "loaded: false"),
    ({"sessions": [{"id": 1}]}, "sessions[0] (id 1)", "give the session's user and sid"),
    ({"sessions": [{"id": 1, "user": "NHS\\nobody"}]}, "sessions[0] (id 1).user", "has no profile"),
    ({"sessions": [{**SESSION, "state": "asleep"}]}, "sessions[0] (id 1).state", "'asleep' is not one of"),
    ({"sessions": [{**SESSION, "colour": 1}]}, "sessions[0]", "unknown field 'colour'"),
    ({"profiles": [{**PROFILE, "sid": "S-1-5"}]}, "profiles[0].sid", "is not a SID"),
    ({"profiles": [{**PROFILE, "sid": "S-1-5-18"}]}, "profiles[0].sid", "system account"),
    ({"profiles": [PROFILE, PROFILE]}, "profiles[1].sid", "also the sid of profiles[0]"),
    ({"profiles": [{**PROFILE, "path": "Users\\jsmith"}]}, "profiles[0].path", "absolute Windows path"),
    ({"profiles": [{**PROFILE, "loaded": "yes"}]}, "profiles[0].loaded", "true or false"),
    ({"profiles": [{**PROFILE, "user": None}]}, "profiles[0].user", "required"),
    ({"profiles": ["NHS\\jsmith"]}, "profiles[0]", "expected a mapping"),
    ({"registry": ["HKLM\\X"]}, "registry", "expected a mapping"),
    (reg("HKCU\\Software"), "registry 'HKCU\\Software'", "HKCU is not allowed"),
    (reg("HKEY_CURRENT_USER\\Software"), "registry 'HKEY_CURRENT_USER\\Software'", "write HKU\\<sid>"),
    (reg("HKCR\\.txt"), "registry 'HKCR\\.txt'", "only HKLM and HKU"),
    (reg("HKLM"), "registry 'HKLM'", "a hive root holds no values"),
    (reg("HKLM\\\\SOFTWARE"), "registry 'HKLM\\\\SOFTWARE'", "one backslash"),
    (reg(HKLM_X, vtype="REG_DWORDX"), "registry 'HKLM\\SOFTWARE\\X' value 'v'.type", "not one of"),
    (reg(HKLM_X, vtype="REG_DWORD", data="1"), "value 'v'.data", "REG_DWORD data must be an integer"),
    (reg(HKLM_X, vtype="REG_DWORD", data=True), "value 'v'.data", "must be an integer"),
    (reg(HKLM_X, vtype="REG_DWORD", data=2**32), "value 'v'.data", "does not fit in 32 bits"),
    (reg(HKLM_X, vtype="REG_QWORD", data=2**64), "value 'v'.data", "does not fit in 64 bits"),
    (reg(HKLM_X, vtype="REG_MULTI_SZ", data="a"), "value 'v'.data", "list of strings"),
    (reg(HKLM_X, vtype="REG_MULTI_SZ", data=["a", 1]), "value 'v'.data", "list of strings"),
    (reg(HKLM_X, vtype="REG_BINARY", data="abc"), "value 'v'.data", "two per byte"),
    (reg(HKLM_X, vtype="REG_BINARY", data="zz"), "value 'v'.data", "hex digits"),
    (reg(HKLM_X, vtype="REG_BINARY", data=100), "value 'v'.data", "quote it"),
    (reg(HKLM_X, data=1.5), "value 'v'.data", "REG_SZ data must be a string"),
    (reg(HKLM_X, vtype="REG_EXPAND_SZ", data=None), "value 'v'.data", "must be a string"),
    ({"registry": {HKLM_X: {"v": {"type": "REG_SZ"}}}}, "value 'v'.data", "missing"),
    ({"registry": {HKLM_X: {"v": "text"}}}, "registry 'HKLM\\SOFTWARE\\X' value 'v'", "expected a mapping"),
    ({"registry": {HKLM_X: {"v": {"type": "REG_SZ", "data": "", "x": 1}}}}, "value 'v'", "unknown field 'x'"),
    ({"registry": {HKLM_X: {True: {"type": "REG_SZ", "data": ""}}}}, "registry 'HKLM\\SOFTWARE\\X'",
     "value name True"),
    ({"registry": {HKLM_X: ["a"]}}, "registry 'HKLM\\SOFTWARE\\X'", "expected a mapping"),
    ({"registry": {3: {}}}, "registry 3", "must be a string"),
    ({"registry": {HKLM_X: {"V": {"type": "REG_SZ", "data": "a"}},
                   "hklm\\software\\x": {"v": {"type": "REG_SZ", "data": "b"}}}},
     "registry 'hklm\\software\\x' value 'v'", "given twice"),
    (reg("HKU\\S-1-5-21-9-9-9-1003\\Software"), "registry 'HKU\\S-1-5-21-9-9-9-1003\\Software'",
     "no profile's sid"),
    (reg(f"HKU\\{OFF}_Classes\\X"), f"registry 'HKU\\{OFF}_Classes\\X'", "only while the profile's hive"),
    ({"denied": ["HKCU\\Software"]}, "denied[0]", "HKCU is not allowed"),
    ({"denied": "HKLM\\X"}, "denied", "expected a list"),
    ({"group_policy": {"HKCU\\Software\\Policies": {}}}, "group_policy 'HKCU\\Software\\Policies'", "HKCU"),
    ({"services": [{"display_name": "x"}]}, "services[0].name", "required"),
    ({"services": [{"name": "A"}, {"name": "a"}]}, "services[1].name", "also services[0]"),
    (svc(state="sleeping"), "services[0] (S).state", "'sleeping' is not one of"),
    (svc(start_mode="automatic"), "services[0] (S).start_mode", "'automatic' is not one of"),
    (svc(listens=[70000]), "services[0] (S).listens", "1..65535"),
    (svc(listens=[1, 1]), "services[0] (S).listens", "twice"),
    (svc(state="stopped", pid=2400), "services[0] (S).pid", "a stopped service has no process id"),
    (svc(image=5), "services[0] (S).image", "non-empty string"),
    (svc(name="a\\b"), "services[0].name", "no slashes"),
    (proc(session=5), "processes[0].session", "session 5 is not in sessions"),
    ({"processes": [{"session": 0}]}, "processes[0]", "image (full path) or"),
    (proc(image="explorer.exe"), "processes[0].image", "absolute Windows path"),
    (proc(version=1.4), "processes[0].version", "quote it"),
    (proc(pid=1000), "processes[0].pid", "emulator's own Windows processes"),
    ({"processes": [{"image": "C:\\a.exe"}, {"image": "C:\\b.exe", "pid": 5000}]}, "processes[1].pid",
     "also the pid of processes[0]"),
    (proc(listens=[43487]), "processes[0].listens", "already listened on by services[0]"),
    (proc(user=7), "processes[0].user", "non-empty string"),
    (proc(cpu=1), "processes[0]", "unknown field 'cpu'"),
    ({"files": [{"path": "x.exe"}]}, "files[0].path", "absolute Windows path"),
    ({"files": [{"path": "C:\\a"}, "c:\\A"]}, "files[1].path", "also files[0]"),
    ({"files": [{"path": "C:\\a", "version": 2}]}, "files[0].version", "quote it"),
    ({"behaviour": {"reboots": True}}, "behaviour", "unknown field 'reboots'"),
    ({"behaviour": {"starts_on_logon_task": "yes"}}, "behaviour.starts_on_logon_task", "true or false"),
    ({"behaviour": {"port_service_ports": ["x"]}}, "behaviour.port_service_ports", "expected an integer"),
    ({"transport": {"fail": {"kind": "explode"}}}, "transport.fail.kind", "'explode' is not one of"),
    ({"transport": {"fail": {"kind": "drop", "times": 0}}}, "transport.fail.times", "1..1000000000"),
    ({"transport": {"fail": {"kind": "timeout", "seconds": -1}}}, "transport.fail.seconds", "0..3600"),
    ({"transport": {"fail": {"kind": "auth", "after": 1}}}, "transport.fail", "unknown field 'after'"),
    ({"transport": {"fail": 3}}, "transport.fail", "expected a mapping"),
    ({"transport": {"retry": 1}}, "transport", "unknown field 'retry'"),
]


@pytest.mark.parametrize(("patch", "field", "problem"), BAD_HOSTS,
                         ids=[f"{i}-{field}" for i, (_, field, _) in enumerate(BAD_HOSTS)])
def test_bad_host_names_file_host_and_field(patch: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_document({"hosts": [patched(**patch)]}, SRC)
    message = str(caught.value)
    assert message.startswith(PREFIX), message
    assert f"{field}: " in message[len(PREFIX):], message
    assert problem in message, message


def test_the_base_host_is_valid() -> None:
    hosts, expect = parse_document({"hosts": [base_host()]}, SRC)
    assert hosts[0]["name"] == "pc-bad" and expect == {}


def test_a_host_with_a_bad_name() -> None:
    with pytest.raises(ScenarioError, match=r"^scenarios/bad\.yml: hosts\[0\] \(has space\): name: required: a host"):
        parse_document({"hosts": [patched(name="has space")]}, SRC)


def test_a_host_without_a_name() -> None:
    with pytest.raises(ScenarioError, match=r"^scenarios/bad\.yml: hosts\[0\]: name: required"):
        parse_document({"hosts": [patched(name=DELETE)]}, SRC)


@pytest.mark.parametrize(("doc", "message"), [
    ([1, 2], "scenarios/bad.yml: top level: expected a mapping with a 'hosts' list, found a list"),
    (None, "scenarios/bad.yml: top level: expected a mapping"),
    ({"host": []}, "scenarios/bad.yml: hosts: expected a non-empty list of hosts (missing)"),
    ({"hosts": []}, "scenarios/bad.yml: hosts: expected a non-empty list of hosts"),
    ({"hosts": ["pc-1"]}, "scenarios/bad.yml: hosts[0]: host: expected a mapping, found a string"),
    ({"hosts": [{"name": "a"}, {"name": "A"}]},
     "scenarios/bad.yml: hosts[1] (A): name: duplicate host name: hosts[0] has the same name"),
    ({"hosts": [{"name": "a"}], "expect": {"a": ["cm_not_installed"]}},
     "scenarios/bad.yml: expect['a']: 'cm_not_installed' is not a finding id"),
    ({"hosts": [{"name": "a"}], "expect": {"b": []}}, "scenarios/bad.yml: expect['b']: names no host of this file"),
    ({"hosts": [{"name": "a"}], "expect": {"a": "CM_NOT_INSTALLED"}},
     "scenarios/bad.yml: expect['a']: expected a list of finding ids"),
    ({"hosts": [{"name": "a"}], "expect": ["a"]}, "scenarios/bad.yml: expect: expected a mapping"),
])
def test_bad_documents(doc: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_document(doc, SRC)
    assert str(caught.value).startswith(message)


def test_unknown_top_level_keys_are_ignored() -> None:
    hosts, expect = parse_document({"hosts": [{"name": "a"}], "notes": ["anything"], 7: None,
                                    "expect": {"A": ["X_B", "X_A", "X_A"], }}, SRC)
    assert [h["name"] for h in hosts] == ["a"] and expect == {"a": ["X_A", "X_B"]}


@pytest.mark.parametrize(("text", "message"), [
    ("hosts: [", "scenarios/bad.yml: not valid YAML"),
    ("hosts:\n  - name: a\n    name: b\n", "found duplicate key 'name'"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ("!!python/object:os.system {}", "not valid YAML"),
    (b"hosts: \xff\xff", "not valid YAML"),
])
def test_bad_yaml(text: str | bytes, message: str) -> None:
    with pytest.raises(ScenarioError, match="^" if message.startswith("scenarios") else None) as caught:
        parse_text(text, SRC)
    assert str(caught.value).startswith(SRC + ": not valid YAML") and message in str(caught.value)


def test_yaml_merge_keys_and_anchors_work() -> None:
    text = ("common: &v {type: REG_DWORD, data: 1}\nhosts:\n  - name: a\n    registry:\n"
            "      'HKLM\\SOFTWARE\\A': {x: *v, y: {<<: *v, data: 2}}\n")
    hosts, _ = parse_document(parse_text(text, SRC), SRC)
    assert hosts[0]["registry"]["HKLM\\SOFTWARE\\A"]["y"] == {"type": "REG_DWORD", "data": 2}


# -- normalisation and defaults ----------------------------------------------------------------

def test_defaults() -> None:
    host = parse_document({"hosts": [{"name": "bare"}]}, "dir/bare.yml")[0][0]
    assert host == {
        "name": "bare", "template": "bare.yml:bare",
        "os": {"product": "Windows 10 Enterprise", "version": "10.0.19045"},
        "winrm": {"auth": ["basic", "ntlm", "kerberos"], "users": {"ansible": "Passw0rd!"}},
        "sessions": [], "profiles": [], "registry": {}, "denied": [], "services": [], "processes": [],
        "files": [], "group_policy": {},
        "behaviour": {"starts_on_logon_task": True, "port_service_start_fails": False,
                      "port_service_ports": [43487]},
        "transport": {"fail": None}, "backups": [], "default_profile": {"registry": {}},
        "hive_mounts": [], "backup_folder": None, "user_writable_folders": [],
    }
    state = HostState(host)
    assert (state.auth, state.users, state.transport_fail, state.writes) == (
        ["basic", "ntlm", "kerberos"], {"ansible": "Passw0rd!"}, None, 0)


def test_normalisation() -> None:
    raw = patched(
        registry={
            "HKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor\\": {1: {"type": "reg_dword", "data": -1}},
            "hklm\\software\\VENDOR": {"Name": {"type": "REG_BINARY", "data": "DE:AD BE,EF"}},
            f"HKEY_USERS\\{SID.lower()}\\Software": {"": {"type": "REG_MULTI_SZ", "data": None}},
        },
        sessions=[{"id": 1, "sid": SID.lower()}],
        services=[{"name": "S", "state": "RUNNING", "start_mode": "Auto"}],
        files=["C:\\a.exe"],
        transport={"fail": "refuse"},
    )
    host = parse_document({"hosts": [raw]}, SRC)[0][0]
    assert host["registry"] == {
        "HKLM\\SOFTWARE\\Vendor": {"1": {"type": "REG_DWORD", "data": 4294967295},
                                   "Name": {"type": "REG_BINARY", "data": "deadbeef"}},
        f"HKU\\{SID.lower()}\\Software": {"": {"type": "REG_MULTI_SZ", "data": []}},
    }
    assert host["sessions"] == [{"id": 1, "user": "NHS\\jsmith", "sid": SID, "state": "active"}]
    assert host["services"][0] == {"name": "S", "display_name": "S", "state": "running", "start_mode": "auto",
                                   "image": None, "listens": []}
    assert host["files"] == [{"path": "C:\\a.exe", "version": None}]
    assert host["transport"] == {"fail": {"kind": "refuse", "after_requests": 0, "times": 1, "seconds": 60.0}}


def test_session_by_user_only_takes_the_profile_sid() -> None:
    raw = patched(sessions=[{"id": 2, "user": "nhs\\JSMITH"}], processes=[])
    host = parse_document({"hosts": [raw]}, SRC)[0][0]
    assert host["sessions"] == [{"id": 2, "user": "nhs\\JSMITH", "sid": SID, "state": "active"}]


def test_transport_fail_is_given_to_the_server() -> None:
    raw = patched(transport={"fail": {"kind": "http500", "after_requests": 3, "times": 2, "seconds": 1}},
                  winrm={"auth": ["ntlm"], "users": {"a": "b", "c": "d"}})
    state = HostState(parse_document({"hosts": [raw]}, SRC)[0][0])
    assert state.transport_fail == {"kind": "http500", "after_requests": 3, "times": 2, "seconds": 1.0}
    assert state.auth == ["ntlm"] and list(state.users) == ["a", "c"]


# -- files and directories -------------------------------------------------------------------

def write(path: Path, hosts: list[dict[str, Any]], expect: dict[str, list[str]] | None = None) -> Path:
    doc: dict[str, Any] = {"hosts": hosts}
    if expect is not None:
        doc["expect"] = expect
    path.write_text(yaml.safe_dump(doc))
    return path


def test_load_files_and_directories(tmp_path: Path) -> None:
    write(tmp_path / "b.yml", [{"name": "b1"}, {"name": "b2"}], {"b2": ["CM_NOT_RUNNING"]})
    write(tmp_path / "a.yaml", [{"name": "a1"}])
    (tmp_path / "notes.txt").write_text("not a scenario")
    extra = write(tmp_path.parent / f"{tmp_path.name}-c.yml", [{"name": "c1"}])
    estate = load_estate([str(tmp_path), str(extra)])
    assert [h.name for h in estate.hosts] == ["a1", "b1", "b2", "c1"]
    assert [h.template for h in estate.hosts] == ["a.yaml:a1", "b.yml:b1", "b.yml:b2", f"{extra.name}:c1"]
    assert estate.expect == {"b2": ["CM_NOT_RUNNING"]}
    assert estate.by_name("B2") is estate.hosts[2]
    with pytest.raises(KeyError):
        estate.by_name("zz")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file or directory"):
        load_estate([str(tmp_path / "missing.yml")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError, match=r"no \*\.yml or \*\.yaml scenario files"):
        load_estate([str(tmp_path / "empty")])
    one = write(tmp_path / "one.yml", [{"name": "pc-1"}])
    two = write(tmp_path / "two.yml", [{"name": "x"}, {"name": "PC-1"}])
    with pytest.raises(ScenarioError) as caught:
        load_estate([str(one), str(two)])
    assert str(caught.value) == (f"{two}: hosts[1] (PC-1): name: host name also used in {one}; names must be "
                                 "unique across the files loaded")
    assert len(load_estate([str(one), str(two)], hosts=3).hosts) == 3  # renamed, so allowed
    for bad in (0, -1, "3", True):
        with pytest.raises(ScenarioError, match="hosts: expected a number of hosts"):
            load_estate([str(one)], hosts=bad)  # type: ignore[arg-type]
    broken = tmp_path / "broken.yml"
    broken.write_text("hosts:\n  - name: ok\n    sessions: [{id: 0}]\n")
    with pytest.raises(ScenarioError, match=f"^{broken}: hosts\\[0\\] \\(ok\\): sessions\\[0\\].id:"):
        load_estate([str(broken)])


# -- spreading -------------------------------------------------------------------------------

@pytest.fixture
def two_files(tmp_path: Path) -> list[str]:
    write(tmp_path / "1.yml", [{"name": "healthy"}, {"name": "sick"}], {"healthy": [], "sick": ["CM_NOT_RUNNING"]})
    write(tmp_path / "2.yml", [{"name": "other"}], {"other": ["DOTNET48_MISSING"]})
    return [str(tmp_path)]


def test_spreading_names_templates_and_expect(two_files: list[str]) -> None:
    estate = load_estate(two_files, hosts=12, seed=7)
    assert [h.name for h in estate.hosts] == [f"pc-{i:04d}" for i in range(1, 13)]
    assert [h.template for h in estate.hosts[:3]] == ["1.yml:healthy", "1.yml:sick", "2.yml:other"]
    by_template = {"1.yml:healthy": [], "1.yml:sick": ["CM_NOT_RUNNING"], "2.yml:other": ["DOTNET48_MISSING"]}
    assert estate.expect == {h.name: by_template[h.template] for h in estate.hosts}
    assert all(h.state_dict()["name"] == h.name for h in estate.hosts)
    assert estate.hosts[0].registry is not estate.hosts[3].registry


def test_spreading_is_deterministic(two_files: list[str]) -> None:
    def templates(seed: int) -> list[str]:
        return [h.template for h in load_estate(two_files, hosts=30, seed=seed).hosts]
    assert templates(1) == templates(1)
    assert len({tuple(templates(seed)) for seed in range(5)}) > 1
    assert len(set(templates(3))) == 3


def test_spreading_fewer_hosts_than_templates(two_files: list[str]) -> None:
    estate = load_estate(two_files, hosts=2)
    assert [(h.name, h.template) for h in estate.hosts] == [("pc-0001", "1.yml:healthy"), ("pc-0002", "1.yml:sick")]
    assert estate.expect == {"pc-0001": [], "pc-0002": ["CM_NOT_RUNNING"]}


# -- round trips -----------------------------------------------------------------------------

def round_trip(estate: Estate, tmp_path: Path) -> Estate:
    path = tmp_path / "dumped.yml"
    path.write_text(yaml.safe_dump(estate.state_dict(), sort_keys=False))
    return load_estate([str(path)])


def test_library_round_trips(tmp_path: Path) -> None:
    estate = load_estate([str(LIBRARY)])
    again = round_trip(estate, tmp_path)
    assert again.state_dict() == estate.state_dict()
    assert [h.template for h in again.hosts] == [h.template for h in estate.hosts]


def test_spread_estate_round_trips(tmp_path: Path) -> None:
    estate = load_estate([str(LIBRARY)], hosts=20, seed=3)
    assert round_trip(estate, tmp_path).state_dict() == estate.state_dict()


def test_full_host_round_trips(tmp_path: Path) -> None:
    raw = patched(registry={"HKLM\\SOFTWARE\\Empty": {}, f"HKU\\{OFF}\\Software\\X": {"a": {"type": "REG_NONE",
                                                                                           "data": "00"}},
                            f"HKU\\{SID}_Classes\\Y": {}},
                  services=[{"name": "A", "state": "running", "pid": 9000},
                            {"name": "B", "state": "paused", "listens": [1]}],
                  processes=[{"name": "Idle"}, {"image": "C:\\b.exe", "pid": 7000, "listens": [2, 3]}],
                  transport={"fail": {"kind": "timeout", "seconds": 0.5}},
                  winrm={"auth": ["kerberos"], "users": {"ansible": "x"}, "clock_offset_seconds": -600})
    estate = Estate([HostState(parse_document({"hosts": [raw]}, SRC)[0][0])], {})
    dumped = estate.state_dict()["hosts"][0]
    assert dumped["services"][1]["pid"] == 2004 and dumped["processes"][0]["pid"] == 5000
    assert dumped["winrm"]["clock_offset_seconds"] == -600
    assert round_trip(estate, tmp_path).state_dict() == estate.state_dict()


# -- robustness ------------------------------------------------------------------------------

FRAGMENTS = ["hosts:", "expect:", "\n", "  ", "- ", "name: ", "pc-1", "registry:", "'HKLM\\SOFTWARE\\X':",
             "'HKCU\\X':", "{", "}", "[", "]", ",", ": ", "type: REG_DWORD", "type: REG_BINARY", "data: ", "1",
             "0x20000", "'01'", "-1", "sessions:", "profiles:", "id: ", "sid: ", "S-1-5-21-1-2-3-1001", "user: ",
             "path: ", "'C:\\Users\\a'", "loaded: ", "true", "no", "null", "~", "services:", "processes:",
             "state: running", "listens: ", "files:", "&a ", "*a", "!!binary ", "!!str ", "? ", "|", ">", "'", '"',
             "#", "\t", "\\", "2001-01-01", ".inf", "transport:", "fail: ", "kind: drop", "behaviour:", "<<: "]


def _loads_or_scenario_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yml"
    path.write_text(text)
    try:
        estate = load_estate([str(path)])
    except ScenarioError:
        return
    for host in estate.hosts:
        host.state_dict()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=40))
def test_arbitrary_yamlish_text_gives_scenario_error(tmp_path: Path, parts: list[str]) -> None:
    _loads_or_scenario_error("".join(parts), tmp_path)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


BASE_PATHS = [p for p in _paths(base_host()) if p]
SCALARS = (st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats(allow_nan=True)
           | st.text(max_size=8) | st.sampled_from(["HKLM\\SOFTWARE\\X", "HKCU\\X", "REG_DWORD", "REG_BINARY", SID,
                                                    OFF, "C:\\x.exe", "running", "stopped", "auto", "basic", "drop",
                                                    "", "S-1-5-18", "NHS\\jsmith", "HKU\\" + SID + "_Classes\\x"]))
VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=3)
                      | st.dictionaries(st.sampled_from(["name", "type", "data", "id", "sid", "user", "kind", "path",
                                                         "state", "x"]) | st.text(max_size=4), children, max_size=3),
                      max_leaves=8)


def _mutate(host: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> None:
    target: Any = host
    for key in path[:-1]:
        target = target[key]
    if delete and isinstance(target, dict):
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from(BASE_PATHS), VALUES, st.booleans()), min_size=1, max_size=3))
def test_mutated_hosts_load_or_give_scenario_error(mutations: list[tuple[tuple[Any, ...], Any, bool]]) -> None:
    host = base_host()
    for path, value, delete in mutations:
        try:
            _mutate(host, path, copy.deepcopy(value), delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    try:
        hosts, _ = parse_document({"hosts": [host]}, SRC)
    except ScenarioError as exc:
        assert str(exc).startswith(SRC + ": hosts[0]")
        return
    state = HostState(hosts[0])
    dumped = state.state_dict()
    assert HostState(parse_document({"hosts": [dumped]}, SRC)[0][0]).state_dict() == dumped


def test_the_readme_example_of_the_host_safety_fields_loads() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Extension: host safety fields", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (host,), _ = parse_document(parse_text(example, "README.md"), "README.md")
    assert [m["mount"] for m in host["hive_mounts"]] == ["nhs_cm_0123456789ab", "nhs_cm_a1b2c3d4e5f6"]
    assert [b["id"] for b in host["backups"]] == ["run-1", "planted", "broken"]
    assert host["user_writable_folders"][1] == {"path": "C:\\Tools", "group": "Everyone"}
    assert HostState(host).mounted() == ["nhs_cm_0123456789ab", "nhs_cm_a1b2c3d4e5f6"]
