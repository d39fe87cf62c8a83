"""A scenario's top-level `inventory_vars`: variables the emulator's inventory gives a host."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from nhs_cm_emulator.cli import inventory
from nhs_cm_emulator.scenario import ScenarioError
from nhs_cm_emulator.state import Estate, load_estate

REPORT = "NHS Credential Management is running on port 43485 but is not connected"


def write(tmp_path: Path, doc: dict[str, Any], name: str = "s.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def served(estate: Estate) -> dict[str, Any]:
    runtimes = [types.SimpleNamespace(host=host, endpoint=types.SimpleNamespace(address=f"127.0.0.{i}", port=5985))
                for i, host in enumerate(estate.hosts, start=1)]
    emulator = types.SimpleNamespace(runtimes=runtimes, estate=estate, options=types.SimpleNamespace(scheme="http"))
    return inventory(emulator, "ntlm")["windows"]["hosts"]


def test_the_inventory_carries_a_hosts_variables(tmp_path: Path) -> None:
    path = write(tmp_path, {"hosts": [{"name": "pc-a"}, {"name": "pc-b"}],
                            "inventory_vars": {"PC-A": {"nhs_cm_ers_report": REPORT, "nhs_cm_flag": True}}})
    estate = load_estate([str(path)])
    hosts = served(estate)
    assert hosts["pc-a"]["nhs_cm_ers_report"] == REPORT and hosts["pc-a"]["nhs_cm_flag"] is True
    assert hosts["pc-a"]["ansible_host"] == "127.0.0.1"
    assert "nhs_cm_ers_report" not in hosts["pc-b"]
    assert estate.state_dict()["inventory_vars"] == {"pc-a": {"nhs_cm_ers_report": REPORT, "nhs_cm_flag": True}}


def test_copies_of_a_template_keep_its_variables(tmp_path: Path) -> None:
    path = write(tmp_path, {"hosts": [{"name": "pc-a"}, {"name": "pc-b"}],
                            "inventory_vars": {"pc-b": {"nhs_cm_ers_report": REPORT}}})
    estate = load_estate([str(path)], hosts=6, seed=3)
    hosts = served(estate)
    from_b = [h.name for h in estate.hosts if h.template.endswith(":pc-b")]
    assert from_b and all(hosts[name]["nhs_cm_ers_report"] == REPORT for name in from_b)
    assert all("nhs_cm_ers_report" not in hosts[h.name] for h in estate.hosts if h.name not in from_b)


@pytest.mark.parametrize(("variables", "message"), [
    ("text", "inventory_vars: expected a mapping of host name to variables"),
    ({"pc-z": {"x": 1}}, "inventory_vars['pc-z']: names no host of this file"),
    ({"pc-a": ["x"]}, "inventory_vars['pc-a']: expected a mapping of variable name to value"),
    ({"pc-a": {"bad-name": 1}}, "'bad-name' is not a variable name"),
    ({"pc-a": {"ansible_password": "x"}}, "connection variables are the emulator's"),
])
def test_bad_inventory_vars_name_the_field(tmp_path: Path, variables: Any, message: str) -> None:
    path = write(tmp_path, {"hosts": [{"name": "pc-a"}], "inventory_vars": variables})
    with pytest.raises(ScenarioError) as caught:
        load_estate([str(path)])
    assert str(path) in str(caught.value) and message in str(caught.value)
