"""Start ``nhs-cm-emulator serve`` as a process of its own, wait until it is ready, stop it cleanly.

The one launcher of the demo (tools/demo.py), the benchmark (benchmarks/), the fault-injection run
(tools/fault_injection.py) and the integration tests (tests/integration/harness.py)::

    with launch([Path("scenarios")], inventory=tmp / "inventory.yml", hosts=20, transport="ntlm") as emulator:
        subprocess.run(["ansible-playbook", "-i", str(emulator.inventory), ...])
        counters = emulator.get("/stats")

The process serves a control server on a free port (``control_url``). Its standard error goes to
a temporary file, never a pipe that could fill up; what it said is in the ``LaunchError`` when it
stops before it is ready (a scenario it cannot use, an address in use). With ``show_stderr`` it
goes to this process's standard error instead, for a person watching (the demo, the benchmark).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

__all__ = ["LaunchError", "RunningEmulator", "launch", "serve_command"]


class LaunchError(RuntimeError):
    """The emulator stopped before it was ready, or was not ready in time."""


def _program() -> list[str]:
    """``nhs-cm-emulator`` beside the running Python (a venv's console script), else ``python -m``."""
    script = Path(sys.executable).parent / "nhs-cm-emulator"
    if script.exists():
        return [str(script)]
    found = shutil.which("nhs-cm-emulator")
    return [found] if found else [sys.executable, "-m", "nhs_cm_emulator"]


def serve_command(scenarios: Sequence[Path | str], *, inventory: Path | None = None, hosts: int | None = None,
                  seed: int | None = None, transport: str | None = None, base_address: str | None = None,
                  extra: Sequence[str] = ()) -> list[str]:
    """The ``serve`` command line, with a control server on a free port (``--control-port 0``)."""
    command = [*_program(), "serve"]
    for scenario in scenarios:
        command += ["--scenario", str(scenario)]
    for option, value in (("--hosts", hosts), ("--seed", seed), ("--inventory", inventory),
                          ("--base-address", base_address), ("--transport", transport)):
        if value is not None:
            command += [option, str(value)]
    return [*command, "--control-port", "0", *extra]


@dataclass
class RunningEmulator:
    """A started emulator: its process, the inventory it wrote and its control server's URL."""

    process: subprocess.Popen[str]
    inventory: Path | None
    control_url: str
    _stderr: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str, timeout: float = 30) -> Any:
        """The control server's JSON answer for a path (``/state``, ``/state/<host>``, ``/stats``)."""
        with urllib.request.urlopen(self.control_url + path, timeout=timeout) as reply:
            return json.load(reply)

    def stats(self) -> dict[str, Any]:
        return self.get("/stats")

    def stop(self, timeout: float = 30) -> int:
        """Stop it with SIGTERM (it exits cleanly, removing its temporary directory; killed if it has
        not within ``timeout`` seconds) and return its exit code. Stopping twice is harmless."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _said(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    return stderr.read().decode("utf-8", "replace").strip()


def launch(scenarios: Sequence[Path | str], *, inventory: Path | None = None, hosts: int | None = None,
           seed: int | None = None, transport: str | None = None, base_address: str | None = None,
           extra: Sequence[str] = (), env: Mapping[str, str] | None = None,
           ready_timeout: float = 60, show_stderr: bool = False) -> RunningEmulator:
    """Start ``nhs-cm-emulator serve`` (see ``serve_command``; ``extra``: more ``serve`` options, ``env``:
    variables added to this process's environment) and wait for its ``ready`` line."""
    command = serve_command(scenarios, inventory=inventory, hosts=hosts, seed=seed, transport=transport,
                            base_address=base_address, extra=extra)
    stderr = None if show_stderr else tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop() or below
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                               env=dict(os.environ, **env) if env else None)
    assert process.stdout is not None
    control_url = ""
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            code = process.wait()
            said = _said(stderr) if stderr else ""
            if stderr:
                stderr.close()
            raise LaunchError(f"the emulator stopped before it was ready (exit code {code})"
                              + (f": {said}" if said else ""))
        if line.startswith("control:"):
            control_url = line.split(None, 1)[1].strip().rstrip("/")
        if line.strip() == "ready":
            return RunningEmulator(process, inventory, control_url, stderr)
    process.kill()
    process.wait()
    if stderr:
        stderr.close()
    raise LaunchError(f"the emulator was not ready within {ready_timeout:g} s")
