"""The smoke path under every ansible-core minor the collection declares (meta/runtime.yml):
audit, remediate in check mode with diff, remediate, rollback, against emulated hosts.

`make test-matrix` makes one venv per minor in .venv-matrix/<version> from exactly what the
user guide's pip line installs (ansible-core and meta/ee-requirements.txt); the newest minor is
.venv's own. The emulator and pytest run from .venv; only ansible-playbook comes from the venv
under test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import BIN, ROOT, SCENARIOS, problem_ids
from packaging.specifiers import SpecifierSet
from packaging.version import Version

MATRIX = ROOT / ".venv-matrix"
#: The newest ansible-core minor that runs on Python 3.11 (2.20 needs 3.12).
NEWEST_FOR_PYTHON_311 = Version("2.19")
#: One host per remediation role, and one that needs nothing.
HOSTS = {"cm-not-running": "cm_service", "cookies-blocked-by-default": "third_party_cookies",
         "intranet-logon-not-automatic": "intranet_zone", "healthy-cm1-ia": None}
RUNTIME_FIELDS = ("listens", "pid")


def _core_version(bin_dir: Path) -> Version:
    done = subprocess.run([str(bin_dir / "python"), "-c", "import ansible.release; print(ansible.release.__version__)"],
                          capture_output=True, text=True, check=True)
    return Version(done.stdout.strip())


def _venvs() -> dict[str, Path]:
    found = {".venv": BIN}
    if MATRIX.is_dir():
        found.update({p.name: p / "bin" for p in sorted(MATRIX.iterdir()) if (p / "bin" / "ansible-playbook").exists()})
    return found


VENVS = _venvs()


def _declared_minors() -> list[str]:
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    spec = SpecifierSet(runtime["requires_ansible"])
    minors = [f"2.{n}" for n in range(10, 30)]
    return [m for m in minors if Version(f"{m}.0") in spec and Version(m) <= NEWEST_FOR_PYTHON_311]


def test_every_declared_minor_has_a_venv() -> None:
    """What meta/runtime.yml declares is what runs below: no declared minor without a run."""
    tested = sorted({f"{v.major}.{v.minor}" for v in map(_core_version, VENVS.values())}, key=Version)
    assert tested == _declared_minors(), "make matrix-install makes the venvs (MATRIX_CORES in the Makefile)"
    assert Version(tested[0]) == min(Version(f"{m}.0") for m in _declared_minors())


def _run(bin_dir: Path, playbook: str, inventory: Path, report_dir: Path, *args: str) -> tuple[int, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_CALLBACKS_ENABLED="nhs_cm.remediation.progress",  # the shipped callback loads under each
               ANSIBLE_CALLBACK_RESULT_FORMAT="json",  # one line per list item, never wrapped
               PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([str(bin_dir / "ansible-playbook"), playbook, "-i", str(inventory),
                           "-e", f"nhs_cm_report_dir={report_dir}", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def _configuration(state: dict[str, Any]) -> dict[str, Any]:
    return {host["name"]: {"registry": host["registry"],
                           "services": [{k: v for k, v in service.items() if k not in RUNTIME_FIELDS}
                                        for service in host["services"]]}
            for host in state["hosts"]}


def _report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())


@pytest.mark.parametrize("venv", list(VENVS))
def test_audit_check_remediate_rollback(venv: str, estate, tmp_path: Path) -> None:
    bin_dir = VENVS[venv]
    version = _core_version(bin_dir)
    running = estate([SCENARIOS / f"{name}.yml" for name in HOSTS])
    before = running.get("/state")

    rc, out = _run(bin_dir, "playbooks/audit.yml", running.inventory, tmp_path / "audit")
    assert rc == 0, f"ansible-core {version}\n{out}"
    audit = _report(tmp_path / "audit")
    for name, scenario in ((n, yaml.safe_load((SCENARIOS / f"{n}.yml").read_text())) for n in HOSTS):
        assert problem_ids(audit["hosts"][name]) == sorted(scenario["expect"][name]), f"ansible-core {version}: {name}"

    rc, out = _run(bin_dir, "playbooks/remediate.yml", running.inventory, tmp_path / "check", "--check", "--diff")
    assert rc == 0, f"ansible-core {version}\n{out}"
    assert running.get("/state") == before, f"ansible-core {version}: check mode wrote"
    assert re.search(r"^\+.*CookiesAllowedForUrls", out, re.MULTILINE), out  # the diff of the cookies fix
    assert re.search(r"^\+.*NHS Credential Management started", out, re.MULTILINE), out
    assert "a role would fix: cm_service: CM_NOT_RUNNING" in out, out
    assert "Check mode: nothing was written and no backup was taken" in out, out

    rc, out = _run(bin_dir, "playbooks/remediate.yml", running.inventory, tmp_path / "fix", "--diff")
    assert rc == 0, f"ansible-core {version}\n{out}"
    fixed = _report(tmp_path / "fix")
    for name in HOSTS:
        assert problem_ids(fixed["hosts"][name]) == [], f"ansible-core {version}: {name} still has findings"
    changed = {name for name, entry in fixed["hosts"].items() if entry.get("backups")}
    assert changed == {name for name, role in HOSTS.items() if role}
    for name in changed:  # the backup ids are on the console, as the summary's last lines
        assert f"  {name}: {', '.join(fixed['hosts'][name]['backups'])}" in out, out

    rc, out = _run(bin_dir, "playbooks/rollback.yml", running.inventory, tmp_path / "rollback",
                   "-e", "backup_id=latest")
    assert rc == 0, f"ansible-core {version}\n{out}"
    assert _configuration(running.get("/state")) == _configuration(before), f"ansible-core {version}: not restored"
    for name in changed:
        assert f"{name}: restored backup {fixed['hosts'][name]['backups'][-1]} (saved " in out, out
    assert "No backup to restore on: healthy-cm1-ia" in out, out
