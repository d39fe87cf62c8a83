# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base class of the collection's action plugins that run on the controller only (report,
report_merge, waivers): no connection to the host, nothing transferred, the same in check mode.

``guard_run`` is shared by every action plugin of the collection (this base class and
``_runner.action.RunnerAction`` apply it to each subclass's ``run``): an exception the plugin did
not expect becomes one readable line for that host - the module, the exception's type and its
message - instead of Ansible's traceback dump. Never the task's arguments or variables (no
secrets); the traceback only with ``-vvv``. Ansible's own outcomes pass through: an unreachable
host (``AnsibleConnectionFailure``) and ``AnsibleActionFail``/``AnsibleActionSkip``.

``validate_args(spec, args, *checks)`` is how diagnose and the remediation modules check their arguments (the
argument spec, as ``ActionBase.validate_argument_spec`` does, then each module's own checks), so
that bad input fails with one line naming every field wrong and what is allowed."""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import functools
import traceback
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleActionSkip, AnsibleConnectionFailure
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()
#: Exceptions Ansible turns into a result of its own (unreachable, failed, skipped): not caught.
PASS_THROUGH: tuple[type[BaseException], ...] = (AnsibleConnectionFailure, AnsibleActionFail, AnsibleActionSkip)
MAX_MESSAGE = 300

Run = t.Callable[..., dict[str, t.Any]]
#: A module's own check of its validated options: what is wrong (naming the field), or None.
Check = t.Callable[[dict[str, t.Any]], "str | None"]


def validate_args(spec: dict[str, dict[str, t.Any]], args: t.Mapping[str, t.Any], *checks: Check,
                  ) -> tuple[dict[str, t.Any] | None, str | None]:
    """(every option of ``spec``, None) or (None, one line naming the fields and what is allowed).

    ``args`` are checked against ``spec`` with ansible's ``ArgumentSpecValidator`` (what
    ``ActionBase.validate_argument_spec`` uses; every error, joined with "; "), then the validated
    options go through ``checks`` in order: the first that finds a problem gives the message.
    """
    result = ArgumentSpecValidator(spec).validate(dict(args))
    messages = [f"unsupported parameter(s): {e}" if isinstance(e, UnsupportedError) else str(e) for e in result.errors]
    if messages:
        return None, "; ".join(messages)
    options = {name: result.validated_parameters[name] for name in spec}
    for check in checks:
        problem = check(options)
        if problem:
            return None, problem
    return options, None


def unexpected(module: str, exc: BaseException) -> str:
    """One line for an exception nobody expected: the module, the exception's type and message."""
    text = " ".join(str(exc).split()) or "no message"
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE - 3] + "..."
    return f"{module}: unexpected error ({type(exc).__name__}): {text}"


def guard_run(run: Run) -> Run:
    """``run`` of an action plugin, turning an unexpected exception into a failed result with one line."""
    if getattr(run, "_nhs_cm_guarded", False):
        return run

    @functools.wraps(run)
    def guarded(self: ActionBase, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        try:
            return run(self, tmp, task_vars)
        except PASS_THROUGH:
            raise
        except Exception as exc:  # the point: one line per host, never a traceback dump
            module = str(getattr(self._task, "action", None) or type(self).__module__)
            display.vvv(f"{module}: {''.join(traceback.format_exception(exc))}")
            return {"failed": True, "changed": False, "msg": unexpected(module, exc)}

    guarded._nhs_cm_guarded = True  # type: ignore[attr-defined]
    return guarded


def guard_subclass(cls: type) -> None:
    """Guard ``run`` where ``cls`` defines it itself (its bases' are guarded already)."""
    if "run" in cls.__dict__:
        cls.run = guard_run(cls.__dict__["run"])  # type: ignore[attr-defined]


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        guard_subclass(cls)


def play_hosts(requested: list[str] | None, task_vars: dict[str, t.Any]) -> list[str]:
    """The hosts of option ``hosts`` when given, else every host of the play (``ansible_play_hosts_all``)."""
    return requested or list(task_vars.get("ansible_play_hosts_all") or [])
