"""The audit alone on fresh emulators: its controller memory at several estate sizes, and what the
main process keeps per host (tracemalloc)."""

from __future__ import annotations

import argparse
from typing import Any

from estate import inventory_hosts, start_emulator
from paths import WORK
from runs import NO_STORE, PLAYBOOKS, run_playbook


def memory_scaling(sizes: list[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The audit alone at several estate sizes, one emulator per size, for the memory claim."""
    points = []
    for size in sizes:
        inventory = WORK / f"inventory-{size}.yml"
        emulator = start_emulator(size, args.seed, args.transport, "127.61.0.1", inventory)
        try:
            hosts = inventory_hosts(inventory)
            run = run_playbook("audit", PLAYBOOKS["audit"], emulator, hosts, args.forks,
                               ["-e", f"nhs_cm_report_dir={WORK / 'reports'}", *NO_STORE],
                               WORK / f"scaling-{size}.log")
        finally:
            emulator.stop()
        points.append(scaling_point(size, run))
        print(f"  memory scaling: {size} hosts, main process peak {points[-1]['controller_peak_main_rss_mib']} MiB, "
              f"tree peak {run['controller_peak_tree_rss_mib']} MiB, {run['wall_s']} s", flush=True)
    return points


def scaling_point(hosts: int, run: dict[str, Any]) -> dict[str, Any]:
    """One row of the memory scaling: the audit run's costs on an estate of ``hosts``."""
    profile = run.get("profile", {})
    return {"hosts": hosts, "wall_s": run["wall_s"], "controller_cpu_s": run["controller_cpu_s"],
            "controller_main_cpu_s": run["controller_main_cpu_s"],
            "controller_peak_tree_rss_mib": run["controller_peak_tree_rss_mib"],
            "controller_peak_main_rss_mib": round(profile.get("main_peak_rss_kib", 0) / 1024, 1),
            "controller_peak_processes": run["controller_peak_processes"],
            "emulator_peak_rss_mib": run["emulator_peak_rss_mib"],
            "report_task_s": task_seconds(profile, "Write the estate report")}


def task_seconds(profile: dict[str, Any], name: str) -> float | None:
    for task in profile.get("tasks", []):
        if task["name"] == name:
            return task.get("seconds")
    return None


def tracemalloc_profile(args: argparse.Namespace, sizes: tuple[int, ...] = (10, 100)) -> dict[str, Any]:
    """Live Python allocations of the controller's main process at the end of the audit."""
    out: dict[str, Any] = {}
    for size in sizes:
        inventory = WORK / f"inventory-trace-{size}.yml"
        emulator = start_emulator(size, args.seed, args.transport, "127.62.0.1", inventory)
        try:
            run = run_playbook("audit", PLAYBOOKS["audit"], emulator, inventory_hosts(inventory), args.forks,
                               ["-e", f"nhs_cm_report_dir={WORK / 'reports'}", *NO_STORE], WORK / f"trace-{size}.log",
                               tracemalloc=True)
        finally:
            emulator.stop()
        profile = run.get("profile", {})
        out[str(size)] = {"tracemalloc": profile.get("tracemalloc"),
                          "result_bytes_mean": profile.get("result_bytes_mean"),
                          "result_key_bytes_mean": profile.get("result_key_bytes_mean"),
                          "main_peak_rss_mib": round(profile.get("main_peak_rss_kib", 0) / 1024, 1)}
    return out


def live_kib_per_host(profile: dict[str, Any]) -> float | None:
    """Growth of the main process's live Python memory per host between the two traced runs."""
    points = sorted((int(size), entry["tracemalloc"]["current_kib"]) for size, entry in profile.items()
                    if entry.get("tracemalloc"))
    if len(points) < 2 or points[-1][0] == points[0][0]:
        return None
    (small, small_kib), (big, big_kib) = points[0], points[-1]
    return round((big_kib - small_kib) / (big - small), 1)
