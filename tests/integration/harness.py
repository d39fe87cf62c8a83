"""Integration harness: start the emulated estate, run ansible-playbook against it."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nhs_cm_emulator.launch import RunningEmulator, launch

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: The checkout's collection (`make install` links it there). ansible.cfg names no collections
#: path, so that an installed collection stays visible when AWX runs the repository as a project.
COLLECTIONS = ROOT / ".collections"
SCENARIOS = ROOT / "scenarios"
# Start at a random block so that two test runs on one machine rarely pick the same addresses.
_counter = itertools.count(random.randrange(250))


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker[2:].isdigit() else 0


def next_base_address() -> str:
    """A loopback range no other test (or xdist worker) uses at the same time."""
    return f"127.{50 + _worker_number()}.{next(_counter) % 250 + 1}.1"


#: A running emulator (nhs_cm_emulator.launch): ``inventory``, ``get(path)`` of its control server, ``stop()``.
Estate = RunningEmulator


def start_estate(tmp_path: Path, scenarios: list[Path], *extra: str, env: dict[str, str] | None = None) -> Estate:
    """Start the emulator on scenario files (``extra``: more ``serve`` options) with its inventory in tmp_path."""
    return launch(scenarios, inventory=tmp_path / "inventory.yml", base_address=next_base_address(), extra=extra,
                  env=env)


@dataclass
class PlaybookRun:
    rc: int
    output: str
    report: dict[str, Any] | None


def run_playbook(playbook: str, inventory: Path, report_dir: Path, *args: str,
                 env: dict[str, str] | None = None) -> PlaybookRun:
    """Run ansible-playbook from the repository root, as a user would after `make install`.

    Runs are recorded in a results store beside the report folder (``history.sqlite``), never in
    the user's own; a test gives ``-e nhs_cm_store=...`` to choose another.
    """
    full_env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
                    ANSIBLE_NOCOLOR="1",
                    ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    full_env.update(env or {})
    cmd = [str(BIN / "ansible-playbook"), playbook, "-i", str(inventory),
           "-e", f"nhs_cm_store={report_dir.parent / 'history.sqlite'}",
           "-e", f"nhs_cm_report_dir={report_dir}", *args]
    done = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)
    report_file = report_dir / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    return PlaybookRun(done.returncode, done.stdout + done.stderr, report)


def problem_ids(entry: dict[str, Any]) -> list[str]:
    """Ids of a host's error and warning findings, each once, sorted (the `expect` form)."""
    return sorted({f["id"] for f in entry["findings"] if f["severity"] in ("error", "warning")})


#: What a backup adds to an emulated host's state: the backup files and the folder the first one makes.
BACKUP_FIELDS = ("backups", "backup_folder")


def without_backups(state: dict[str, Any]) -> dict[str, Any]:
    """An estate's ``/state`` (``{"hosts": [...]}``) by host name, or one host's state, without what
    backups added: a remediation and its rollback leave everything else as it was."""
    if "hosts" in state:
        return {host["name"]: without_backups(host) for host in state["hosts"]}
    return {key: value for key, value in state.items() if key not in BACKUP_FIELDS}
