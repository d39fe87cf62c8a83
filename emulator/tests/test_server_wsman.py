"""WS-Management / WinRS as pywinrm 0.5.0 sees it (Basic over HTTP unless said otherwise)."""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
import xmltodict
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError

from nhs_cm_emulator import wsman

PSRP_RESOURCE = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"


def test_command_gets_text_arguments_and_stdin(serve, client, make_host, run_command):
    host = make_host("pc-1")
    emulator = serve([host], base_address="127.21.1.1")
    out, err, rc = run_command(client(emulator), "PowerShell", ["-NoProfile", "-EncodedCommand", "ZQA="], b"in\0put")
    assert (out, err, rc) == (b"PowerShell\n-NoProfile -EncodedCommand ZQA=\nin\0put", b"", 0)
    # pywinrm joins the arguments into one rsp:Arguments element
    assert host.calls == [("PowerShell", ["-NoProfile -EncodedCommand ZQA="], b"in\0put")]


def test_exit_code_and_no_stdin(serve, client, make_host, run_command):
    emulator = serve([make_host("pc-1")], base_address="127.21.1.2")
    assert run_command(client(emulator), "exit", ["3"]) == (b"exit\n3\n", b"", 3)


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_stdin_in_several_sends_runs_once_the_input_is_complete(serve, client, make_host):
    host = make_host("pc-1")
    protocol = client(serve([host], base_address="127.21.1.3"))
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "cmd", console_mode_stdin=False)
    for chunk in (b"one ", b"two "):
        protocol.send_command_input(shell, command, chunk)
    time.sleep(0.2)
    assert host.calls == []  # its input is not complete yet
    protocol.send_command_input(shell, command, b"three", end=True)
    # as on Windows, the Send with End="true" starts it: no Receive is needed
    assert _wait_for(lambda: len(host.calls) == 1)
    assert protocol.get_command_output(shell, command) == (b"cmd\none two three", b"", 0)
    # the output is delivered once; a later Receive still reports Done
    assert protocol.get_command_output_raw(shell, command) == (b"", b"", 0, True)
    assert len(host.calls) == 1


def test_a_command_without_stdin_starts_on_the_command_request(serve, client, make_host):
    host = make_host("pc-1")
    protocol = client(serve([host], base_address="127.21.1.11"))
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "exit", ["4"])
    assert _wait_for(lambda: len(host.calls) == 1)  # before any Receive
    assert protocol.get_command_output(shell, command) == (b"exit\n4\n", b"", 4)


def test_receive_before_stdin_ended_is_operation_timeout(serve, client, make_host):
    protocol = client(serve([make_host("pc-1")], base_address="127.21.1.4"), operation_timeout_sec=1,
                      read_timeout_sec=5)
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "cmd", console_mode_stdin=False)
    protocol.send_command_input(shell, command, b"partial")
    started = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell, command)
    assert time.monotonic() - started >= 0.9  # WinRS waits for OperationTimeout first
    protocol.send_command_input(shell, command, b" rest", end=True)
    assert protocol.get_command_output(shell, command) == (b"cmd\npartial rest", b"", 0)


def test_send_after_stdin_ended_is_refused(serve, client, make_host):
    protocol = client(serve([make_host("pc-1")], base_address="127.21.1.5"))
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "cmd", console_mode_stdin=False)
    protocol.send_command_input(shell, command, b"x", end=True)
    with pytest.raises(WSManFaultError) as fault:
        protocol.send_command_input(shell, command, b"more")
    assert fault.value.wsman_fault_code == wsman.CODE_PIPE_CLOSING


def test_unknown_shell_and_command_ids(serve, client, make_host):
    protocol = client(serve([make_host("pc-1")], base_address="127.21.1.6"))
    with pytest.raises(WSManFaultError) as fault:
        protocol.run_command(str(uuid.uuid4()).upper(), "cmd")
    assert fault.value.wsman_fault_code == wsman.CODE_SHELL_NOT_FOUND
    assert "shell was not found" in fault.value.reason
    shell = protocol.open_shell()
    with pytest.raises(WSManFaultError) as fault:
        protocol.get_command_output_raw(shell, "NO-SUCH-COMMAND")
    assert "NO-SUCH-COMMAND" in fault.value.reason
    protocol.close_shell(shell, close_session=False)
    with pytest.raises(WSManFaultError):
        protocol.close_shell(shell)  # deleted already


