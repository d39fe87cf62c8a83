# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark-only callback: what the controller's main process spent its time and memory on.

Enabled by benchmarks/runs.py (ANSIBLE_CALLBACKS_ENABLED=bench_profile) with the environment
variable NHS_CM_BENCH_PROFILE naming a JSON file to write at the end of the playbook:
the wall time of each task and the main process's current and peak RSS; with
NHS_CM_BENCH_RESULT_SIZES=1 also the mean size of each task's result per host (and of its
largest keys), and, when the run has tracemalloc on (PYTHONTRACEMALLOC), the Python
allocations still live at the end grouped by source file.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: bench_profile
    type: aggregate
    short_description: benchmark profile of the controller (nhs_cm.remediation benchmarks only)
    description: Writes task timings and controller memory to the file named by NHS_CM_BENCH_PROFILE.
"""


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _top_files(snapshot: tracemalloc.Snapshot, limit: int = 12) -> list[dict[str, Any]]:
    stats = snapshot.statistics("filename")
    root = os.path.dirname(os.path.dirname(os.__file__))
    return [{"file": str(s.traceback[0].filename).replace(root, "<stdlib>"), "kib": round(s.size / 1024, 1),
             "blocks": s.count} for s in stats[:limit]]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("NHS_CM_BENCH_PROFILE")
        self._tasks: list[dict[str, Any]] = []
        self._started = time.monotonic()
        self._sizes = bool(os.environ.get("NHS_CM_BENCH_RESULT_SIZES"))
        self._result_bytes: dict[str, list[int]] = {}
        self._key_bytes: dict[str, dict[str, int]] = {}

    def _close_task(self) -> None:
        if self._tasks and "seconds" not in self._tasks[-1]:
            self._tasks[-1]["seconds"] = round(time.monotonic() - self._tasks[-1].pop("_start"), 3)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._close_task()
        self._tasks.append({"name": task.get_name(), "_start": time.monotonic()})

    def v2_runner_on_ok(self, result: Any) -> None:
        if not self._sizes:  # json.dumps of every result costs the main process time: only when asked
            return
        name = result._task.get_name()
        self._result_bytes.setdefault(name, []).append(len(json.dumps(result._result, default=str)))
        keys = self._key_bytes.setdefault(name, {})
        for key, value in result._result.items():
            keys[key] = keys.get(key, 0) + len(json.dumps(value, default=str))

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._close_task()
        if not self._path:
            return
        profile: dict[str, Any] = {
            "seconds": round(time.monotonic() - self._started, 3),
            "tasks": self._tasks,
            "main_rss_kib": _status_kib("VmRSS"),
            "main_peak_rss_kib": _status_kib("VmHWM"),
            "result_bytes_mean": {name: round(sum(sizes) / len(sizes)) for name, sizes in self._result_bytes.items()},
            "result_key_bytes_mean": {name: {key: round(total / len(self._result_bytes[name]))
                                             for key, total in sorted(keys.items(), key=lambda kv: -kv[1])[:8]}
                                      for name, keys in self._key_bytes.items()},
        }
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot()
            current, peak = tracemalloc.get_traced_memory()
            profile["tracemalloc"] = {"current_kib": round(current / 1024), "peak_kib": round(peak / 1024),
                                      "top_files": _top_files(snapshot)}
        with open(self._path, "w", encoding="utf-8") as out:
            json.dump(profile, out, indent=1)
