"""The write path's pure core (_remediate/changes.py): planning, diff, backup entries, the write request,
its outcome (all or nothing), verification and the restore operations."""

from __future__ import annotations

import datetime
import typing as t

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import (
    Action,
    ChangeError,
    RegWrite,
    ServiceWant,
    new_backup_id,
    outcome,
    plan,
    reg_current,
    restore_changes,
    restore_ops,
    same_value,
    value_readback_ops,
    verify_values,
    write_request,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import validate_ops

EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
ALLOW = EDGE + "\\CookiesAllowedForUrls"


def node(values: dict[str, t.Any], exists: bool = True) -> dict[str, t.Any]:
    return {"ok": True, "exists": exists, "values": values, "subkeys": {}}


def sz(data: str) -> dict[str, t.Any]:
    return {"type": "REG_SZ", "data": data}


def dword(data: int) -> dict[str, t.Any]:
    return {"type": "REG_DWORD", "data": data}


CURRENT = reg_current([(EDGE, "64", node({"BlockThirdPartyCookies": sz("1")})),
                       (ALLOW, "64", node({"1": sz("https://[*.]nhs.uk")})),
                       ("HKLM\\SOFTWARE\\Policies\\Google\\Chrome", "64", node({}, exists=False))])
PORT = {"name": "NHSPortService", "display_name": "NHS Port Service", "state": "stopped", "start_mode": "manual"}


# -- comparing ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "want", "same"), [
    (dword(1), RegWrite(EDGE, "x", "REG_DWORD", 1), True),
    (sz("1"), RegWrite(EDGE, "x", "REG_DWORD", 1), False),  # type-aware: REG_SZ "1" is not REG_DWORD 1
    (dword(1), RegWrite(EDGE, "x", "REG_QWORD", 1), False),
    ({"type": "REG_BINARY", "data": "DEAD"}, RegWrite(EDGE, "x", "REG_BINARY", "dead"), True),
    ({"type": "REG_MULTI_SZ", "data": ["a"]}, RegWrite(EDGE, "x", "REG_MULTI_SZ", ["a", "b"]), False),
    (sz("Localhost"), RegWrite(EDGE, "x", "REG_SZ", "localhost"), False),  # data keeps its case
    (None, RegWrite(EDGE, "x", None), True),
    (sz(""), RegWrite(EDGE, "x", None), False),
])
def test_same_value(value: dict[str, t.Any] | None, want: RegWrite, same: bool) -> None:
    assert same_value(value, want) is same


# -- planning -----------------------------------------------------------------------------------

def test_a_plan_keeps_only_what_differs_with_diff_entries_and_ops() -> None:
    the_plan = plan([RegWrite(EDGE, "BlockThirdPartyCookies", "REG_DWORD", 0),
                     RegWrite(ALLOW, "1", "REG_SZ", "https://[*.]nhs.uk"),  # already so
                     RegWrite(ALLOW, "2", "REG_SZ", "[*.]localhost"),
                     RegWrite("HKLM\\SOFTWARE\\Policies\\Google\\Chrome", "Old", None)],  # absent already
                    CURRENT)
    assert the_plan.changed and len(the_plan.planned) == 2
    assert the_plan.entries == [
        {"kind": "reg", "key": EDGE, "view": "64", "name": "BlockThirdPartyCookies", "existed": True,
         "type": "REG_SZ", "data": "1"},
        {"kind": "reg", "key": ALLOW, "view": "64", "name": "2", "existed": False, "type": None, "data": None}]
    assert the_plan.write_ops == [
        {"op": "reg_write", "key": EDGE, "view": "64", "name": "BlockThirdPartyCookies", "type": "REG_DWORD",
         "data": 0},
        {"op": "reg_write", "key": ALLOW, "view": "64", "name": "2", "type": "REG_SZ", "data": "[*.]localhost"}]
    diff = the_plan.diff("role")
    assert diff["before"] == (f"{EDGE}\\BlockThirdPartyCookies: REG_SZ '1'\n{ALLOW}\\2: (absent)\n")
    assert diff["after"] == (f"{EDGE}\\BlockThirdPartyCookies: REG_DWORD 0\n{ALLOW}\\2: REG_SZ '[*.]localhost'\n")
    validate_ops(the_plan.write_ops)  # every op the plan makes is a valid protocol op


def test_nothing_to_do_is_unchanged() -> None:
    the_plan = plan([RegWrite(ALLOW, "1", "REG_SZ", "https://[*.]nhs.uk"),
                     ServiceWant("NHSPortService", state="stopped", start_mode="manual")], CURRENT, [PORT])
    assert not the_plan.changed and the_plan.write_ops == [] and the_plan.entries == []


