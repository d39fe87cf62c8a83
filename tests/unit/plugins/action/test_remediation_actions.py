"""The cm_service and restore action plugins' options and documentation, the role's argument
spec, restore's pure planning (what differs, which created keys go), and restore against a fake
host: ``latest`` from ``backup_list``, malformed, mislabelled and planted backups."""

from __future__ import annotations

import importlib
import typing as t
from pathlib import Path

import pytest
import yaml
from fake_runner import FakeHost, run
from module_docs import documentation

from ansible_collections.nhs_cm.remediation.plugins.action import cm_service, restore
from ansible_collections.nhs_cm.remediation.plugins.modules import cm_service as cm_service_doc
from ansible_collections.nhs_cm.remediation.plugins.modules import restore as restore_doc
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import validate_args
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate import restore as restoring
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import ChangeError
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.write_action import WriteAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import validate_ops

ROLE = Path(__file__).resolve().parents[4] / "roles" / "cm_service"
CHROME = "HKLM\\SOFTWARE\\Policies\\Google\\Chrome"


@pytest.mark.parametrize(("doc", "spec"), [(cm_service_doc, cm_service.ARGUMENT_SPEC),
                                           (restore_doc, restore.ARGUMENT_SPEC)])
def test_the_documentation_matches_the_argument_spec(doc: t.Any, spec: dict[str, t.Any]) -> None:
    options = documentation(doc)["options"]
    assert set(options) == set(spec)
    for name, field in spec.items():
        assert options[name]["type"] == field["type"], name
        assert options[name].get("default") == field.get("default"), name
        assert options[name].get("elements") == field.get("elements"), name
        assert bool(options[name].get("required")) == bool(field.get("required")), name


def test_the_role_documents_and_passes_every_variable() -> None:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    tasks = (ROLE / "tasks" / "main.yml").read_text()
    assert set(specs) == set(defaults)
    for name in specs:
        assert name.startswith("cm_service_") and "{{ " + name in tasks, name
        assert specs[name]["description"], name
    module_options = yaml.safe_load(tasks)[0]["nhs_cm.remediation.cm_service"]
    assert set(module_options) <= set(cm_service.ARGUMENT_SPEC)


