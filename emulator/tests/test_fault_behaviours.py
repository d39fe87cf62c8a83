"""The optional fault behaviours for reliability tests (scenario.py OPTIONAL_BEHAVIOUR):
``garbage_reply`` and ``gp_refresh``; tools/fault_injection.py uses them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nhs_cm_emulator import commands, ops
from nhs_cm_emulator.scenario import ScenarioError, parse_document
from nhs_cm_emulator.state import HostState

EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"


def make_host(**behaviour: Any) -> HostState:
    doc = {"hosts": [{"name": "pc-1", "registry": {EDGE: {"BlockThirdPartyCookies": {"type": "REG_DWORD", "data": 1}}},
                      "behaviour": behaviour}]}
    return HostState(parse_document(doc, "faults.yml")[0][0])


def write(host: HostState, data: int) -> dict[str, Any]:
    request = {"protocol": 1, "ops": [{"op": "reg_write", "key": EDGE, "name": "BlockThirdPartyCookies",
                                       "type": "REG_DWORD", "data": data}]}
    reply, code = ops.handle_request(host, json.dumps(request))
    assert code == 0, reply
    return reply["results"][0]


def edge_value(host: HostState) -> Any:
    return host.state_dict()["registry"][EDGE]["BlockThirdPartyCookies"]["data"]


def test_a_gp_refresh_rewrites_its_values_once_after_the_nth_write() -> None:
    gp = {"after_writes": 2, "registry": {EDGE: {"BlockThirdPartyCookies": {"type": "REG_DWORD", "data": 1}}}}
    host = make_host(gp_refresh=gp)
    assert write(host, 0)["ok"]
    assert edge_value(host) == 0  # one write: no refresh yet
    assert write(host, 0)["ok"]
    assert edge_value(host) == 1  # the second write: Group Policy writes its value back
    assert write(host, 0)["ok"]
    assert edge_value(host) == 0  # once only
    assert host.state_dict()["behaviour"]["gp_refresh"]["after_writes"] == 2


def test_garbage_reply_answers_a_line_that_is_not_json_and_runs_nothing() -> None:
    host = make_host(garbage_reply=True)
    request = json.dumps({"protocol": 1, "ops": [{"op": "reg_write", "key": EDGE, "name": "BlockThirdPartyCookies",
                                                  "type": "REG_DWORD", "data": 0}]})
    stdin = (commands.RUNNER_MARKER + commands.SEPARATOR + request).encode()
    stdout, _stderr, code = commands.run_bootstrap(host, stdin)
    assert code == 0
    with pytest.raises(ValueError):
        json.loads(stdout)
    assert edge_value(host) == 1 and host.writes == 0


def test_without_them_the_state_is_as_before() -> None:
    assert set(make_host().state_dict()["behaviour"]) == {"starts_on_logon_task", "port_service_start_fails",
                                                          "port_service_ports"}


@pytest.mark.parametrize(("behaviour", "field"), [
    ({"garbage_reply": "yes"}, "behaviour.garbage_reply"),
    ({"gp_refresh": {"after_writes": 0}}, "behaviour.gp_refresh.after_writes"),
    ({"gp_refresh": {"after_writes": 1, "when": "now"}}, "behaviour.gp_refresh"),
])
def test_bad_fault_behaviours_name_the_field(behaviour: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        make_host(**behaviour)