def test_deleting_a_value_backs_it_up() -> None:
    the_plan = plan([RegWrite(ALLOW, "1", None)], CURRENT)
    assert the_plan.write_ops == [{"op": "reg_delete", "key": ALLOW, "view": "64", "name": "1"}]
    assert the_plan.entries[0]["existed"] is True and the_plan.entries[0]["data"] == "https://[*.]nhs.uk"


def test_key_and_value_names_compare_without_case() -> None:
    the_plan = plan([RegWrite(EDGE.lower(), "blockthirdpartycookies", "REG_SZ", "1")], CURRENT)
    assert not the_plan.changed


@pytest.mark.parametrize(("change", "message"), [
    (RegWrite("HKLM\\SOFTWARE\\Policies\\Unread", "x", "REG_SZ", "1"), "was not read"),
    (RegWrite(EDGE, "x", "REG_NONE", ""), "type must be one of"),
    (RegWrite(EDGE, "x", "REG_SZ", "1", view="16"), "view must be"),
    (ServiceWant("NHSPortService", state="paused"), "state must be running or stopped"),
    (ServiceWant("NHSPortService", start_mode="boot"), "start_mode must be one of"),
    (ServiceWant("Missing", state="running"), "not in the services read"),
])
def test_bad_changes_are_named(change: t.Any, message: str) -> None:
    with pytest.raises(ChangeError, match=message):
        plan([change], CURRENT, [PORT])


def test_a_value_changed_twice_is_refused() -> None:
    with pytest.raises(ChangeError, match="changed twice"):
        plan([RegWrite(ALLOW, "2", "REG_SZ", "a"), RegWrite(ALLOW.upper(), "2", "REG_SZ", "b")], CURRENT)


def test_an_unreadable_key_is_never_guessed() -> None:
    current = reg_current([(EDGE, "64", {"ok": False, "error": "access_denied", "message": "denied"})])
    with pytest.raises(ChangeError, match="was not read"):
        plan([RegWrite(EDGE, "x", "REG_DWORD", 1)], current)


@pytest.mark.parametrize(("service", "want", "op", "after"), [
    (PORT, ServiceWant("NHSPortService", start_mode="auto", state="running"),
     {"op": "service_set", "name": "NHSPortService", "state": "started", "start_mode": "auto"},
     "running, start mode auto"),
    ({**PORT, "state": "running"}, ServiceWant("NHSPortService", state="running", restart=True),
     {"op": "service_set", "name": "NHSPortService", "state": "restarted"}, "running, start mode manual (restarted)"),
    ({**PORT, "state": "running"}, ServiceWant("NHSPortService", start_mode="auto"),
     {"op": "service_set", "name": "NHSPortService", "state": "started", "start_mode": "auto"},
     "running, start mode auto"),
])
def test_service_changes(service: dict[str, t.Any], want: ServiceWant, op: dict[str, t.Any], after: str) -> None:
    the_plan = plan([want], services=[service])
    assert the_plan.write_ops == [op]
    assert the_plan.planned[0].after.endswith(after)
    assert the_plan.entries == [{"kind": "service", "name": "NHSPortService", "display_name": "NHS Port Service",
                                 "state": service["state"], "start_mode": "manual"}]
    validate_ops(the_plan.write_ops)


def test_actions_are_planned_as_given_and_have_no_backup_entry() -> None:
    op = {"op": "task_run", "name": "nhs_cm_x", "user": "NHS\\a", "session": 2, "command": "C:\\cm.exe"}
    the_plan = plan([Action("start CM in session 2", (op,), "CM not running", "CM started")])
    assert the_plan.write_ops == [op] and the_plan.entries == []
    assert the_plan.summary() == ["CM not running -> CM started"]


# -- Group Policy ---------------------------------------------------------------------------------

GPO_FACTS = {"gpo": {"available": True, "error": None, "settings": [
    {"scope": "machine", "sid": None, "key": EDGE, "name": "BlockThirdPartyCookies", "gpo": "Edge baseline"},
    {"scope": "machine", "sid": None, "key": ALLOW, "name": "1", "gpo": "Edge baseline"}]}}


def test_gpo_owned_values_are_reported_and_left_alone() -> None:
    the_plan = plan([RegWrite(EDGE, "BlockThirdPartyCookies", "REG_DWORD", 0),
                     RegWrite(ALLOW, "2", "REG_SZ", "[*.]localhost", list_key=True)], CURRENT, facts=GPO_FACTS)
    assert not the_plan.changed
    skipped = [(s["name"], s["gpo"]) for s in the_plan.gpo_skipped]
    assert skipped == [("BlockThirdPartyCookies", "Edge baseline"), ("2", "Edge baseline")]
    assert "Block third party cookies" in the_plan.gpo_skipped[0]["policy"]


