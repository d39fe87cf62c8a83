# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base class of the collection's action plugins: send the runner, get one result per op.

``RunnerAction.run_ops(ops)`` sends ONE WinRM command: the bootstrap ``protocol.BOOTSTRAP``
encoded on the command line, and the runner plus the request JSON on standard input. It is the
way ``ansible.windows.win_reboot`` runs its scripts (``_shell._encode_script`` then
``_low_level_execute_command``); ansible's connection plugin sees the encoded prefix and does
not encode it again. Right now it should only be used in this collection as the interface is
not final and could be subject to change.

A call that carries writes (``run_ops(..., writes=True)``) connects first: a failure there is an
ordinary one (nothing was sent). A transport failure after that (the connection dropped, a
timeout while waiting for the answer) raises ``WriteUnconfirmed``: the request may have reached
the host and run, so whether it changed the host is unknown, and the caller says so.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import functools
import pathlib
import re
import typing as t

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import guard_subclass
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.assembly import join_runner
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.connection_errors import describe
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import RUNNER_FILES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import BOOTSTRAP, RunnerError
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import parse_reply
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import build_stdin


class WriteUnconfirmed(RunnerError):
    """A request with writes was sent, but its answer never came back (the connection dropped, a
    timeout while waiting): it may have run, so whether the host changed is unknown."""


#: The host code's folder: one file per concern (RUNNER_FILES, docs/security.md).
RUNNER_DIR = pathlib.Path(__file__).parent


@functools.lru_cache(maxsize=1)
def runner_text() -> str:
    """The host code (every file of ``RUNNER_DIR`` in ``RUNNER_FILES`` order), read once per process."""
    return join_runner([(name, (RUNNER_DIR / name).read_text(encoding="utf-8")) for name in RUNNER_FILES])


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


#: What a trust's engineer checks for each Kerberos failure of the winrm connection (docs/user-guide.md,
#: section 10): (words of the error, words it must also have, hint). kinit's own messages say enough.
KERBEROS_HINTS = (
    ("not found in Kerberos database", "kerberos: Server ", "no SPN for the name the host is reached by: use "
     "its DNS name as the domain knows it, not an address or an alias"),
    ("the specified credentials were rejected", "kerberos:", "the PC refused the ticket: is the account in its "
     "Administrators group, its clock within 5 minutes of the domain's, and the name this PC's?"),
    ("Ticket expired", "kerberos:", "kinit again, or set ansible_password so that Ansible gets its own tickets"),
    ("in cache collection", "kerberos:", "no ticket for this account: kinit first, or set ansible_password so "
     "that Ansible gets its own tickets"),
    ("No Kerberos credentials available", "kerberos:", "no ticket: kinit first, or set ansible_password so that "
     "Ansible gets its own tickets"),
)
#: The (text, code) pairs of a pykerberos GSS error: ``(('major text', n), ('minor text', m))``.
_GSS_PAIR = re.compile(r"""\((?:'([^']*)'|"([^"]*)"), -?\d+\)""")


def kerberos_reason(text: str) -> str:
    """A Kerberos connection error as one line that says what failed and what to check.

    pykerberos' tuple-shaped GSS errors become their telling message (the minor status, else the
    major), once; the usual causes are added to the errors that do not name them.
    """
    if "authGSSClient" in text:
        pairs = [single or double for single, double in _GSS_PAIR.findall(text)]
        if len(pairs) >= 2:
            major, minor = pairs[0], pairs[1]
            text = f"kerberos: {minor if minor and minor != 'Success' else major}"
    for words, needs, hint in KERBEROS_HINTS:
        if words in text and needs in text:
            return f"{text} ({hint})"
    return text


def _reason(exc: BaseException) -> str:
    raw = " ".join(str(exc).split()) or type(exc).__name__
    text = kerberos_reason(raw)  # a Kerberos failure: what to check
    readable = describe(text) if text == raw else None  # "connection refused on 5985", ...
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

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        guard_subclass(cls)  # an unexpected exception is one line for the host (_controller_action)

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

    def _connect_before_writes(self) -> None:
        """Open the connection before a request with writes is sent, so that a failure to reach
        the host is told apart from a failure after the request went out."""
        connect = getattr(self._connection, "_connect", None)
        if not callable(connect):
            return
        try:
            connect()
        except _transport_errors() as exc:
            raise AnsibleConnectionFailure(_reason(exc)) from exc

    def run_ops(self, ops: list[dict[str, t.Any]], write_errors: str = "continue",
                writes: bool = False, stdin: bytes | None = None) -> list[dict[str, t.Any]]:
        """Validate ``ops``, run them in ONE runner call and return one result per op.

        ``write_errors="stop"``: the runner skips every write operation after a failed one
        (docs/runner-protocol.md); the write path (``_changes``) uses it. ``writes``: the request
        changes the host (see the module docstring).

        Raises ``RequestError`` for an invalid op, ``AnsibleConnectionFailure`` (one readable line;
        the host is then unreachable) when the command does not get through (with ``writes``:
        before it was sent), ``WriteUnconfirmed`` with ``writes`` when it failed after it was sent,
        ``CleanupError`` (with every result) when the ops ran but the runner's cleanup failed, and
        ``RunnerError`` when the runner's reply is unusable or it refused the request (``busy``:
        another run holds the host). A failed op is an ``ok: false`` result.
        """
        if stdin is None:  # else ``stdin`` is ``build_stdin(runner_text(), ops)``, made by the caller
            stdin = build_stdin(runner_text(), ops, write_errors=write_errors)  # validates ops first
        self._require_powershell()
        command = self._connection._shell._encode_script(BOOTSTRAP, as_list=False, strict_mode=False,
                                                         preserve_rc=False)
        if writes:
            self._connect_before_writes()
        try:
            # sudoable=False: a become wrapper would re-encode the command and drop stdin.
            response = self._low_level_execute_command(command, in_data=stdin, sudoable=False)
        except _transport_errors() as exc:
            if writes:
                raise WriteUnconfirmed(f"{_reason(exc)} after the write request was sent") from exc
            # The host could not be reached (refused, credentials rejected, timed out, dropped):
            # Ansible reports it UNREACHABLE, with this one readable line.
            raise HostUnreachable(_reason(exc)) from exc
        except AnsibleError as exc:
            text = " ".join(str(exc).split())[:300]
            if writes:
                raise WriteUnconfirmed(f"the connection failed after the write request was sent: {text}") from exc
            raise RunnerError(f"cannot run the runner on the host: {text}") from exc
        return parse_reply(response.get("stdout"), response.get("stderr"), response.get("rc"), ops)
