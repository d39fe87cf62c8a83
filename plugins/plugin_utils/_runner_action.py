# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base class of the collection's action plugins: send the runner, get one result per op.

``RunnerAction.run_ops(ops)`` sends ONE WinRM command: the bootstrap of ``_protocol.BOOTSTRAP``
encoded on the command line, and the runner plus the request JSON on standard input. It is the
way ``ansible.windows.win_reboot`` runs its scripts (``_shell._encode_script`` then
``_low_level_execute_command``); ansible's connection plugin sees the encoded prefix and does
not encode it again. Right now it should only be used in this collection as the interface is
not final and could be subject to change.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import functools
import pathlib
import typing as t

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._connection_errors import describe
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._protocol import (
    BOOTSTRAP,
    RunnerError,
    build_stdin,
    parse_reply,
)

RUNNER_PATH = pathlib.Path(__file__).with_name("nhs_cm_runner.ps1")


@functools.lru_cache(maxsize=1)
def runner_text() -> str:
    """The runner script, read once per process."""
    return RUNNER_PATH.read_text(encoding="utf-8")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of the WinRM stack that mean "the command did not get through"."""
    errors: list[type[BaseException]] = [AnsibleConnectionFailure, TimeoutError, ConnectionError]
    try:
        import requests.exceptions

        errors.append(requests.exceptions.RequestException)
    except ImportError:  # pragma: no cover - requests comes with pywinrm
        pass
    try:
        import winrm.exceptions

        errors.append(winrm.exceptions.WinRMError)
    except ImportError:  # pragma: no cover - only the winrm connection needs pywinrm
        pass
    return tuple(errors)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    readable = describe(text)  # "connection refused on 5985", "credentials rejected", ...
    if readable is not None:
        return readable
    if len(text) > 300:
        text = text[:297] + "..."
    lowered = text.casefold()
    if "timed out" in lowered or "timeout" in lowered or isinstance(exc, TimeoutError):
        return f"the runner timed out: {text}"
    return f"cannot run the runner on the host: {text}"


class HostUnreachable(AnsibleConnectionFailure):
    """The host could not be reached: the message is one readable line; the error of the WinRM
    stack stays the cause (its traceback with -vvv), and ansible-core 2.19 does not append its text."""

    _include_cause_message = False

    @property
    def result_contribution(self) -> t.Mapping[str, object]:
        """ansible-core 2.19: the task's msg is this line, not "Task failed: <this line>"."""
        return {"unreachable": True, "msg": str(self)}

    @property
    def omit_exception_key(self) -> bool:
        """ansible-core 2.19 prints a task's exception as an [ERROR] block besides the host's line:
        only with -vvv, where the WinRM stack's own error and traceback help."""
        from ansible.utils.display import Display

        return Display().verbosity < 3


class RunnerAction(ActionBase):
    """An action plugin that reads (and later changes) a Windows host through the runner."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def _require_powershell(self) -> None:
        shell = getattr(self._connection, "_shell", None)
        family = getattr(shell, "SHELL_FAMILY", None)
        if family != "powershell":
            connection = getattr(self._connection, "transport", "unknown")
            raise RunnerError(
                f"this module needs a Windows host with the powershell shell, but the host uses the "
                f"{family or 'unknown'} shell over the {connection} connection; use "
                "ansible_connection=winrm (or psrp, or ssh with ansible_shell_type=powershell)"
            )

    def run_ops(self, ops: list[dict[str, t.Any]], write_errors: str = "continue") -> list[dict[str, t.Any]]:
        """Validate ``ops``, run them in ONE runner call and return one result per op.

        ``write_errors="stop"``: the runner skips every write operation after a failed one
        (docs/runner-protocol.md); the write path (``_changes``) uses it.

        Raises ``RequestError`` for an invalid op, ``AnsibleConnectionFailure`` (one readable line;
        the host is then unreachable) when the command does not get through, and ``RunnerError``
        when the runner's reply is unusable. A failed op is an ``ok: false`` result.
        """
        stdin = build_stdin(runner_text(), ops, write_errors=write_errors)  # validates ops first
        self._require_powershell()
        command = self._connection._shell._encode_script(BOOTSTRAP, as_list=False, strict_mode=False,
                                                         preserve_rc=False)
        try:
            # sudoable=False: a become wrapper would re-encode the command and drop stdin.
            response = self._low_level_execute_command(command, in_data=stdin, sudoable=False)
        except _transport_errors() as exc:
            # The host could not be reached (refused, credentials rejected, timed out, dropped):
            # Ansible reports it UNREACHABLE, with this one readable line.
            raise HostUnreachable(_reason(exc)) from exc
        except AnsibleError as exc:
            raise RunnerError(f"cannot run the runner on the host: {' '.join(str(exc).split())[:300]}") from exc
        return parse_reply(response.get("stdout"), response.get("stderr"), response.get("rc"), ops)