def test_override_gpo_writes_and_warns_about_the_next_refresh() -> None:
    the_plan = plan([RegWrite(EDGE, "BlockThirdPartyCookies", "REG_DWORD", 0)], CURRENT, facts=GPO_FACTS,
                    override_gpo=True)
    assert the_plan.changed and not the_plan.gpo_skipped
    assert "reverted at the next Group Policy refresh" in the_plan.warnings[0]


def test_unreadable_group_policy_owns_nothing() -> None:
    facts = {"gpo": {**GPO_FACTS["gpo"], "available": False}}
    assert plan([RegWrite(EDGE, "BlockThirdPartyCookies", "REG_DWORD", 0)], CURRENT, facts=facts).changed


# -- the write request and its outcome ------------------------------------------------------------------

def _two_changes() -> t.Any:
    return plan([RegWrite(EDGE, "BlockThirdPartyCookies", "REG_DWORD", 0),
                 ServiceWant("NHSPortService", start_mode="auto", state="running")], CURRENT, [PORT])


def test_the_write_request_is_backup_then_writes_then_reads() -> None:
    the_plan = _two_changes()
    ops = write_request(the_plan, "b1", [{"op": "os_info"}])
    assert [op["op"] for op in ops] == ["backup_save", "reg_write", "service_set", "reg_read", "service_query",
                                        "os_info"]
    assert ops[0] == {"op": "backup_save", "id": "b1", "entries": the_plan.entries}
    validate_ops(ops)


def _ok_readback(the_plan: t.Any) -> list[dict[str, t.Any]]:
    return [node({"BlockThirdPartyCookies": dword(0)}),
            {"ok": True, "services": [{**PORT, "state": "running", "start_mode": "auto"}]}]


def test_a_successful_write() -> None:
    the_plan = _two_changes()
    results = [{"ok": True, "id": "b1", "path": "C:\\b1.json", "missing_keys": []}, {"ok": True}, {"ok": True},
               *_ok_readback(the_plan)]
    done = outcome(the_plan, results)
    assert done.ok and done.failure is None and done.restore_ops == []
    assert done.backup == {"id": "b1", "path": "C:\\b1.json", "missing_keys": [], "entries": the_plan.entries}


def test_a_failed_backup_means_nothing_was_written() -> None:
    the_plan = _two_changes()
    skipped = {"ok": False, "error": "skipped", "message": "not run"}
    done = outcome(the_plan, [{"ok": False, "error": "access_denied", "message": "no"}, skipped, skipped,
                              *_ok_readback(the_plan)])
    assert not done.ok and done.backup is None and "nothing was changed" in str(done.failure)


def test_a_failed_write_puts_back_everything_attempted_including_itself() -> None:
    the_plan = _two_changes()
    results = [{"ok": True, "id": "b1", "path": "p", "missing_keys": []}, {"ok": True},
               {"ok": False, "error": "failed", "message": "service NHSPortService is Stopped, not Running"},
               *_ok_readback(the_plan)]
    done = outcome(the_plan, results)
    assert not done.ok
    assert done.failure == ("service_set NHSPortService failed (failed): service NHSPortService is Stopped, "
                            "not Running")
    assert done.restore_ops == [
        {"op": "reg_write", "key": EDGE, "view": "64", "name": "BlockThirdPartyCookies", "type": "REG_SZ",
         "data": "1"},
        {"op": "service_set", "name": "NHSPortService", "state": "stopped", "start_mode": "manual"}]


def test_writes_skipped_after_a_failure_are_not_put_back_nor_a_registry_write_that_failed() -> None:
    the_plan = plan([RegWrite(EDGE, "a", "REG_DWORD", 1), RegWrite(EDGE, "b", "REG_DWORD", 1),
                     RegWrite(EDGE, "c", "REG_DWORD", 1)], CURRENT)
    results = [{"ok": True, "id": "b1", "path": "p", "missing_keys": []}, {"ok": True},
               {"ok": False, "error": "access_denied", "message": "denied"},
               {"ok": False, "error": "skipped", "message": "not run"}, node({})]
    done = outcome(the_plan, results)
    assert done.restore_ops == [{"op": "reg_delete", "key": EDGE, "view": "64", "name": "a"}]
    assert [item.change.name for item in done.attempted] == ["a"]  # type: ignore[union-attr]


