"""The facts other checks consume: policy_keys, users (sessions and offline profiles), gpo,
declared reads, and the plan's link to an e-RS report. The last tests send diagnose's real plan
through the emulator's operations (in-process) and build the facts from its answers."""

from __future__ import annotations

import json
import typing as t

import pytest
from nhs_cm_hostsim import healthy_host, results_for

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import facts as _facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import reads as _reads
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import options_with_defaults
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import (
    DECLARATIONS,
    DECLARED,
    Declaration,
    DeclaredReads,
    declared_reads,
    merge_declared,
    plan_reads,
    planned_reads,
)

SID1 = "S-1-5-21-1004336348-1177238915-682003330-1001"
SID2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
OFFLINE = "S-1-5-21-1004336348-1177238915-682003330-1003"
SERVICE = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
ZONEMAP = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap"
EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
Reads = list[tuple[str, int, list[str] | None]]


def dword(data: int) -> dict[str, t.Any]:
    return {"type": "REG_DWORD", "data": data}


def reads_of(machine: Reads, user: Reads) -> DeclaredReads:
    """Declared reads as merged: only these keys, instead of what the models declare."""
    return DeclaredReads(machine=tuple(machine), user=tuple(user))


def facts_of(host: dict[str, t.Any], declared: DeclaredReads = DECLARED, **options: t.Any) -> dict[str, t.Any]:
    opts = options_with_defaults(options)
    return build_facts(results_for(host, opts, declared), opts, declared)


# -- users -------------------------------------------------------------------------------------------

def test_one_user_per_session_with_its_own_hive() -> None:
    declared = reads_of([], [(ZONEMAP, 0, None)])
    host = healthy_host()
    host["user_keys"] = {}
    host["profiles"] = {SID2: {"user": "NHS\\akhan", "loaded": True, "keys": {ZONEMAP: {"IntranetName": dword(0)}}},
                        OFFLINE: {"user": "NHS\\old", "loaded": False, "keys": {ZONEMAP: {}}}}
    users = facts_of(host, declared)["users"]
    assert users == [
        {"sid": SID1, "user": "NHS\\jsmith", "session": 1, "source": "session", "hive": "loaded", "error": None,
         "keys": {ZONEMAP: {"exists": False, "values": {}, "subkeys": {}, "error": None}}},
        {"sid": SID2, "user": "NHS\\akhan", "session": 2, "source": "session", "hive": "loaded", "error": None,
         "keys": {ZONEMAP: {"exists": True, "values": {"IntranetName": dword(0)}, "subkeys": {}, "error": None}}},
    ]  # the offline profile only with include_offline_profiles


def test_offline_profiles_when_asked() -> None:
    declared = reads_of([], [(ZONEMAP, 0, None)])
    host = healthy_host()
    host["profiles"] = {OFFLINE: {"user": "NHS\\old", "path": "D:\\P\\old", "loaded": False,
                                  "keys": {ZONEMAP: {"AutoDetect": dword(1)}}},
                        SERVICE: {"user": "NT SERVICE\\X", "loaded": True, "keys": {}}}
    users = facts_of(host, declared, include_offline_profiles=True)["users"]
    assert [(u["sid"], u["session"], u["source"], u["hive"]) for u in users] == [
        (SID1, 1, "session", "loaded"), (SID2, 2, "session", "loaded"),
        (OFFLINE, None, "offline_profile", "mounted")]  # never a service account
    assert users[2]["keys"][ZONEMAP]["values"] == {"AutoDetect": dword(1)} and users[2]["user"] == "NHS\\old"
    request = next(op for op in plan_reads({"include_offline_profiles": True}, declared)
                   if op["op"] == "user_hives_read")
    assert request == {"op": "user_hives_read", "paths": [[ZONEMAP, 0]], "include_offline": True}


def _facts_with_profiles(profiles: list[dict[str, t.Any]], sessions: list[dict[str, t.Any]] | None = None,
                         include_offline: bool = True) -> list[dict[str, t.Any]]:
    result = {"ok": True, "profiles": profiles}
    sessions = [{"id": 1, "user": "NHS\\jsmith", "sid": SID1}] if sessions is None else sessions
    return _facts._users(sessions, result, None, include_offline)


