"""The progress callback's lines (plugins/callback/progress.py), from its state alone."""

from __future__ import annotations

from ansible_collections.nhs_cm.remediation.plugins.callback.progress import _TaskProgress, finished_line, line


def _progress(expected: int, started: dict[str, float], done: set[str], failed: set[str]) -> _TaskProgress:
    progress = _TaskProgress("Diagnose", [f"pc-{n:03d}" for n in range(expected)])
    progress.begin = 100.0
    progress.started = started
    progress.done = done
    progress.failed = failed
    return progress


def test_while_hosts_wait_for_a_fork_the_estimate_follows_the_rate() -> None:
    started = {f"pc-{n:03d}": 100.0 + n / 10 for n in range(60)}
    done = {f"pc-{n:03d}" for n in range(50)}
    text = line(_progress(200, started, done, {"pc-007"}), now=110.0, max_names=10)
    # 50 done in 10 s: the 150 pending take about 30 s more. Too many to name.
    assert text == "[progress] Diagnose: 50/200 done (1 failed), 150 pending after 10 s, about 30 s left"


def test_when_only_stragglers_are_left_they_are_named_oldest_first() -> None:
    started = {f"pc-{n:03d}": 100.0 for n in range(200)}
    started.update({"pc-150": 101.0, "pc-151": 100.5})
    done = {f"pc-{n:03d}" for n in range(200)} - {"pc-150", "pc-151", "pc-199"}
    text = line(_progress(200, started, done, set()), now=130.0, max_names=10)
    assert text == ("[progress] Diagnose: 197/200 done, 3 pending after 30 s, the last 3 running for up to 30 s: "
                    "pc-199, pc-151, pc-150")


def test_the_last_line_says_how_long_the_task_took() -> None:
    done = {"pc-000", "pc-001"}
    assert finished_line(_progress(2, {}, done, {"pc-001"}), now=144.4) == (
        "[progress] Diagnose: 2 host(s) done in 44 s, 1 failed")
