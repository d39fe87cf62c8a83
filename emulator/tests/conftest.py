"""Generic fixtures for the emulator's tests: a fake estate and an in-process emulator.

The fake host's `execute` echoes: stdout is the command, each argument and the standard input,
one per line; the exit code is the number after `exit` (`execute("exit", ["3"], b"")` -> 3).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from winrm.protocol import Protocol

from nhs_cm_emulator.server import Emulator, ExecuteCommand, ServeOptions

USER = "ansible"
PASSWORD = "Passw0rd!"

# pytest runs with --import-mode=importlib, so the tests' own helper module (emulated_host) is
# importable only with this folder on sys.path.
TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(1, TESTS)


@dataclass
class FakeHost:
    name: str
    auth: list[str] = field(default_factory=lambda: ["basic", "ntlm"])
    users: dict[str, str] = field(default_factory=lambda: {USER: PASSWORD})
    transport_fail: dict[str, Any] | None = None
    writes: int = 0
    calls: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    @property
    def template(self) -> str:
        return f"fake.yml:{self.name}"

    def execute(self, command: str, arguments: list[str], stdin: bytes) -> tuple[bytes, bytes, int]:
        self.calls.append((command, arguments, stdin))
        rc = int(arguments[0]) if command == "exit" else 0
        return "\n".join([command, *arguments, ""]).encode() + stdin, b"", rc

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "calls": len(self.calls)}


@dataclass
class FakeEstate:
    hosts: list[FakeHost]
    expect: dict[str, list[str]] = field(default_factory=dict)

    def by_name(self, name: str) -> FakeHost:
        return {host.name: host for host in self.hosts}[name]

    def state_dict(self) -> dict[str, Any]:
        return {"hosts": [host.state_dict() for host in self.hosts], "expect": self.expect}


@pytest.fixture
def make_host() -> type[FakeHost]:
    """``make_host(name, auth=[...], users={...}, transport_fail={...})`` -> a FakeHost."""
    return FakeHost


@pytest.fixture
def make_estate() -> type[FakeEstate]:
    """``make_estate([FakeHost, ...])`` -> a FakeEstate."""
    return FakeEstate


@pytest.fixture
def serve() -> Iterator[Callable[..., Emulator]]:
    """Factory: ``serve([FakeHost, ...], **ServeOptions fields)`` -> a started Emulator, stopped after the test.

    For real hosts (``HostState``) pass ``execute=commands.execute``, the emulator's interpreter."""
    with contextlib.ExitStack() as stack:
        def start(hosts: list[Any], execute: ExecuteCommand = FakeHost.execute, **options: Any) -> Emulator:
            return stack.enter_context(Emulator(FakeEstate(hosts), ServeOptions(**options), execute))
        yield start


@pytest.fixture
def client() -> Callable[..., Protocol]:
    """Factory: ``client(emulator, host_index=0, transport="basic", **Protocol kwargs)`` -> a pywinrm Protocol."""
    def make(emulator: Emulator, index: int = 0, transport: str = "basic", **kwargs: Any) -> Protocol:
        endpoint = emulator.runtimes[index].endpoint
        url = f"{emulator.options.scheme}://{endpoint.address}:{endpoint.port}/wsman"
        kwargs = {"username": USER, "password": PASSWORD, "server_cert_validation": "ignore",
                  "read_timeout_sec": 10, "operation_timeout_sec": 5, **kwargs}
        return Protocol(url, transport=transport, **kwargs)
    return make


def run(protocol: Protocol, command: str, arguments: list[str], stdin: bytes | None = None) -> tuple[bytes, bytes, int]:
    """One command, the way ansible's winrm connection runs it (shell, command, stdin, output, signal, delete)."""
    shell = protocol.open_shell(codepage=65001)
    command_id = protocol.run_command(shell, command, arguments, console_mode_stdin=stdin is None)
    if stdin is not None:
        protocol.send_command_input(shell, command_id, stdin, end=True)
    result = protocol.get_command_output(shell, command_id)
    protocol.cleanup_command(shell, command_id)
    protocol.close_shell(shell, close_session=False)
    return result


@pytest.fixture
def run_command() -> Callable[..., tuple[bytes, bytes, int]]:
    """The `run` helper above, as a fixture (test modules cannot import conftest)."""
    return run
