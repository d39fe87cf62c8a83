"""Nothing is lost when the host or the network fails half-way through a remediation: the
cm_service action plugin against a fake host (hostsim's desktop, whose NHS Port Service is
stopped) whose runner calls fail the way real ones do.

- the runner's cleanup fails after the writes (``cleanup_error``): the task fails with the cleanup
  error, exactly the writes that happened, the diff and the backup id;
- the connection fails after the write request was sent: ``changed_unknown`` with the backup id;
  before it was sent: an ordinary failure, and no write request at all;
- another run holds the host (``busy``): one clear line;
- a service that does not settle in time: "did not reach running in 30 s", and it is put back.
"""

from __future__ import annotations

import typing as t

import pytest
from ansible.errors import AnsibleConnectionFailure
from fake_desktop import Desktop
from fake_runner import FakeHost, run

from ansible_collections.nhs_cm.remediation.plugins.action import cm_service, diagnose

CLEANUP = "could not unload HKU\\nhs_cm_0a1b2c3d4e5f: The process cannot access the file"


def remediate(desktop: Desktop, **failures: t.Any) -> tuple[dict[str, t.Any], FakeHost]:
    connection = FakeHost(desktop.answer, **failures)
    return run(cm_service, connection, {}), connection


def test_the_fake_desktop_is_fixed_in_one_read_and_one_write_call() -> None:
    desktop = Desktop()
    result, connection = remediate(desktop)
    assert "failed" not in result, result
    assert result["changed"] is True and result["findings_before"] == ["PORT_SERVICE_STOPPED"]
    assert result["findings_after"] == [] and len(connection.requests) == 2
    assert connection.ops(2)[:2] == ["backup_save", "service_set"]
    again, _connection = remediate(desktop)
    assert again["changed"] is False


def test_a_cleanup_error_after_the_writes_reports_exactly_which_writes_happened() -> None:
    desktop = Desktop()
    result, connection = remediate(desktop, cleanup_error_on={2: CLEANUP})
    backup_id = result["backup_id"]
    assert result["failed"] is True and result["changed"] is True and backup_id
    assert result["cleanup_error"] == f"the operations ran, but the runner's cleanup failed: {CLEANUP}"
    assert result["writes_done"] == [f"backup_save {backup_id}", "service_set NHSPortService"]
    assert result["diff"]["before"] == "service NHSPortService: state stopped, start mode auto\n"
    assert result["diff"]["after"] == "service NHSPortService: state running, start mode auto\n"
    assert result["msg"] == (f"the operations ran, but the runner's cleanup failed: {CLEANUP}; the writes that "
                             f"happened: backup_save {backup_id}; service_set NHSPortService; backup {backup_id}")
    assert "\n" not in result["msg"] and len(connection.requests) == 2
    assert desktop.port["state"] == "running"  # what was written stays written, and is said


def test_a_cleanup_error_after_a_failed_write_still_puts_the_values_back() -> None:
    desktop = Desktop(service_set={"ok": False, "error": "failed", "message": "the service stopped again (1067)"})
    result, connection = remediate(desktop, cleanup_error_on={2: CLEANUP})
    assert result["failed"] is True and result["restored"] is True
    assert result["writes_done"] == [f"backup_save {result['backup_id']}"]
    assert "service_set NHSPortService failed (failed): the service stopped again (1067)" in result["msg"]
    assert "every value this run changed was put back" in result["msg"]
    assert connection.ops(3)[0] == "service_set"  # the put-back call


@pytest.mark.parametrize("failure", [AnsibleConnectionFailure("winrm connection error: connection reset by peer"),
                                     TimeoutError("read timed out after 60 s")])
def test_a_transport_failure_after_the_write_request_was_sent_is_changed_unknown(failure: BaseException) -> None:
    desktop = Desktop()
    result, connection = remediate(desktop, raise_on={2: failure})
    backup_id = result["backup_id"]
    assert result["failed"] is True and result["changed_unknown"] is True and backup_id
    assert result["msg"].startswith("changed: unknown - the write request may have run on the host, but no answer "
                                    "came back (")
    assert f"roll back with playbooks/rollback.yml -e backup_id={backup_id}" in result["msg"]
    assert "\n" not in result["msg"] and result["diff"]["after"].startswith("service NHSPortService: state running")
    assert len(connection.requests) == 2 and connection.connects == 1


def test_a_failure_before_the_write_request_was_sent_is_an_ordinary_one() -> None:
    desktop = Desktop()
    connection = FakeHost(desktop.answer)

    def refused() -> None:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    connection._connect = refused  # type: ignore[method-assign]
    with pytest.raises(AnsibleConnectionFailure, match=r"connection refused"):
        run(cm_service, connection, {})
    assert [request["ops"][0]["op"] for request in connection.requests] == ["reg_read"]  # the read call only
    assert desktop.writes == []


BUSY = {"runner": "nhs_cm", "protocol": 1, "ok": False, "error": "busy",
        "message": "nhs_cm run 4242 (nhs_cm.remediation.cm_service) holds the host since 10:02:11"}
BUSY_LINE = ("another run of nhs_cm.remediation holds this PC, so nothing was done; run again when it has "
             "finished (nhs_cm run 4242 (nhs_cm.remediation.cm_service) holds the host since 10:02:11)")


@pytest.mark.parametrize("plugin", [cm_service, diagnose])
def test_busy_is_one_clear_line(plugin: t.Any) -> None:
    connection = FakeHost(Desktop().answer, reply_on={1: BUSY})
    result = run(plugin, connection, {})
    assert result["failed"] is True and result["msg"] == BUSY_LINE


def test_busy_on_the_write_call_changes_nothing_and_says_so() -> None:
    desktop = Desktop()
    result, connection = remediate(desktop, reply_on={2: BUSY})
    assert result["failed"] is True and result["msg"] == BUSY_LINE
    assert "changed_unknown" not in result and len(connection.requests) == 2


def test_a_service_that_does_not_settle_did_not_reach_its_state_and_is_put_back() -> None:
    desktop = Desktop(service_set={"ok": False, "error": "timeout", "message": "the service is start_pending"})
    result, connection = remediate(desktop)
    assert result["failed"] is True and result["restored"] is True
    assert result["msg"].startswith("service NHSPortService did not reach running in 30 s: the service is "
                                    "start_pending; every value this run changed was put back")
    assert "failed (timeout)" not in result["msg"]
    assert connection.ops(3)[0] == "service_set" and connection.requests[2]["ops"][0]["state"] == "stopped"
