"""A play with no hosts fails, saying what to check, instead of exiting 0 with no report: an empty
or broken inventory, a group that does not exist, or a --limit outside the group (issue 17).
No emulator is needed: no host is ever contacted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from harness import run_playbook

PLAYBOOKS = {"playbooks/audit.yml": "audit", "playbooks/remediate.yml": "remediate",
             "playbooks/rollback.yml": "roll back"}
CHECK = "check the inventory (-i; a file that does not parse is only a warning above)"


def _inventory(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _others(tmp_path: Path) -> Path:
    """Hosts that are not in the group windows; any attempt to reach them would fail."""
    hosts = {"lin-1": {"ansible_host": "192.0.2.1"}, "lin-2": {"ansible_host": "192.0.2.2"}}
    return _inventory(tmp_path / "others.yml", yaml.safe_dump({"linux": {"hosts": hosts}}))


@pytest.mark.parametrize("playbook", PLAYBOOKS)
@pytest.mark.parametrize("inventory", ["empty", "broken"])
def test_an_empty_or_broken_inventory_fails_saying_what_to_check(
        tmp_path: Path, playbook: str, inventory: str) -> None:
    source = _inventory(tmp_path / f"{inventory}.yml", "" if inventory == "empty" else "windows: [\n")
    run = run_playbook(playbook, source, tmp_path / "reports", "-e", "backup_id=latest")
    assert run.rc == 2, run.output
    assert f"no host in group windows to {PLAYBOOKS[playbook]}: {CHECK}" in run.output
    assert run.report is None and not (tmp_path / "reports").exists()


def test_a_limit_outside_the_group_fails_naming_it(tmp_path: Path) -> None:
    run = run_playbook("playbooks/audit.yml", _others(tmp_path), tmp_path / "reports", "--limit", "lin-2")
    assert run.rc == 2, run.output
    assert f"no host in group windows within --limit lin-2 to audit: {CHECK}" in run.output
    assert "UNREACHABLE" not in run.output and run.report is None


def test_a_pattern_that_matches_nothing_is_named(tmp_path: Path) -> None:
    run = run_playbook("playbooks/remediate.yml", _others(tmp_path), tmp_path / "reports",
                       "-e", "nhs_cm_hosts=linux:&ward_9")
    assert run.rc == 2, run.output
    assert f"no host matches linux:&ward_9 to remediate: {CHECK}" in run.output


def test_an_empty_inventory_with_a_limit_fails_before_any_play(tmp_path: Path) -> None:
    run = run_playbook("playbooks/audit.yml", _inventory(tmp_path / "empty.yml", ""), tmp_path / "reports",
                       "--limit", "pc-1")
    assert run.rc != 0, run.output
    assert f"no host in group windows within --limit pc-1 to audit: {CHECK}" in run.output


def test_a_limit_that_matches_no_host_at_all_is_refused_by_ansible(tmp_path: Path) -> None:
    run = run_playbook("playbooks/rollback.yml", _others(tmp_path), tmp_path / "reports", "--limit", "pc-1",
                       "-e", "backup_id=latest")
    assert run.rc != 0, run.output
    assert "--limit leaves us with no hosts to target" in run.output
