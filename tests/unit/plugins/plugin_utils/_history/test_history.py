"""The results store's pure side: URLs, what is new, fixed or regressed, the trend, selections, spool files."""

from __future__ import annotations

import datetime as dt
import json
import typing as t

import pytest
from module_docs import documentation

from ansible_collections.nhs_cm.remediation.plugins.action import history as history_action
from ansible_collections.nhs_cm.remediation.plugins.action import report as report_action
from ansible_collections.nhs_cm.remediation.plugins.modules import history as history_doc
from ansible_collections.nhs_cm.remediation.plugins.modules import report as report_doc
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history import records as h

T = [dt.datetime(2026, 11, day, 2, 0, tzinfo=dt.UTC) for day in range(1, 10)]


@pytest.mark.parametrize(("doc", "spec"), [(history_doc, history_action.ARGUMENT_SPEC),
                                           (report_doc, report_action.ARGUMENT_SPEC)])
def test_the_documentation_matches_the_argument_spec(doc: t.Any, spec: dict[str, t.Any]) -> None:
    options = documentation(doc)["options"]
    assert set(options) == set(spec)
    for name, field in spec.items():
        assert options[name]["type"] == field["type"], name
        assert options[name].get("default") == field.get("default"), name
        assert options[name].get("choices") == field.get("choices"), name
        assert bool(options[name].get("required")) == bool(field.get("required")), name
    assert all(field.get("no_log") for name, field in spec.items() if "password" in name)


def test_store_urls() -> None:
    sqlite = h.parse_store_url("/var/lib/nhs_cm/history.sqlite")
    assert (sqlite.kind, sqlite.path, sqlite.shown) == ("sqlite", "/var/lib/nhs_cm/history.sqlite",
                                                        "/var/lib/nhs_cm/history.sqlite")
    assert h.parse_store_url("sqlite:////srv/h.db").path == "/srv/h.db"
    pg = h.parse_store_url("postgresql://nhs_cm:s3cr%40t@db.example.nhs.uk:5433/nhs_cm?sslmode=require")
    assert pg.kind == "postgresql" and pg.password == "s3cr@t"
    assert pg.url == "postgresql://nhs_cm@db.example.nhs.uk:5433/nhs_cm?sslmode=require" == pg.shown
    assert h.parse_store_url("postgres://u:one@h/db", password="two").password == "two"
    assert h.parse_store_url("postgresql://u@h/db").password is None  # PGPASSWORD then


@pytest.mark.parametrize(("value", "message"), [
    ("", "store must be text: give a SQLite file path"),
    ("mysql://u:pw@h/db", "store 'mysql://u:***@h/db' is not a store this collection can use: give a SQLite"),
    ("sqlite://relative.db", "store 'sqlite://relative.db' names no SQLite file: write sqlite:////absolute/path"),
    ("postgresql://u:pw@h:5432", "store 'postgresql://u:***@h:5432' names no database: end the URL with /<database>"),
    ("postgresql://u:pw@h:99999/db", "store 'postgresql://u:***@h:99999/db' is not a valid URL"),
    ("postgresql:///db", "store 'postgresql:///db' names no server"),
])
def test_bad_store_urls_say_what_is_allowed_without_the_password(value: str, message: str) -> None:
    with pytest.raises(h.StoreError) as failed:
        h.parse_store_url(value)
    assert str(failed.value).startswith(message)
    assert "pw" not in str(failed.value).replace("postgresql", "")


def test_hide_replaces_plain_and_quoted_secrets() -> None:
    assert h.hide("a p@ss b p%40ss c", "p@ss") == "a *** b *** c"
    assert h.mask_url("postgresql://u:x@[::1]:5/d") == "postgresql://u:***@[::1]:5/d"


def _points(*states: tuple[set[str], bool]) -> list[h.Point]:
    return [h.Point(T[i], frozenset(ids), changed) for i, (ids, changed) in enumerate(states)]


def test_regression_is_found_after_a_fix_or_a_healthy_audit() -> None:
    fixed_by_run = _points(({"A", "B"}, False), (set(), True), ({"A"}, False))
    assert h.regressions(fixed_by_run) == [{"id": "A", "fixed": T[1].isoformat(), "fixed_by": "remediation",
                                            "back": T[2].isoformat()}]
    seen_healthy = _points(({"A"}, False), ({"A"}, False), (set(), False), (set(), False), ({"A"}, False),
                           ({"A"}, False))
    assert h.regressions(seen_healthy) == [{"id": "A", "fixed": T[2].isoformat(), "fixed_by": "seen healthy",
                                            "back": T[4].isoformat()}]


