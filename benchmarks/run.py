#!/usr/bin/env python3
"""`make bench`: the audit against an idiomatic ansible.windows baseline and a raw floor.

Starts the emulator (`nhs-cm-emulator serve`, a Python WinRM server that plays N Windows
desktops; it is not Windows) and runs, one after the other against that same emulator, with
the same forks:

1. floor    benchmarks/floor.yml     one `raw` no-op command per host;
2. audit    playbooks/audit.yml      this collection's audit (nhs_cm.remediation.diagnose);
3. baseline benchmarks/baseline.yml  the same fault 1 and fault 4 checks, one ansible.windows
                                     task per check (answered by the emulator's module twins).

For each it measures wall time, controller CPU (rusage of the waited-for ansible-playbook
tree), peak RSS of the controller process tree (sampled from /proc every 50 ms) and of the
emulator, and the WinRM shells, HTTP requests and bytes per host (the emulator's /stats).
Then, on the same emulator, playbooks/remediate.yml runs once per role on hosts the audit found
that role can fix, for the runner calls each role makes per host.
Then it measures the audit's controller memory at several estate sizes, prints a table and
the target checks, writes benchmarks/results/latest.json and regenerates the results section
of docs/performance.md. Nothing here is part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from call import call_composition
from estate import inventory_hosts, limit_args, scenario_of_hosts, start_emulator
from paths import RESULTS, ROOT, WORK
from perfdoc import markdown, write_performance_md
from remediation import fixable_by_role, remediation
from runs import NO_STORE, PLAYBOOKS, ensure_ansible_windows, print_run, run_playbook
from sampling import machine
from scaling import live_kib_per_host, memory_scaling, scaling_point, tracemalloc_profile
from store import bench_store
from targets import ratios, target_checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200, help="emulated hosts (default 200)")
    parser.add_argument("--baseline-hosts", type=int, default=0,
                        help="run the baseline on the first M hosts only (default: all; it is ~1 s per host)")
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--transport", choices=["basic", "ntlm"], default="basic")
    parser.add_argument("--scaling", default="100,200,400",
                        help="estate sizes for the audit's memory scaling, comma-separated ('' to skip)")
    parser.add_argument("--remediate-hosts", type=int, default=30,
                        help="after the audit, run remediate.yml once per role on up to this many hosts that the "
                             "role can fix, one per scenario first, and count runner calls (default 30; 0 to skip)")
    parser.add_argument("--store-hosts", type=int, default=10000,
                        help="results store: hosts per recorded run (default 10000; benchmarks/store.py)")
    parser.add_argument("--store-runs", type=int, default=90, help="results store: runs in the store (default 90)")
    parser.add_argument("--store-backends", default="sqlite,postgresql",
                        help="results store backends, comma-separated ('' to skip the store's measurements)")
    parser.add_argument("--no-profile", action="store_true", help="skip the tracemalloc profile runs")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to write (default: %(default)s)")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    windows_version = ensure_ansible_windows()
    info = machine()
    print(f"bench: {args.hosts} emulated hosts, forks {args.forks}, WinRM {args.transport} over HTTP; "
          f"{info['nproc']} CPUs ({info['cpu']}), load average {info['load_average_at_start']}", flush=True)
    inventory = WORK / "inventory.yml"
    started = time.monotonic()
    emulator = start_emulator(args.hosts, args.seed, args.transport, "127.60.0.1", inventory)
    runs: dict[str, dict[str, Any]] = {}
    try:
        hosts = inventory_hosts(inventory)
        audit_extra = ["-e", f"nhs_cm_report_dir={WORK / 'reports'}", *NO_STORE]
        for name in ("floor", "audit", "baseline"):  # warm the caches (.pyc, collection loading) on one host
            run_playbook(name, PLAYBOOKS[name], emulator, hosts[:1], args.forks,
                         ["--limit", hosts[0], *audit_extra], WORK / f"warmup-{name}.log")
        for name in ("floor", "audit", "baseline"):
            count = args.baseline_hosts if name == "baseline" and args.baseline_hosts else len(hosts)
            targeted, limit = limit_args(hosts, count)
            print(f"bench: {name} on {len(targeted)} hosts ...", flush=True)
            runs[name] = run_playbook(name, PLAYBOOKS[name], emulator, targeted, args.forks,
                                      limit + (audit_extra if name == "audit" else []), WORK / f"{name}.log")
            print_run(runs[name])
        # The same audit recording into a results store (a new SQLite file): the store's cost on the audit.
        store_file = WORK / "bench-history.sqlite"
        store_file.unlink(missing_ok=True)
        print(f"bench: audit with the results store on {len(hosts)} hosts ...", flush=True)
        runs["audit_store"] = run_playbook("audit_store", PLAYBOOKS["audit"], emulator, hosts, args.forks,
                                           [*audit_extra, "-e", f"nhs_cm_store={store_file}",
                                            "-e", f"nhs_cm_report_dir={WORK / 'reports-store'}"],
                                           WORK / "audit_store.log")
        print_run(runs["audit_store"])
        # ... and the plain audit again at once: the store is compared with the run beside it, not
        # with the audit before the baseline's minutes (the machine's load drifts between them).
        print(f"bench: the audit again, without the store, on {len(hosts)} hosts ...", flush=True)
        runs["audit_paired"] = run_playbook("audit_paired", PLAYBOOKS["audit"], emulator, hosts, args.forks,
                                            audit_extra, WORK / "audit_paired.log")
        print_run(runs["audit_paired"])
        audit_report = WORK / "reports" / "report.json"
        if args.remediate_hosts > 0 and audit_report.exists():
            scenarios = scenario_of_hosts(inventory)
            sample = fixable_by_role(json.loads(audit_report.read_text()), scenarios, args.remediate_hosts)
            remediated = remediation(emulator, sample, scenarios, args.forks, runs["audit"]["commands_per_host_max"])
        else:
            remediated = {}
    finally:
        emulator.stop()
    sizes = sorted({int(size) for size in args.scaling.split(",") if size.strip()} | {args.hosts}) \
        if args.scaling.strip() else []
    scaling = memory_scaling([size for size in sizes if size != args.hosts], args) if sizes else []
    if sizes:
        scaling.append(scaling_point(args.hosts, runs["audit"]))
        scaling.sort(key=lambda point: point["hosts"])
    profile = {} if args.no_profile else tracemalloc_profile(args)
    backends = [b for b in args.store_backends.split(",") if b.strip()]
    store = bench_store(args.store_hosts, args.store_runs, backends) if backends else {}
    call = call_composition()
    result = {
        "command": command_line(args), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**info, "ansible_windows": windows_version}, "hosts": args.hosts, "forks": args.forks,
        "seed": args.seed, "transport": args.transport, "runs": runs,
        "ratios": {"audit_vs_baseline": ratios(runs["audit"], runs["baseline"]) if "baseline" in runs else None,
                   "audit_vs_floor": ratios(runs["audit"], runs["floor"]),
                   "audit_store_vs_audit": ratios(runs["audit_store"], runs["audit_paired"])},
        "store": store,
        "targets": target_checks(runs, remediated, call), "remediation": remediated,
        "memory_scaling": scaling, "profile": profile, "call": call,
        "live_python_kib_per_host": live_kib_per_host(profile) if profile else None,
        "total_s": round(time.monotonic() - started, 1),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    table = markdown(result)
    print("\n" + table)
    if not args.no_docs:
        write_performance_md(table)
    print(f"bench: wrote {os.path.relpath(args.results, ROOT)}" + ("" if args.no_docs else " and docs/performance.md"))
    failed = [run for run in runs.values() if run["exit_code"] != 0]
    for run in failed:
        print(f"bench: {run['name']} exited with {run['exit_code']}: see {run['log']}", file=sys.stderr)
    for role, outcome in remediated.items():
        if outcome.get("failed_hosts"):
            print(f"bench: remediate.yml ({role}) failed on {', '.join(outcome['failed_hosts'])}: see {outcome['log']}",
                  file=sys.stderr)
    return 1 if failed else 0


def command_line(args: argparse.Namespace) -> str:
    command = f"make bench N={args.hosts}"
    if args.forks != 50:
        command += f" FORKS={args.forks}"
    if args.transport != "basic":
        command += f" TRANSPORT={args.transport}"
    if args.baseline_hosts:
        command += f" BASELINE_HOSTS={args.baseline_hosts}"
    if args.remediate_hosts != 30:
        command += f" REMEDIATE_HOSTS={args.remediate_hosts}"
    if (args.store_hosts, args.store_runs) != (10000, 90):
        command += f" STORE_HOSTS={args.store_hosts} STORE_RUNS={args.store_runs}"
    if args.store_backends != "sqlite,postgresql":
        command += f" STORE_BACKENDS={args.store_backends}"
    return command


if __name__ == "__main__":
    sys.exit(main())
