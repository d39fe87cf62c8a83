"""The third_party_cookies and intranet_zone action plugins' options and documentation, and their
roles' argument specs, defaults and tasks (every variable documented, defaulted and passed on)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from ansible.module_utils.common.yaml import yaml_load
from module_docs import documentation

from ansible_collections.nhs_cm.remediation.plugins.action import intranet_zone, third_party_cookies
from ansible_collections.nhs_cm.remediation.plugins.modules import intranet_zone as intranet_zone_doc
from ansible_collections.nhs_cm.remediation.plugins.modules import third_party_cookies as third_party_cookies_doc
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_action import validate

ROLES = Path(__file__).resolve().parents[4] / "roles"
MODULES = {"third_party_cookies": (third_party_cookies, third_party_cookies_doc),
           "intranet_zone": (intranet_zone, intranet_zone_doc)}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_documentation_matches_the_argument_spec(name: str) -> None:
    action, doc = MODULES[name]
    options = documentation(doc)["options"]
    assert set(options) == set(action.ARGUMENT_SPEC)
    for option, field in action.ARGUMENT_SPEC.items():
        assert options[option]["type"] == field["type"], option
        assert options[option].get("default") == field.get("default"), option
        assert options[option].get("choices") == field.get("choices"), option


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_role_documents_defaults_and_passes_every_variable(name: str) -> None:
    role = ROLES / name
    specs = yaml_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml_load((role / "defaults" / "main.yml").read_text())
    tasks = yaml_load((role / "tasks" / "main.yml").read_text())
    assert set(specs) == set(defaults)
    passed = tasks[0][f"nhs_cm.remediation.{name}"]
    assert {f"{name}_{option}" for option in passed} == set(specs)
    assert set(passed) == set(MODULES[name][0].ARGUMENT_SPEC)
    for variable in specs:
        assert specs[variable]["description"], variable
        assert "{{ " + variable + " }}" in passed[variable[len(name) + 1:]], variable
    assert all(task.get("tags") for task in tasks)


@pytest.mark.parametrize(("spec", "args", "message"), [
    (third_party_cookies.ARGUMENT_SPEC, {"scope": "everyone"}, "scope"),
    (third_party_cookies.ARGUMENT_SPEC, {"browsers": ["opera"]}, "browsers"),
    (third_party_cookies.ARGUMENT_SPEC, {"skip_ids": ["NOT_AN_ID"]}, "skip_ids must hold finding ids"),
    (intranet_zone.ARGUMENT_SPEC, {"colour": "blue"}, "colour"),
    (intranet_zone.ARGUMENT_SPEC, {"override_gpo": "maybe"}, "override_gpo"),
])
def test_bad_options_are_named(spec: dict[str, t.Any], args: dict[str, t.Any], message: str) -> None:
    own, diagnose, error = validate(spec, args)
    assert own is None and diagnose is None and error is not None and message in error


def test_good_options_split_into_own_and_diagnose() -> None:
    own, diagnose, error = validate(intranet_zone.ARGUMENT_SPEC, {"scope": "user", "cm_required": False})
    assert error is None and own is not None and diagnose is not None
    assert own["scope"] == "user" and own["logon_action"] == 0x20000 and "cm_required" not in own
    assert diagnose["cm_required"] is False


@pytest.mark.parametrize(("value", "error"), [
    (0x20000, None), (0, None), (0x10000, "logon_action must be 0 (0x00000) or 131072 (0x20000), not 65536")])
def test_logon_action_is_an_automatic_logon(value: int, error: str | None) -> None:
    module = intranet_zone.ActionModule.__new__(intranet_zone.ActionModule)
    assert module.check_options({"logon_action": value}) == error


def test_an_empty_browser_list_is_refused() -> None:
    module = third_party_cookies.ActionModule.__new__(third_party_cookies.ActionModule)
    assert "browsers must list at least one of chrome, edge, firefox" in (module.check_options({"browsers": []}) or "")


def test_the_local_network_access_entries_are_checked_before_any_host_is_read() -> None:
    module = third_party_cookies.ActionModule.__new__(third_party_cookies.ActionModule)
    base = {"browsers": ["chrome"], "localhost_access": True}
    assert module.check_options({**base, "localhost_access_origins": ["https://ers.nhs.uk", "[*.]nhs.uk"]}) is None
    assert "matches every site" in (module.check_options({**base, "localhost_access_origins": ["*"]}) or "")
    assert "at least one site" in (module.check_options({**base, "localhost_access_origins": []}) or "")
    assert module.check_options({**base, "localhost_access": False, "localhost_access_origins": []}) is None
