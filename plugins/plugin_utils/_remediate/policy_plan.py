# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared parts of the policy remediation planners (``_remediate.cookies``,
``_remediate.localhost_access``, ``_remediate.intranet_zone``).

``PolicyPlan``, what each planner returns. Pure functions, no I/O: the registry nodes diagnose
read (``facts["policy_keys"]`` and each user's ``keys``) as ``(full key, view, node)`` triples for
``_changes.reg_current``; the users whose hive can be written (signed in: hive ``loaded``); the
next free value name of a list policy.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    BROWSER_NAMES,
    CHROMIUM_KEYS,
    Hive,
    Node,
    exists,
    users,
    value,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import RegWrite

Triple = tuple[str, str, Node]
SCOPES = ("machine", "user")
_NUMERIC = re.compile(r"[+-]?\d+")
_STRINGS = ("REG_SZ", "REG_EXPAND_SZ")


@dataclass
class PolicyPlan:
    """What a policy planner decided: the values to write, the known-empty keys it plans values
    in (not read by diagnose), and notes for people."""

    changes: list[RegWrite] = field(default_factory=list)
    extra_nodes: list[Triple] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _walk(path: str, node: Node | None, out: list[Triple]) -> None:
    if not isinstance(node, dict):
        return
    out.append((path, "64", node))
    if node.get("error"):
        return
    for name, child in (node.get("subkeys") or {}).items():
        _walk(f"{path}\\{name}", child, out)


def read_nodes(facts: dict[str, t.Any]) -> list[Triple]:
    """Every key diagnose read (and the subkeys read with it), with its full path."""
    out: list[Triple] = []
    for path, node in (facts.get("policy_keys") or {}).items():
        _walk(path, node, out)
    profile = facts.get("default_profile")  # intranet_zone's include_default_profile (a pseudo-user)
    for user in [*users(facts), *([profile] if isinstance(profile, dict) else [])]:
        for relative, node in (user.get("keys") or {}).items():
            _walk(f"HKU\\{user.get('sid')}\\{relative}", node, out)
    return out


def absent_subkey(facts: dict[str, t.Any], hive: Hive, parent: str, name: str) -> list[Triple]:
    """A subkey that is not there although its parent was read with its subkeys, as a known
    empty key (so a value can be planned in it; the write creates it)."""
    node, error = hive.node(facts, parent)
    if error or node is None:
        return []
    children = {k.casefold() for k in (node.get("subkeys") or {})}
    if node.get("exists", True) and name.casefold() in children:
        return []
    return [(hive.path(f"{parent}\\{name}"), "64", {"exists": False, "values": {}, "subkeys": {}, "error": None})]


def writable_users(facts: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """Signed-in users: their hive is loaded, so it can be written."""
    return [user for user in users(facts) if user.get("hive") == "loaded" and user.get("sid")]


def targets(facts: dict[str, t.Any], scope: str) -> list[Hive]:
    """Where a planner writes: machine policy, or each signed-in user's hive."""
    if scope == "machine":
        return [Hive("machine")]
    return [Hive("user", user) for user in writable_users(facts)]


def string_entries(node: dict[str, t.Any] | None) -> dict[str, str]:
    """Numbered string values of a list key: name -> data."""
    if not exists(node):
        return {}
    return {name: item["data"] for name, item in ((node or {}).get("values") or {}).items()
            if is_numeric_name(name) and isinstance(item, dict) and item.get("type") in _STRINGS
            and isinstance(item.get("data"), str)}


def all_names(node: dict[str, t.Any] | None) -> list[str]:
    """Every value name of a key (numeric or not), for ``next_free_name``."""
    return list(((node or {}).get("values") or {}).keys()) if exists(node) else []


def is_numeric_name(name: str) -> bool:
    """A value name Chromium (and Firefox) read as a list entry: an integer."""
    return _NUMERIC.fullmatch(name) is not None and -(2 ** 31) <= int(name) < 2 ** 31


def next_free_name(names: t.Iterable[str]) -> str:
    """The value name after the greatest numeric one (``1`` when there is none or they are all
    below 1): existing entries keep their names, gaps are not filled, non-numeric names ignored."""
    numbers = [int(name) for name in names if is_numeric_name(name)]
    return str(max([0, *numbers]) + 1)


def finding_ids(findings: list[dict[str, t.Any]], skip: t.Iterable[str], browser: str | None = None) -> set[str]:
    """The ids found (for ``browser`` when given), less those the play skips (waived)."""
    skipped = set(skip)
    return {f["id"] for f in findings if f["id"] not in skipped and (browser is None or f.get("browser") == browser)}


def chromium_list_node(facts: dict[str, t.Any], hive: Hive, browser: str, list_name: str, adding: str,
                       notes: list[str]) -> tuple[dict[str, t.Any] | None, str] | None:
    """(node, path) of the Chromium list policy ``<browser's key>\\<list_name>`` in ``hive``, to add
    ``adding`` to; None, with the reason in ``notes``, when it cannot be added to there: the key could
    not be read, or the browser's policy key holds the list as one JSON value (a key would hide it)."""
    key = CHROMIUM_KEYS[browser]
    node, error = hive.node(facts, f"{key}\\{list_name}")
    if error:
        notes.append(f"{BROWSER_NAMES[browser]}: {error}; nothing added there")
        return None
    policy_node, _error = hive.node(facts, key)
    if not exists(node) and value(policy_node, list_name) is not None:
        notes.append(f"{BROWSER_NAMES[browser]}: {hive.path(key)} holds {list_name} as one JSON value; add "
                     f"{adding} to it by hand (a {list_name} key would hide it)")
        return None
    return node, hive.path(f"{key}\\{list_name}")
