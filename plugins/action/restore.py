# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.restore (documentation: plugins/modules/restore.py).

Puts back exactly what a backup saved on the host recorded: three runner calls (four for
``latest``).
0. ``latest``: ``backup_list`` and pick the newest usable backup by the file's last-write time on
   the host (``saved_at``; never what a file says); a backup that cannot be used is reported by
   name (``unusable_backups``, a warning) and never stops the others.
1. ``backup_load`` by id. A backup whose own ``id`` differs from its file name is refused, and so
   is a backup with any entry no role of the collection could have written
   (``_restorable.backup_problem``: the exact keys and value names the planners write), whole,
   naming the first offending entry: the file lives on the host, and restore writes as an
   administrator.
2. Read what those values and services are now (and whether the keys the backup recorded as
   missing exist and what they hold); the checks that need the host (which service it is, a
   zone range's address) are made on what was read (``_restorable.host_problems``).
3. Plan what differs (``_changes.plan`` of ``restore_changes``: same types, same data, values that
   did not exist deleted, services back to their start mode and state); check mode stops here
   with the diff. Otherwise write it, delete the recorded-missing keys that end up empty, and
   read everything back to verify. Nothing else is touched. Restoring does not save a backup of
   its own (``latest`` keeps naming the run that is being undone).
"""

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import validate_args
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
    restore_failures,
    value_readback_ops,
    verify_values,
    writes_done,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.restorable import (
    backup_problem,
    host_problems,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.write_action import (
    WriteAction,
    unconfirmed_message,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    BACKUP_ID_RE,
    RequestError,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "backup_id": {"type": "str", "required": True},
}


def _backup_id_problem(options: dict[str, t.Any]) -> str | None:
    backup_id = options["backup_id"]
    if backup_id != "latest" and not BACKUP_ID_RE.fullmatch(backup_id):
        return (f"backup_id must be 'latest' or a backup id as a remediation returned it (1 to 80 letters, "
                f"digits, '_' or '-'), not {backup_id!r}")
    return None


def validate_options(args: t.Mapping[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    """({backup_id}, None) or (None, one message naming the field and what is allowed)."""
    return validate_args(ARGUMENT_SPEC, args, _backup_id_problem)


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


class ActionModule(WriteAction):
    ROLE = "nhs_cm.remediation.restore"

    def validate(self, args: t.Mapping[str, t.Any]) -> tuple[t.Any, str | None]:
        return validate_options(args)

    def remediate(self, options: dict[str, t.Any]) -> dict[str, t.Any]:
        backup_id: str = options["backup_id"]
        unusable: list[dict[str, t.Any]] = []
        if backup_id == "latest":
            (listed,) = self.run_ops([{"op": "backup_list"}])
            if not listed.get("ok"):
                return {"failed": True, "msg": f"cannot list the backups on this host: {listed.get('error')}: "
                                               f"{listed.get('message')}"}
            chosen, unusable = choose_latest(list(listed.get("backups") or []))
            if chosen is None and unusable:
                return {"failed": True, "unusable_backups": unusable,
                        "msg": "no usable backup is saved on this host: " + "; ".join(
                            f"{item['id']}: {item['error']}" for item in unusable)}
            if chosen is None:
                return {"changed": False, "backup_id": None, "changes": [], "unusable_backups": [],
                        "msg": "no backup is saved on this host: nothing to restore"}
            backup_id = str(chosen["id"])
        try:
            result = self._restore_one(backup_id)
        except ChangeError as exc:
            result = {"failed": True, "msg": str(exc)}
        result["unusable_backups"] = unusable
        if unusable:
            result["warnings"] = [f"backup {item['id']} ({item['path']}) cannot be used and was skipped: "
                                  f"{item['error']}" for item in unusable]
        return result

    def _restore_one(self, backup_id: str) -> dict[str, t.Any]:
        try:
            (loaded,) = self.run_ops([{"op": "backup_load", "id": backup_id}])
        except RequestError as exc:
            return {"failed": True, "msg": f"backup_id: {exc}"}
        if not loaded.get("ok"):
            return {"failed": True, "msg": f"cannot load backup {backup_id!r}: {loaded.get('error')}: "
                                           f"{loaded.get('message')}"}
        refused = refusal(backup_id, loaded.get("backup"))
        if refused:
            return {"failed": True, "changed": False, "backup_id": backup_id, "msg": refused}
        backup = loaded["backup"]
        reads = current_reads(backup)
        results = self.run_ops(reads) if reads else []
        the_plan = restore_plan(backup, reads, results)
        base: dict[str, t.Any] = {"changed": the_plan.changed, "backup_id": backup.get("id"),
                                  "saved_at": backup.get("saved_at"), "changes": the_plan.summary()}
        if self.diff_wanted() and the_plan.changed:
            base["diff"] = the_plan.diff(f"backup {backup.get('id')}")
        if not the_plan.changed or self._task.check_mode:
            return base
        ops = the_plan.write_ops
        sent = self.send_writes(ops + value_readback_ops(the_plan))
        if sent.unconfirmed is not None:
            return {**base, "failed": True, "changed_unknown": True, "diff": the_plan.diff(f"backup {backup_id}"),
                    "msg": unconfirmed_message(sent.unconfirmed, None, "the restore request")
                    + f"; run the restore of backup {backup_id} again: it writes only what still differs"}
        put_back = sent.results or []
        problems = restore_failures(ops, put_back[:len(ops)])
        problems += verify_values(the_plan, put_back[len(ops):])
        if sent.cleanup_error is not None:
            done = writes_done(ops, put_back)
            return {**base, "failed": True, "cleanup_error": sent.cleanup_error, "writes_done": done,
                    "diff": the_plan.diff(f"backup {backup_id}"),
                    "msg": "; ".join([sent.cleanup_error, *problems, "the writes that happened: "
                                      + ("; ".join(done) or "none"), f"backup {backup_id}"])}
        if problems:
            return {**base, "failed": True, "msg": f"backup {backup.get('id')} was not restored completely: "
                                                   + "; ".join(problems)}
        return base
