"""The results store's cost (`make bench`, docs/history.md), as ratios to baselines measured in the same run.

For each backend (SQLite, and a PostgreSQL that it starts like the tests do, tests/integration/pgserver.py):

* record: one run of H hosts' results recorded in the store, against writing the same hosts'
  report.json (what every audit writes anyway);
* report: the estate report of the latest run built from a store that holds R runs of H hosts
  (per host its result, the trend over the last 30 runs, since-last-run and regressions over
  all R runs), against building the same report without a store (``build_report`` and its JSON).

The states change from run to run (faults come and go, some come back), so the history has real
work to do. Run alone: ``.venv/bin/python benchmarks/store.py --hosts 500 --runs 5``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paths import COLLECTIONS, ROOT, put_on_sys_path

put_on_sys_path(COLLECTIONS, ROOT / "tests" / "integration")

from pgserver import running as postgresql_running  # noqa: E402

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (  # noqa: E402
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks import EVALUATORS  # noqa: E402
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history import records as _history  # noqa: E402
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history import store as store_mod  # noqa: E402
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history import trends  # noqa: E402
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import build as _report  # noqa: E402

T0 = dt.datetime(2026, 8, 1, 2, 0, tzinfo=dt.UTC)
FINDINGS = {
    "PORT_SERVICE_STOPPED": make_finding("PORT_SERVICE_STOPPED", machine_scope(),
                                         [{"service": "NHSPortService", "state": "stopped"}]),
    "INTRANET_LOGON_NOT_AUTOMATIC": make_finding("INTRANET_LOGON_NOT_AUTOMATIC",
                                                 user_scope("NHS\\jsmith", "S-1-5-21-1-2-3-1001", 1),
                                                 [{"path": "HKU\\S-1-5-21-1-2-3-1001\\...\\Zones\\1", "value": 65536}]),
    "CM_NOT_INSTALLED": make_finding("CM_NOT_INSTALLED", machine_scope(), [{"searched": "Uninstall keys"}]),
}


def results(hosts: int, run: int) -> dict[str, Any]:
    """Diagnose results of one run: faults that come and go with the run number, some for good."""
    out = {}
    for i in range(hosts):
        found = []
        if (i + run) % 7 == 0:
            found.append(FINDINGS["PORT_SERVICE_STOPPED"])
        if (i // 3 + run) % 11 < 2:
            found.append(FINDINGS["INTRANET_LOGON_NOT_AUTOMATIC"])
        if i % 50 == 0:
            found.append(FINDINGS["CM_NOT_INSTALLED"])
        out[f"pc-{i:05d}"] = {"findings": found, "unknown": [], "product": "cm3plus"}
    return out


def seconds(action: Callable[[], Any], repeat: int = 1) -> float:
    """The best of ``repeat`` timings of ``action``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def _run(number: int) -> dict[str, Any]:
    started = T0 + dt.timedelta(days=number)
    return _history.run_info({"id": f"bench-{number}", "started": started.isoformat()}, {}, started, "x")


def measure(url: str, password: str | None, hosts: int, runs: int, work: Path) -> dict[str, Any]:
    """One backend: record and report timings with their baselines."""
    generated = T0 + dt.timedelta(days=runs - 1)
    last = _report.build_report(results(hosts, runs - 1), generated=generated, checks=list(EVALUATORS))
    report_json = work / "report.json"
    baseline_record = seconds(lambda: _report.write_json_atomic(str(report_json), last), repeat=3)
    store = store_mod.open_store(url, password)
    try:
        started = time.perf_counter()
        for number in range(runs - 1):
            report = _report.build_report(results(hosts, number), generated=T0 + dt.timedelta(days=number))
            store.record(_run(number), report["hosts"])
        populate = time.perf_counter() - started
        record = seconds(lambda: store.record(_run(runs - 1), last["hosts"]))
        baseline_report = seconds(lambda: _report.to_json(_report.build_report(
            results(hosts, runs - 1), generated=generated, checks=list(EVALUATORS))), repeat=2)
        ids, as_of, _what = store.select_runs(_history.selection({}, generated))
        built: dict[str, Any] = {}

        def estate() -> None:
            built["report"] = trends.estate_report(store, ids, as_of, list(EVALUATORS))
            _report.to_json(built["report"])

        report = seconds(estate, repeat=2)
    finally:
        store.close()
    found = _history.changes_since(built["report"])
    return {
        "hosts": hosts, "runs": runs, "populate_s": round(populate, 2),
        "record_s": round(record, 3), "baseline_record_s": round(baseline_record, 3),
        "record_ratio": round(record / baseline_record, 2),
        "report_s": round(report, 3), "baseline_report_s": round(baseline_report, 3),
        "report_ratio": round(report / baseline_report, 2),
        "trend_points": len(built["report"]["trend"]),
        "hosts_regressed": len({h for hs in found["regressed"].values() for h in hs}),
        "hosts_new": len({h for hs in found["new"].values() for h in hs}),
    }


def bench_store(hosts: int, runs: int, backends: list[str]) -> dict[str, Any]:
    """Every backend asked for; PostgreSQL is started for the measurement and stopped after."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nhs_cm-bench-store-") as folder:
        work = Path(folder)
        for backend in backends:
            print(f"bench: results store on {backend}, {runs} runs of {hosts} hosts ...", flush=True)
            if backend == "sqlite":
                out[backend] = measure(str(work / "history.sqlite"), None, hosts, runs, work)
            elif backend == "postgresql":
                with postgresql_running() as server:
                    out[backend] = measure(server.url(server.new_database()), server.password, hosts, runs, work)
            else:
                raise SystemExit(f"bench: unknown store backend {backend!r}: sqlite or postgresql")
            result = out[backend]
            print(f"  record {result['record_s']} s ({result['record_ratio']} x writing report.json), "
                  f"report {result['report_s']} s ({result['report_ratio']} x building it without a store), "
                  f"{result['populate_s']} s to record the other runs", flush=True)
    return out


def markdown(store: dict[str, Any], audit_ratio: dict[str, Any] | None) -> list[str]:
    """The store's lines of docs/performance.md."""
    lines = ["", "Results store (docs/history.md): recording one run, and the estate report of the latest run from a "
                 "store of that many runs, against writing report.json and building the report without a store:", "",
             "| store | hosts | runs | record s | x report.json | report s | x without store | trend points "
             "| hosts regressed | other runs recorded in s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for backend, result in store.items():
        lines.append(f"| {backend} | {result['hosts']} | {result['runs']} | {result['record_s']} "
                     f"| {result['record_ratio']} | {result['report_s']} | {result['report_ratio']} "
                     f"| {result['trend_points']} | {result['hosts_regressed']} | {result['populate_s']} |")
    if audit_ratio:
        lines.append(f"\nThe audit with the store (SQLite) took {audit_ratio['wall_s']} x the audit without it "
                     f"run right after it (wall time), {audit_ratio['controller_cpu_s']} x its controller CPU.")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=90)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    result = bench_store(args.hosts, args.runs, [b for b in args.backends.split(",") if b])
    print("\n".join(markdown(result, None)))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
