"""Issue 17, the runner's safety on the host: the host-wide mutex (a second run is ``busy``), the
hives a killed run left loaded (unloaded first, or ``cleanup_error`` with every result kept), and
the answer of a command that is lost after the command ran. Driven over the protocol as the
collection sends it (``build_stdin``), and over real pywinrm where the transport matters."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
import requests
from emulated_host import collection_protocol, decode_reply, host_from, run_runner, runner_command, runner_stdin

from nhs_cm_emulator import commands, ops
from nhs_cm_emulator.scenario import ScenarioError, parse_document
from nhs_cm_emulator.state import HostState

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
SID2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
CHROME = "Software\\Policies\\Google\\Chrome"
EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
WRITE = {"op": "reg_write", "key": EDGE, "name": "BlockThirdPartyCookies", "type": "REG_DWORD", "data": 0}
BUSY = {"runner": "nhs_cm", "protocol": 1, "ok": False, "error": "busy",
        "message": "another nhs_cm run is in progress on this PC (mutex Global\\nhs_cm_runner); try again later",
        "results": []}

HOST = rf"""
hosts:
  - name: pc-safe
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: false}}
      - {{user: 'NHS\akhan', sid: '{SID2}', path: 'C:\Users\akhan', loaded: false}}
    registry:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
      'HKU\{SID}\{CHROME}':
        BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
    default_profile:
      registry:
        '{CHROME}':
          BlockThirdPartyCookies: {{type: REG_DWORD, data: 1}}
"""
LEFTOVERS = f"""    hive_mounts:
      - {{mount: nhs_cm_0123456789ab, hive: '{SID}'}}
      - {{mount: nhs_cm_a1b2c3d4e5f6, hive: default}}
      - {{mount: OtherTool, hive: '{SID2}'}}
