"""Many hosts in one process, transport faults and the control server."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request

import pytest
import requests
from winrm.exceptions import InvalidCredentialsError, WSManFaultError

from nhs_cm_emulator import wsman
from nhs_cm_emulator.server import Emulator, EmulatorError, ServeOptions, plan_endpoints


def test_hosts_on_their_own_loopback_addresses(serve, client, make_host, run_command):
    hosts = [make_host(f"pc-{i}") for i in range(3)]
    emulator = serve(hosts, base_address="127.21.3.254")  # .255 and .0 are skipped
    assert [(r.endpoint.address, r.endpoint.port) for r in emulator.runtimes] == [
        ("127.21.3.254", 5985), ("127.21.4.1", 5985), ("127.21.4.2", 5985)]
    for index, host in enumerate(hosts):
        run_command(client(emulator, index), "exit", [str(index)])
        assert host.calls == [("exit", [str(index)], b"")]


def test_hosts_on_ports(serve, client, make_host, run_command):
    hosts = [make_host(f"pc-{i}") for i in range(3)]
    emulator = serve(hosts, bind="port", base_address="127.21.5.1", base_port=26110)
    assert [(r.endpoint.address, r.endpoint.port) for r in emulator.runtimes] == [
        ("127.21.5.1", 26110), ("127.21.5.1", 26111), ("127.21.5.1", 26112)]
    assert run_command(client(emulator, 2), "exit", ["2"])[2] == 2
    assert hosts[2].calls and not hosts[0].calls


@pytest.mark.parametrize(("options", "message"), [
    ({"base_address": "10.0.0.1"}, "only inside 127.0.0.0/8"),
    ({"base_address": "0.0.0.0"}, "only inside 127.0.0.0/8"),
    ({"base_address": "localhost"}, "not an IPv4 address"),
    ({"base_address": "127.255.255.253"}, "do not fit inside 127.0.0.0/8"),
    ({"bind": "port", "base_port": 32767}, "ephemeral range"),
    ({"port": 0}, "not a TCP port"),
])
def test_plan_refuses_what_it_cannot_do(options, message):
    with pytest.raises(EmulatorError, match=message):
        plan_endpoints(3, ServeOptions(**options))


def test_busy_address_is_a_clear_error_and_nothing_stays_open(make_host, make_estate):
    emulator = Emulator(make_estate([make_host("pc-1"), make_host("pc-2")]), ServeOptions(base_address="127.21.6.1"),
                        make_host.execute)
    with socket.socket() as busy:
        busy.bind(("127.21.6.2", 5985))
        busy.listen()
        with pytest.raises(EmulatorError, match=r"cannot listen on 127\.21\.6\.2:5985 for host pc-2"):
            emulator.start()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.21.6.1", 5985)) != 0  # pc-1's listener was closed again


FAULTS = [("refuse", requests.ConnectionError), ("drop", requests.ConnectionError),
          ("timeout", requests.ConnectionError), ("auth", InvalidCredentialsError), ("http500", WSManFaultError)]


@pytest.mark.parametrize(("number", "kind", "error"), [(n, *fault) for n, fault in enumerate(FAULTS, start=1)])
def test_transport_fault(serve, client, make_host, number, kind, error):
    fail = {"kind": kind, "after_requests": 1, "times": 2, "seconds": 0.2}
    emulator = serve([make_host("pc-1", transport_fail=fail)], base_address=f"127.21.7.{number}")
    protocol = client(emulator)
    shell = protocol.open_shell()  # request 0 is served
    for _ in range(2):  # requests 1 and 2 fail
        started = time.monotonic()
        with pytest.raises(error) as raised:
            protocol.run_command(shell, "exit", ["0"])
        if kind == "timeout":
            assert time.monotonic() - started >= 0.18
        if kind == "http500":
            assert raised.value.wsman_fault_code == wsman.CODE_INTERNAL_ERROR
            assert "internal error" in raised.value.reason
    protocol.run_command(shell, "exit", ["0"])  # request 3 is served again
    assert emulator.stats()["hosts"]["pc-1"]["requests"] == 4


def test_refuse_from_the_first_request_means_no_listener(serve, client, make_host):
    fail = {"kind": "refuse", "after_requests": 0, "times": 1}
    emulator = serve([make_host("pc-1", transport_fail=fail), make_host("pc-2")], base_address="127.21.8.1")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.21.8.1", 5985)) != 0
    client(emulator, 1).open_shell()


def test_held_request_is_released_by_stop(serve, make_host):
    fail = {"kind": "timeout", "after_requests": 0, "times": 1}  # 60 s by default
    emulator = serve([make_host("pc-1", transport_fail=fail)], base_address="127.21.8.2")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post("http://127.21.8.2:5985/wsman", data=b"<x/>", auth=("ansible", "Passw0rd!"), timeout=0.5)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 2


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_control_endpoints(serve, client, make_host, run_command):
    hosts = [make_host("pc-1"), make_host("pc-2")]
    hosts[0].writes = 2
    emulator = serve(hosts, base_address="127.21.9.1", control_port=0)
    assert emulator.control_url is not None and emulator.control_url.startswith("http://127.0.0.1:")
    run_command(client(emulator), "exit", ["0"])
    run_command(client(emulator), "exit", ["0"], b"in")

    assert _get(emulator.control_url + "/state") == (200, {"hosts": [{"name": "pc-1", "calls": 2},
                                                                     {"name": "pc-2", "calls": 0}], "expect": {}})
    assert _get(emulator.control_url + "/state/pc-2") == (200, {"name": "pc-2", "calls": 0})
    status, stats = _get(emulator.control_url + "/stats")
    assert status == 200
    pc1 = stats["hosts"]["pc-1"]
    assert pc1["requests"] == 11 and pc1["shells"] == 2 and pc1["commands"] == 2 and pc1["writes"] == 2
    assert pc1["actions"] == {"Create": 2, "Command": 2, "Send": 1, "Receive": 2, "Signal": 2, "Delete": 2}
    assert pc1["bytes_in"] > 5000 and pc1["bytes_out"] > 5000
    # Basic auth has no extra legs: every body byte belongs to one WS-Man request or its answer.
    assert sum(sizes["in"] for sizes in pc1["action_bytes"].values()) == pc1["bytes_in"]
    assert sum(sizes["out"] for sizes in pc1["action_bytes"].values()) == pc1["bytes_out"]
    assert set(pc1["action_bytes"]) == set(pc1["actions"])
    assert pc1["action_bytes"]["Send"]["in"] > pc1["action_bytes"]["Signal"]["in"] / 2 > 0
    assert stats["hosts"]["pc-2"]["requests"] == 0
    assert stats["total"] == pc1

    status, error = _get(emulator.control_url + "/state/pc-9")
    assert status == 404 and "pc-9" in error["error"]


def test_the_control_server_never_shows_passwords(serve, client, run_command):
    from nhs_cm_emulator import commands
    from nhs_cm_emulator.scenario import parse_document
    from nhs_cm_emulator.state import HostState

    doc = {"hosts": [{"name": "pc-1", "winrm": {"users": {"ansible": "Passw0rd!", "audit": "S3cret-Audit:pw"}}},
                     {"name": "pc-2"}]}
    hosts = [HostState(data) for data in parse_document(doc, "secrets.yml")[0]]
    emulator = serve(hosts, execute=commands.execute, base_address="127.21.10.5", control_port=0)
    run_command(client(emulator, transport="ntlm", username="PC-1\\audit", password="S3cret-Audit:pw"),
                "hostname", [])
    bodies = []
    for path in ("/state", "/state/pc-1", "/state/pc-2", "/stats", "/nothing"):
        with contextlib.suppress(urllib.error.HTTPError), urllib.request.urlopen(emulator.control_url + path,
                                                                                  timeout=5) as reply:
            bodies.append(reply.read())
    assert len(bodies) == 4
    assert all(b"Passw0rd!" not in body and b"S3cret" not in body for body in bodies)
    state = json.loads(bodies[0])
    assert state["hosts"][0]["winrm"]["users"] == {"ansible": "(hidden)", "audit": "(hidden)"}
    assert json.loads(bodies[1])["winrm"]["users"] == {"ansible": "(hidden)", "audit": "(hidden)"}
    assert hosts[0].users["audit"] == "S3cret-Audit:pw"  # the host itself keeps them
    status, error = _get(emulator.control_url + "/nothing")
    assert status == 404 and "/stats" in error["error"]
