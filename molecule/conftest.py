"""The Windows PCs the verify tests check, and small readers of what Windows tools print.

The hosts come from an Ansible inventory given with ``--ansible-inventory PATH`` (molecule's
testinfra verifier passes its inventory directory; ``make test-windows INVENTORY=...`` passes
yours): every host whose ``ansible_connection`` is ``winrm``, read with ``ansible-inventory
--list``. Each test gets ``host``, a testinfra host over WinRM (pywinrm, NTLM), and ``hostvars``.
Checks are written as for a real PC: ``host.run`` sends a cmd.exe command line (``reg query``,
``sc query``, ``sc qc``, ``tasklist``) and the test reads what Windows prints. The password is
never printed: test ids are inventory host names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).parent))  # windows_tools, beside this file
from windows_tools import Windows

SECRET = re.compile(r"pass|secret|token|key", re.IGNORECASE)  # ansible_password, ansible_winrm_cert_key_pem ...


@dataclass(frozen=True)
class WindowsHost:
    """How to reach one inventory host over WinRM."""

    name: str
    address: str
    port: int
    user: str
    password: str = field(repr=False)
    https: bool
    hostvars: dict[str, Any] = field(repr=False, compare=False, hash=False)

    def spec(self) -> str:
        """testinfra's host spec; user and password are percent-encoded (NHS\\admin, p@ss)."""
        user = urllib.parse.quote(self.user, safe="")
        password = urllib.parse.quote(self.password, safe="")
        query = "no_verify_ssl=true" if self.https else "no_ssl=true&no_verify_ssl=true"
        return f"winrm://{user}:{password}@{self.address}:{self.port}?{query}"


def _ansible_inventory() -> str:
    beside = Path(sys.executable).with_name("ansible-inventory")
    found = str(beside) if beside.exists() else shutil.which("ansible-inventory")
    if not found:
        raise pytest.UsageError("ansible-inventory is not installed beside this Python nor on PATH")
    return found


def _text(hostvars: dict[str, Any], name: str, field_name: str, default: str | None = None) -> str:
    value = hostvars.get(field_name, default)
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise pytest.UsageError(f"inventory host {name}: {field_name} must be a plain string (found "
                                f"{type(value).__name__}); vault-encrypted or templated values are not read here")
    if isinstance(value, str) and "{{" in value:
        raise pytest.UsageError(f"inventory host {name}: {field_name} is a template; give the value itself")
    return str(value)


def windows_hosts(inventory: str) -> list[WindowsHost]:
    """The hosts of an inventory that Ansible reaches over WinRM."""
    result = subprocess.run([_ansible_inventory(), "-i", inventory, "--list"], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise pytest.UsageError(f"ansible-inventory -i {inventory} --list failed: {result.stderr.strip()}")
    hostvars: dict[str, dict[str, Any]] = json.loads(result.stdout).get("_meta", {}).get("hostvars", {})
    hosts = []
    for name, values in sorted(hostvars.items()):
        if values.get("ansible_connection") != "winrm":
            continue
        scheme = str(values.get("ansible_winrm_scheme", "https")).lower()
        if scheme not in ("http", "https"):
            raise pytest.UsageError(f"inventory host {name}: ansible_winrm_scheme must be http or https, "
                                    f"found {scheme!r}")
        port = int(_text(values, name, "ansible_port", "5986" if scheme == "https" else "5985"))
        hosts.append(WindowsHost(name, _text(values, name, "ansible_host", name), port,
                                 _text(values, name, "ansible_user"), _text(values, name, "ansible_password"),
                                 scheme == "https", values))
    return hosts


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "host" not in metafunc.fixturenames:
        return
    inventory = metafunc.config.getoption("ansible_inventory", default=None)
    if not inventory:
        raise pytest.UsageError("give the Windows PCs to check with --ansible-inventory PATH "
                                "(make test-windows INVENTORY=PATH, or make molecule)")
    hosts = windows_hosts(inventory)
    if not hosts:
        raise pytest.UsageError(f"{inventory}: no host with ansible_connection: winrm")
    metafunc.parametrize("host", hosts, ids=[h.name for h in hosts], indirect=True)


@pytest.fixture
def host(request: pytest.FixtureRequest) -> testinfra.host.Host:
    return testinfra.get_host(request.param.spec())


@pytest.fixture
def hostvars(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The inventory variables of the host under test (``ansible-inventory --list``), without its
    secrets: pytest prints a failing test's arguments."""
    every = request.node.callspec.params["host"].hostvars
    return {name: value for name, value in every.items() if not SECRET.search(name)}


@pytest.fixture
def windows(host: testinfra.host.Host) -> Windows:
    return Windows(host)
