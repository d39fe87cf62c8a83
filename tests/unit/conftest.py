"""Puts the checkout's .collections first on sys.path so that
``ansible_collections.nhs_cm.remediation`` imports this checkout (``make install`` links it).

Under ``ansible-test units`` the tests run in a copy at ``.../ansible_collections/nhs_cm/remediation``
(``make units``): then the folder above ``ansible_collections`` is the collections path."""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
IN_COLLECTION_TREE = COLLECTION_ROOT.parent.parent.name == "ansible_collections"
COLLECTIONS_PATH = COLLECTION_ROOT.parent.parent.parent if IN_COLLECTION_TREE else COLLECTION_ROOT / ".collections"

if not (COLLECTIONS_PATH / "ansible_collections" / "nhs_cm" / "remediation").exists():
    raise RuntimeError(f"{COLLECTIONS_PATH}/ansible_collections/nhs_cm/remediation is missing; run `make install`")
while str(COLLECTIONS_PATH) in sys.path:
    sys.path.remove(str(COLLECTIONS_PATH))
sys.path.insert(0, str(COLLECTIONS_PATH))
# pytest runs with --import-mode=importlib, so the tests' own helper module (nhs_cm_hostsim)
# is importable only with this folder on sys.path.
UNIT_TESTS = Path(__file__).resolve().parent
if str(UNIT_TESTS) not in sys.path:
    sys.path.insert(1, str(UNIT_TESTS))
