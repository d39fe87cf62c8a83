"""One playbook run against the emulator and what it costs: ansible.windows for the baseline, the
environment of ansible-playbook, wall time, CPU and memory (sampled from /proc) and the WinRM costs
per host (deltas of the emulator's /stats)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

from paths import BENCH, BENCH_COLLECTIONS, BIN, COLLECTIONS, ROOT, WORK
from sampling import Sampler, children_cpu, cpu_seconds

from nhs_cm_emulator.launch import RunningEmulator

WINDOWS_COLLECTION = BENCH_COLLECTIONS / "ansible_collections" / "ansible" / "windows"
#: ansible.windows comes out of this `ansible` wheel from PyPI (Galaxy is not reachable here).
ANSIBLE_WHEEL_VERSION = "12.3.0"
#: The audit runs without the results store (issue 21), except "audit_store", its own measurement.
NO_STORE = ["-e", "nhs_cm_store="]
PLAYBOOKS = {"floor": BENCH / "floor.yml", "audit": ROOT / "playbooks" / "audit.yml",
             "baseline": BENCH / "baseline.yml"}


def ensure_ansible_windows() -> str:
    """Extract ansible.windows from the PyPI `ansible` wheel once; return its version."""
    manifest = WINDOWS_COLLECTION / "MANIFEST.json"
    if not manifest.exists():
        cache = BENCH_COLLECTIONS / ".cache"
        cache.mkdir(parents=True, exist_ok=True)
        wheel = cache / f"ansible-{ANSIBLE_WHEEL_VERSION}-py3-none-any.whl"
        if not wheel.exists():
            print(f"bench: downloading ansible=={ANSIBLE_WHEEL_VERSION} from PyPI for ansible.windows", flush=True)
            subprocess.run([str(BIN / "python"), "-m", "pip", "download", "--quiet", "--no-deps",
                            f"ansible=={ANSIBLE_WHEEL_VERSION}", "-d", str(cache)], check=True)
        prefix = "ansible_collections/ansible/windows/"
        staging = BENCH_COLLECTIONS / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging, [name for name in archive.namelist() if name.startswith(prefix)])
        WINDOWS_COLLECTION.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(WINDOWS_COLLECTION, ignore_errors=True)
        (staging / prefix).rename(WINDOWS_COLLECTION)
        shutil.rmtree(staging, ignore_errors=True)
    return str(json.loads(manifest.read_text())["collection_info"]["version"])


def ansible_env(profile: Path | None = None, tracemalloc: bool = False) -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=f"{BENCH_COLLECTIONS}{os.pathsep}{COLLECTIONS}",
               ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="bench_profile",
               ANSIBLE_NOCOLOR="1", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONTRACEMALLOC", None)
    env.pop("NHS_CM_BENCH_RESULT_SIZES", None)
    if profile is not None:
        env["NHS_CM_BENCH_PROFILE"] = str(profile)
    if tracemalloc:
        env["PYTHONTRACEMALLOC"] = "1"
        env["NHS_CM_BENCH_RESULT_SIZES"] = "1"
    return env


def host_deltas(before: dict[str, Any], after: dict[str, Any], hosts: list[str]) -> dict[str, dict[str, int]]:
    """Each host's emulator counters between two /stats answers."""
    deltas = {}
    for name in hosts:
        old, new = before["hosts"].get(name, {}), after["hosts"][name]
        deltas[name] = {key: new.get(key, 0) - old.get(key, 0)
                        for key in ("requests", "bytes_in", "bytes_out", "shells", "commands", "writes")}
    return deltas


ACTION_ORDER = ("Create", "Command", "Send", "Receive", "Signal", "Delete")


def action_bytes_per_host(before: dict[str, Any], after: dict[str, Any], hosts: list[str]) -> dict[str, Any]:
    """Mean HTTP body bytes per host of each WS-Man action (request in, answer out) between two /stats."""
    sums: dict[str, dict[str, int]] = {}
    for name in hosts:
        old = before["hosts"].get(name, {}).get("action_bytes", {})
        for action, sizes in after["hosts"][name].get("action_bytes", {}).items():
            entry = sums.setdefault(action, {"in": 0, "out": 0})
            for way in ("in", "out"):
                entry[way] += sizes[way] - old.get(action, {}).get(way, 0)
    ordered = sorted(sums, key=lambda action: (*ACTION_ORDER, action).index(action))
    return {action: {way: round(sums[action][way] / len(hosts)) for way in ("in", "out")} for action in ordered}


