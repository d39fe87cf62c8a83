"""The store tests' backends: a SQLite file, or a new database on the session's PostgreSQL server."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import ROOT, PlaybookRun, run_playbook


def collection_module(name: str) -> Any:
    """A module of the collection's plugin_utils, imported from this checkout (`make install` links it)."""
    if str(ROOT / ".collections") not in sys.path:
        sys.path.insert(0, str(ROOT / ".collections"))
    return importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.plugin_utils.{name}")


@dataclass
class Backend:
    """A store for one test: its URL (no password), the password in PGPASSWORD, how to open it here."""

    kind: str
    url: str
    password: str | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password} if self.password else {}

    def args(self) -> list[str]:
        return ["-e", f"nhs_cm_store={self.url}"]

    def open(self) -> Any:
        return collection_module("_history.store").open_store(self.url, self.password)

    def run(self, playbook: str, inventory: Path, report_dir: Path, *args: str) -> PlaybookRun:
        return run_playbook(playbook, inventory, report_dir, *self.args(), *args, env=self.env)
