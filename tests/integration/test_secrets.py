"""Secrets: a sentinel password in the inventory appears in no output, log, report or file the
collection writes (on the controller or on the host), at default verbosity and at -vvv."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import SCENARIOS, run_playbook

HOSTS = ["cm-not-running", "port-service-stopped", "healthy-cm4-scc"]

FIX = """
- name: Start CM and its services
  hosts: windows
  gather_facts: false
  roles:
    - role: nhs_cm.remediation.cm_service
"""


def sentinel_scenario(path: Path, password: str) -> Path:
    """The library hosts above, each with the sentinel as its WinRM password."""
    hosts: list[dict[str, Any]] = []
    for name in HOSTS:
        doc = yaml.safe_load((SCENARIOS / f"{name}.yml").read_text())
        for host in doc["hosts"]:
            host["winrm"] = {"auth": ["basic", "ntlm"], "users": {"ansible": password}}
            hosts.append(host)
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


def files_containing(root: Path, needle: str) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes())


@pytest.mark.parametrize("verbosity", [[], ["-vvv"]], ids=["default", "vvv"])
def test_the_password_is_never_written_anywhere(estate, tmp_path: Path, verbosity: list[str]) -> None:
    password = f"S3ntinel-{secrets.token_hex(8)}"
    running = estate([sentinel_scenario(tmp_path / "sentinel.yml", password)])
    assert password in running.inventory.read_text()  # the test means something: it is in the inventory
    log = tmp_path / "ansible.log"
    reports = tmp_path / "reports"
    fix = tmp_path / "fix.yml"
    fix.write_text(FIX)
    env = {"ANSIBLE_LOG_PATH": str(log)}

    audit = run_playbook("playbooks/audit.yml", running.inventory, reports / "audit", *verbosity, env=env)
    assert audit.rc == 0, audit.output
    assert audit.report is not None and set(audit.report["hosts"]) == set(HOSTS)
    remedy = run_playbook(str(fix), running.inventory, reports / "fix", "--diff", *verbosity, env=env)
    assert remedy.rc == 0, remedy.output
    rollback = run_playbook("playbooks/rollback.yml", running.inventory, reports / "rollback",
                            "-e", "backup_id=latest", *verbosity, env=env)
    assert rollback.rc == 0, rollback.output

    assert password not in audit.output
    assert password not in remedy.output
    assert password not in rollback.output
    assert log.stat().st_size > 0
    assert password not in log.read_text()
    written = sorted(p.name for p in (reports / "audit").iterdir())
    assert {"report.json", "findings.csv", "junit.xml", "report.html"} <= set(written)
    assert files_containing(reports, password) == []
    # Everything the collection can write on a host (registry, services, processes, files, the
    # backups it saves); the host's own account list is the emulator's, not the collection's.
    written_on_hosts = [{k: v for k, v in host.items() if k != "winrm"} for host in running.get("/state")["hosts"]]
    assert all(host["backups"] for host in written_on_hosts if host["name"] != "healthy-cm4-scc")
    assert password not in str(written_on_hosts)
