"""A fake winrm connection for driving the collection's action plugins in unit tests.

``FakeHost(answer)`` answers every runner call the plugin sends: it unpacks the request from
standard input as the real connection would carry it, and replies with one result per op from
``answer(op)`` (a function of the op, as the runner would answer it). A test can also make one
call (by its number, from 1) fail the way a host or the network fails:

- ``raise_on={n: exc}``: the connection raises ``exc`` for call n (the WinRM stack's errors);
- ``reply_on={n: reply}``: call n gets this whole reply object instead (``busy``, ...);
- ``cleanup_error_on={n: text}``: call n's reply carries ``cleanup_error``.

``requests`` keeps every request, so a test can check what was sent, and that nothing was sent
after a failure. Not an emulator: it knows nothing of Windows; the test's ``answer`` does.
"""

from __future__ import annotations

import json
import types
import typing as t

from ansible.plugins.shell.powershell import ShellModule as PowerShell

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import split_stdin

Answer = t.Callable[[dict[str, t.Any]], dict[str, t.Any]]


class FakeHost:
    """Just enough of ansible's winrm connection for ``_low_level_execute_command``."""

    transport = "winrm"
    become = None
    allow_executable = False

    def __init__(self, answer: Answer, raise_on: dict[int, BaseException] | None = None,
                 reply_on: dict[int, dict[str, t.Any]] | None = None,
                 cleanup_error_on: dict[int, str] | None = None) -> None:
        self.answer = answer
        self.raise_on = raise_on or {}
        self.reply_on = reply_on or {}
        self.cleanup_error_on = cleanup_error_on or {}
        self._shell = PowerShell()
        self.requests: list[dict[str, t.Any]] = []
        self.connects = 0

    def get_option(self, name: str) -> t.Any:
        return {"remote_user": "Administrator"}[name]

    def _connect(self) -> FakeHost:
        self.connects += 1
        return self

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        assert in_data is not None
        request = split_stdin(in_data)[1]
        self.requests.append(request)
        number = len(self.requests)
        if number in self.raise_on:
            raise self.raise_on[number]
        reply = self.reply_on.get(number)
        if reply is None:
            reply = {"runner": "nhs_cm", "protocol": 1, "ok": True,
                     "results": [self.answer(op) for op in request["ops"]]}
            if number in self.cleanup_error_on:
                reply["cleanup_error"] = self.cleanup_error_on[number]
        return 0, (json.dumps(reply) + "\r\n").encode(), b""

    def ops(self, number: int) -> list[str]:
        """The op names of call ``number`` (from 1)."""
        return [op["op"] for op in self.requests[number - 1]["ops"]]


def make_action(plugin: t.Any, connection: FakeHost, args: dict[str, t.Any] | None = None,
                check_mode: bool = False, diff: bool = False) -> t.Any:
    """``plugin.ActionModule`` for a task with ``args`` on ``connection``."""
    task = types.SimpleNamespace(args=args or {}, async_val=0, check_mode=check_mode, diff=diff,
                                 action=f"nhs_cm.remediation.{plugin.__name__.rsplit('.', 1)[-1]}")
    play_context = types.SimpleNamespace(remote_user="Administrator", executable=None, no_log=False, diff=diff)
    return plugin.ActionModule(task, connection, play_context, loader=None, templar=None, shared_loader_obj=None)


def run(plugin: t.Any, connection: FakeHost, args: dict[str, t.Any] | None = None, **kwargs: t.Any
        ) -> dict[str, t.Any]:
    return make_action(plugin, connection, args, **kwargs).run(task_vars={"inventory_hostname": "pc-1"})
