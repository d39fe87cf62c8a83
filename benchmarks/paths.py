"""Where the benchmark's files are: the checkout, its venv, the scratch folder and the collections.

Shared by run.py and store.py; imports nothing of the benchmark's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
BIN = ROOT / ".venv" / "bin"
#: Scratch files of `make bench` (inventories, logs, reports); benchmarks/.gitignore.
WORK = BENCH / ".work"
RESULTS = BENCH / "results" / "latest.json"
#: This checkout as the collection nhs_cm.remediation (`make build`).
COLLECTIONS = ROOT / ".collections"
#: ansible.windows for the baseline, taken out of the PyPI `ansible` wheel (playbooks.ensure_ansible_windows).
BENCH_COLLECTIONS = BENCH / ".collections"


def put_on_sys_path(*folders: Path) -> None:
    """Put ``folders`` first on sys.path, in that order, for the collection's own code (and test helpers)."""
    sys.path[:0] = [str(folder) for folder in folders if str(folder) not in sys.path]
