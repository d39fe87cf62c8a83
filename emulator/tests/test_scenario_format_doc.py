"""emulator/docs/scenario-format.md names every field the scenario loader accepts: each section's
fields are read from the loader's own "unknown field ...; known fields: ..." error, so a field added
to scenario.py without a word in the doc fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from nhs_cm_emulator.scenario import HOST_FIELDS, ScenarioError, parse_document

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenario-format.md"
BOGUS = {"no_such_field": 1}
#: A host with one unknown field in each section the loader checks.
SECTIONS: dict[str, dict[str, Any]] = {
    "host": BOGUS,
    "os": {"os": BOGUS},
    "winrm": {"winrm": BOGUS},
    "profiles": {"profiles": [BOGUS]},
    "sessions": {"sessions": [BOGUS]},
    "services": {"services": [BOGUS]},
    "processes": {"processes": [BOGUS]},
    "files": {"files": [BOGUS]},
    "registry value": {"registry": {"HKLM\\SOFTWARE\\Example": {"Name": BOGUS}}},
    "behaviour": {"behaviour": BOGUS},
    "behaviour.gp_refresh": {"behaviour": {"gp_refresh": BOGUS}},
    "transport": {"transport": BOGUS},
    "transport.fail": {"transport": {"fail": BOGUS}},
    "default_profile": {"default_profile": BOGUS},
    "hive_mounts": {"hive_mounts": [BOGUS]},
    "backups": {"backups": [BOGUS]},
    "backup_folder": {"backup_folder": BOGUS},
    "user_writable_folders": {"user_writable_folders": [BOGUS]},
}


def _known_fields(host: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError, match="unknown field 'no_such_field'") as error:
        parse_document({"hosts": [{"name": "pc-1", **host}]}, "doc.yml")
    listed = re.search(r"known fields: (.*)$", str(error.value))
    assert listed, str(error.value)
    return listed.group(1).split(", ")


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_the_doc_names_every_field_of(section: str) -> None:
    text = DOC.read_text()
    fields = _known_fields(SECTIONS[section])
    assert fields
    assert [field for field in fields if f"`{field}`" not in text] == []


def test_the_doc_has_the_files_top_level_fields_and_every_host_field() -> None:
    text = DOC.read_text()
    assert [field for field in ("hosts", "expect", "inventory_vars", *HOST_FIELDS) if f"`{field}`" not in text] == []
    assert set(_known_fields(BOGUS)) == set(HOST_FIELDS)
