"""Facts for the browser-policy and zone checks, built from a flat registry as a test writes it.

``facts_for(registry, users, gpo)`` answers every key of ``MACHINE_READS`` / ``USER_READS`` as
``reg_read`` would (a node with ``exists``, ``values``, ``subkeys`` to the declared depth) and
returns the facts shape that ``_facts.build_facts`` gives the evaluators:
``facts["policy_keys"]``, ``facts["users"]``, ``facts["gpo"]``, and ``facts["browser_files"]``
with the browsers' file versions given as ``browsers`` (none installed by default). Key paths are
case-insensitive.

``planned_fix(planner, defaults, facts, **options)`` plans a policy fix as its action plugin does
(diagnose's findings, the planner, the write plan) and ``applied(registry, plan)`` is the registry
after the plan's writes, for checking that the findings go away.
"""

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.evaluate import evaluate
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    MACHINE_READS,
    USER_READS,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import BROWSER_EXES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import Plan, plan, reg_current
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.policy_plan import PolicyPlan, read_nodes

Registry = dict[str, dict[str, dict[str, t.Any]]]

SID_A = "S-1-5-21-2847561937-1930485726-3150942856-1101"
SID_B = "S-1-5-21-2847561937-1930485726-3150942856-1102"
USER_A = {"sid": SID_A, "user": "NHS\\asmith", "session": 1, "source": "session", "hive": "loaded", "error": None}
USER_B = {"sid": SID_B, "user": "NHS\\bjones", "session": 2, "source": "session", "hive": "loaded", "error": None}

CHROME = "HKLM\\SOFTWARE\\Policies\\Google\\Chrome"
EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
FIREFOX = "HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Cookies"
IS = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"
IS_POLICY = "SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"


def sz(data: str) -> dict[str, t.Any]:
    return {"type": "REG_SZ", "data": data}


def expand_sz(data: str) -> dict[str, t.Any]:
    return {"type": "REG_EXPAND_SZ", "data": data}


def dword(data: int) -> dict[str, t.Any]:
    return {"type": "REG_DWORD", "data": data}


def user_key(sid: str, relative: str) -> str:
    return f"HKU\\{sid}\\{relative}"


def good_zones(sid: str) -> Registry:
    """A user's Local intranet zone as NHS requires it."""
    return {
        user_key(sid, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap"): {
            "AutoDetect": dword(0), "IntranetName": dword(1), "ProxyBypass": dword(1), "UNCAsIntranet": dword(1)},
        user_key(sid, "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones\\1"): {
            "1A00": dword(0x20000)},
    }


def _children(registry: Registry, path: str) -> dict[str, str]:
    """Direct subkey names of ``path`` (as written) -> their full paths."""
    prefix = path.casefold() + "\\"
    names: dict[str, str] = {}
    for key in registry:
        if key.casefold().startswith(prefix):
            name = key[len(prefix):].split("\\")[0]
            names.setdefault(name.casefold(), key[:len(prefix) + len(name)])
    return {full.split("\\")[-1]: full for full in names.values()}


def _exists(registry: Registry, path: str) -> bool:
    folded = path.casefold()
    return any(key.casefold() == folded or key.casefold().startswith(folded + "\\") for key in registry)


def _values(registry: Registry, path: str) -> dict[str, t.Any]:
    folded = path.casefold()
    merged: dict[str, t.Any] = {}
    for key, values in registry.items():
        if key.casefold() == folded:
            merged.update(values)
    return merged


def read(registry: Registry, path: str, depth: int, denied: tuple[str, ...] = ()) -> dict[str, t.Any]:
    """A reg_read reply for ``path`` (as the facts keep it)."""
    if any(path.casefold() == item.casefold() for item in denied):
        return {"exists": False, "values": {}, "subkeys": {}, "error": "access_denied"}
    if not _exists(registry, path):
        return {"exists": False, "values": {}, "subkeys": {}, "error": None}
    node = {"exists": True, "values": _values(registry, path), "subkeys": {}, "error": None}
    for name, full in _children(registry, path).items():
        node["subkeys"][name] = read(registry, full, depth - 1, denied) if depth > 0 else None
    return node


def browser_files(versions: dict[str, str] | None) -> list[dict[str, t.Any]]:
    """``facts["browser_files"]`` with ``versions`` ({browser: file version}) installed in the
    first system-level folder of each browser, nothing elsewhere."""
    files = []
    for browser, paths in BROWSER_EXES.items():
        for index, path in enumerate(paths):
            version = (versions or {}).get(browser) if index == 0 else None
            files.append({"browser": browser, "path": path, "exists": version is not None, "version": version})
    return files


def facts_for(registry: Registry, users: list[dict[str, t.Any]] | None = None,
              gpo: list[dict[str, t.Any]] | None = None, denied: tuple[str, ...] = (),
              cm_installed: bool = True, browsers: dict[str, str] | None = None,
              site_files: list[dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    """Facts as diagnose builds them; ``site_files``: the ``browser_site_settings`` files (default: each
    user's Chrome and Edge Local State does not exist)."""
    people = []
    for user in users or []:
        person = dict(user)
        if person.get("hive") != "unavailable":
            person["keys"] = {rel: read(registry, user_key(person["sid"], rel), depth, denied)
                              for rel, depth in USER_READS}
        else:
            person["keys"] = {}
        people.append(person)
    products = {"cm": [{"kind": "cm", "name": "NHS Credential Management"}] if cm_installed else [],
                "identity_hub": [], "identity_agent": [], "port_service": []}
    return {
        "products": products,
        "policy_keys": {path: read(registry, path, depth, denied) for path, depth in MACHINE_READS},
        "users": people,
        "gpo": {"available": gpo is not None, "error": None if gpo is not None else "not read",
                "settings": list(gpo or [])},
        "browser_files": browser_files(browsers),
        "browser_site_settings": site_files if site_files is not None else [
            {"sid": user["sid"], "browser": browser, "profile": None, "exists": False, "modified": None, "error": None,
             "exceptions": None, "path": f"C:\\Users\\x\\AppData\\Local\\{browser}\\User Data\\Local State"}
            for user in users or [] for browser in ("chrome", "edge")],
        "processes": [],
        "read_errors": {},
    }


Planner = t.Callable[[dict[str, t.Any], list[dict[str, t.Any]], dict[str, t.Any]], PolicyPlan]


def planned_fix(planner: Planner, defaults: dict[str, t.Any], the_facts: dict[str, t.Any],
                **options: t.Any) -> tuple[PolicyPlan, Plan]:
    """What a policy action plugin plans for ``the_facts``: diagnose's findings (CM required), the
    planner's changes with ``options`` over ``defaults``, and the write plan against the values read."""
    findings, _unknown = evaluate(the_facts, {"cm_required": True})
    policy = planner(the_facts, findings, {**defaults, **options})
    current = reg_current(read_nodes(the_facts) + policy.extra_nodes)
    return policy, plan(policy.changes, current, facts=the_facts, override_gpo=options.get("override_gpo", False))


def applied(registry: Registry, the_plan: Plan) -> Registry:
    """The registry after the plan's writes (what the runner would do)."""
    result = {key: dict(values) for key, values in registry.items()}
    for op in the_plan.write_ops:
        values = result.setdefault(op["key"], {})
        if op["op"] == "reg_write":
            values[op["name"]] = {"type": op["type"], "data": op["data"]}
        else:
            values.pop(op["name"], None)
    return result
