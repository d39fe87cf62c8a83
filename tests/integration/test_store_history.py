"""The results store through the playbooks, on SQLite (the default) and on a real PostgreSQL.

Three audits with a remediation and a rollback (a re-broken host) between them show the trend,
the hosts fixed since the last run and a regression in report.json; the estate report and the
history module read the same from the store. Every test runs on both backends.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, SCENARIOS, PlaybookRun, problem_ids, run_playbook

A, B, C, D = "port-service-stopped", "smartcard-service-stopped", "healthy-cm4-scc", "cm-not-installed"
ESTATE = [SCENARIOS / f"{name}.yml" for name in (A, B, C, D)]


def collection_module(name: str) -> Any:
    if str(ROOT / ".collections") not in sys.path:
        sys.path.insert(0, str(ROOT / ".collections"))
    return importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.plugin_utils.{name}")


@dataclass
class Backend:
    """A store for one test: its URL (no password), the password in PGPASSWORD, how to open it here."""

    kind: str
    url: str
    password: str | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password} if self.password else {}

    def args(self) -> list[str]:
        return ["-e", f"nhs_cm_store={self.url}"]

    def open(self) -> Any:
        return collection_module("_store").open_store(self.url, self.password)

    def run(self, playbook: str, inventory: Path, report_dir: Path, *args: str) -> PlaybookRun:
        return run_playbook(playbook, inventory, report_dir, *self.args(), *args, env=self.env)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "store" / "history.sqlite"))
        return
    server = request.getfixturevalue("postgresql")
    yield Backend("postgresql", server.url(server.new_database()), server.password)


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_three_audits_show_trend_fixed_hosts_and_a_regression(estate, backend: Backend, tmp_path: Path) -> None:
    running = estate(ESTATE)
    inv = running.inventory

    first = backend.run("playbooks/audit.yml", inv, tmp_path / "audit-1")
    assert first.rc == 0, first.output
    assert first.report is not None
    assert [p["per_fault"] for p in first.report["trend"]] == [{"1": 2, "3": 1}]
    assert first.report["hosts"][A]["since_last_run"] == {"new": [], "fixed": [], "last_run": None}

    fix = backend.run("playbooks/remediate.yml", inv, tmp_path / "fix", "-e", '{"nhs_cm_fixes": ["cm_service"]}',
                      "--limit", f"{A},{B}")
    assert fix.rc == 0, fix.output
    assert fix.report is not None
    # The remediation's report: fixed since the host's last result (the first audit).
    assert fix.report["hosts"][A]["since_last_run"]["fixed"] == ["PORT_SERVICE_STOPPED"]
    assert fix.report["hosts"][B]["since_last_run"]["fixed"] == ["SMARTCARD_SERVICE_STOPPED"]
    assert fix.report["hosts"][A]["backups"]

    second = backend.run("playbooks/audit.yml", inv, tmp_path / "audit-2")
    assert second.rc == 0, second.output
    assert second.report is not None
    hosts = second.report["hosts"]
    # The next audit compares with the last audit: the remediation in between shows as fixed.
    assert hosts[A]["since_last_run"]["fixed"] == ["PORT_SERVICE_STOPPED"]
    assert hosts[A]["since_last_run"]["last_run"] == first.report["trend"][0]["time"]
    assert hosts[D]["since_last_run"] == {"new": [], "fixed": [], "last_run": first.report["trend"][0]["time"]}
    assert all(entry["regressed"] == [] for entry in hosts.values())
    assert [(p["playbook"], p["per_fault"]) for p in second.report["trend"]] == [
        ("audit", {"1": 2, "3": 1}), ("remediate", {}), ("audit", {"1": 1})]

    # Re-broken: the rollback puts the stopped Port Service back.
    undo = backend.run("playbooks/rollback.yml", inv, tmp_path / "undo", "-e", "backup_id=latest", "--limit", A)
    assert undo.rc == 0, undo.output

    third = backend.run("playbooks/audit.yml", inv, tmp_path / "audit-3")
    assert third.rc == 0, third.output
    assert third.report is not None
    broken = third.report["hosts"][A]
    assert problem_ids(broken) == ["PORT_SERVICE_STOPPED"]
    assert broken["since_last_run"]["new"] == ["PORT_SERVICE_STOPPED"]
    fix_time = fix.report["trend"][-1]["time"]
    assert broken["regressed"] == [{"id": "PORT_SERVICE_STOPPED", "fixed": fix_time, "fixed_by": "remediation",
                                    "back": third.report["trend"][-1]["time"]}]
    assert third.report["hosts"][B]["regressed"] == [] and third.report["hosts"][D]["regressed"] == []
    trend = third.report["trend"]
    assert [p["playbook"] for p in trend] == ["audit", "remediate", "audit", "audit"]
    assert [p["per_fault"].get("1", 0) for p in trend] == [2, 0, 1, 2]
    assert [p["per_fault"].get("3", 0) for p in trend] == [1, 0, 0, 0]
    assert [p["per_finding"].get("PORT_SERVICE_STOPPED", 0) for p in trend] == [1, 0, 0, 1]
    assert [p["hosts"] for p in trend] == [4, 2, 4, 4]
    assert [_time(p["time"]) for p in trend] == sorted(_time(p["time"]) for p in trend)
    assert "Since the last run: 1 host(s) with new findings, 0 with findings fixed, 1 regressed" in third.output

    # What the store holds: 5 runs (the rollback too), and the rollback of host A.
    store = backend.open()
    try:
        runs = store.runs()
        assert [r["playbook"] for r in runs] == ["audit", "remediate", "audit", "rollback", "audit"]
        assert [r["hosts"] for r in runs] == [4, 2, 4, 0, 4]
        assert [(r["host"], r["status"]) for r in store.rollbacks()] == [(A, "ok")]
        assert store.rollbacks()[0]["backup_id"] == fix.report["hosts"][A]["backups"][0]
        timeline = store.timeline(A, dt.datetime.now(dt.UTC))
        assert [(t["playbook"], t["problems"], t["changed"]) for t in timeline] == [
            ("audit", ["PORT_SERVICE_STOPPED"], False), ("remediate", [], True), ("audit", [], False),
            ("audit", ["PORT_SERVICE_STOPPED"], False)]
    finally:
        store.close()

    # The estate report from the store for the latest run equals the third audit's report.
    again = backend.run("playbooks/estate_report.yml", inv, tmp_path / "estate")
    assert again.rc == 0, again.output
    assert again.report is not None
    assert again.report == third.report | {"generated": again.report["generated"]}

    # The history module answers the same as data.
    asked = tmp_path / "ask.yml"
    asked.write_text(ASK)
    answer = backend.run(str(asked), inv, tmp_path / "ask", "-e", f"answer_file={tmp_path / 'answer.json'}")
    assert answer.rc == 0, answer.output
    result = json.loads((tmp_path / "answer.json").read_text())
    assert result["regressed"] == {A: broken["regressed"]}
    assert result["count"] == 1


ASK = """
- name: Ask the results store
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Hosts regressed in the last 7 days
      nhs_cm.remediation.history:
        store: "{{ nhs_cm_store }}"
        query: regressed
        days: 7
      register: regressed
    - name: Keep the answer
      ansible.builtin.copy:
        content: "{{ {'regressed': regressed.hosts, 'count': regressed.count} | to_json }}"
        dest: "{{ answer_file }}"
        mode: "0600"
"""
