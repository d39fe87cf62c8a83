#!/usr/bin/env python3
"""Print the SHA-256 of the collection's host code, as docs/security.md lists it.

A trust's security team can recognise what the collection runs on its PCs: each file of
plugins/plugin_utils/_runner/, the joined host code, and the exact runner text that diagnose's
default request carries (the minified sections its operations need, as `runner_for_ops` builds it;
PowerShell script block logging shows this text). `--check` compares the table in
docs/security.md with these values and fails when they differ.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose import reads as _reads  # noqa: E402
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import (  # noqa: E402
    RUNNER_DIR,
    runner_text,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.assembly import runner_for_ops  # noqa: E402
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import RUNNER_FILES  # noqa: E402
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import BOOTSTRAP  # noqa: E402

DOC = ROOT / "docs" / "security.md"
BEGIN = "<!-- runner-hashes:begin -->"
END = "<!-- runner-hashes:end -->"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def table() -> str:
    """The Markdown table of hashes."""
    rows = [f"| `_runner/{name}` | {len((RUNNER_DIR / name).read_text(encoding='utf-8').splitlines())} | "
            f"`{_sha((RUNNER_DIR / name).read_text(encoding='utf-8'))}` |" for name in RUNNER_FILES]
    joined = runner_text()
    reads = runner_for_ops(joined, frozenset(op["op"] for op in _reads.plan_reads()))
    rows.append(f"| all files joined (`runner_text()`) | {len(joined.splitlines())} | `{_sha(joined)}` |")
    rows.append(f"| what diagnose sends (default options) | {len(reads.splitlines())} | `{_sha(reads)}` |")
    rows.append(f"| the bootstrap (`BOOTSTRAP`, on the command line) | {len(BOOTSTRAP.splitlines())} | "
                f"`{_sha(BOOTSTRAP)}` |")
    return "\n".join(["| text | lines | SHA-256 (UTF-8) |", "|---|---:|---|", *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when docs/security.md is not current")
    args = parser.parse_args()
    current = table()
    if not args.check:
        print(current)
        return 0
    text = DOC.read_text(encoding="utf-8")
    found = text.split(BEGIN, 1)[1].split(END, 1)[0].strip() if BEGIN in text and END in text else None
    if found != current:
        print(f"{DOC} does not list the current hashes; paste this between the markers:\n{current}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