def _profile(sid: str, **fields: t.Any) -> dict[str, t.Any]:
    return {"sid": sid, "user": None, "path": None, "loaded": False, "mounted_as": None, "error": None, "keys": {},
            **fields}


def test_why_a_hive_is_unavailable() -> None:
    users = _facts_with_profiles([  # as the runner lists them: sorted by SID
        _profile(SID2, mounted_as="nhs_cm_1", keys={ZONEMAP: {"exists": True, "values": {}, "subkeys": {}}},
                 error="failed: cannot unload HKU\\nhs_cm_1: reg.exe unload exited with 1: ERROR: Access is denied."),
        _profile(OFFLINE, error="failed: cannot load D:\\P\\NTUSER.DAT: ERROR: in use"),
        _profile(SERVICE, loaded=True),
    ])
    assert [(u["sid"], u["hive"], u["error"]) for u in users] == [
        (SID1, "unavailable", f"HKU\\{SID1} is not loaded and the profile is not in ProfileList"),
        (SID2, "mounted", "failed: cannot unload HKU\\nhs_cm_1: reg.exe unload exited with 1: ERROR: Access is "
                          "denied."),
        (OFFLINE, "unavailable", "failed: cannot load D:\\P\\NTUSER.DAT: ERROR: in use"),
    ]


def test_a_session_whose_sid_is_unknown_and_a_failed_read() -> None:
    users = _facts_with_profiles([], sessions=[{"id": 3, "user": "NHS\\x", "sid": None}])
    assert (users[0]["hive"], users[0]["error"]) == ("unavailable", "the SID of the session's user could not be "
                                                                    "resolved")
    failed = _facts._users([{"id": 1, "user": "NHS\\jsmith", "sid": SID1}],
                           {"ok": False, "error": "access_denied"}, "access_denied: Access is denied.", True)
    assert [(u["hive"], u["error"], u["keys"]) for u in failed] == [("unavailable", "access_denied: Access is "
                                                                     "denied.", {})]


def test_nobody_logged_on_no_user_without_the_option() -> None:
    assert _facts_with_profiles([_profile(OFFLINE)], sessions=[], include_offline=False) == []


# -- policy_keys and gpo -----------------------------------------------------------------------------

def test_policy_keys_are_read_as_declared() -> None:
    declared = reads_of([(EDGE, 1, ["BlockThirdPartyCookies"]), ("HKLM\\SOFTWARE\\Nothing", 0, None)], [])
    ops = plan_reads({}, declared)
    assert {"op": "reg_read", "key": EDGE, "depth": 1, "names": ["BlockThirdPartyCookies"]} in ops
    host = healthy_host()
    host["registry"][EDGE] = {"BlockThirdPartyCookies": dword(1), "Other": dword(2)}
    host["failures"]["policy:HKLM\\SOFTWARE\\Nothing"] = {"ok": False, "error": "access_denied", "message": "no"}
    facts = facts_of(host, declared)
    assert facts["policy_keys"] == {
        EDGE: {"exists": True, "values": {"BlockThirdPartyCookies": dword(1)}, "subkeys": {}, "error": None},
        "HKLM\\SOFTWARE\\Nothing": {"exists": False, "values": {}, "subkeys": {}, "error": "access_denied"},
    }
    assert facts["read_errors"]["policy:HKLM\\SOFTWARE\\Nothing"] == "access_denied: no"


def test_nodes_are_whole_at_every_depth() -> None:
    reply = {"ok": True, "exists": True, "values": {}, "subkeys": {
        "CookiesAllowedForUrls": {"values": {"1": {"type": "REG_SZ", "data": "[*.]localhost"}}, "subkeys": {
            "Deeper": None}},
        "Locked": {"values": {}, "subkeys": {}, "error": "access_denied"}}}
    assert _facts.registry_node(reply) == {"exists": True, "values": {}, "error": None, "subkeys": {
        "CookiesAllowedForUrls": {"exists": True, "values": {"1": {"type": "REG_SZ", "data": "[*.]localhost"}},
                                  "subkeys": {"Deeper": None}, "error": None},
        "Locked": {"exists": True, "values": {}, "subkeys": {}, "error": "access_denied"}}}


