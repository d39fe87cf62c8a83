"""The finding pages in docs/ are derived from the catalogue in code and must be current."""

from __future__ import annotations

import subprocess
import sys

from harness import ROOT


def test_finding_pages_match_the_catalogue() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_findings_docs.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_security_page_lists_the_current_host_code_hashes() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "runner_hashes.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
