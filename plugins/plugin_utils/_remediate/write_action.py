# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base class of the remediation modules' action plugins: apply a ``_changes.Plan`` to a host.

``WriteAction.run`` is the run of every remediation module: check the task's arguments
(``validate``: the module's argument spec and its own checks, ``_controller_action.validate_args``;
``remediation_options`` for the modules that pass some of diagnose's options on), fail naming the
field before anything is sent, else ``remediate`` the host with them.

``WriteAction.apply_plan(plan, role, extra_reads, verify)`` is the only impure part of the write
path. In check mode it sends nothing. Otherwise it sends ONE runner call (``write_request``:
backup, writes, read-back, the role's own reads) with ``write_errors: stop``; when a write
failed, the values read back differ, or the role's ``verify`` finds a problem in what was read
back, it sends a second call that puts back, from the backup, everything this run attempted, and
the task fails with the reason (docs/remediation.md).

Nothing is lost when the host or the network fails half-way:

- the runner's cleanup failed after the ops ran (``CleanupError``, it carries every result): the
  results are used as usual, and the task fails with the cleanup error, the writes that happened
  (``writes_done``), the diff and the backup id;
- the connection failed after a write request was sent (``WriteUnconfirmed``): the task fails
  with ``changed_unknown: true``, "changed: unknown" in its message, the diff and the backup id to
  roll back with. A failure before the request was sent is an ordinary one (nothing changed).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import Check, validate_args
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.options import (
    validate_options as validate_diagnose_options,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.changes import (
    ChangeError,
    Outcome,
    Plan,
    new_backup_id,
    outcome,
    restore_failures,
    restore_ops,
    value_readback_ops,
    write_request,
    writes_done,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import RunnerAction, WriteUnconfirmed
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import CleanupError, ProtocolError

ROLLBACK = "playbooks/rollback.yml -e backup_id={}"
ModuleOptions = dict[str, t.Any]


def remediation_options(spec: dict[str, dict[str, t.Any]], args: t.Mapping[str, t.Any],
                        diagnose_names: t.Iterable[str], *checks: Check,
                        ) -> tuple[ModuleOptions | None, ModuleOptions | None, str | None]:
    """(own options, diagnose's options, None) or (None, None, one message naming the fields).

    ``spec`` holds the module's own options and the ones of diagnose's it passes on
    (``diagnose_names``): all are checked against ``spec`` and the module's own ``checks``
    (``validate_args``), then diagnose's are checked by diagnose itself (``_diagnose.options``).
    """
    options, error = validate_args(spec, args, *checks)
    if options is None:
        return None, None, error
    passed = set(diagnose_names)
    own = {name: value for name, value in options.items() if name not in passed}
    diagnose, error = validate_diagnose_options({name: value for name, value in options.items() if name in passed})
    if diagnose is None:
        return None, None, error
    return own, diagnose, None


def unconfirmed_message(exc: WriteUnconfirmed, backup_id: str | None, what: str = "the write request") -> str:
    """The one line for a write request whose answer never came back."""
    where = (f"; if it ran, its backup is {backup_id}: check the host, and roll back with "
             f"{ROLLBACK.format(backup_id)} if needed") if backup_id else ""
    return f"changed: unknown - {what} may have run on the host, but no answer came back ({exc}){where}"


@dataclass
class Sent:
    """The answer to a write call: its results, or why there are none."""

    results: list[dict[str, t.Any]] | None
    cleanup_error: str | None = None
    unconfirmed: WriteUnconfirmed | None = None


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
    changed_unknown: bool = False  # a write request's answer never came back
    cleanup_error: str | None = None  # the runner's cleanup failed after the ops ran
    writes_done: list[str] | None = None  # with cleanup_error (or an unexpected error): the writes that happened
    diff: dict[str, str] | None = None  # with either: the diff, shown whatever --diff says

    def as_result(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {"changed": self.changed, "backup_id": self.backup_id,
                                    "backup_path": self.backup_path}
        if self.failed:
            result.update(failed=True, msg=self.msg, restored=self.restored)
        if self.changed_unknown:
            result["changed_unknown"] = True
        if self.cleanup_error is not None or self.writes_done is not None:
            result.update(cleanup_error=self.cleanup_error, writes_done=self.writes_done or [])
        if self.diff is not None:
            result["diff"] = self.diff
        return result


class WriteAction(RunnerAction):
    """A RunnerAction that changes the host through the write path.

    A module defines ``ROLE`` (its name, which starts each message about its arguments),
    ``validate(args)`` and ``remediate(options)``."""

    _supports_check_mode = True
    _supports_async = False
    ROLE = ""

    def validate(self, args: t.Mapping[str, t.Any]) -> tuple[t.Any, str | None]:
        """(the module's options, None) or (None, one message naming the fields and what is allowed)."""
        raise NotImplementedError

    def remediate(self, options: t.Any) -> dict[str, t.Any]:
        """The module's result for the host, with the options ``validate`` returned."""
        raise NotImplementedError

    def failure(self, exc: ProtocolError | ChangeError) -> str:
        """The message of a failed run (the runner or the plan refused)."""
        return str(exc)

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        options, error = self.validate(self._task.args)
        if options is None:
            result.update(failed=True, msg=f"{self.ROLE}: {error}")
            return result
        try:
            result.update(self.remediate(options))
        except (ProtocolError, ChangeError) as exc:
            result.update(failed=True, msg=self.failure(exc))
        return result

    def diff_wanted(self) -> bool:
        return bool(getattr(self._task, "diff", False) or getattr(self._play_context, "diff", False))

    def send_writes(self, ops: list[dict[str, t.Any]], write_errors: str = "continue") -> Sent:
        """Send a call that changes the host: its results (also when the runner's cleanup failed
        afterwards: ``cleanup_error``), or ``unconfirmed`` when the answer never came back."""
        try:
            return Sent(self.run_ops(ops, write_errors=write_errors, writes=True))
        except CleanupError as exc:
            return Sent(exc.results, cleanup_error=str(exc))
        except WriteUnconfirmed as exc:
            return Sent(None, unconfirmed=exc)

    def apply_plan(self, the_plan: Plan, role: str, extra_reads: list[dict[str, t.Any]] | None = None,
                   verify: t.Callable[[Outcome, list[dict[str, t.Any]]], list[str]] | None = None) -> Applied:
        """Apply ``the_plan``: nothing in check mode or when nothing differs; else one call (two
        when it has to put values back)."""
        if not the_plan.changed or self._task.check_mode:
            return Applied(changed=the_plan.changed)
        backup_id = new_backup_id(role)
        ops = write_request(the_plan, backup_id, extra_reads)
        sent = self.send_writes(ops, write_errors="stop")
        if sent.unconfirmed is not None:
            return Applied(changed=True, failed=True, changed_unknown=True, backup_id=backup_id,
                           msg=unconfirmed_message(sent.unconfirmed, backup_id), diff=the_plan.diff(role))
        results = sent.results or []
        try:
            applied = self._applied(the_plan, role, backup_id, results, extra_reads, verify)
        except Exception as exc:  # after writes: never lose what happened to a traceback
            done = writes_done(ops, results)
            return Applied(changed=bool(done), failed=True, backup_id=backup_id, writes_done=done,
                           cleanup_error=sent.cleanup_error, diff=the_plan.diff(role),
                           msg=f"unexpected error ({type(exc).__name__}) after the write request was answered: "
                               f"{' '.join(str(exc).split())[:300]}; the writes that happened: "
                               f"{'; '.join(done) or 'none'}; backup {backup_id}")
        if sent.cleanup_error is not None:
            done = writes_done(ops, results)
            applied.failed = True
            applied.cleanup_error = sent.cleanup_error
            applied.writes_done = done
            applied.diff = the_plan.diff(role)
            before = f"; {applied.msg}" if applied.msg else ""
            applied.msg = (f"{sent.cleanup_error}{before}; the writes that happened: {'; '.join(done) or 'none'}"
                           + (f"; backup {backup_id}" if applied.backup_id else ""))
        return applied

    def _applied(self, the_plan: Plan, role: str, backup_id: str, results: list[dict[str, t.Any]],
                 extra_reads: list[dict[str, t.Any]] | None,
                 verify: t.Callable[[Outcome, list[dict[str, t.Any]]], list[str]] | None) -> Applied:
        """What the write call's results say, and the put-back call when it failed."""
        done = outcome(the_plan, results)
        extra_count = len(extra_reads or [])
        extra_results = results[len(results) - extra_count:] if extra_count else []
        if done.backup is None:  # nothing was written
            return Applied(changed=False, failed=True, msg=done.failure, extra_results=extra_results, outcome=done)
        applied = Applied(changed=True, backup_id=backup_id, backup_path=done.backup.get("path"),
                          extra_results=extra_results, outcome=done)
        if done.ok and verify is not None:
            try:
                problems = verify(done, extra_results)
            except Exception as exc:  # a check that cannot be made is a failed check: put back
                problems = [f"the check after the writes failed ({type(exc).__name__}): {exc}"]
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
        put_back = self.send_writes(done.restore_ops + value_readback_ops(the_plan))
        if put_back.unconfirmed is not None:
            applied.restored = None
            applied.changed_unknown = True
            applied.diff = the_plan.diff(role)
            applied.msg = f"{done.failure}; putting the previous values back: " + unconfirmed_message(
                put_back.unconfirmed, backup_id, "the put-back request")
            return applied
        problems = restore_failures(done.restore_ops, (put_back.results or [])[:len(done.restore_ops)])
        applied.restored = not problems
        if problems:
            applied.msg = (f"{done.failure}; putting the previous values back from backup {backup_id} ALSO failed: "
                           f"{'; '.join(problems)} - run {ROLLBACK.format(backup_id)}")
        else:
            applied.msg = f"{done.failure}; every value this run changed was put back from backup {backup_id}"
        if put_back.cleanup_error is not None:
            applied.msg += f"; after putting them back, {put_back.cleanup_error}"
        return applied