"""


@pytest.fixture(scope="module")
def protocol() -> Any:
    return collection_protocol()


def make_host(extra: str = "", **behaviour: Any) -> HostState:
    return host_from(HOST + extra, "safe.yml", **behaviour)


# -- 1. the host-wide mutex -----------------------------------------------------------------------

def test_the_runner_waits_10_s_for_the_mutex_by_default() -> None:
    assert make_host().mutex_wait == 10.0
    assert make_host(mutex_wait_seconds=0.5).mutex_wait == 0.5


def test_a_run_while_another_holds_the_mutex_is_busy_after_the_wait(protocol: Any) -> None:
    host = make_host(mutex_wait_seconds=0.2)
    assert host.take_runner_mutex()  # another run holds Global\nhs_cm_runner
    started = time.monotonic()
    reply, code = run_runner(host, protocol, [WRITE])
    assert time.monotonic() - started >= 0.2
    assert (reply, code) == (BUSY, 1)
    assert host.writes == 0 and host.state_dict()["registry"][EDGE]["BlockThirdPartyCookies"]["data"] == 1
    with pytest.raises(protocol.RunnerError, match=r"another run of nhs_cm.remediation holds this PC"):
        protocol.parse_reply(json.dumps(reply), "", code, [WRITE])
    host.release_runner_mutex()
    assert run_runner(host, protocol, [WRITE])[0]["results"][0]["ok"] is True


def test_a_busy_reply_is_not_compressed_even_when_asked(protocol: Any) -> None:
    host = make_host(mutex_wait_seconds=0)
    host.take_runner_mutex()
    stdout, _, code = commands.execute(host, *runner_command(protocol), runner_stdin(protocol, [{"op": "os_info"}]))
    assert code == 1 and json.loads(stdout) == BUSY


def test_two_runs_on_one_host_over_winrm_the_second_is_busy_the_first_unaffected(
        serve, client, run_command, protocol: Any) -> None:
    host = make_host(slow_ops={"reg_write": 1.5}, mutex_wait_seconds=0.3)
    emulator = serve([host], execute=commands.execute, base_address="127.21.10.1")
    first: dict[str, Any] = {}

    def first_run() -> None:
        out, err, code = run_command(client(emulator), *runner_command(protocol), runner_stdin(protocol, [WRITE]))
        first["results"] = protocol.parse_reply(out, err, code, [WRITE])

    thread = threading.Thread(target=first_run)
    thread.start()
    deadline = time.monotonic() + 5
    while not host.runner_running and time.monotonic() < deadline:  # the first run holds the mutex
        time.sleep(0.01)
    started = time.monotonic()
    out, err, code = run_command(client(emulator), *runner_command(protocol),
                                 runner_stdin(protocol, [{"op": "os_info"}]))
    waited = time.monotonic() - started
    assert (decode_reply(out), err, code) == (BUSY, b"", 1)
    assert 0.3 <= waited < 1.4  # it waited for the mutex, then gave up while the first still ran
    thread.join(10)
    assert first["results"][0]["ok"] is True and first["results"][0]["previous"]["data"] == 1
    assert host.writes == 1 and not host.runner_running
    out, err, code = run_command(client(emulator), *runner_command(protocol),
                                 runner_stdin(protocol, [{"op": "os_info"}]))
    assert protocol.parse_reply(out, err, code, [{"op": "os_info"}])[0]["computer_name"] == "pc-safe"


def test_slow_ops_must_name_operations() -> None:
    with pytest.raises(ScenarioError, match=r"behaviour\.slow_ops: 'reg_wirte' is not a runner operation"):
        make_host(slow_ops={"reg_wirte": 1})
    with pytest.raises(ScenarioError, match=r"behaviour\.mutex_wait_seconds"):
        make_host(mutex_wait_seconds=-1)


# -- 2. hives a killed run left loaded -------------------------------------------------------------

def test_a_scenario_declares_leftover_mounts_which_every_run_unloads_first(protocol: Any) -> None:
    host = make_host(LEFTOVERS)
    assert sorted(host.mounted(), key=str.lower) == ["nhs_cm_0123456789ab", "nhs_cm_a1b2c3d4e5f6", "OtherTool"]
    assert host.state_dict()["hive_mounts"] == [{"mount": "nhs_cm_0123456789ab", "hive": SID},
                                                {"mount": "nhs_cm_a1b2c3d4e5f6", "hive": "default"},
                                                {"mount": "OtherTool", "hive": SID2}]
    reply, code = run_runner(host, protocol, [{"op": "reg_read", "key": "HKU", "depth": 0}])
    assert code == 0 and reply["ok"] is True and "cleanup_error" not in reply
    assert host.mounted() == ["OtherTool"]  # not the runner's: left alone
    assert set(reply["results"][0]["subkeys"]) >= {"OtherTool"}
    assert not any(name.lower().startswith("nhs_cm_") for name in reply["results"][0]["subkeys"])
    # the hives are in their files again: the offline profile and the default profile can be read
    offline = run_runner(host, protocol, [{"op": "user_hives_read", "paths": [[CHROME, 0]], "include_offline": True},
                                          {"op": "reg_read", "key": f"HKU\\.DEFAULT_PROFILE\\{CHROME}"}])[0]
    jsmith = next(p for p in offline["results"][0]["profiles"] if p["sid"] == SID)
    assert jsmith["error"] is None and jsmith["keys"][CHROME]["values"]["BlockThirdPartyCookies"]["data"] == 1
    assert offline["results"][1]["values"]["BlockThirdPartyCookies"]["data"] == 1


def test_a_leftover_mount_that_will_not_unload_keeps_the_results_and_says_why(protocol: Any) -> None:
    host = make_host(LEFTOVERS, stuck_hives=["default"])
    op_list = [WRITE, {"op": "os_info"}]
    for _run in range(2):  # it is still there in the next run, as on Windows
        reply, code = run_runner(host, protocol, op_list)
        assert code == 0 and reply["ok"] is True and [r["ok"] for r in reply["results"]] == [True, True]
        assert reply["cleanup_error"] == (
            "HKU\\nhs_cm_a1b2c3d4e5f6 (left loaded by an earlier run) cannot be unloaded: reg.exe unload exited "
            "with 1: ERROR: Access is denied.")
        assert sorted(host.mounted(), key=str.lower) == ["nhs_cm_a1b2c3d4e5f6", "OtherTool"]
    assert host.writes == 2
    with pytest.raises(protocol.CleanupError, match="Access is denied") as failure:
        protocol.parse_reply(json.dumps(reply), "", code, op_list)
    assert [r["ok"] for r in failure.value.results] == [True, True]  # the controller learns what was written


def test_the_default_profile_hive_that_will_not_unload_at_the_end_of_a_run(protocol: Any) -> None:
    host = make_host(stuck_hives=["default"])
    key = f"HKU\\.DEFAULT_PROFILE\\{CHROME}"
    op_list = [{"op": "reg_write", "key": key, "name": "BlockThirdPartyCookies", "type": "REG_DWORD", "data": 0}]
    reply, code = run_runner(host, protocol, op_list)
    assert code == 0 and reply["ok"] is True and reply["results"][0]["ok"] is True
    assert re.fullmatch(r"the default profile hive stays loaded as HKU\\nhs_cm_[0-9a-f]{12}: reg\.exe unload exited "
                        r"with 1: ERROR: Access is denied\.", reply["cleanup_error"])
    (mount,) = host.mounted()
    assert host.state_dict()["default_profile"]["registry"][CHROME]["BlockThirdPartyCookies"]["data"] == 0
    # the next run: its start cannot unload it either, and the default profile's file is in use
    reply, _ = run_runner(host, protocol, [{"op": "reg_read", "key": key}])
    assert reply["cleanup_error"].startswith(f"HKU\\{mount} (left loaded by an earlier run) cannot be unloaded")
    (result,) = reply["results"]
    assert result["error"] == "failed" and "being used by another process" in result["message"]
    assert host.mounted() == [mount] and host.state_dict()["hive_mounts"] == [{"mount": mount, "hive": "default"}]


def test_an_offline_hive_that_will_not_unload_after_user_hives_read(protocol: Any) -> None:
    host = make_host(stuck_hives=[SID])
    read = {"op": "user_hives_read", "paths": [[CHROME, 0]], "include_offline": True}
    reply, _ = run_runner(host, protocol, [read])
    jsmith = next(p for p in reply["results"][0]["profiles"] if p["sid"] == SID)
    assert jsmith["keys"][CHROME]["exists"] is True
    assert jsmith["error"] == f"failed: cannot unload HKU\\{jsmith['mounted_as']}: reg.exe unload exited with 1: " \
                              "ERROR: Access is denied."
    assert "cleanup_error" not in reply  # not the start or the end of the run: the profile says it
    reply, _ = run_runner(host, protocol, [{"op": "os_info"}])
    assert reply["cleanup_error"].startswith(f"HKU\\{jsmith['mounted_as']} (left loaded by an earlier run)")


def test_a_dumped_state_with_mounts_loads_again() -> None:
    host = make_host(LEFTOVERS, stuck_hives=["default", SID])
    dumped = host.state_dict()
    assert HostState(parse_document({"hosts": [dumped]}, "dump.yml")[0][0]).state_dict() == dumped


@pytest.mark.parametrize(("mounts", "field", "message"), [
    ("[{mount: 'nhs cm', hive: default}]", r"hive_mounts\[0\]\.mount", "not a mount point name"),
    (f"[{{mount: '{SID}', hive: default}}]", r"hive_mounts\[0\]\.mount", "not a SID"),
    ("[{mount: nhs_cm_0123456789ab, hive: S-1-5-21-1-2-3-4}]", r"hive_mounts\[0\]\.hive", "loaded: false"),
    ("[{mount: a, hive: default}, {mount: b, hive: DEFAULT}]", r"hive_mounts\[1\]", "the same hive"),
    ("[{mount: a, hive: default}, {mount: A, hive: " + f"'{SID}'" + "}]", r"hive_mounts\[1\]", "the same mount"),
    ("[{mount: a}]", r"hive_mounts\[0\]\.hive", "neither 'default'"),
])
def test_bad_leftover_mounts_name_the_field(mounts: str, field: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=f"{field}: .*{message}"):
        make_host(f"    hive_mounts: {mounts}\n")


def test_stuck_hives_must_be_hives_the_runner_loads() -> None:
    with pytest.raises(ScenarioError, match=r"behaviour\.stuck_hives\[0\]: 'S-1-5-18' is neither"):
        make_host(stuck_hives=["S-1-5-18"])


# -- 3. a command runs once its input is complete; its answer can be lost -----------------------------

def test_a_write_happens_although_its_answer_never_arrives(serve, client, run_command, protocol: Any) -> None:
    host = make_host(lose_write_answers=1)
    emulator = serve([host], execute=commands.execute, base_address="127.21.10.2")
    read = [{"op": "reg_read", "key": EDGE}]
    out, err, code = run_command(client(emulator), *runner_command(protocol), runner_stdin(protocol, read))
    assert protocol.parse_reply(out, err, code, read)[0]["values"]["BlockThirdPartyCookies"]["data"] == 1
    with pytest.raises(requests.exceptions.ConnectionError):  # the Receive gets the connection closed
        run_command(client(emulator), *runner_command(protocol), runner_stdin(protocol, [WRITE]))
    # the write happened on the host all the same
    assert host.writes == 1 and host.state_dict()["registry"][EDGE]["BlockThirdPartyCookies"]["data"] == 0
    stats = emulator.stats()["hosts"]["pc-safe"]
    assert stats["writes"] == 1 and stats["actions"]["Receive"] == 2
    # once: the next write's answer arrives
    again = dict(WRITE, data=1)
    out, err, code = run_command(client(emulator), *runner_command(protocol), runner_stdin(protocol, [again]))
    assert protocol.parse_reply(out, err, code, [again])[0]["previous"] == {"type": "REG_DWORD", "data": 0}


def test_only_a_request_with_a_write_loses_its_answer(protocol: Any) -> None:
    from nhs_cm_emulator.wsman import LostAnswer

    host = make_host(lose_write_answers=1)
    assert run_runner(host, protocol, [{"op": "os_info"}, {"op": "backup_list"}])[0]["ok"] is True
    with pytest.raises(LostAnswer) as lost:
        run_runner(host, protocol, [{"op": "os_info"}, WRITE])
    assert decode_reply(lost.value.result[0])["results"][1]["ok"] is True  # it ran: this is its answer
    assert host.answers_to_lose == 0 and host.state_dict()["behaviour"]["lose_write_answers"] == 1


def test_busy_is_not_a_lost_answer(protocol: Any) -> None:
    host = make_host(lose_write_answers=1, mutex_wait_seconds=0)
    host.take_runner_mutex()
    assert run_runner(host, protocol, [WRITE]) == (BUSY, 1)
    assert host.answers_to_lose == 1


def test_the_request_table_knows_busy() -> None:
    assert "busy" in ops.ERROR_KINDS and ops.busy_reply() == BUSY
