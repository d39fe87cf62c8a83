"""The unit tests' host simulators are held to what a host answers.

``nhs_cm_hostsim`` answers diagnose's reads from a host described as data, and ``policy_sim``
builds the facts of the policy checks from a flat registry. Neither is the emulator, so each is
held to the protocol here: ``results_for`` already passes every answer through the controller's
own reply checks (``parse_reply``: the fields and types ``OPERATIONS`` declares); these tests
also compare the simulator's answers with the emulator's for a healthy host, field for field,
and ``policy_sim``'s facts with what ``build_facts`` makes of the simulator's answers.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from nhs_cm_hostsim import healthy_host, reply_line, results_for
from policy_sim import USER_A, facts_for, read

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.facts import build_facts
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import RunnerError
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import parse_reply
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import build_request, validate_ops

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _keys(value: t.Any) -> list[str] | None:
    """The keys of a dict, or of a list's first item; None for anything else or an empty list."""
    if isinstance(value, list):
        value = value[0] if value else None
    return sorted(value) if isinstance(value, dict) else None


def _emulator_results(scenario: str) -> list[dict[str, t.Any]]:
    scenario_mod = pytest.importorskip("nhs_cm_emulator.scenario")  # not in ansible-test's units environment
    from nhs_cm_emulator import ops as emulator_ops
    from nhs_cm_emulator.state import HostState

    hosts, _expect = scenario_mod.parse_document(scenario_mod.parse_text((SCENARIOS / scenario).read_text(), scenario),
                                                 scenario)
    request = build_request(validate_ops(plan_reads()), compress_reply=False)
    reply, code = emulator_ops.handle_request(HostState(hosts[0]), request.encode())
    assert code == 0 and reply["ok"] is True
    return reply["results"]


def test_the_simulator_answers_every_read_with_the_emulators_fields() -> None:
    simulated = results_for(healthy_host())
    emulated = _emulator_results("healthy-cm4-scc.yml")
    ops = plan_reads()
    assert len(simulated) == len(emulated) == len(ops)
    for op, sim, emu in zip(ops, simulated, emulated, strict=True):
        assert sim["ok"] is emu["ok"] is True, op
        assert sorted(sim) == sorted(emu), f"{op['op']} {op.get('key', '')}"
        for field, value in sim.items():
            if isinstance(value, list) and value and emu[field] and isinstance(value[0], dict):
                assert sorted(value[0]) == sorted(emu[field][0]), f"{op['op']}.{field}"


def test_an_answer_the_runner_could_not_give_is_refused() -> None:
    results = results_for(healthy_host())
    ops = validate_ops(plan_reads())
    broken = json.loads(reply_line(results))["results"]
    del broken[0]["exists"]
    with pytest.raises(RunnerError, match="lacks field 'exists'"):
        parse_reply(json.dumps({"runner": "nhs_cm", "protocol": 1, "ok": True, "results": broken}), "", 0, ops)


def test_the_policy_simulators_nodes_are_reg_read_answers() -> None:
    chrome = "HKLM\\SOFTWARE\\Policies\\Google\\Chrome"
    registry = {chrome: {"BlockThirdPartyCookies": {"type": "REG_DWORD", "data": 1}},
                f"{chrome}\\CookiesAllowedForUrls": {"1": {"type": "REG_SZ", "data": "[*.]localhost"}}}
    node = read(registry, chrome, 2)
    op = validate_ops([{"op": "reg_read", "key": chrome, "depth": 2}])
    reply = json.dumps({"runner": "nhs_cm", "protocol": 1, "ok": True, "results": [{"ok": True, **node}]})
    answer = parse_reply(reply, "", 0, op)[0]
    assert answer["subkeys"]["CookiesAllowedForUrls"]["values"]["1"]["data"] == "[*.]localhost"


def test_the_policy_simulators_facts_have_the_shape_build_facts_gives() -> None:
    built = build_facts(results_for(healthy_host()))
    simulated = facts_for({}, [USER_A])
    for name in simulated:
        assert name in built, f"policy_sim gives facts[{name!r}], which build_facts does not"
    for name in ("gpo", "browser_files", "browser_site_settings"):
        assert _keys(simulated[name]) == _keys(built[name]), name
    some_key = next(iter(built["policy_keys"]))
    assert _keys(simulated["policy_keys"][some_key]) == _keys(built["policy_keys"][some_key])
    assert set(simulated["users"][0]) <= set(built["users"][0])
