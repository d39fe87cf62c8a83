"""The matrix reuses the integration harness (the emulated estate)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from conftest import estate  # noqa: F401 - the fixture, shared with tests/integration
