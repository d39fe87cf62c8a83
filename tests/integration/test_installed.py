"""The collection as a user of the release tarball has it (docs/user-guide.md, Quick start): built,
installed with `ansible-galaxy collection install` into ~/.ansible/collections, the sample
ansible.cfg copied into a folder outside the checkout, and the playbooks run by their FQCN from
there. Nothing of the checkout is used: no ANSIBLE_CONFIG, no ANSIBLE_COLLECTIONS_PATH."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from harness import BIN, ROOT, SCENARIOS

ESTATE = [SCENARIOS / name for name in ("healthy-cm4-scc.yml", "cm-not-running.yml", "cookies-blocked-by-default.yml")]
GUIDE = ROOT / "docs" / "user-guide.md"


def _quick_start() -> list[str]:
    text = GUIDE.read_text()
    section = text[text.index("### Quick start"):text.index("### From git")]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the quick start has no bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _requirements(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def test_the_quick_starts_pip_line_is_the_collections_requirements() -> None:
    (pip,) = [line for line in _quick_start() if line.startswith("pip install")]
    wanted = shlex.split(pip)[2:]
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    assert wanted == [f"ansible-core{runtime}", *_requirements(ROOT / "meta" / "ee-requirements.txt")]
    assert all(re.search(r"<", requirement) for requirement in wanted), "every dependency bounded"
    assert "[kerberos]" not in pip  # optional, with the system packages it needs named after it


def test_the_quick_start_runs_the_installed_tarball_outside_the_checkout(
        estate, tmp_path: Path, collection_tarball: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _quick_start()
    assert any(s.startswith("ansible-galaxy collection install nhs_cm-remediation-") for s in steps)
    assert "ansible-playbook nhs_cm.remediation.audit -i inventory/" in steps
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        monkeypatch.delenv(name, raising=False)
    home, work = tmp_path / "home", tmp_path / "work"
    (work / "inventory").mkdir(parents=True)
    env = dict(os.environ, HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", ANSIBLE_NOCOLOR="1")

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)

    done = run("ansible-galaxy", "collection", "install", str(collection_tarball))
    assert done.returncode == 0, done.stdout + done.stderr
    installed = home / ".ansible" / "collections" / "ansible_collections" / "nhs_cm" / "remediation"
    shutil.copy(installed / "docs" / "examples" / "ansible.cfg", work / "ansible.cfg")
    running = estate(ESTATE)
    shutil.copy(running.inventory, work / "inventory" / "desktops.yml")

    audit = run("ansible-playbook", "nhs_cm.remediation.audit", "-i", "inventory/")
    output = audit.stdout + audit.stderr
    assert audit.returncode == 0, output
    assert "[WARNING]" not in output and "[DEPRECATION WARNING]" not in output, output
    assert str(ROOT) not in output  # nothing came from the checkout
    report = json.loads((work / "reports" / "report.json").read_text())
    assert sorted(report["hosts"]) == sorted(path.stem for path in ESTATE)
    summary = output[output.index("TASK [Show the audit summary]"):]
    assert "\\n" not in summary.split("TASK [", 2)[1]
    assert "- 'healthy-cm4-scc: no e-RS fault found'" in summary or "- healthy-cm4-scc: no e-RS fault found" in summary

    check = run("ansible-playbook", "nhs_cm.remediation.remediate", "-i", "inventory/", "--check", "--diff")
    output = check.stdout + check.stderr
    assert check.returncode == 0, output
    assert "a role would fix: cm_service: CM_NOT_RUNNING" in output
    assert "Check mode: nothing was written and no backup was taken" in output


def test_the_docsite_guide_installs_the_same_way() -> None:
    """docs/docsite/rst/guide.rst (the docsite's quick start) runs the user guide's commands."""
    rst = (ROOT / "docs" / "docsite" / "rst" / "guide.rst").read_text()
    block = rst.split(".. code-block:: bash", 1)[1].split("\n\n", 2)[1]
    commands = [line.strip().split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == _quick_start()
