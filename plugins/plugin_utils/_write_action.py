# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base class of the remediation modules' action plugins: apply a ``_changes.Plan`` to a host.

``WriteAction.apply_plan(plan, role, extra_reads, verify)`` is the only impure part of the write
path. In check mode it sends nothing. Otherwise it sends ONE runner call (``write_request``:
backup, writes, read-back, the role's own reads) with ``write_errors: stop``; when a write
failed, the values read back differ, or the role's ``verify`` finds a problem in what was read
back, it sends a second call that puts back, from the backup, everything this run attempted, and
the task fails with the reason (docs/remediation.md).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._changes import (
    Outcome,
    Plan,
    new_backup_id,
    outcome,
    restore_failures,
    restore_ops,
    value_readback_ops,
    write_request,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner_action import RunnerAction


@dataclass
class Applied:
    """What ``apply_plan`` did, ready to merge into the module's result."""

    changed: bool
    failed: bool = False
    msg: str | None = None
    backup_id: str | None = None
    backup_path: str | None = None
    restored: bool | None = None  # after a failure: whether every attempted value was put back
    extra_results: list[dict[str, t.Any]] = field(default_factory=list)
    outcome: Outcome | None = None

    def as_result(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {"changed": self.changed, "backup_id": self.backup_id,
                                    "backup_path": self.backup_path}
        if self.failed:
            result.update(failed=True, msg=self.msg, restored=self.restored)
        return result


class WriteAction(RunnerAction):
    """A RunnerAction that changes the host through the write path."""

    def diff_wanted(self) -> bool:
        return bool(getattr(self._task, "diff", False) or getattr(self._play_context, "diff", False))

    def apply_plan(self, the_plan: Plan, role: str, extra_reads: list[dict[str, t.Any]] | None = None,
                   verify: t.Callable[[Outcome, list[dict[str, t.Any]]], list[str]] | None = None) -> Applied:
        """Apply ``the_plan``: nothing in check mode or when nothing differs; else one call (two
        when it has to put values back)."""
        if not the_plan.changed or self._task.check_mode:
            return Applied(changed=the_plan.changed)
        backup_id = new_backup_id(role)
        ops = write_request(the_plan, backup_id, extra_reads)
        results = self.run_ops(ops, write_errors="stop")
        done = outcome(the_plan, results)
        extra_count = len(extra_reads or [])
        extra_results = results[len(results) - extra_count:] if extra_count else []
        if done.backup is None:  # nothing was written
            return Applied(changed=False, failed=True, msg=done.failure, extra_results=extra_results, outcome=done)
        applied = Applied(changed=True, backup_id=backup_id, backup_path=done.backup.get("path"),
                          extra_results=extra_results, outcome=done)
        if done.ok and verify is not None:
            problems = verify(done, extra_results)
            if problems:
                done.ok = False
                done.failure = "; ".join(problems)
                done.attempted = list(the_plan.planned)
                done.restore_ops = restore_ops(the_plan.entries, done.backup["missing_keys"])
        if done.ok:
            return applied
        applied.failed = True
        applied.msg = done.failure
        if not done.restore_ops:
            applied.restored = True
            applied.msg = f"{done.failure} (nothing that can be put back was changed)"
            return applied
        put_back = self.run_ops(done.restore_ops + value_readback_ops(the_plan))
        problems = restore_failures(done.restore_ops, put_back[:len(done.restore_ops)])
        applied.restored = not problems
        if problems:
            applied.msg = (f"{done.failure}; putting the previous values back from backup {backup_id} ALSO failed: "
                           f"{'; '.join(problems)} - run playbooks/rollback.yml -e backup_id={backup_id}")
        else:
            applied.msg = f"{done.failure}; every value this run changed was put back from backup {backup_id}"
        return applied
