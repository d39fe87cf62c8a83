# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What ``nhs_cm.remediation.restore`` reads and puts back, decided from a backup and what the host holds now.

Pure functions, no I/O (``_remediate.restore_action.RestoreAction`` sends the calls):
``choose_latest`` picks the newest usable backup of a ``backup_list`` reply; ``refusal`` says why
a loaded backup is refused whole (its id, or an entry no role could have written:
``_restorable.backup_problem``); ``current_reads`` are the reads of what its values and services
are now; ``restore_plan`` is what differs (``_changes.restore_changes``), with the recorded-missing
keys that end up empty deleted, deepest first.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.gpo import normalise_key
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import (
    Action,
    ChangeError,
    Plan,
    RegWrite,
    ServiceWant,
    plan,
    reg_current,
    restore_changes,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.restorable import (
    backup_problem,
    host_problems,
)


def current_reads(backup: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """One reg_read per key of the backup's registry entries and of its missing keys (all
    values, subkey names), then one service_query for its services."""
    reads: dict[tuple[str, str], dict[str, t.Any]] = {}
    keys = [(e["key"], e.get("view") or "64") for e in backup.get("entries") or [] if e.get("kind") == "reg"]
    keys += [(k["key"], k.get("view") or "64") for k in backup.get("missing_keys") or []]
    for key, view in keys:
        reads.setdefault((normalise_key(key), view), {"op": "reg_read", "key": key, "view": view})
    ops = list(reads.values())
    names = [e["name"] for e in backup.get("entries") or [] if e.get("kind") == "service"]
    if names:
        ops.append({"op": "service_query", "names": names})
    return ops


def _key_deletes(backup: dict[str, t.Any], reads: list[dict[str, t.Any]], results: list[dict[str, t.Any]],
                 the_plan: Plan) -> list[Action]:
    """reg_delete_key for each recorded-missing key that exists and holds nothing once the
    planned deletes are done (deepest first)."""
    by_key = {(normalise_key(op["key"]), op["view"]): r for op, r in zip(reads, results, strict=False)
              if op["op"] == "reg_read"}
    deleted_values = {(normalise_key(i.change.key), i.change.view, i.change.name.casefold())
                      for i in the_plan.planned if isinstance(i.change, RegWrite) and i.change.type is None}
    missing = sorted(backup.get("missing_keys") or [], key=lambda k: k["key"].count("\\"), reverse=True)
    going: set[tuple[str, str]] = set()
    actions = []
    for item in missing:
        where = (normalise_key(item["key"]), item.get("view") or "64")
        result = by_key.get(where) or {}
        if not result.get("ok") or not result.get("exists"):
            continue
        values_left = [n for n in result.get("values") or {} if (*where, n.casefold()) not in deleted_values]
        subkeys_left = [n for n in result.get("subkeys") or {}
                        if (f"{where[0]}\\{n.casefold()}", where[1]) not in going]
        if values_left or subkeys_left:
            continue
        going.add(where)
        actions.append(Action(f"delete the empty key {item['key']}", (
            {"op": "reg_delete_key", "key": item["key"], "view": where[1]},),
            before=f"{item['key']}: exists", after=f"{item['key']}: (absent, as before the backup)"))
    return actions


def choose_latest(backups: list[dict[str, t.Any]]) -> tuple[dict[str, t.Any] | None, list[dict[str, t.Any]]]:
    """(the newest usable backup of a ``backup_list`` reply, by ``saved_at``, the file's
    last-write time on the host, then by its place in the list; the unusable ones as
    ``{id, path, error}``)."""
    usable = [(str(item.get("saved_at") or ""), index, item) for index, item in enumerate(backups)
              if item.get("error") is None and isinstance(item.get("id"), str)]
    unusable = [{"id": item.get("id"), "path": item.get("path"), "error": item.get("error") or "no id"}
                for item in backups if item.get("error") is not None or not isinstance(item.get("id"), str)]
    return (max(usable, key=lambda found: found[:2])[2] if usable else None), unusable


def refusal(backup_id: str, backup: t.Any) -> str | None:
    """Why a loaded backup is refused whole (nothing is restored), or None."""
    if not isinstance(backup, dict):
        return f"backup {backup_id!r} is refused, nothing was restored: it is not an object"
    if backup.get("id") != backup_id:
        return (f"backup {backup_id!r} is refused, nothing was restored: its own id field says {backup.get('id')!r}, "
                "not the name of its file")
    problem = backup_problem(backup)
    if problem:
        return (f"backup {backup_id!r} is refused, nothing was restored: {problem} (a backup may hold only what a role "
                "of this collection writes)")
    return None


def restore_plan(backup: dict[str, t.Any], reads: list[dict[str, t.Any]], results: list[dict[str, t.Any]]) -> Plan:
    """What differs between the host now and ``backup``; raises ChangeError when a value's key
    could not be read, or when what the host holds shows that an entry is not one a role could
    have written (``_restorable.host_problems``)."""
    triples = [(op["key"], op["view"], r) for op, r in zip(reads, results, strict=False) if op["op"] == "reg_read"]
    services = [s for op, r in zip(reads, results, strict=False) if op["op"] == "service_query"
                for s in r.get("services") or []]
    failed = [f"{op['key']}: {r.get('error')}: {r.get('message')}" for op, r in zip(reads, results, strict=False)
              if op["op"] == "reg_read" and not r.get("ok")]
    if failed:
        raise ChangeError("cannot read what the backup restores: " + "; ".join(failed))
    changes = restore_changes(backup.get("entries") or [])
    missing_services = [c.name for c in changes if isinstance(c, ServiceWant)
                        and c.name.casefold() not in {str(s.get("name")).casefold() for s in services}]
    if missing_services:
        raise ChangeError(f"the backup restores services the host no longer has: {', '.join(missing_services)}")
    nodes = {normalise_key(op["key"]): r for op, r in zip(reads, results, strict=False) if op["op"] == "reg_read"}
    problem = host_problems(backup, services, nodes)
    if problem:
        raise ChangeError(f"backup {backup.get('id')!r} is refused, nothing was restored: {problem}")
    the_plan = plan(changes, reg_current(triples), services)
    the_plan.planned.extend(plan(_key_deletes(backup, reads, results, the_plan)).planned)
    return the_plan
