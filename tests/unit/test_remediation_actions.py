"""The cm_service and restore action plugins' options and documentation, the role's argument
spec, and restore's pure planning (what differs, which created keys go)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import yaml
from module_docs import documentation

from ansible_collections.nhs_cm.remediation.plugins.action import cm_service, restore
from ansible_collections.nhs_cm.remediation.plugins.modules import cm_service as cm_service_doc
from ansible_collections.nhs_cm.remediation.plugins.modules import restore as restore_doc
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._changes import ChangeError
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._protocol import validate_ops

ROLE = Path(__file__).resolve().parents[2] / "roles" / "cm_service"
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
    reads = restore.current_reads(BACKUP)
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
    reads = restore.current_reads(BACKUP)
    the_plan = restore.restore_plan(BACKUP, reads, _results(**AFTER_RUN))
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
    ops = restore.restore_plan(BACKUP, restore.current_reads(BACKUP), results).write_ops
    assert [op for op in ops if op["op"] == "reg_delete_key"] == []
    results = _results(**{**AFTER_RUN, "chrome": node({}, ["CookiesAllowedForUrls", "Recommended"])})
    ops = restore.restore_plan(BACKUP, restore.current_reads(BACKUP), results).write_ops
    assert [op["key"] for op in ops if op["op"] == "reg_delete_key"] == [ALLOW]


def test_nothing_differs_nothing_is_planned() -> None:
    results = _results(allow=ABSENT, edge=node({"BlockThirdPartyCookies": {"type": "REG_SZ", "data": "1"}}),
                       google=ABSENT, chrome=ABSENT, state="stopped", mode="manual")
    assert not restore.restore_plan(BACKUP, restore.current_reads(BACKUP), results).changed


def test_what_cannot_be_read_or_no_longer_exists_is_an_error() -> None:
    reads = restore.current_reads(BACKUP)
    results = _results(**{**AFTER_RUN, "edge": {"ok": False, "error": "access_denied", "message": "denied"}})
    with pytest.raises(ChangeError, match="cannot read what the backup restores"):
        restore.restore_plan(BACKUP, reads, results)
    results = _results(**AFTER_RUN)
    results[-1]["services"] = []
    with pytest.raises(ChangeError, match="no longer has: NHSPortService"):
        restore.restore_plan(BACKUP, reads, results)