def stats_delta(before: dict[str, Any], after: dict[str, Any], hosts: list[str]) -> dict[str, Any]:
    """Per-host WinRM costs between two /stats answers, over the hosts the run targeted."""
    per_host = list(host_deltas(before, after, hosts).values())
    count = len(per_host)

    def mean(key: str) -> float:
        return sum(entry[key] for entry in per_host) / count

    return {
        "hosts": count,
        "shells_per_host": round(mean("shells"), 2), "shells_per_host_max": max(e["shells"] for e in per_host),
        "commands_per_host": round(mean("commands"), 2), "commands_per_host_max": max(e["commands"] for e in per_host),
        "requests_per_host": round(mean("requests"), 2),
        "requests_per_host_max": max(e["requests"] for e in per_host),
        "kib_in_per_host": round(mean("bytes_in") / 1024, 2), "kib_out_per_host": round(mean("bytes_out") / 1024, 2),
        "kib_per_host": round((mean("bytes_in") + mean("bytes_out")) / 1024, 2),
        "kib_per_host_max": round(max(e["bytes_in"] + e["bytes_out"] for e in per_host) / 1024, 2),
        "action_bytes_per_host": action_bytes_per_host(before, after, hosts),
    }


def run_playbook(name: str, playbook: Path, emulator: RunningEmulator, hosts: list[str], forks: int,
                 extra: list[str], log: Path, tracemalloc: bool = False) -> dict[str, Any]:
    profile = WORK / f"{log.stem}.profile.json"
    profile.unlink(missing_ok=True)
    command = [str(BIN / "ansible-playbook"), str(playbook), "-i", str(emulator.inventory), "-f", str(forks), *extra]
    before = emulator.stats()
    emulator_cpu = cpu_seconds(emulator.process.pid)
    cpu = children_cpu()
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        child = subprocess.Popen(command, cwd=ROOT, env=ansible_env(profile, tracemalloc), stdout=out,
                                 stderr=subprocess.STDOUT)
        sampler = Sampler(child.pid, emulator.process.pid).start()
        code = child.wait()
        sampler.stop()
    wall = time.monotonic() - started
    cpu = children_cpu() - cpu
    emulator_cpu = cpu_seconds(emulator.process.pid) - emulator_cpu
    after = emulator.stats()
    result = {
        "name": name, "playbook": os.path.relpath(playbook, ROOT), "exit_code": code, "forks": forks,
        "wall_s": round(wall, 2), "controller_cpu_s": round(cpu, 2), "emulator_cpu_s": round(emulator_cpu, 2),
        "controller_peak_tree_rss_mib": round(sampler.peak_tree_kib / 1024, 1),
        "controller_peak_main_rss_mib": round(sampler.peak_main_kib / 1024, 1),
        "controller_peak_processes": sampler.peak_processes,
        "controller_main_cpu_s": round(sampler.main_cpu_s, 2),
        "emulator_peak_rss_mib": round(sampler.peak_emulator_kib / 1024, 1),
        "samples": sampler.samples, "log": os.path.relpath(log, ROOT),
        **stats_delta(before, after, hosts),
    }
    if profile.exists():
        result["profile"] = json.loads(profile.read_text())
    result["ms_per_host"] = round(1000 * wall / result["hosts"], 1)
    result["controller_cpu_ms_per_host"] = round(1000 * cpu / result["hosts"], 1)
    return result


def print_run(run: dict[str, Any]) -> None:
    print(f"  {run['name']}: {run['wall_s']} s wall, {run['controller_cpu_s']} s controller CPU, "
          f"{run['emulator_cpu_s']} s emulator CPU, tree peak {run['controller_peak_tree_rss_mib']} MiB, "
          f"{run['shells_per_host']} shells, {run['requests_per_host']} requests, {run['kib_per_host']} KiB "
          f"per host (exit code {run['exit_code']})", flush=True)
