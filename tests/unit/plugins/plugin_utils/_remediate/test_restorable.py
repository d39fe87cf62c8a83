"""What a backup may restore (_remediate/restorable.py): the one table of what the roles write.

Every change each planner can plan is in the table (its backup entries pass), every rule and
every hive root of the table is used by some planned change (the table is not wider than the
planners), and entries a role could not have written are refused, naming the first of them.
"""

from __future__ import annotations

import typing as t

import pytest
from policy_sim import (
    CHROME,
    EDGE,
    FIREFOX,
    IS,
    IS_POLICY,
    SID_A,
    SID_B,
    USER_A,
    USER_B,
    dword,
    facts_for,
    good_zones,
    planned_fix,
    read,
    sz,
    user_key,
)

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import machine_scope, make_finding
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate import restorable as _restorable
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import plan
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cm_service import plan_cm_service
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cookies import DEFAULTS as COOKIE_DEFAULTS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.cookies import plan_cookies
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.intranet_zone import (
    DEFAULTS as ZONE_DEFAULTS,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.intranet_zone import (
    default_profile_reads,
    default_profile_user,
    plan_intranet_zone,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
    DEFAULTS as LNA_DEFAULTS,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.localhost_access import (
    plan_localhost_access,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.restorable import (
    DEFAULT_PROFILE,
    MACHINE,
    RULES,
    USER,
    backup_problem,
    host_problems,
    rule_for,
    split_root,
)

BASE: dict[str, t.Any] = {**good_zones(SID_A), **good_zones(SID_B)}
DP = "HKU\\.DEFAULT_PROFILE"
OWN_IS = f"Software{IS[len('SOFTWARE'):]}"
POLICY_IS = f"Software{IS_POLICY[len('SOFTWARE'):]}"
U_EDGE = user_key(SID_A, "Software\\Policies\\Microsoft\\Edge")
U_CHROME = user_key(SID_B, "Software\\Policies\\Google\\Chrome")
U_FIREFOX = user_key(SID_B, "Software\\Policies\\Mozilla\\Firefox\\Cookies")
FLAGS_WRONG = {"AutoDetect": dword(1), "IntranetName": dword(0), "ProxyBypass": dword(0), "UNCAsIntranet": dword(0)}


def _reply(registry: dict[str, t.Any], op: dict[str, t.Any]) -> dict[str, t.Any]:
    node = read(registry, op["key"], op.get("depth", 0))
    names = op.get("names")
    values = {n: v for n, v in node["values"].items() if names is None or n in names}
    return {"ok": True, "exists": node["exists"], "values": values, "subkeys": node["subkeys"]}


def _facts(registry: dict[str, t.Any], default_profile: bool = False) -> dict[str, t.Any]:
    facts = facts_for({**BASE, **registry}, [USER_A, USER_B])
    if default_profile:
        facts["default_profile"] = default_profile_user([_reply({**BASE, **registry}, op)
                                                         for op in default_profile_reads()])
    return facts


def cookie_entries(registry: dict[str, t.Any], **options: t.Any) -> list[dict[str, t.Any]]:
    return planned_fix(plan_cookies, COOKIE_DEFAULTS, _facts(registry), **options)[1].entries


def localhost_access_entries(versions: dict[str, str], **options: t.Any) -> list[dict[str, t.Any]]:
    """What the Local Network Access fix plans with these browser versions installed."""
    facts = facts_for(BASE, [USER_A, USER_B], browsers=versions)
    return planned_fix(plan_localhost_access, {**COOKIE_DEFAULTS, **LNA_DEFAULTS}, facts, **options)[1].entries


def zone_entries(registry: dict[str, t.Any], default_profile: bool = False, **options: t.Any
                 ) -> list[dict[str, t.Any]]:
    return planned_fix(plan_intranet_zone, ZONE_DEFAULTS, _facts(registry, default_profile),
                       **{"include_default_profile": default_profile, **options})[1].entries


BLOCKED = {CHROME: {"BlockThirdPartyCookies": dword(1)}, EDGE: {"BlockThirdPartyCookies": dword(1)},
           FIREFOX: {"Behavior": sz("reject-foreign")}}
LOCALHOST_BLOCKED = {f"{CHROME}\\CookiesBlockedForUrls": {"1": sz("[*.]localhost")},
                     f"{U_EDGE}\\CookiesBlockedForUrls": {"1": sz("localhost")},
                     f"{FIREFOX}\\Block": {"1": sz("http://localhost")}}
USER_LOCALHOST_BLOCKED = {f"{EDGE}\\CookiesBlockedForUrls": {"3": sz("http://localhost:43487")},
                          f"{U_CHROME}\\CookiesBlockedForUrls": {"1": sz("[*.]localhost")},
                          f"{U_FIREFOX}\\Block": {"x": sz("http://localhost")}}
ZONES_WRONG = {user_key(SID_A, f"{OWN_IS}\\ZoneMap"): FLAGS_WRONG,
               user_key(SID_A, f"{OWN_IS}\\Zones\\1"): {"1A00": dword(0x10000)}}
USER_POLICY_WRONG = {user_key(SID_A, f"{POLICY_IS}\\ZoneMap"): {"ProxyBypass": dword(0)},
                     user_key(SID_A, f"{POLICY_IS}\\Zones\\1"): {"1A00": dword(0x10000)}}
MAPPINGS = {user_key(SID_A, f"{OWN_IS}\\ZoneMap\\Domains\\localhost"): {"http": dword(3)},
            user_key(SID_B, f"{OWN_IS}\\ZoneMap\\Domains\\127.0.0.1"): {"*": dword(4)}}
RANGE = {user_key(SID_A, f"{OWN_IS}\\ZoneMap\\Ranges\\Range7"): {":Range": sz("127.0.0.1"), "http": dword(3)}}
SITE_LISTS = [{f"HKLM\\{IS_POLICY}\\ZoneMapKey": {"127.0.0.1": sz("4")}},
              {user_key(SID_B, f"{POLICY_IS}\\ZoneMapKey"): {"http://localhost": sz("3")}}]
AUTH = {EDGE: {"AuthServerAllowlist": sz("*.nhs.uk")}, CHROME: {"AuthServerWhitelist": sz("*.nhs.uk")},
        user_key(SID_B, "Software\\Policies\\Microsoft\\Edge"): {"AuthServerAllowlist": sz("*.nhs.uk")}}
USER_AUTH = {user_key(SID_B, "Software\\Policies\\Microsoft\\Edge"): {"AuthServerAllowlist": sz("*.nhs.uk")},
             user_key(SID_A, "Software\\Policies\\Google\\Chrome"): {"AuthServerWhitelist": sz("*.nhs.uk")}}
PROFILE_WRONG = {f"{DP}\\{OWN_IS}\\ZoneMap": FLAGS_WRONG, f"{DP}\\{OWN_IS}\\Zones\\1": {"1A00": dword(0x10000)},
                 f"{DP}\\{OWN_IS}\\ZoneMap\\Domains\\localhost": {"http": dword(3)},
                 f"{DP}\\{OWN_IS}\\ZoneMap\\Domains\\127.0.0.1": {"http": dword(3)}}
PROFILE_POLICY_WRONG = {f"{DP}\\{POLICY_IS}\\ZoneMap": {"AutoDetect": dword(1)},
                        f"{DP}\\{POLICY_IS}\\Zones\\1": {"1A00": dword(0x30000)},
                        f"{DP}\\{OWN_IS}\\ZoneMap": {"AutoDetect": dword(0), "IntranetName": dword(1),
                                                     "ProxyBypass": dword(1), "UNCAsIntranet": dword(1)},
                        f"{DP}\\{OWN_IS}\\ZoneMap\\Ranges\\R1": {":Range": sz("127.0.0.*"), "*": dword(2)}}
PROFILE_SITE_LIST = {f"{DP}\\{POLICY_IS}\\ZoneMapKey": {"localhost": sz("2")}}


def every_planned_entry() -> list[dict[str, t.Any]]:
    """The backup entries the planners make for a grid of hosts that covers every kind of change."""
    entries: list[dict[str, t.Any]] = []
    everything = ["chrome", "edge", "firefox"]
    for scope in ("machine", "user"):
        entries += cookie_entries(BLOCKED, browsers=everything, scope=scope, allow_all_third_party_cookies=True)
        entries += zone_entries(ZONES_WRONG, scope=scope)
        for versions in ({"chrome": "146.0.7600.1", "edge": "143.0.3650.66"},
                         {"chrome": "142.0.7444.60", "edge": "146.0.3800.1"}):
            entries += localhost_access_entries(versions, scope=scope)
    for blocked in (LOCALHOST_BLOCKED, USER_LOCALHOST_BLOCKED):
        entries += cookie_entries(blocked, browsers=everything, remove_localhost_block=True)
    entries += zone_entries(USER_POLICY_WRONG, scope="user")
    entries += zone_entries(MAPPINGS) + zone_entries(RANGE) + zone_entries(AUTH) + zone_entries(USER_AUTH)
    for site_list in SITE_LISTS:
        entries += zone_entries(site_list)
    for profile in (PROFILE_WRONG, PROFILE_POLICY_WRONG, PROFILE_SITE_LIST):
        entries += zone_entries(profile, default_profile=True)
    return entries


def _missing_keys(entries: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """What backup_save could record as missing: every key of an entry's path below the
    ``<root>\\SOFTWARE`` level."""
    keys: dict[str, None] = {}
    for entry in entries:
        parts = entry["key"].split("\\")
        start = 3 if parts[0].upper() == "HKU" else 2
        for end in range(start + 1, len(parts) + 1):
            keys.setdefault("\\".join(parts[:end]))
    return [{"key": key, "view": "64"} for key in keys]


def test_every_change_each_planner_can_plan_is_in_the_table_and_every_rule_is_used() -> None:
    entries = every_planned_entry()
    assert len(entries) > 40
    backup = {"id": "b", "entries": entries, "missing_keys": _missing_keys(entries)}
    assert backup_problem(backup) is None
    used = {(rule_for(entry), split_root(entry["key"])[0]) for entry in entries}
    wanted = {(rule, root) for rule in RULES for root in rule.roots}
    assert wanted - used == set(), "a rule (or hive root) of the table that no planner uses"
    ranges = [e for e in entries if "\\ranges\\" in e["key"].casefold()]
    nodes = {_restorable.normalise_key(e["key"]): {"ok": True, "values": {":Range": sz("127.0.0.1")}} for e in ranges}
    assert len(ranges) == 2 and host_problems(backup, [], nodes) is None


def test_the_services_cm_service_plans_are_in_the_table() -> None:
    port = {"name": "NHSPortService", "display_name": "NHS Port Service", "state": "stopped", "start_mode": "manual",
            "image": None, "pid": 0, "binary": None}
    smartcard = {"name": "SCardSvr", "display_name": "Smart Card", "state": "stopped", "start_mode": "manual",
                 "image": None, "pid": 0}
    facts = {"products": {"cm": []}, "product": {"generation": "cm1"}, "sessions": [], "processes": [],
             "services": {"port_service": port, "smartcard": smartcard}, "read_errors": {}}
    findings = [make_finding(check, machine_scope(), []) for check in
                ("PORT_SERVICE_STOPPED", "PORT_SERVICE_NOT_AUTOMATIC", "SMARTCARD_SERVICE_STOPPED")]
    cm_plan = plan_cm_service(facts, findings, {"cm_process_names": [], "ia_process_names": ["IdentityAgent.exe"]})
    entries = plan(cm_plan.changes, services=[port, smartcard]).entries
    assert [e["name"] for e in entries] == ["NHSPortService", "SCardSvr"]
    backup = {"id": "b", "entries": entries, "missing_keys": []}
    assert backup_problem(backup) is None and host_problems(backup, [port, smartcard], {}) is None


# -- planted backups ------------------------------------------------------------------------------

def reg(key: str, name: str, existed: bool = True, vtype: str | None = "REG_SZ", data: t.Any = "x",
        view: str = "64") -> dict[str, t.Any]:
    return {"kind": "reg", "key": key, "view": view, "name": name, "existed": existed,
            "type": vtype if existed else None, "data": data if existed else None}


GOOD = reg(f"{CHROME}\\CookiesAllowedForUrls", "4", existed=False)
FORCE = reg(f"{CHROME}\\ExtensionInstallForcelist", "1", data="abcdefghijklmnop;https://evil.example/update.xml")
URLS = reg(user_key(SID_A, "Software\\Policies\\Microsoft\\Edge\\URLAllowlist"), "1", data="*")


@pytest.mark.parametrize(("planted", "named"), [
    (FORCE, f"entries[1] {CHROME}\\ExtensionInstallForcelist\\1 (view 64): no role of this collection writes "
            "that value"),
    (URLS, "URLAllowlist\\1 (view 64): no role of this collection writes that value"),
])
def test_a_planted_policy_entry_refuses_the_whole_backup_naming_it(planted: dict[str, t.Any], named: str) -> None:
    backup = {"id": "b", "entries": [GOOD, planted, reg(EDGE, "BlockThirdPartyCookies", vtype="REG_DWORD", data=1)],
              "missing_keys": []}
    problem = backup_problem(backup)
    assert problem is not None and named in problem and problem.startswith("entries[1] ")


@pytest.mark.parametrize(("entry", "why"), [
    (reg(f"{CHROME}\\CookiesAllowedForUrls", "4", data="https://evil.example"), "only ever adds new entries there"),
    (reg(f"{CHROME}\\CookiesAllowedForUrls", "first", existed=False), "no role of this collection writes"),
    (reg(f"{CHROME}\\CookiesBlockedForUrls", "2", data="[*.]nhs.uk"),
     "only ever removes entries there that block localhost"),
    (reg(f"{CHROME}\\CookiesBlockedForUrls", "2", existed=False), "only ever removes existing entries"),
    (reg(f"HKLM\\{IS_POLICY}\\ZoneMapKey", "https://evil.example", data="1"), "no role of this collection writes"),
    (reg(user_key(SID_A, f"{OWN_IS}\\ZoneMap\\Domains\\evil.example"), "http", vtype="REG_DWORD", data=1),
     "no role of this collection writes"),
    (reg(f"HKLM\\{IS}\\ZoneMap", "AutoDetect", vtype="REG_DWORD", data=1), "no role of this collection writes"),
    (reg(f"HKU\\S-1-5-18\\{OWN_IS}\\ZoneMap", "AutoDetect", vtype="REG_DWORD", data=1), "no role of this collection"),
    (reg(f"HKLM\\{IS_POLICY}\\ZoneMap", "AutoDetect", vtype="REG_DWORD", data=1, view="32"), "32-bit"),
    (reg(f"HKLM\\{IS_POLICY}\\ZoneMap", "AutoDetect", vtype="REG_LINK", data=1), "type must be one of"),
    ({"kind": "file", "path": "C:\\Windows\\x"}, "only 'reg' and 'service' entries"),
])
def test_entries_no_role_could_have_written_are_refused(entry: dict[str, t.Any], why: str) -> None:
    problem = backup_problem({"id": "b", "entries": [entry], "missing_keys": []})
    assert problem is not None and problem.startswith("entries[0] ") and why in problem


@pytest.mark.parametrize(("key", "why"), [
    ("HKLM\\SOFTWARE", "not below a key a role writes"),
    ("HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender", "not the key (or a parent of the key)"),
])
def test_missing_keys_only_above_the_values_restored(key: str, why: str) -> None:
    backup = {"id": "b", "entries": [GOOD], "missing_keys": [{"key": f"{CHROME}\\CookiesAllowedForUrls",
                                                              "view": "64"}, {"key": key, "view": "64"}]}
    problem = backup_problem(backup)
    assert problem is not None and problem.startswith(f"missing_keys[1] {key}: it is {why}")


def test_a_service_is_judged_by_what_the_host_says_it_is_not_by_the_backup() -> None:
    planted = {"kind": "service", "name": "WinDefend", "display_name": "NHS Port Service", "state": "stopped",
               "start_mode": "disabled"}
    backup = {"id": "b", "entries": [planted], "missing_keys": []}
    assert backup_problem(backup) is None  # which service it is cannot be told from the file
    on_host = [{"name": "WinDefend", "display_name": "Microsoft Defender Antivirus Service"}]
    problem = host_problems(backup, on_host, {})
    assert problem is not None and "entries[0] service 'WinDefend'" in problem
    assert "'Microsoft Defender Antivirus Service'" in problem
    assert host_problems(backup, [{"name": "WinDefend", "display_name": "NHS Port Service"}], {}) is None


def test_a_zone_range_is_restored_only_while_it_maps_127_0_0_1() -> None:
    key = user_key(SID_A, f"{OWN_IS}\\ZoneMap\\Ranges\\Range3")
    backup = {"id": "b", "entries": [reg(key, "http", vtype="REG_DWORD", data=3)], "missing_keys": []}
    assert backup_problem(backup) is None
    folded = _restorable.normalise_key(key)
    elsewhere = {folded: {"ok": True, "values": {":Range": sz("10.1.2.3")}}}
    problem = host_problems(backup, [], elsewhere)
    assert problem is not None and "'10.1.2.3'" in problem
    assert host_problems(backup, [], {folded: {"ok": True, "values": {":Range": sz("127.0.0.1-9")}}}) is None


def test_hive_roots() -> None:
    assert split_root(f"HKEY_LOCAL_MACHINE\\{IS_POLICY}")[0] == MACHINE
    assert split_root(f"HKU\\{SID_B.lower()}\\Software")[:2] == (USER, f"HKU\\{SID_B}")
    assert split_root("HKU\\.DEFAULT_PROFILE\\Software")[0] == DEFAULT_PROFILE
    assert split_root("HKU\\.DEFAULT\\Software")[0] is None
    assert split_root("HKCU\\Software")[0] is None


def test_the_host_codes_allow_list_lets_every_planned_value_through() -> None:
    # The safety net on the host (writes.ps1; the emulator's write_ops.py holds the same patterns,
    # emulator/tests/test_write_ops.py checks that) must never refuse what a role plans.
    # The emulator is not in ansible-test's units environment (make units); make test's run has it.
    ops = pytest.importorskip("nhs_cm_emulator.ops")
    from nhs_cm_emulator import write_ops

    assert ops.HANDLERS
    for entry in every_planned_entry():
        if entry["kind"] == "reg":
            write_ops.check_write_target(entry["key"], entry["name"])
