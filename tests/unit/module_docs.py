"""A module's DOCUMENTATION as ansible-doc shows it: its own, with the doc fragments it extends merged
in by ansible's own ``add_fragments`` (the fragments are read from this checkout)."""

from __future__ import annotations

import importlib
import types
import typing as t

from ansible.module_utils.common.yaml import yaml_load
from ansible.utils.plugin_docs import add_fragments

COLLECTION = "nhs_cm.remediation"
FRAGMENTS = "ansible_collections.nhs_cm.remediation.plugins.doc_fragments"


class CollectionFragments:
    """The part of ansible's fragment loader that ``add_fragments`` uses: ``get(name)`` returns the
    fragment class of ``nhs_cm.remediation.<name>``, or None for a name that is not one."""

    def get(self, name: str) -> type | None:
        prefix = f"{COLLECTION}."
        if not name.startswith(prefix):
            return None
        try:
            fragment_module = importlib.import_module(f"{FRAGMENTS}.{name[len(prefix):]}")
        except ModuleNotFoundError:
            return None
        return type("ModuleDocFragment", (fragment_module.ModuleDocFragment,), {"ansible_name": name})


def documentation(module: types.ModuleType) -> dict[str, t.Any]:
    doc = yaml_load(module.DOCUMENTATION)
    add_fragments(doc, module.__file__, fragment_loader=CollectionFragments(), is_module=True)
    return doc