def test_after_a_failure_only_keys_the_written_values_needed_are_deleted() -> None:
    the_plan = plan([RegWrite(ALLOW + "\\New", "a", "REG_DWORD", 1), RegWrite(EDGE + "\\Other", "b", "REG_DWORD", 1)],
                    reg_current([(ALLOW + "\\New", "64", node({}, False)), (EDGE + "\\Other", "64", node({}, False))]))
    missing = [{"key": ALLOW + "\\New", "view": "64"}, {"key": EDGE + "\\Other", "view": "64"}]
    results = [{"ok": True, "id": "b1", "path": "p", "missing_keys": missing}, {"ok": True},
               {"ok": False, "error": "access_denied", "message": "denied"}, node({}), node({})]
    done = outcome(the_plan, results)
    assert done.restore_ops == [{"op": "reg_delete", "key": ALLOW + "\\New", "view": "64", "name": "a"},
                                {"op": "reg_delete_key", "key": ALLOW + "\\New", "view": "64"}]


def test_a_value_that_reads_back_differently_fails_and_is_put_back() -> None:
    the_plan = _two_changes()
    results = [{"ok": True, "id": "b1", "path": "p", "missing_keys": []}, {"ok": True}, {"ok": True},
               node({"BlockThirdPartyCookies": dword(1)}),
               {"ok": True, "services": [{**PORT, "state": "running", "start_mode": "auto"}]}]
    done = outcome(the_plan, results)
    assert not done.ok and "read back" in str(done.failure) and len(done.restore_ops) == 2


def test_verify_values_names_each_difference() -> None:
    the_plan = _two_changes()
    problems = verify_values(the_plan, [node({}), {"ok": True, "services": [PORT]}])
    assert problems == [f"read back {EDGE}\\BlockThirdPartyCookies: (absent)",
                        "service NHSPortService is stopped afterwards, not running",
                        "service NHSPortService starts manual afterwards, not auto"]
    assert value_readback_ops(the_plan) == [
        {"op": "reg_read", "key": EDGE, "view": "64", "names": ["BlockThirdPartyCookies"]},
        {"op": "service_query", "names": ["NHSPortService"]}]


# -- restoring --------------------------------------------------------------------------------------

def test_restore_ops_values_then_missing_keys_deepest_first_then_services() -> None:
    entries = [{"kind": "reg", "key": ALLOW, "view": "64", "name": "2", "existed": False},
               {"kind": "reg", "key": EDGE, "view": "32", "name": "x", "existed": True, "type": "REG_MULTI_SZ",
                "data": ["a"]},
               {"kind": "service", "name": "SCardSvr", "state": "stopped", "start_mode": "manual"}]
    missing = [{"key": "HKLM\\SOFTWARE\\Policies\\Google", "view": "64"},
               {"key": "HKLM\\SOFTWARE\\Policies\\Google\\Chrome", "view": "64"}]
    ops = restore_ops(entries, missing)
    assert ops == [
        {"op": "reg_delete", "key": ALLOW, "view": "64", "name": "2"},
        {"op": "reg_write", "key": EDGE, "view": "32", "name": "x", "type": "REG_MULTI_SZ", "data": ["a"]},
        {"op": "reg_delete_key", "key": "HKLM\\SOFTWARE\\Policies\\Google\\Chrome", "view": "64"},
        {"op": "reg_delete_key", "key": "HKLM\\SOFTWARE\\Policies\\Google", "view": "64"},
        {"op": "service_set", "name": "SCardSvr", "state": "stopped", "start_mode": "manual"}]
    validate_ops(ops)


def test_restore_changes_round_trip_a_plan() -> None:
    """Planning the backup's entries against the state after the change gives the opposite change."""
    the_plan = _two_changes()
    back = restore_changes(the_plan.entries)
    after_reg = reg_current([(EDGE, "64", node({"BlockThirdPartyCookies": dword(0)}))])
    undo = plan(back, after_reg, [{**PORT, "state": "running", "start_mode": "auto"}])
    assert [item.after for item in undo.planned] == [item.before for item in the_plan.planned]


def test_backup_ids_are_sortable_safe_and_unique() -> None:
    now = datetime.datetime(2025, 11, 25, 10, 15, 0, tzinfo=datetime.UTC)
    first, second = new_backup_id("nhs_cm.remediation.cm_service", now), new_backup_id("cm_service", now)
    assert first.startswith("20251125T101500Z-cm_service-") and first != second
    validate_ops([{"op": "backup_save", "id": first, "entries": []}])
