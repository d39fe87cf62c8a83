"""The `nhs-cm-emulator` command in a subprocess, and real `ansible` against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

pytest.importorskip("nhs_cm_emulator.state", reason="the host model (nhs_cm_emulator/state.py) is not there yet")

BIN = Path(sys.executable).parent
EMULATOR = str(BIN / "nhs-cm-emulator")
SCENARIO = """\
hosts:
  - name: pc-0001
    os: {product: "Windows 10 Enterprise", version: "10.0.19045"}
  - name: pc-0002
    os: {product: "Windows 11 Enterprise", version: "10.0.22631"}
    winrm: {auth: [basic], users: {admin: "S3cret:x"}}
expect:
  pc-0001: []
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "estate.yml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture
def private_tmp(tmp_path: Path) -> Path:
    """TMPDIR for the emulator, to check that it leaves nothing behind."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


@pytest.fixture
def start(private_tmp: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], list[str]]]]:
    """Factory: ``start(*serve args)`` -> (process, stdout lines up to `ready`); killed after the test."""
    started: list[subprocess.Popen[str]] = []

    def run(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
        proc = subprocess.Popen([EMULATOR, "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ, TMPDIR=str(private_tmp)))
        started.append(proc)
        assert proc.stdout is not None
        lines = []
        while (line := proc.stdout.readline()) and line != "ready\n":
            lines.append(line.rstrip("\n"))
        assert line == "ready\n", f"no ready line: {lines} {proc.communicate()}"
        return proc, lines

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_writes_inventory_answers_and_stops_cleanly(start, scenario, tmp_path, private_tmp):
    inventory = tmp_path / "inventory.yml"
    proc, lines = start("--scenario", str(scenario), "--inventory", str(inventory), "--control-port", "0",
                        "--base-address", "127.22.1.1")
    assert len(lines) == 1 and lines[0].startswith("control: http://127.0.0.1:")
    group = yaml.safe_load(inventory.read_text())["windows"]
    assert group["vars"] == {
        "ansible_connection": "winrm", "ansible_winrm_transport": "ntlm", "ansible_winrm_scheme": "http",
        "ansible_winrm_server_cert_validation": "ignore", "ansible_user": "ansible", "ansible_password": "Passw0rd!",
        "ansible_winrm_message_encryption": "auto", "ansible_winrm_read_timeout_sec": 30,
        "ansible_winrm_operation_timeout_sec": 20, "ansible_shell_type": "powershell"}
    assert group["hosts"] == {
        "pc-0001": {"ansible_host": "127.22.1.1", "ansible_port": 5985,
                    "nhs_cm_emulated_from": f"{scenario.name}:pc-0001"},
        "pc-0002": {"ansible_host": "127.22.1.2", "ansible_port": 5985,
                    "nhs_cm_emulated_from": f"{scenario.name}:pc-0002", "ansible_user": "admin",
                    "ansible_password": "S3cret:x", "ansible_winrm_transport": "basic"}}
    with urllib.request.urlopen(lines[0].split()[1] + "/state/pc-0002", timeout=5) as reply:
        assert json.load(reply)["name"] == "pc-0002"
    assert list(private_tmp.iterdir())  # the private directory (NTLM user file) exists while serving

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert proc.communicate() == ("", "")
    assert list(private_tmp.iterdir()) == []


def test_serve_https_on_ports(start, scenario, tmp_path, private_tmp):
    inventory = tmp_path / "inventory.yml"
    proc, lines = start("--scenario", str(scenario), "--inventory", str(inventory), "--https", "--transport", "basic",
                        "--bind", "port", "--base-address", "127.22.2.1", "--base-port", "26210")
    assert lines == []
    group = yaml.safe_load(inventory.read_text())["windows"]
    assert group["vars"]["ansible_winrm_scheme"] == "https" and group["vars"]["ansible_winrm_transport"] == "basic"
    assert [(h["ansible_host"], h["ansible_port"]) for h in group["hosts"].values()] == [
        ("127.22.2.1", 26210), ("127.22.2.1", 26211)]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=5) == 0
    assert list(private_tmp.iterdir()) == []


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EMULATOR, *args], capture_output=True, text=True, timeout=30)


def test_validate(scenario, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("hosts:\n  - name: pc-1\n    registry: {'HKCU\\Software\\X': {}}\n")
    done = _run("validate", str(scenario))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"ok: {scenario} (2 hosts)\n", "")
    done = _run("validate", str(scenario), str(bad))
    assert done.returncode == 2 and done.stdout == f"ok: {scenario} (2 hosts)\n"
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"nhs-cm-emulator: {bad}")


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "/no/such/file.yml"], "/no/such/file.yml"),
    (["--base-address", "10.1.2.3"], "refusing to listen on 10.1.2.3"),
    (["--bind", "port", "--base-port", "32767"], "ephemeral range"),
    (["--transport", "kerberos"], "--transport kerberos needs --keytab"),
])
def test_serve_errors_are_one_line(scenario, args, message):
    done = _run("serve", "--scenario", str(scenario), *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("nhs-cm-emulator: ") and message in done.stderr


def test_real_ansible_raw(start, scenario, tmp_path):
    inventory = tmp_path / "inventory.yml"
    start("--scenario", str(scenario), "--inventory", str(inventory), "--base-address", "127.22.3.1")
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\nhost_key_checking = False\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path),
               ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    done = subprocess.run([str(BIN / "ansible"), "-i", str(inventory), "windows", "-m", "raw", "-a", "echo hi"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for host in ("pc-0001", "pc-0002"):
        assert f"{host} | CHANGED | rc=0 >>\nhi" in done.stdout
