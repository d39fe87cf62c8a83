"""What the console shows a person, as Ansible prints it outside the checkout: the default
callback with its default JSON result format, and with `callback_result_format = yaml`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from harness import SCENARIOS, run_playbook

RAW_TEXT = ("HTTPConnectionPool", "Errno", "urllib3", "Max retries", "runner")


def _estate_file(tmp_path: Path) -> Path:
    """Two desktops that answer (one with a fault), one that refuses, one that rejects the password."""
    hosts = []
    for source, name, fail in (("healthy-cm4-scc", "good-01", None), ("cm-not-running", "faulty-01", None),
                               ("healthy-cm4-scc", "refuses-01", {"kind": "refuse", "after_requests": 0,
                                                                  "times": 1000}),
                               ("healthy-cm4-scc", "badpass-01", {"kind": "auth", "after_requests": 0,
                                                                  "times": 1000})):
        host = dict(yaml.safe_load((SCENARIOS / f"{source}.yml").read_text())["hosts"][0], name=name)
        if fail:
            host["transport"] = {"fail": fail}
        hosts.append(host)
    path = tmp_path / "estate.yml"
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


def _task_output(output: str, task: str) -> str:
    """What Ansible printed under one task's banner."""
    start = output.index(f"TASK [{task}]")
    end = output.find("\nTASK [", start + 1)
    following = output.find("\nPLAY ", start + 1)
    ends = [e for e in (end, following) if e > 0]
    return output[start:min(ends) if ends else len(output)]


@pytest.mark.parametrize("result_format", ["json", "yaml"])
def test_audit_summary_reads_as_lines_and_each_failure_reads_once(estate, tmp_path: Path, result_format: str) -> None:
    running = estate([_estate_file(tmp_path)], "--transport", "basic")
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r",
                       env={"ANSIBLE_CALLBACK_RESULT_FORMAT": result_format})
    assert run.rc == 2, run.output
    summary = _task_output(run.output, "Show the audit summary")
    assert "\\n" not in summary  # not one string with escaped new lines
    if result_format == "json":
        lines = json.loads(summary.split("=> ", 1)[1])["msg"]
    else:
        lines = yaml.safe_load(summary.split("=> ", 1)[1])["msg"]
    assert isinstance(lines, list)
    assert "good-01: no e-RS fault found" in lines
    assert any(line.startswith("faulty-01: e-RS fault 1 - CM_NOT_RUNNING") for line in lines)
    for host, reason in (("refuses-01", "connection refused on 5985"), ("badpass-01", "credentials rejected")):
        (line,) = [line for line in lines if line.startswith(f"{host}: ")]
        assert line.startswith(f"{host}: FAILED - ") and line.endswith(f" {reason}"), line
    assert lines[-1].startswith("Report: ")

    for host, reason in (("refuses-01", "connection refused on 5985"), ("badpass-01", "credentials rejected")):
        # Once where it happened (Ansible's own line for the diagnose task), once in the summary;
        # the end of the play names the host without repeating it.
        assert run.output.count(reason) == 2, run.output
        final = _task_output(run.output, "Fail the hosts that could not be audited")
        assert f"{host} could not be audited: the reason is in the summary above" in final
    for raw in RAW_TEXT:
        assert raw not in run.output, raw


def test_a_big_estate_lists_only_the_faulty_hosts_and_counts_the_rest(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / name for name in ("healthy-cm1-ia.yml", "healthy-cm4-scc.yml",
                                                    "healthy-no-user.yml", "cm-not-running.yml")])
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", "-e", "nhs_cm_summary=faulty",
                       env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    assert run.rc == 0, run.output
    lines = json.loads(_task_output(run.output, "Show the audit summary").split("=> ", 1)[1])["msg"]
    assert [line.split(":")[0] for line in lines if re.match(r"^[a-z0-9-]+: ", line)] == ["cm-not-running"]
    assert "3 host(s) with no e-RS fault found are not listed (-e nhs_cm_summary=all lists every host)" in lines
    assert any(line.startswith("Estate: 4 host(s) - 3 with no fault or warning") for line in lines)


def test_check_mode_separates_what_a_role_would_fix_and_rollback_names_hosts_without_backup(
        estate, tmp_path: Path) -> None:
    """third-party-cookies-blocked: Group Policy owns the value, so no role fixes it here."""
    running = estate([SCENARIOS / name for name in ("cookies-blocked-by-default.yml",
                                                    "third-party-cookies-blocked.yml", "healthy-cm1-ia.yml")])
    json_lines = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}  # one line per list item, never wrapped
    check = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "check", "--check",
                         "-e", "nhs_cm_fixes=third_party_cookies", env=json_lines)
    assert check.rc == 0, check.output
    todo = _task_output(check.output, "Say what is still to do on each host")
    assert "a role would fix: third_party_cookies: COOKIES_BLOCKED_BY_DEFAULT (error)" in todo
    assert "fix by hand: THIRD_PARTY_COOKIES_BLOCKED (error)" in todo
    assert "a role would fix: third_party_cookies: THIRD_PARTY_COOKIES_BLOCKED" not in todo
    assert "Check mode: nothing was written and no backup was taken" in check.output

    fix = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "fix",
                       "-e", "nhs_cm_fixes=third_party_cookies", env=json_lines)
    assert fix.rc == 0 and fix.report is not None, fix.output
    (backup,) = fix.report["hosts"]["cookies-blocked-by-default"]["backups"]
    assert f"  cookies-blocked-by-default: {backup}" in _task_output(fix.output, "Show the summary")
    # After the real run the GPO-owned finding is still to do by hand, and nothing says a role would fix it.
    assert "a role would fix" not in fix.output

    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "rb", "-e", "backup_id=latest",
                            env=json_lines)
    assert rollback.rc == 0, rollback.output
    shown = _task_output(rollback.output, "Show what was restored where")
    assert f"cookies-blocked-by-default: restored backup {backup} (saved " in shown
    assert "No backup to restore on: third-party-cookies-blocked, healthy-cm1-ia" in shown
