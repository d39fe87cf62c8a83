# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What nhs_cm.remediation.restore does on a host (``RestoreAction.remediate``; the plans: ``_remediate.restore``).

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

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import (
    ChangeError,
    restore_failures,
    value_readback_ops,
    verify_values,
    writes_done,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.restore import (
    choose_latest,
    current_reads,
    refusal,
    restore_plan,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.write_action import (
    WriteAction,
    unconfirmed_message,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import RequestError


class RestoreAction(WriteAction):
    """Puts back what a backup on the host recorded (``remediate({backup_id})``)."""

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
