"""An exception nobody expected in an action plugin is one readable line for that host (the module,
the exception's type and message), never a traceback dump and never the task's arguments; an
unreachable host stays unreachable; and an exception after the write request was answered loses
nothing (the writes that happened, the backup id), while one in the check after the writes puts
the values back."""

from __future__ import annotations

import importlib
import typing as t
from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from fake_desktop import Desktop
from fake_runner import FakeHost, run

from ansible_collections.nhs_cm.remediation.plugins.action import cm_service
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import unexpected
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate import cm_service_action
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate import write_action as _write_action

ROOT = Path(__file__).resolve().parents[4]
PLUGINS = sorted(p.stem for p in (ROOT / "plugins" / "action").glob("*.py") if p.stem != "__init__")
SECRET = "s3cr3t-Pa55word"


@pytest.mark.parametrize("name", PLUGINS)
def test_every_action_plugin_turns_an_unexpected_exception_into_one_line(name: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.action.{name}")

    def broken(self: ActionBase, tmp: t.Any = None, task_vars: t.Any = None) -> dict[str, t.Any]:
        raise KeyError("sessions")

    monkeypatch.setattr(ActionBase, "run", broken)
    result = run(plugin, FakeHost(lambda op: {"ok": True}), {"colour": SECRET})
    assert result == {"failed": True, "changed": False,
                      "msg": f"nhs_cm.remediation.{name}: unexpected error (KeyError): 'sessions'"}
    assert SECRET not in repr(result)


def test_the_line_is_one_line_and_short() -> None:
    message = unexpected("nhs_cm.remediation.diagnose", ValueError("line one\n  line two " + "x" * 500))
    assert "\n" not in message and len(message) < 400 and message.endswith("...")
    assert message.startswith("nhs_cm.remediation.diagnose: unexpected error (ValueError): line one line two x")


def test_an_unreachable_host_stays_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(self: ActionBase, tmp: t.Any = None, task_vars: t.Any = None) -> dict[str, t.Any]:
        raise AnsibleConnectionFailure("cannot run the runner on the host: connection refused")

    monkeypatch.setattr(ActionBase, "run", unreachable)
    with pytest.raises(AnsibleConnectionFailure):
        run(cm_service, FakeHost(lambda op: {"ok": True}), {})


def test_an_exception_after_the_write_request_was_answered_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: t.Any) -> t.Any:
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(_write_action, "outcome", broken)
    desktop = Desktop()
    connection = FakeHost(desktop.answer)
    result = run(cm_service, connection, {})
    backup_id = result["backup_id"]
    assert result["failed"] is True and result["changed"] is True and backup_id
    assert result["writes_done"] == [f"backup_save {backup_id}", "service_set NHSPortService"]
    assert result["msg"] == ("unexpected error (TypeError) after the write request was answered: 'NoneType' object "
                             f"is not subscriptable; the writes that happened: backup_save {backup_id}; service_set "
                             f"NHSPortService; backup {backup_id}")
    assert result["diff"]["after"].startswith("service NHSPortService: state running")


def test_an_exception_in_the_check_after_the_writes_puts_the_values_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: t.Any) -> t.Any:
        raise ValueError("5 results for 6 planned reads")

    monkeypatch.setattr(cm_service_action, "remaining", broken)
    desktop = Desktop()
    connection = FakeHost(desktop.answer)
    result = run(cm_service, connection, {})
    assert result["failed"] is True and result["restored"] is True
    assert result["msg"].startswith("the check after the writes failed (ValueError): 5 results for 6 planned reads; "
                                    "every value this run changed was put back")
    assert desktop.port["state"] == "stopped" and len(connection.requests) == 3