def test_gpo_settings_and_why_they_are_missing() -> None:
    declared = reads_of([(EDGE, 0, None)], [("Software\\Policies\\Microsoft\\Edge", 0, None), (ZONEMAP, 0, None)])
    assert next(op for op in plan_reads({}, declared) if op["op"] == "gpo_registry_settings") == {
        "op": "gpo_registry_settings",
        "key_prefixes": ["SOFTWARE\\Policies\\Microsoft\\Edge", ZONEMAP]}  # each key once, any case
    host = healthy_host()
    setting = {"scope": "machine", "sid": None, "key": EDGE, "name": "**delvals.", "gpo": "Trust policy"}
    host["gpo_settings"] = [setting]
    assert facts_of(host, declared)["gpo"] == {"available": True, "error": None, "settings": [setting]}
    host["failures"]["gpo"] = {"ok": False, "error": "not_found", "message": "Invalid namespace"}
    assert facts_of(host, declared)["gpo"] == {"available": False, "error": "not_found: Invalid namespace",
                                               "settings": []}


def test_gpo_prefixes_leave_out_keys_below_another() -> None:
    machine = [("HKLM\\SOFTWARE\\Policies\\Google\\Chrome", 0, None),
               ("HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\CookiesAllowedForUrls", 0, None),
               ("HKLM\\SOFTWARE\\Policies\\Google\\ChromeX", 0, None)]
    assert _reads._gpo_prefixes(machine, []) == ["SOFTWARE\\Policies\\Google\\Chrome",
                                                 "SOFTWARE\\Policies\\Google\\ChromeX"]


# -- declared reads ------------------------------------------------------------------------------------

def test_declared_reads_merge_declarations() -> None:
    merged = declared_reads([
        Declaration("_fake_a", machine_reads=[(EDGE, 0), ("HKLM\\SOFTWARE\\A", 1)],
                    value_names={EDGE: ["BlockThirdPartyCookies"]}),
        Declaration("_fake_b", machine_reads=[(EDGE.lower(), 2)], user_reads=[(ZONEMAP, 0)],
                    value_names={EDGE.lower(): ["AuthServerAllowlist"]}),
    ])
    assert merged.machine == ((EDGE, 2, ["BlockThirdPartyCookies", "AuthServerAllowlist"]),
                              ("HKLM\\SOFTWARE\\A", 1, None))
    assert merged.user == ((ZONEMAP, 0, None),)


def test_a_declaration_without_a_filter_reads_every_value() -> None:
    declarations = [Declaration("_fake_a", machine_reads=[(EDGE, 0)], value_names={EDGE: ["X"]}),
                    Declaration("_fake_b", machine_reads=[(EDGE, 0)])]
    assert merge_declared(declarations, machine=True) == [(EDGE, 0, None)]


def test_no_declaration_reads_nothing() -> None:
    assert merge_declared([], machine=True) == [] and merge_declared([], machine=False) == []
    assert merge_declared([Declaration("_empty")], machine=True) == []


def test_the_plan_reads_what_the_models_declare() -> None:
    assert declared_reads(DECLARATIONS) == DECLARED
    assert [declaration.where for declaration in DECLARATIONS] == ["_diagnose.models.policy"]
    labels = [label for label, _op in planned_reads({})]
    assert [label for label in labels if label.startswith("policy:")] == [
        f"policy:{path}" for path, _depth, _names in DECLARED.machine]
    hives = next(op for _label, op in planned_reads({}) if op["op"] == "user_hives_read")
    assert hives["paths"] == [[path, depth] for path, depth, _names in DECLARED.user]


