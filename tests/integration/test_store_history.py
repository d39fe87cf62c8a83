"""The results store through the playbooks, on SQLite (the default) and on a real PostgreSQL.

Three audits with a remediation and a rollback (a re-broken host) between them show the trend,
the hosts fixed since the last run and a regression in report.json; the estate report and the
history module read the same from the store. Every test runs on both backends.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, SCENARIOS, problem_ids, run_playbook
from storetest import Backend, collection_module
from test_reports_html import browse
from test_reports_html import chromium as chromium  # the fixture, asked for by name below

A, B, C, D = "port-service-stopped", "smartcard-service-stopped", "healthy-cm4-scc", "cm-not-installed"
ESTATE = [SCENARIOS / f"{name}.yml" for name in (A, B, C, D)]


without_times = collection_module("_report.merge").without_times
ARTIFACTS = ROOT / "tests" / "output" / "report-html"


class HistoryDom(HTMLParser):
    """What report.html shows of the history: trend lines, the three tables' rows, each host's timeline."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.lines: dict[str, list[int]] = {}
        self.tables: dict[str, list[tuple[str, str]]] = {}
        self.timelines: dict[str, int] = {}
        self._table = ""
        self._host = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs_list)
        if tag == "g" and attrs.get("class") == "trend-line":
            self.lines[attrs["data-fault"] or ""] = [int(n) for n in (attrs["data-counts"] or "").split(",")]
        elif tag == "table" and attrs.get("class") == "history":
            self._table = attrs["id"] or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "data-host" in attrs:
            self.tables[self._table].append((attrs["data-host"] or "", attrs["data-id"] or ""))
        elif tag == "section" and "data-host" in attrs:
            self._host = attrs["data-host"] or ""
        elif tag == "div" and attrs.get("class") == "timeline":
            self.timelines[self._host] = int(attrs["data-points"] or 0)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = ""


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_three_audits_show_trend_fixed_hosts_and_a_regression(estate, backend: Backend, tmp_path: Path,
                                                              request: pytest.FixtureRequest) -> None:
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

    # report.html, rendered in headless Chromium: the trend chart, the tables and each host's timeline.
    chromium = request.getfixturevalue("chromium")
    page = HistoryDom(browse(chromium, tmp_path / "audit-3" / "report.html", "--dump-dom"))
    assert page.lines == {"1": [2, 0, 1, 2], "3": [1, 0, 0, 0]}
    assert page.tables == {"new-since-last-run": [(A, "PORT_SERVICE_STOPPED")], "fixed-since-last-run": [],
                           "regressions": [(A, "PORT_SERVICE_STOPPED")]}
    assert page.timelines == {A: 4, B: 4, C: 3, D: 3}  # A and B also have the remediation's verify
    fixed_page = HistoryDom(browse(chromium, tmp_path / "audit-2" / "report.html", "--dump-dom"))
    assert fixed_page.tables["fixed-since-last-run"] == [(A, "PORT_SERVICE_STOPPED"), (B, "SMARTCARD_SERVICE_STOPPED")]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"history-{backend.kind}.png"
    shot.unlink(missing_ok=True)
    browse(chromium, tmp_path / "audit-3" / "report.html", "--window-size=1400,1800", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000

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


def _down(backend: Backend, tmp_path: Path) -> str:
    """A store of the same kind that cannot be reached."""
    if backend.kind == "sqlite":
        (tmp_path / "not-a-folder").write_text("")
        return str(tmp_path / "not-a-folder" / "history.sqlite")
    import pgserver

    return f"postgresql://postgres@127.0.0.1:{pgserver.free_port()}/nhs_cm"


def _failure_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "Results not recorded:" in line and line.startswith("[ERROR]")]
    assert len(lines) == 1, output
    return lines[0].split("Action failed: ", 1)[1]


