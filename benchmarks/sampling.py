"""The processes of a run, sampled from /proc (RSS and CPU of a process tree and of the emulator), and the
machine they run on."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

from paths import BIN

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SAMPLE_SECONDS = 0.05


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one live process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """pid and every process below it (/proc/<pid>/task/<tid>/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children", encoding="ascii") as children:
                    todo += [int(child) for child in children.read().split()]
            except OSError:
                continue
    return found


@dataclass
class Sampler:
    """Samples the RSS of a process tree and of the emulator every SAMPLE_SECONDS."""

    root: int
    emulator: int
    peak_tree_kib: int = 0
    peak_main_kib: int = 0
    peak_processes: int = 0
    peak_emulator_kib: int = 0
    main_cpu_s: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = descendants(self.root)
            sizes = [rss_kib(pid) for pid in tree]
            self.peak_tree_kib = max(self.peak_tree_kib, sum(sizes))
            self.peak_main_kib = max(self.peak_main_kib, sizes[0] if sizes else 0)
            self.peak_processes = max(self.peak_processes, sum(1 for size in sizes if size))
            self.peak_emulator_kib = max(self.peak_emulator_kib, rss_kib(self.emulator))
            self.main_cpu_s = max(self.main_cpu_s, cpu_seconds(self.root))  # the last value before it exits
            self.samples += 1
            self._stop.wait(SAMPLE_SECONDS)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = status_meminfo("MemTotal")
    versions = subprocess.run([str(BIN / "python"), "-c", "import ansible.release, winrm, importlib.metadata as m; "
                               "print(ansible.release.__version__, m.version('pywinrm'))"],
                              capture_output=True, text=True, check=True).stdout.split()
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory / 1024 / 1024, 1),
            "python": platform.python_version(), "ansible_core": versions[0], "pywinrm": versions[1],
            "kernel": platform.release(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def status_meminfo(key: str) -> int:
    with open("/proc/meminfo", encoding="ascii") as info:
        for line in info:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0