def _message(protocol, action: str, resource_uri: str = wsman.CMD_RESOURCE, body=None) -> str:
    envelope = {"env:Envelope": protocol.build_wsman_header(action=action, resource_uri=resource_uri)}
    envelope["env:Envelope"]["env:Body"] = body or {}
    return xmltodict.unparse(envelope)


def test_psrp_resource_is_refused_with_a_clear_fault(serve, client, make_host):
    protocol = client(serve([make_host("pc-1")], base_address="127.21.1.7"))
    create = _message(protocol, f"{wsman.NS_TRANSFER}/Create", PSRP_RESOURCE,
                      {"rsp:Shell": {"@xmlns:rsp": wsman.NS_SHELL, "rsp:InputStreams": "stdin pr"}})
    with pytest.raises(WSManFaultError) as fault:
        protocol.send_message(create)
    assert fault.value.wsman_fault_code == wsman.CODE_RESOURCE_NOT_FOUND
    assert "PSRP" in fault.value.reason and PSRP_RESOURCE in fault.value.reason
    with pytest.raises(WSManFaultError) as fault:
        protocol.send_message(_message(protocol, "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"))
    assert fault.value.wsman_fault_code == wsman.CODE_ACTION_NOT_SUPPORTED


def test_response_shapes_that_clients_rely_on(serve, client, make_host):
    protocol = client(serve([make_host("pc-1")], base_address="127.21.1.8"))
    header = protocol.build_wsman_header(action=f"{wsman.NS_TRANSFER}/Create", resource_uri=wsman.CMD_RESOURCE)
    message_id = header["env:Header"]["a:MessageID"]
    root = ET.fromstring(protocol.send_message(xmltodict.unparse({"env:Envelope": {**header, "env:Body": {}}})))
    assert root.findtext(f"*/{{{wsman.NS_ADDRESSING}}}RelatesTo") == message_id
    selectors = [node for node in root.iter() if node.get("Name") == "ShellId"]
    assert selectors[0].tag == f"{{{wsman.NS_WSMAN}}}Selector"  # the first element named ShellId
    shell = selectors[0].text
    command = protocol.run_command(shell, "exit", ["0"])
    receive = protocol.build_wsman_header(action=f"{wsman.NS_SHELL}/Receive", resource_uri=wsman.CMD_RESOURCE,
                                          shell_id=shell)
    body = {"rsp:Receive": {"rsp:DesiredStream": {"@CommandId": command, "#text": "stdout stderr"}}}
    root = ET.fromstring(protocol.send_message(xmltodict.unparse({"env:Envelope": {**receive, "env:Body": body}})))
    states = [node for node in root.iter() if node.get("State", "").endswith("CommandState/Done")]
    assert len(states) == 1
    assert states[0].findtext(f"{{{wsman.NS_SHELL}}}ExitCode") == "0"


def test_server_header_and_huge_envelope(serve, client, make_host):
    host = make_host("pc-1")
    emulator = serve([host], base_address="127.21.1.9")
    protocol = client(emulator)
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "PowerShell", console_mode_stdin=False)
    stdin = bytes(range(256)) * 1200  # 300 KB: an envelope twice MaxEnvelopeSize, as module payloads are
    protocol.send_command_input(shell, command, stdin, end=True)
    assert protocol.get_command_output(shell, command)[0].endswith(stdin)
    reply = requests.post("http://127.21.1.9:5985/wsman", data=b"<not-xml", auth=("ansible", "Passw0rd!"),
                          timeout=5)
    assert reply.status_code == 500 and reply.headers["Server"] == "nhs-cm-emulator"
    assert b"WSManFault" in reply.content and b"not valid XML" in reply.content
    assert requests.post("http://127.21.1.9:5985/other", auth=("ansible", "Passw0rd!"), timeout=5).status_code == 404


def test_no_nagle_stall(serve, client, make_host):
    """Headers and body in two writes would cost about 40 ms per request (delayed ACK)."""
    protocol = client(serve([make_host("pc-1")], base_address="127.21.1.10"))
    shell = protocol.open_shell()
    started = time.monotonic()
    for _ in range(25):
        command = protocol.run_command(shell, "exit", ["0"])
        protocol.get_command_output_raw(shell, command)
    assert time.monotonic() - started < 1.0  # 50 requests; about 0.1 s without the stall, 2 s with it