def test_store_down_keeps_the_run_in_a_spool_file_recorded_next_time(estate, backend: Backend,
                                                                     tmp_path: Path) -> None:
    running = estate(ESTATE[:2])
    report_dir = tmp_path / "reports"
    down = backend.run("playbooks/audit.yml", running.inventory, report_dir,
                       "-e", f"nhs_cm_store={_down(backend, tmp_path)}")
    assert down.rc == 2, down.output
    assert down.report is not None and sorted(down.report["hosts"]) == sorted([A, B]) and "trend" not in down.report
    spooled = sorted(report_dir.glob("nhs_cm-store-spool-*.json"))
    assert len(spooled) == 1
    line = _failure_line(down.output)
    assert line.startswith("Results not recorded: results store ")
    assert line.endswith(f"; the report files are written and the results are kept in {spooled[0]} and will be "
                         "recorded by the next run that can reach the store")
    assert (report_dir / "report.html").exists() and (report_dir / "junit.xml").exists()
    spooled_run = json.loads(spooled[0].read_text())["run"]

    again = backend.run("playbooks/audit.yml", running.inventory, report_dir)
    assert again.rc == 0, again.output
    assert again.report is not None
    assert list(report_dir.glob("nhs_cm-store-spool-*.json")) == []
    assert [p["hosts"] for p in again.report["trend"]] == [2, 2]
    assert again.report["trend"][0]["time"] == spooled_run["started"][:19] + "+00:00"
    assert again.report["hosts"][A]["since_last_run"]["last_run"] == again.report["trend"][0]["time"]
    store = backend.open()
    try:
        assert store.runs()[0]["run_id"] == spooled_run["run_id"]
    finally:
        store.close()


def test_bad_url_and_newer_schema_end_the_play_with_one_clear_line(estate, backend: Backend,
                                                                    tmp_path: Path) -> None:
    running = estate(ESTATE[:1])
    bad = backend.run("playbooks/audit.yml", running.inventory, tmp_path / "bad",
                      "-e", "nhs_cm_store=mysql://nhs:Sup3r-s3cret@db.example.nhs.uk/nhs_cm")
    assert bad.rc == 2 and bad.report is not None
    assert _failure_line(bad.output).startswith(
        "Results not recorded: store 'mysql://nhs:***@db.example.nhs.uk/nhs_cm' is not a store this collection "
        "can use: give a SQLite file path")
    leaked = [p for p in (tmp_path / "bad").iterdir() if "Sup3r-s3cret" in p.read_text()]
    assert "Sup3r-s3cret" not in bad.output and leaked == []

    store = backend.open()
    try:
        with store.engine.begin() as conn:
            conn.execute(store.t["version"].update().values(version=7))
    finally:
        store.close()
    newer = backend.run("playbooks/audit.yml", running.inventory, tmp_path / "newer")
    assert newer.rc == 2 and newer.report is not None
    shown = collection_module("_history.records").parse_store_url(backend.url).shown
    assert _failure_line(newer.output).startswith(
        f"Results not recorded: results store {shown} "
        "has schema version 7, newer than the 1 this nhs_cm.remediation knows: upgrade the collection")


def test_wrong_password_is_one_line_and_never_shown(estate, postgresql: Any, tmp_path: Path) -> None:
    running = estate(ESTATE[:1])
    url = postgresql.url(postgresql.new_database())
    wrong = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", "-e", f"nhs_cm_store={url}",
                         "-e", "nhs_cm_store_password=Wr0ng-s3cret")
    assert wrong.rc == 2 and wrong.report is not None
    line = _failure_line(wrong.output)
    assert line.startswith(f"Results not recorded: results store {url}: cannot connect: ")
    assert 'password authentication failed for user "postgres"' in line
    assert "Wr0ng-s3cret" not in wrong.output
    assert all("Wr0ng-s3cret" not in p.read_text() for p in (tmp_path / "r").iterdir())
    # The right password, from the variable (no_log): recorded, and the spooled run with it.
    right = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", "-e", f"nhs_cm_store={url}",
                         "-e", f"nhs_cm_store_password={postgresql.password}")
    assert right.rc == 0, right.output
    assert right.report is not None and len(right.report["trend"]) == 2
    assert postgresql.password not in right.output


def awx_slices(hosts: list[str], count: int) -> list[list[str]]:
    return [hosts[index::count] for index in range(count)]


