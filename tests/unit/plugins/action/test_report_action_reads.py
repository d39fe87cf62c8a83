"""How the report action reads every host's registered results (fast paths, same data)."""

from __future__ import annotations

import datetime
from typing import Any

from ansible._internal._datatag._tags import Origin
from ansible.module_utils._internal._datatag import AnsibleTaggedObject, AnsibleTagHelper
from ansible.module_utils.common.json import AnsibleJSONEncoder

from ansible_collections.nhs_cm.remediation.plugins.action import report

RESULT = {"findings": [{"id": "CM_NOT_INSTALLED", "evidence": [{"path": "HKLM\\X", "data": 1}]}],
          "facts": {"os": {"build": 19045, "emulated": True}}, "unknown": []}
ORIGIN = Origin(path="/etc/ansible/inventory.yml", line_num=1)


def _tagged(value: Any) -> Any:
    """As registered results come back: containers and strings carry ansible's data tags."""
    if isinstance(value, dict):
        value = {k: _tagged(v) for k, v in value.items()}
    elif isinstance(value, list):
        value = [_tagged(v) for v in value]
    return AnsibleTagHelper.tag(value, [ORIGIN]) if isinstance(value, (dict, list, str)) else value


def test_plain_gives_the_same_data_as_the_ansible_encoder() -> None:
    tagged = _tagged(RESULT)
    assert isinstance(tagged, AnsibleTaggedObject) and isinstance(tagged["findings"][0]["id"], AnsibleTaggedObject)
    plain = report._plain(tagged)
    # Exact built-in types, not subclasses: Ansible's tagged types subclass dict, list and str.
    assert plain == RESULT and plain.__class__ is dict and plain["findings"].__class__ is list
    assert plain["findings"][0]["id"].__class__ is str
    assert report._plain(None) is None and report._plain({}) is None


def test_plain_falls_back_to_the_ansible_encoder_for_other_types() -> None:
    value = {"when": datetime.date(2025, 1, 2), "ids": {"A"}}
    expected = report.json.loads(report.json.dumps(value, cls=AnsibleJSONEncoder))
    assert report._plain(value) == expected and expected["when"] == "2025-01-02"


class _HostVars:
    """The parts of ansible's HostVars the action uses; raw_get never templates."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.templated = 0

    def raw_get(self, name: str) -> Any:
        return self.data.get(name, "an undefined marker")

    def get(self, name: str, default: Any = None) -> Any:
        self.templated += 1
        return self.data.get(name, default)


def test_host_vars_are_read_raw_when_hostvars_allows_it() -> None:
    hostvars = _HostVars({"pc-1": {"nhs_cm_diagnose": RESULT}})
    assert report._raw_host_vars(hostvars, "pc-1") == {"nhs_cm_diagnose": RESULT}
    assert report._raw_host_vars(hostvars, "pc-2") == {}  # an unknown host: an undefined marker, not a mapping
    assert hostvars.templated == 0
    assert report._raw_host_vars({"pc-1": {"x": 1}}, "pc-1") == {"x": 1}  # a plain dict of host vars
