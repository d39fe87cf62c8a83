"""This repository run as AWX runs a project: a clean checkout (no .collections, no .venv) as
ansible-runner's project folder, its own ansible.cfg, and the collection installed from the built
tarball into a collections path of its own, as an execution environment has it (there it is
/usr/share/ansible/collections; here the runner's ~/.ansible/collections, also a default path).
Nothing tells Ansible where the collection is: ANSIBLE_CONFIG and ANSIBLE_COLLECTIONS_PATH, which
the Makefile sets for the checkout's own runs, are removed."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import yaml
from harness import BIN, ROOT, SCENARIOS

ESTATE = [SCENARIOS / name for name in ("healthy-cm1-ia.yml", "cm-not-running.yml", "cookies-blocked-by-default.yml")]
AWX_REPORTS = "/var/lib/nhs_cm/reports"
JOB_ID = 4711


def clean_checkout(dest: Path) -> Path:
    """The files git tracks, as a project sync lays them out (read from the work tree)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    assert not (dest / ".collections").exists()
    return dest


def _template_extra_vars(name: str, reports: Path) -> dict[str, Any]:
    """A job template's extra_vars as AWX passes them (Jinja kept as text), under a test folder."""
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!unsafe", lambda load, node: load.construct_scalar(node))
    templates = yaml.load((ROOT / "awx" / "controller_templates.yml").read_text(), Loader=loader)
    (template,) = [t for t in templates["controller_templates"] if t["name"] == name]
    text = json.dumps(template["extra_vars"]).replace(AWX_REPORTS, str(reports))
    return {**json.loads(text), "awx_job_id": JOB_ID}


@pytest.fixture
def no_checkout_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        monkeypatch.delenv(name, raising=False)


def test_the_audit_job_runs_from_a_clean_project_with_the_installed_collection(
        estate, tmp_path: Path, collection_tarball: Path, no_checkout_settings: None) -> None:
    running = estate(ESTATE)
    project = clean_checkout(tmp_path / "project")
    home = tmp_path / "home"
    installed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-p",
                                str(home / ".ansible" / "collections"), str(collection_tarball)],
                               capture_output=True, text=True, timeout=300, env=dict(os.environ, HOME=str(home)))
    assert installed.returncode == 0, installed.stdout + installed.stderr

    reports = tmp_path / "reports"
    (tmp_path / "runner").mkdir()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    result = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"), project_dir=str(project), playbook="playbooks/audit.yml",
        inventory=str(running.inventory), cmdline="--check", quiet=True,  # the Audit template's job_type: check
        envvars={"HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1"},
        extravars=_template_extra_vars("NHS CM - Audit", reports))
    output = result.stdout.read()
    assert "couldn't resolve module/action" not in output
    assert result.status == "successful" and result.rc == 0, output

    # The template's Jinja was rendered when the job ran: today's date (UTC) and AWX's job id.
    days = {started, datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")}  # a run across midnight
    (written,) = [reports / day / f"job-{JOB_ID}" / "report.json" for day in days
                  if (reports / day / f"job-{JOB_ID}" / "report.json").exists()]
    report = json.loads(written.read_text())
    assert sorted(report["hosts"]) == sorted(path.stem for path in ESTATE)
    assert report["hosts"]["cm-not-running"]["faults"] == [1]
    assert any(e["event"] == "runner_on_ok" and e["event_data"].get("resolved_action") == "nhs_cm.remediation.diagnose"
               for e in result.events)


def test_the_projects_requirements_install_the_collection_from_the_repository(
        tmp_path: Path, no_checkout_settings: None) -> None:
    """collections/requirements.yml, as AWX's project sync runs it, with the URL pointed at this
    checkout's git repository and the version at its HEAD: ansible-galaxy builds the collection
    from the repository (galaxy.yml at its root) and installs its playbooks and plugins."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    requirements = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())
    (entry,) = requirements["collections"]
    assert entry["type"] == "git" and entry["name"].endswith(".git")
    entry.update(name=f"git+file://{ROOT}", version=head.stdout.strip())
    local = tmp_path / "requirements.yml"
    local.write_text(yaml.safe_dump(requirements))
    target = tmp_path / "requirements_collections"
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-r", str(local), "-p", str(target)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, HOME=str(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    installed = target / "ansible_collections" / "nhs_cm" / "remediation"
    assert (installed / "playbooks" / "audit.yml").is_file()
    assert (installed / "plugins" / "action" / "diagnose.py").is_file()
    assert not (installed / "emulator").exists()  # built with galaxy.yml's build_ignore, as the tarball is