@pytest.mark.parametrize("states", [
    [({"A"}, False), ({"A"}, False), ({"A"}, False)],  # never fixed
    [(set(), False), (set(), False), ({"A"}, False)],  # new, not back
    [({"A"}, False)],  # first result
    [({"B"}, False), (set(), True), ({"A"}, False)],  # another id came back
])
def test_no_regression_without_present_then_absent_then_present(states: list[tuple[set[str], bool]]) -> None:
    assert h.regressions(_points(*states)) == []


def test_since_last_run_compares_an_audit_with_the_last_audit() -> None:
    earlier = [h.Point(T[0], frozenset({"A", "B"})), h.Point(T[1], frozenset(), True, "remediate")]
    audit = h.host_history(earlier, ["C"], True, T[2])
    assert audit["since_last_run"] == {"new": ["C"], "fixed": ["A", "B"], "last_run": T[0].isoformat()}
    remediation = h.host_history(earlier[:1], [], True, T[1], playbook="remediate")
    assert remediation["since_last_run"]["fixed"] == ["A", "B"]
    assert h.host_history([], ["A"], True, T[0])["since_last_run"] == {"new": [], "fixed": [], "last_run": None}
    not_audited = h.host_history(earlier, [], False, T[2])
    assert not_audited["since_last_run"] == {"new": [], "fixed": [], "last_run": T[0].isoformat()}
    assert not_audited["regressed"] == [] and len(not_audited["timeline"]) == 2  # what is known, not "healthy now"
    assert audit["timeline"] == [
        {"time": T[0].isoformat(), "playbook": "audit", "faults": [], "problems": ["A", "B"]},
        {"time": T[1].isoformat(), "playbook": "remediate", "faults": [], "problems": []},
        {"time": T[2].isoformat(), "playbook": "audit", "faults": [], "problems": ["C"]}]
    eleven = [h.Point(T[0] + dt.timedelta(hours=i), frozenset({"PORT_SERVICE_STOPPED", "IA_NOT_RUNNING"}))
              for i in range(11)]
    last = h.host_history(eleven, ["PORT_SERVICE_STOPPED"], True, T[5])["timeline"]
    assert len(last) == h.TIMELINE_POINTS and last[-1]["faults"] == [1] and last[-1]["time"] == T[5].isoformat()


def test_trend_points_are_oldest_first_with_counts_per_group() -> None:
    groups = [{"grp": "audit:b", "time": T[1], "playbook": "audit", "check_mode": 1, "hosts": 5},
              {"grp": "audit:a", "time": T[0].replace(tzinfo=None), "playbook": "audit", "check_mode": 0, "hosts": 4}]
    points = h.trend_points(groups, [("audit:a", 4, 1), ("audit:a", 1, 3), ("audit:b", 1, 2)],
                            [("audit:a", "X", 1), ("audit:a", "Y", 3), ("audit:b", "X", 2)])
    assert [p["run"] for p in points] == ["audit:a", "audit:b"]
    assert points[0] == {"run": "audit:a", "time": T[0].isoformat(), "playbook": "audit", "check_mode": False,
                         "hosts": 4, "per_fault": {"1": 3, "4": 1}, "per_finding": {"Y": 3, "X": 1}}
    assert list(points[0]["per_fault"]) == ["1", "4"] and list(points[0]["per_finding"]) == ["Y", "X"]


def test_group_key_puts_the_slices_of_a_sliced_job_together() -> None:
    assert h.group_key("audit", "r1", 501, 500) == h.group_key("audit", "r2", 502, 500) == "audit:awx-workflow-500"
    assert h.group_key("audit", "r1", 501, None) == "audit:awx-job-501"
    assert h.group_key("remediate", "r1", None, None) == "remediate:r1"


def test_run_info_reads_awx_and_check_mode_and_checks_its_fields() -> None:
    run = h.run_info({"id": "abc", "started": "2026-11-01T02:00:00Z", "playbook": "audit"},
                     {"awx_job_id": "501", "awx_workflow_job_id": 500, "ansible_check_mode": True}, T[1], "new")
    assert (run["run_id"], run["started"], run["ended"], run["check_mode"]) == ("abc", T[0], T[1], True)
    assert (run["awx_job_id"], run["awx_workflow_job_id"], run["grp"]) == (501, 500, "audit:awx-workflow-500")
    assert h.run_info(None, {}, T[0], "fresh")["run_id"] == "fresh"
    for given, message in (({"colour": 1}, "run.colour is not a run field"), ({"id": "a b"}, "run.id must be"),
                           ({"playbook": "Audit!"}, "run.playbook must be"), ({"started": "soon"}, "run.started must")):
        with pytest.raises(h.StoreError, match=message):
            h.run_info(given, {}, T[0], "x")
    with pytest.raises(h.StoreError, match="awx_job_id must be a whole number, not 'twelve'"):
        h.run_info(None, {"awx_job_id": "twelve"}, T[0], "x")


