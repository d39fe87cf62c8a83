# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: progress
type: aggregate
short_description: Progress of long tasks - hosts done, failed and pending, with an estimate
description:
  - While a task runs for longer than O(interval) seconds, prints every O(interval) seconds how many
    hosts have finished it, how many failed, how many are pending, and about how long is left.
  - When only a few hosts are pending, it names them, so a desktop that is switched off and holds up
    the run is seen while the run waits for it (a WinRM read time-out is 30 s by default).
  - A task that ran long ends with one line - how many hosts in how many seconds.
  - Short tasks print nothing. Works beside any stdout callback (Ansible's default one included).
  - Enable it with C(callbacks_enabled = nhs_cm.remediation.progress) in C(ansible.cfg), or
    E(ANSIBLE_CALLBACKS_ENABLED=nhs_cm.remediation.progress).
author:
  - NHS CM remediation maintainers (!UNKNOWN)
requirements:
  - enabled in C(callbacks_enabled)
options:
  interval:
    description:
      - Seconds between progress lines, and how long a task runs before the first one.
      - V(0) prints nothing.
    type: float
    default: 5
    ini:
      - section: callback_nhs_cm_progress
        key: interval
    env:
      - name: NHS_CM_PROGRESS_INTERVAL
  names:
    description:
      - Pending hosts are named when there are at most this many of them.
    type: int
    default: 10
    ini:
      - section: callback_nhs_cm_progress
        key: names
    env:
      - name: NHS_CM_PROGRESS_NAMES
"""

import threading  # noqa: E402 - ansible-test: documentation first
import time  # noqa: E402
import typing as t  # noqa: E402

from ansible.plugins.callback import CallbackBase  # noqa: E402


class _TaskProgress:
    """What is known of the task now running: hosts expected, started, done, failed."""

    def __init__(self, name: str, expected: list[str] | None) -> None:
        self.name = name
        self.expected = expected
        self.started: dict[str, float] = {}
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.begin = time.monotonic()
        self.reported = False
        self.last = 0.0

    def pending(self) -> list[str]:
        """Started and not done first (oldest first), then those not started yet."""
        running = sorted((h for h in self.started if h not in self.done), key=lambda h: self.started[h])
        waiting = [h for h in self.expected or [] if h not in self.started and h not in self.done]
        return running + waiting


def line(progress: _TaskProgress, now: float, max_names: int) -> str:
    """The progress line for a running task."""
    elapsed = now - progress.begin
    done = len(progress.done)
    pending = progress.pending()
    total = f"/{len(progress.expected) if progress.expected else done + len(pending)}"
    failed = f" ({len(progress.failed)} failed)" if progress.failed else ""
    text = f"[progress] {progress.name}: {done}{total} done{failed}, {len(pending)} pending after {elapsed:.0f} s"
    running = [h for h in pending if h in progress.started]
    if len(running) < len(pending) and done:
        text += f", about {elapsed / done * len(pending):.0f} s left"
    elif running:
        oldest = now - progress.started[running[0]]
        text += f", the last {len(running)} running for up to {oldest:.0f} s"
    if pending and len(pending) <= max_names:
        text += ": " + ", ".join(pending)
    return text


def finished_line(progress: _TaskProgress, now: float) -> str:
    failed = f", {len(progress.failed)} failed" if progress.failed else ""
    return f"[progress] {progress.name}: {len(progress.done)} host(s) done in {now - progress.begin:.0f} s{failed}"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "nhs_cm.remediation.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._task: _TaskProgress | None = None
        self._batch: list[str] | None = None
        self._gone: set[str] = set()  # failed or unreachable (not ignored): Ansible runs nothing more on them
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._interval = 5.0
        self._names = 10

    def set_options(self, task_keys: t.Any = None, var_options: t.Any = None, direct: t.Any = None) -> None:
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._interval = float(self.get_option("interval"))
        self._names = int(self.get_option("names"))

    # -- the thread that prints while a task runs ------------------------------------------------

    def _start_thread(self) -> None:
        if self._thread is None and self._interval > 0:
            self._thread = threading.Thread(target=self._tick, name="nhs_cm_progress", daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._wake.wait(min(self._interval, 1.0)):
            now = time.monotonic()
            with self._lock:
                progress = self._task
                if progress is None or now - progress.begin < self._interval or now - progress.last < self._interval:
                    continue
                progress.reported = True
                progress.last = now
                text = line(progress, now, self._names)
            self._display.display(text)

    def _finish_task(self) -> None:
        with self._lock:
            progress, self._task = self._task, None
        if progress is not None and progress.reported:
            self._display.display(finished_line(progress, time.monotonic()))

    # -- plays, batches and tasks ----------------------------------------------------------------

    def v2_playbook_on_play_start(self, play: t.Any) -> None:
        """Called once per serial batch; the inventory is then restricted to the batch."""
        self._finish_task()
        try:
            inventory = play.get_variable_manager()._inventory
            self._batch = [h.name for h in inventory.get_hosts(play.hosts, order=play.order)]
        except (AttributeError, TypeError):  # a private API: without it, the totals are not known
            self._batch = None
        self._start_thread()

    def _task_start(self, task: t.Any, expected: list[str] | None) -> None:
        self._finish_task()
        with self._lock:
            self._task = _TaskProgress(task.get_name().strip() or task.action, expected)

    def v2_playbook_on_task_start(self, task: t.Any, is_conditional: bool) -> None:
        expected = None
        if self._batch is not None:
            expected = [h for h in self._batch if h not in self._gone]
            if getattr(task, "run_once", False) is True:
                expected = expected[:1]
        self._task_start(task, expected)

    def v2_playbook_on_handler_task_start(self, task: t.Any) -> None:
        self._task_start(task, None)

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        self._finish_task()
        self._wake.set()

    # -- hosts -------------------------------------------------------------------------------------

    def v2_runner_on_start(self, host: t.Any, task: t.Any) -> None:
        with self._lock:
            if self._task is not None:
                self._task.started.setdefault(host.get_name(), time.monotonic())

    def _host_done(self, result: t.Any, failed: bool = False, gone: bool = False) -> None:
        name = result._host.get_name()
        with self._lock:
            if self._task is not None:
                self._task.done.add(name)
                if failed:
                    self._task.failed.add(name)
            if gone:
                self._gone.add(name)

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._host_done(result)

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        self._host_done(result)

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._host_done(result, failed=True, gone=not ignore_errors)

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._host_done(result, failed=True, gone=not getattr(result._task, "ignore_unreachable", False))