@pytest.mark.parametrize(("declaration", "message"), [
    (Declaration("_fake", machine_reads=[("SOFTWARE\\X", 0)]),
     "_fake.MACHINE_READS[0]: 'SOFTWARE\\\\X' must be a full HKLM"),
    (Declaration("_fake", machine_reads=[(EDGE, 5)]), "_fake.MACHINE_READS[0]: depth must be from 0 to 4, not 5"),
    (Declaration("_fake", machine_reads=[EDGE]), "_fake.MACHINE_READS[0] must be a (key path, depth) pair"),
    (Declaration("_fake", user_reads=[("HKU\\S-1-5-21-1\\Software", 0)]), "must be relative to the user's hive root"),
    (Declaration("_fake", user_reads=[("Software\\\\X", 0)]), "has an empty part"),
    (Declaration("_fake", machine_reads=[(EDGE, 0)], value_names={EDGE: "X"}), "_fake.READ_VALUE_NAMES"),
])
def test_a_bad_declaration_is_a_clear_error(declaration: Declaration, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        merge_declared([declaration], machine=not declaration.user_reads)
    assert message in str(caught.value)


# -- the e-RS report in the plan and the facts ---------------------------------------------------------

def test_the_reported_port_is_listed_too() -> None:
    report = "NHS Credential Management is running on port 43485 but is not connected"
    listeners = next(op for op in plan_reads({"ers_report": report}) if op["op"] == "tcp_listeners")
    assert listeners["ports"] == [43487, 44213, 45031, 46478, 48853, 43485]
    planned = next(op for op in plan_reads({}) if op["op"] == "tcp_listeners")
    assert planned["ports"] == [43487, 44213, 45031, 46478, 48853]
    facts = facts_of(healthy_host(), ers_report=report)
    assert facts["ers_report"]["fault"] == 2 and facts["ers_report"]["port"] == 43485
    assert facts_of(healthy_host())["ers_report"] is None


# -- through the emulator ------------------------------------------------------------------------------

EMULATED = rf"""
hosts:
  - name: pc-plumbing
    sessions:
      - {{id: 2, user: 'NHS\jsmith', sid: '{SID1}'}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID1}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\akhan', sid: '{OFFLINE}', path: 'D:\Profiles\akhan', loaded: false}}
      - {{user: 'NT SERVICE\X', sid: '{SERVICE}', path: 'C:\Users\X', loaded: true}}
    registry:
      '{EDGE}':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
      'HKU\{SID1}\{ZONEMAP}':
        IntranetName: {{type: REG_DWORD, data: 1}}
      'HKU\{OFFLINE}\{ZONEMAP}':
        IntranetName: {{type: REG_DWORD, data: 0}}
    group_policy:
      '{EDGE}':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
"""


@pytest.fixture
def emulated() -> t.Any:
    state = pytest.importorskip("nhs_cm_emulator.state")
    scenario = pytest.importorskip("nhs_cm_emulator.scenario")
    hosts, _expect = scenario.parse_document(scenario.parse_text(EMULATED, "plumbing.yml"), "plumbing.yml")
    return state.HostState(hosts[0])


def _through_emulator(host: t.Any, options: dict[str, t.Any], declared: DeclaredReads) -> dict[str, t.Any]:
    from nhs_cm_emulator import ops

    opts = options_with_defaults(options)
    request = {"protocol": 1, "ops": [op for _label, op in planned_reads(opts, declared)]}
    reply, code = ops.handle_request(host, json.dumps(request).encode())
    assert code == 0 and reply["ok"] is True
    return build_facts(reply["results"], opts, declared)


@pytest.mark.parametrize("offline", [False, True])
def test_the_plan_through_the_emulator(emulated: t.Any, offline: bool) -> None:
    declared = reads_of([(EDGE, 0, None)], [(ZONEMAP, 1, None)])
    facts = _through_emulator(emulated, {"include_offline_profiles": offline}, declared)
    assert facts["read_errors"] == {}
    assert facts["policy_keys"][EDGE]["values"] == {"BlockThirdPartyCookies": dword(1)}
    users = {user["sid"]: user for user in facts["users"]}
    assert set(users) == ({SID1, OFFLINE} if offline else {SID1})
    assert (users[SID1]["session"], users[SID1]["hive"]) == (2, "loaded")
    assert users[SID1]["keys"][ZONEMAP]["values"] == {"IntranetName": dword(1)}
    if offline:
        assert (users[OFFLINE]["source"], users[OFFLINE]["hive"], users[OFFLINE]["error"]) == (
            "offline_profile", "mounted", None)
        assert users[OFFLINE]["keys"][ZONEMAP]["values"] == {"IntranetName": dword(0)}
    assert facts["gpo"] == {"available": True, "error": None, "settings": [
        {"scope": "machine", "sid": None, "key": EDGE, "name": "BlockThirdPartyCookies",
         "gpo": "Emulated domain policy"}]}
    assert (emulated.hive_loads, emulated.mounted(), emulated.writes) == (1 if offline else 0, [], 0)