def test_four_awx_slices_record_into_one_store_and_make_one_estate_report(estate, backend: Backend,
                                                                          tmp_path: Path) -> None:
    names = ["port-service-stopped", "smartcard-service-stopped", "healthy-cm4-scc", "cm-not-installed",
             "cm-multiple-versions", "port-service-not-automatic", "healthy-rds", "dotnet48-missing"]
    running = estate([SCENARIOS / f"{name}.yml" for name in names])
    slices = awx_slices(sorted(names), 4)
    # AWX gives each slice its own job id and the sliced job's id as the workflow job id; each
    # slice runs in its own container on any execution node, with its own report folder.
    with ThreadPoolExecutor(max_workers=4) as pool:
        parts = list(pool.map(lambda n: backend.run(
            "playbooks/audit.yml", running.inventory, tmp_path / f"job-{501 + n}", "--limit", ",".join(slices[n]),
            "-e", f"awx_job_id={501 + n}", "-e", "awx_workflow_job_id=500"), range(4)))
    for hosts, part in zip(slices, parts, strict=True):
        assert part.rc == 0, part.output
        assert part.report is not None and sorted(part.report["hosts"]) == sorted(hosts)

    whole = backend.run("playbooks/estate_report.yml", running.inventory, tmp_path / "estate",
                        "-e", "nhs_cm_estate_awx_job=500")
    assert whole.rc == 0, whole.output
    assert whole.report is not None
    assert sorted(whole.report["hosts"]) == sorted(names)
    assert [(p["run"], p["hosts"]) for p in whole.report["trend"]] == [("audit:awx-workflow-500", 8)]
    merged = {name: entry for part in parts for name, entry in (part.report or {})["hosts"].items()}
    assert without_times(whole.report) == without_times({**whole.report, "hosts": merged})
    assert whole.report["estate"] == collection_module("_report.build").estate_summary(merged)
    assert "From the store: AWX job 500 (4 run(s))" in whole.output
    # The last day: per host its newest result of the runs started in it - the same hosts.
    window = backend.run("playbooks/estate_report.yml", running.inventory, tmp_path / "day",
                         "-e", "nhs_cm_estate_days=1")
    assert window.rc == 0 and window.report is not None
    assert without_times(window.report) == without_times(whole.report)
    # One slice alone, by its own job id.
    one = backend.run("playbooks/estate_report.yml", running.inventory, tmp_path / "one",
                      "-e", "nhs_cm_estate_awx_job=502")
    assert one.rc == 0 and one.report is not None and sorted(one.report["hosts"]) == sorted(slices[1])
    # Nothing matches: one clear line.
    none = backend.run("playbooks/estate_report.yml", running.inventory, tmp_path / "none",
                       "-e", "nhs_cm_estate_awx_job=999")
    assert none.rc == 2
    assert "nhs_cm.remediation.history: results store " in none.output
    assert ": no recorded run matches AWX job 999" in none.output


def test_retention_playbook_prunes_runs_older_than_keep_days(backend: Backend, tmp_path: Path) -> None:
    history = collection_module("_history.records")
    now = dt.datetime.now(dt.UTC)
    store = backend.open()
    try:
        for age in (200, 100, 95, 10, 1):
            started = now - dt.timedelta(days=age)
            run = history.run_info({"id": f"age-{age}", "started": started.isoformat()}, {}, started, "x")
            store.record(run, {"pc-1": {"status": "ok", "audited": started.isoformat(), "findings": []}})
    finally:
        store.close()
    inventory = tmp_path / "empty.yml"
    inventory.write_text("all: {}\n")
    check = backend.run("playbooks/store_retention.yml", inventory, tmp_path / "r", "--check")
    assert check.rc == 0, check.output
    assert "Would prune 3 run(s)" in check.output
    pruned = backend.run("playbooks/store_retention.yml", inventory, tmp_path / "r", "-e", "nhs_cm_store_keep_days=50")
    assert pruned.rc == 0, pruned.output
    assert "Pruned 3 run(s)" in pruned.output and "(3 host result(s))" in pruned.output
    store = backend.open()
    try:
        assert [r["run_id"] for r in store.runs()] == ["age-10", "age-1"]
    finally:
        store.close()
    bad = backend.run("playbooks/store_retention.yml", inventory, tmp_path / "r", "-e", "nhs_cm_store_keep_days=0")
    assert bad.rc == 2 and "nhs_cm.remediation.history: keep_days must be 1 or more, not 0" in bad.output
