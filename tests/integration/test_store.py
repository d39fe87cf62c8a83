"""The results store itself, on SQLite and on a real PostgreSQL: migrations, one transaction per run,
several writers at once, pruning, and the one-line errors (never with the password)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from storetest import Backend, collection_module

history = collection_module("_history.records")
store_mod = collection_module("_history.store")
catalogue = collection_module("_diagnose.catalogue")
report_mod = collection_module("_report.build")
T0 = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC)


def _entries(count: int, faulty_every: int = 2, prefix: str = "pc") -> dict[str, Any]:
    finding = catalogue.make_finding("PORT_SERVICE_STOPPED", catalogue.machine_scope(), [{"service": "NHSPortService"}])
    results = {f"{prefix}-{i:05d}": {"findings": [finding] if i % faulty_every == 0 else [], "unknown": []}
               for i in range(count)}
    return report_mod.build_report(results, generated=T0)["hosts"]


def _run(run_id: str, started: dt.datetime, playbook: str = "audit", **awx: Any) -> dict[str, Any]:
    return history.run_info({"id": run_id, "started": started.isoformat(), "playbook": playbook},
                            awx, started + dt.timedelta(minutes=5), run_id)


def test_schema_is_created_then_left_alone_and_a_newer_one_is_refused(backend: Backend) -> None:
    store = backend.open()
    store.close()
    assert store_mod.open_store(backend.url, backend.password).migrate() == store_mod.SCHEMA_VERSION  # found: current
    store = backend.open()
    try:
        with store.engine.begin() as conn:
            conn.execute(store.t["version"].update().values(version=store_mod.SCHEMA_VERSION + 1))
    finally:
        store.close()
    with pytest.raises(history.StoreError) as refused:
        backend.open()
    message = str(refused.value)
    assert message == (f"results store {history.parse_store_url(backend.url).shown} has schema version "
                       f"{store_mod.SCHEMA_VERSION + 1}, newer than the {store_mod.SCHEMA_VERSION} this "
                       "nhs_cm.remediation knows: upgrade the collection (a store is never migrated back)")


def test_a_run_is_recorded_whole_or_not_at_all(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    store = backend.open()
    hosts = _entries(1200)  # more than one chunk of deletes and inserts
    real = store_mod._rows_of_host

    def broken(rows: dict[str, list[dict[str, Any]]], run_id: str, name: str, entry: Any, started: Any) -> None:
        real(rows, run_id, name, entry, started)
        if name == "pc-01199":  # the last host: a finding of a host the run does not have
            rows["findings"].append(dict(rows["findings"][-1], host="no-such-host"))

    try:
        monkeypatch.setattr(store_mod, "_rows_of_host", broken)
        with pytest.raises(history.StoreError, match="cannot record run r1"):
            store.record(_run("r1", T0), hosts)
        assert store.runs() == []
        monkeypatch.setattr(store_mod, "_rows_of_host", real)
        assert store.record(_run("r1", T0), hosts) == 1200
        assert [r["hosts"] for r in store.runs()] == [1200]
        # Recording a host again replaces its rows (a remediation's later batch): no duplicates.
        assert store.record(_run("r1", T0), dict(list(hosts.items())[:10])) == 1200
        entries = store.entries(["r1"])
        assert len(entries) == 1200 and entries["pc-00000"][1] == hosts["pc-00000"]
    finally:
        store.close()


def _writer(url: str, password: str | None, number: int) -> int:
    store = store_mod.open_store(url, password)
    try:
        hosts = _entries(400, prefix=f"slice{number}")
        run = _run(f"slice-{number}", T0 + dt.timedelta(seconds=number), awx_job_id=100 + number,
                   awx_workflow_job_id=77)
        return int(store.record(run, hosts))
    finally:
        store.close()


def test_four_writers_at_once_lose_nothing(backend: Backend) -> None:
    # Four processes open a new store at once (each migrates it) and record a slice each.
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.starmap(_writer, [(backend.url, backend.password, n) for n in range(4)])
    assert counts == [400] * 4
    store = backend.open()
    try:
        chosen = store.select_runs(history.selection({"awx_job": 77}, T0))
        assert sorted(chosen[0]) == [f"slice-{n}" for n in range(4)]
        assert len(store.entries(chosen[0])) == 1600
        groups, per_fault, _per_finding = store.trend(T0 + dt.timedelta(days=1), 30)
        assert [(g["grp"], g["hosts"]) for g in groups] == [("audit:awx-workflow-77", 1600)]
        assert per_fault == [("audit:awx-workflow-77", 1, 800)]
    finally:
        store.close()


def test_prune_deletes_old_runs_and_everything_of_them(backend: Backend) -> None:
    store = backend.open()
    try:
        for day in range(5):
            store.record(_run(f"day-{day}", T0 + dt.timedelta(days=day)), _entries(20))
        cutoff = T0 + dt.timedelta(days=3)
        assert store.prune(cutoff, dry_run=True)["runs"] == 3
        assert len(store.runs()) == 5
        gone = store.prune(cutoff)
        assert gone["runs"] == 3 and gone["host_results"] == 60 and gone["findings"] == 30
        assert [r["run_id"] for r in store.runs()] == ["day-3", "day-4"]
        assert store.prune(cutoff)["runs"] == 0
    finally:
        store.close()


def test_errors_are_one_line_without_the_password(backend: Backend, tmp_path: Path) -> None:
    if backend.kind == "sqlite":
        not_a_store = tmp_path / "notes.sqlite"
        not_a_store.write_text("these are my notes, not a database\n" * 200)
        with pytest.raises(history.StoreError) as failed:
            store_mod.open_store(str(not_a_store))
        assert str(failed.value) == (f"results store {not_a_store}: cannot connect or migrate: file is not a "
                                     "database (the file is not a SQLite store)")
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        with pytest.raises(history.StoreError) as failed:
            store_mod.open_store(str(blocked / "history.sqlite"))
        assert str(failed.value) == f"results store {blocked / 'history.sqlite'}: {blocked} is a file, not a folder"
        return
    wrong = backend.url.replace("postgresql://postgres@", "postgresql://postgres:Wr0ng-s3cret@")
    with pytest.raises(history.StoreError) as failed:
        store_mod.open_store(wrong)
    message = str(failed.value)
    assert "\n" not in message and "Wr0ng-s3cret" not in message
    assert message.startswith(f"results store {backend.url}: cannot connect: ")
    assert message.endswith('password authentication failed for user "postgres" '
                            "(give the password in nhs_cm_store_password or PGPASSWORD)")


def test_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store_mod.open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_older_store_migrates_forward_in_one_transaction(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    store = backend.open()
    try:
        store.record(_run("old", T0), _entries(5))
    finally:
        store.close()
    current = store_mod.SCHEMA_VERSION

    def add_site(op: Any) -> None:  # a next version as a release would add it: one column
        import sqlalchemy as sa

        op.add_column("runs", sa.Column("site", sa.String(64)))

    def broken(op: Any) -> None:
        add_site(op)
        raise RuntimeError("the migration failed half way")

    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(store_mod.MIGRATIONS, current + 1, broken)
    with pytest.raises(RuntimeError, match="half way"):
        backend.open()
    monkeypatch.setitem(store_mod.MIGRATIONS, current + 1, add_site)
    store = backend.open()  # the failed attempt left nothing behind: the same migration runs again
    try:
        import sqlalchemy as sa

        assert store.version() == current + 1
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("runs")}
        assert "site" in columns
        assert [r["run_id"] for r in store.runs()] == ["old"] and len(store.entries(["old"])) == 5
    finally:
        store.close()