@pytest.mark.parametrize(("args", "message"), [
    ({"wait_ms": -1}, "wait_ms must be from 0 to 120000"),
    ({"cm_executable": "cm.txt"}, "cm_executable must name a .exe"),
    ({"ia_executable": "IdentityAgent.exe"}, "ia_executable must be a full path"),
    ({"prs_ports": []}, "prs_ports must list at least one port"),
    ({"start_cm": "maybe"}, "start_cm"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_options_are_named(args: dict[str, t.Any], message: str) -> None:
    own, diagnose, error = cm_service.validate_options(args)
    assert own is None and diagnose is None and error is not None and message in error


def test_good_options_split_into_own_and_diagnose() -> None:
    own, diagnose, error = cm_service.validate_options({"cm_executable": "NHSCredentialManagement.exe",
                                                        "prs_ports": [43487]})
    assert error is None and own is not None and diagnose is not None
    assert own["cm_executable"] == "NHSCredentialManagement.exe" and diagnose["prs_ports"] == [43487]
    assert restore.validate_options({})[1] is not None and "backup_id" in str(restore.validate_options({})[1])


# -- restore's plan --------------------------------------------------------------------------------

EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
ALLOW = CHROME + "\\CookiesAllowedForUrls"
GOOGLE = "HKLM\\SOFTWARE\\Policies\\Google"
BACKUP = {
    "id": "b1",
    "entries": [
        {"kind": "reg", "key": ALLOW, "view": "64", "name": "1", "existed": False, "type": None, "data": None},
        {"kind": "reg", "key": EDGE, "view": "64", "name": "BlockThirdPartyCookies", "existed": True,
         "type": "REG_SZ", "data": "1"},
        {"kind": "service", "name": "NHSPortService", "display_name": "NHS Port Service", "state": "stopped",
         "start_mode": "manual"},
    ],
    "missing_keys": [{"key": GOOGLE, "view": "64"}, {"key": CHROME, "view": "64"}, {"key": ALLOW, "view": "64"}],
}


def node(values: dict[str, t.Any], subkeys: list[str] | None = None, exists: bool = True) -> dict[str, t.Any]:
    return {"ok": True, "exists": exists, "values": values, "subkeys": dict.fromkeys(subkeys or [])}


ABSENT = node({}, exists=False)


def test_the_reads_cover_every_entry_and_missing_key_once() -> None:
    reads = restoring.current_reads(BACKUP)
    assert [op.get("key") for op in reads] == [ALLOW, EDGE, GOOGLE, CHROME, None]
    assert reads[-1] == {"op": "service_query", "names": ["NHSPortService"]}
    validate_ops(reads)


def _results(allow: dict[str, t.Any], edge: dict[str, t.Any], google: dict[str, t.Any], chrome: dict[str, t.Any],
             state: str = "running", mode: str = "auto") -> list[dict[str, t.Any]]:
    return [allow, edge, google, chrome,
            {"ok": True, "services": [{"name": "NHSPortService", "display_name": "NHS Port Service", "state": state,
                                       "start_mode": mode}]}]


AFTER_RUN = {"allow": node({"1": {"type": "REG_SZ", "data": "[*.]localhost"}}),
             "edge": node({"BlockThirdPartyCookies": {"type": "REG_DWORD", "data": 0}}),
             "google": node({}, ["Chrome"]), "chrome": node({}, ["CookiesAllowedForUrls"])}


def test_a_full_restore_puts_values_back_and_deletes_the_created_keys_deepest_first() -> None:
    reads = restoring.current_reads(BACKUP)
    the_plan = restoring.restore_plan(BACKUP, reads, _results(**AFTER_RUN))
    ops = the_plan.write_ops
    assert ops == [
        {"op": "reg_delete", "key": ALLOW, "view": "64", "name": "1"},
        {"op": "reg_write", "key": EDGE, "view": "64", "name": "BlockThirdPartyCookies", "type": "REG_SZ",
         "data": "1"},
        {"op": "service_set", "name": "NHSPortService", "state": "stopped", "start_mode": "manual"},
        {"op": "reg_delete_key", "key": ALLOW, "view": "64"},
        {"op": "reg_delete_key", "key": CHROME, "view": "64"},
        {"op": "reg_delete_key", "key": GOOGLE, "view": "64"}]
    validate_ops(ops)


def test_keys_that_hold_other_things_stay() -> None:
    results = _results(**{**AFTER_RUN, "allow": node({"1": {"type": "REG_SZ", "data": "x"},
                                                      "2": {"type": "REG_SZ", "data": "someone else's"}})})
    ops = restoring.restore_plan(BACKUP, restoring.current_reads(BACKUP), results).write_ops
    assert [op for op in ops if op["op"] == "reg_delete_key"] == []
    results = _results(**{**AFTER_RUN, "chrome": node({}, ["CookiesAllowedForUrls", "Recommended"])})
    ops = restoring.restore_plan(BACKUP, restoring.current_reads(BACKUP), results).write_ops
    assert [op["key"] for op in ops if op["op"] == "reg_delete_key"] == [ALLOW]


def test_nothing_differs_nothing_is_planned() -> None:
    results = _results(allow=ABSENT, edge=node({"BlockThirdPartyCookies": {"type": "REG_SZ", "data": "1"}}),
                       google=ABSENT, chrome=ABSENT, state="stopped", mode="manual")
    assert not restoring.restore_plan(BACKUP, restoring.current_reads(BACKUP), results).changed


def test_what_cannot_be_read_or_no_longer_exists_is_an_error() -> None:
    reads = restoring.current_reads(BACKUP)
    results = _results(**{**AFTER_RUN, "edge": {"ok": False, "error": "access_denied", "message": "denied"}})
    with pytest.raises(ChangeError, match="cannot read what the backup restores"):
        restoring.restore_plan(BACKUP, reads, results)
    results = _results(**AFTER_RUN)
    results[-1]["services"] = []
    with pytest.raises(ChangeError, match="no longer has: NHSPortService"):
        restoring.restore_plan(BACKUP, reads, results)


# -- restore against a fake host: latest, malformed and planted backups -----------------------------

SAVED = {"A": "2026-01-05T09:00:00.000Z", "B": "2026-03-01T09:00:00.000Z", "C": "2026-02-01T09:00:00.000Z"}
ONE_VALUE = [{"kind": "reg", "key": EDGE, "view": "64", "name": "BlockThirdPartyCookies", "existed": True,
              "type": "REG_DWORD", "data": 1}]


class BackupHost:
    """Backups by id (None: a file that cannot be used) and Edge's policy key as it is now."""

    def __init__(self, backups: dict[str, dict[str, t.Any] | None]) -> None:
        self.backups = backups
        self.edge = {"BlockThirdPartyCookies": {"type": "REG_DWORD", "data": 0}}
        self.written: list[dict[str, t.Any]] = []

    def answer(self, op: dict[str, t.Any]) -> dict[str, t.Any]:
        if op["op"] == "backup_list":
            return {"ok": True, "backups": [
                {"id": name, "saved_at": SAVED[name], "path": f"C:\\ProgramData\\nhs_cm\\backups\\{name}.json",
                 "entries": None if backup is None else len(backup["entries"]),
                 "error": "not a backup: Invalid JSON primitive" if backup is None else None}
                for name, backup in sorted(self.backups.items(), key=lambda item: SAVED[item[0]])]}
        if op["op"] == "backup_load":
            backup = self.backups.get(op["id"])
            if backup is None:
                return {"ok": False, "error": "invalid_request", "message": f"{op['id']} is not a backup"}
            return {"ok": True, "backup": backup}
        if op["op"] == "reg_read":
            assert op["key"] == EDGE, op
            return {"ok": True, "exists": True, "values": dict(self.edge), "subkeys": {}}
        if op["op"] == "reg_write":
            self.written.append(op)
            self.edge[op["name"]] = {"type": op["type"], "data": op["data"]}
            return {"ok": True, "previous": None, "created_key": False}
        raise AssertionError(f"not expected: {op}")


def backup(name: str, entries: list[dict[str, t.Any]] | None = None, own_id: str | None = None) -> dict[str, t.Any]:
    return {"id": own_id or name, "saved_at": SAVED[name], "entries": ONE_VALUE if entries is None else entries,
            "missing_keys": []}


def restore_on(host: BackupHost, backup_id: str, check_mode: bool = False) -> tuple[dict[str, t.Any], FakeHost]:
    connection = FakeHost(host.answer)
    return run(restore, connection, {"backup_id": backup_id}, check_mode=check_mode), connection


def test_latest_is_the_newest_usable_backup_by_file_time_and_a_malformed_one_is_named() -> None:
    host = BackupHost({"A": backup("A"), "B": None, "C": backup("C")})
    result, connection = restore_on(host, "latest")
    assert "failed" not in result, result
    assert result["backup_id"] == "C" and result["changed"] is True
    assert [connection.requests[0]["ops"], connection.requests[1]["ops"]] == [
        [{"op": "backup_list"}], [{"op": "backup_load", "id": "C"}]]
    assert host.written == [{"op": "reg_write", "key": EDGE, "view": "64", "name": "BlockThirdPartyCookies",
                             "type": "REG_DWORD", "data": 1}]
    assert result["unusable_backups"] == [{"id": "B", "path": "C:\\ProgramData\\nhs_cm\\backups\\B.json",
                                           "error": "not a backup: Invalid JSON primitive"}]
    assert "backup B (C:\\ProgramData\\nhs_cm\\backups\\B.json) cannot be used" in result["warnings"][0]
    assert all(op.get("id") != "latest" for request in connection.requests for op in request["ops"])
    again, _connection = restore_on(host, "latest")
    assert again["changed"] is False and "failed" not in again


def test_latest_without_a_usable_backup() -> None:
    nothing, connection = restore_on(BackupHost({}), "latest")
    assert nothing["changed"] is False and "nothing to restore" in nothing["msg"] and "failed" not in nothing
    assert len(connection.requests) == 1
    broken, connection = restore_on(BackupHost({"B": None}), "latest")
    assert broken["failed"] and broken["msg"] == ("no usable backup is saved on this host: B: not a backup: Invalid "
                                                  "JSON primitive")
    assert len(connection.requests) == 1


def test_a_backup_whose_id_is_not_its_file_name_is_refused() -> None:
    host = BackupHost({"C": backup("C", own_id="A")})
    result, connection = restore_on(host, "C")
    assert result["failed"] and result["changed"] is False
    assert result["msg"] == ("backup 'C' is refused, nothing was restored: its own id field says 'A', not the name of "
                             "its file")
    assert len(connection.requests) == 1 and host.written == []


@pytest.mark.parametrize("planted", [
    {"kind": "reg", "key": f"{CHROME}\\ExtensionInstallForcelist", "view": "64", "name": "1", "existed": True,
     "type": "REG_SZ", "data": "abcdefghijklmnopabcdefghijklmnop;https://evil.example/crx"},
    {"kind": "reg", "key": f"{EDGE}\\URLAllowlist", "view": "64", "name": "1", "existed": True, "type": "REG_SZ",
     "data": "*"},
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_planted_backup_is_refused_whole_before_anything_is_read_or_written(
        planted: dict[str, t.Any], check_mode: bool) -> None:
    host = BackupHost({"A": backup("A"), "C": backup("C", [*ONE_VALUE, planted])})
    result, connection = restore_on(host, "latest", check_mode=check_mode)
    assert result["failed"] and result["backup_id"] == "C" and result["changed"] is False
    assert result["msg"].startswith("backup 'C' is refused, nothing was restored: entries[1] ")
    assert f"{planted['key']}\\1" in result["msg"] and "no role of this collection writes" in result["msg"]
    assert [connection.ops(n) for n in (1, 2)] == [["backup_list"], ["backup_load"]]
    assert len(connection.requests) == 2 and host.written == []


def test_a_restore_whose_answer_never_comes_back_is_changed_unknown() -> None:
    host = BackupHost({"C": backup("C")})
    connection = FakeHost(host.answer, raise_on={3: TimeoutError("read timed out")})
    result = run(restore, connection, {"backup_id": "C"})
    assert result["failed"] is True and result["changed_unknown"] is True and result["backup_id"] == "C"
    assert result["msg"].startswith("changed: unknown - the restore request may have run on the host")
    assert result["msg"].endswith("run the restore of backup C again: it writes only what still differs")
    assert [connection.ops(n) for n in (1, 2, 3)] == [["backup_load"], ["reg_read"], ["reg_write", "reg_read"]]


def test_a_restore_whose_cleanup_fails_says_what_it_wrote() -> None:
    host = BackupHost({"C": backup("C")})
    connection = FakeHost(host.answer, cleanup_error_on={3: "could not unload HKU\\nhs_cm_1"})
    result = run(restore, connection, {"backup_id": "C"})
    assert result["failed"] is True and result["writes_done"] == [f"reg_write {EDGE} 'BlockThirdPartyCookies'"]
    assert result["msg"] == ("the operations ran, but the runner's cleanup failed: could not unload HKU\\nhs_cm_1; "
                             f"the writes that happened: reg_write {EDGE} 'BlockThirdPartyCookies'; backup C")


# -- the one validation of the write modules' arguments ----------------------------------------------

def test_validate_args_names_every_field_of_the_spec_then_runs_the_checks_in_order() -> None:
    spec = {"wait_ms": {"type": "int", "default": 5}, "start": {"type": "bool", "default": True}}
    options, error = validate_args(spec, {"wait_ms": "long", "start": "perhaps", "colour": "red"})
    assert options is None and error is not None and "\n" not in error
    assert "wait_ms" in error and "start" in error and "unsupported parameter(s): " in error and "colour" in error
    seen: list[str] = []

    def check(label: str, problem: str | None) -> t.Callable[[dict[str, t.Any]], str | None]:
        def run_check(options: dict[str, t.Any]) -> str | None:
            seen.append(label)
            return problem and f"{problem}, not {options['wait_ms']}"
        return run_check

    checks = (check("a", None), check("b", "wait_ms must be even"), check("c", "never asked"))
    assert validate_args(spec, {"wait_ms": 7}, *checks) == (None, "wait_ms must be even, not 7")
    assert seen == ["a", "b"]
    assert validate_args(spec, {}, check("d", None)) == ({"wait_ms": 5, "start": True}, None)


@pytest.mark.parametrize("name", ["cm_service", "intranet_zone", "restore", "third_party_cookies"])
def test_every_write_module_runs_the_shared_run(name: str) -> None:
    plugin = importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.action.{name}")
    assert issubclass(plugin.ActionModule, WriteAction)
    assert plugin.ActionModule.run is WriteAction.run
    assert f"nhs_cm.remediation.{name}" == plugin.ActionModule.ROLE