def test_selection() -> None:
    assert h.selection({}, T[5]) == {"kind": "run", "run": "latest"}
    assert h.selection({"awx_job": "4711"}, T[5]) == {"kind": "awx_job", "awx_job": 4711}
    assert h.selection({"days": 2}, T[5]) == {"kind": "window", "since": T[3], "until": T[5]}
    window = h.selection({"since": "2026-11-01", "up_to": "2026-11-02"}, T[5])
    assert window["since"] == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert window["until"] == dt.datetime(2026, 11, 2, 23, 59, 59, 999999, tzinfo=dt.UTC)
    for args, message in (({"run": "latest", "days": 3}, "give one of run, awx_job or a time window"),
                          ({"days": 0}, "days must be 1 or more"), ({"since": "2026-11-05", "days": 1}, "not both"),
                          ({"since": "2026-11-05", "up_to": "2026-11-01"}, "is after up_to"),
                          ({"up_to": "tomorrow"}, "up_to must be a date"), ({"run": "x y"}, "run must be latest")):
        with pytest.raises(h.StoreError, match=message):
            h.selection(args, T[5])


def test_spool_document_adds_batches_and_reads_back(tmp_path: t.Any) -> None:
    run = h.run_info({"id": "r1", "started": T[0].isoformat()}, {}, T[1], "r1")
    first = h.spool_document(run, {"a": {"status": "ok"}}, ["X"])
    both = h.spool_document(run, {"b": {"status": "failed"}}, ["X"], first)
    path = h.spool_path(str(tmp_path), "r1")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(both, handle)
    assert h.spool_files(str(tmp_path)) == [path]
    read_run, hosts = h.read_spool(path)
    assert read_run["started"] == T[0] and read_run["run_id"] == "r1" and sorted(hosts) == ["a", "b"]
    (tmp_path / f"{h.SPOOL_PREFIX}bad.json").write_text("{}")
    with pytest.raises(h.StoreError, match="is not a spool file of this collection"):
        h.read_spool(str(tmp_path / f"{h.SPOOL_PREFIX}bad.json"))


def test_changes_since_lists_hosts_per_id() -> None:
    report = {"hosts": {
        "b": {"since_last_run": {"new": ["X"], "fixed": []}, "regressed": [{"id": "X"}]},
        "a": {"since_last_run": {"new": ["X", "Y"], "fixed": ["Z"]}, "regressed": []},
    }}
    assert h.changes_since(report) == {"new": {"X": ["a", "b"], "Y": ["a"]}, "fixed": {"Z": ["a"]},
                                       "regressed": {"X": ["b"]}}


class _Recorder:
    def __init__(self) -> None:
        self.recorded: list[str] = []

    def record(self, run: dict[str, t.Any], hosts: dict[str, t.Any]) -> int:
        self.recorded.append(run["run_id"])
        return len(hosts)


def test_spooled_runs_are_recorded_oldest_first_and_a_broken_file_is_set_aside(tmp_path: t.Any) -> None:
    import os

    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history import trends as _history_report

    for number, run_id in enumerate(("r-old", "r-new", "r-now")):
        run = h.run_info({"id": run_id, "started": T[number].isoformat()}, {}, T[number], run_id)
        path = h.spool_path(str(tmp_path), run_id)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(h.spool_document(run, {"pc-1": {"status": "ok"}}, []), handle)
        os.utime(path, (number, number))
    broken = tmp_path / f"{h.SPOOL_PREFIX}r-broken.json"
    broken.write_text("{not json")
    os.utime(broken, (0, 0))
    store = _Recorder()
    assert _history_report._record_spooled(store, str(tmp_path), skip="r-now") == ["r-old", "r-new"]
    assert store.recorded == ["r-old", "r-new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{h.SPOOL_PREFIX}r-broken.json.unreadable",
                                                          f"{h.SPOOL_PREFIX}r-now.json"]
