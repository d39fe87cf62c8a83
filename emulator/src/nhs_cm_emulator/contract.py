"""The runner's operation contract as the emulator answers it: the protocol number, the error
kinds, each operation's request and reply fields, and which operations write.

The source is the collection's plugins/plugin_utils/_runner/protocol.py (docs/runner-protocol.md);
emulator/tests/test_commands.py checks that these tables are the same, and emulator/tests/test_ops.py
that every operation here has a handler (read_ops.py or write_ops.py, joined in ops.py). This
module imports nothing of the emulator, so the scenario checker (``behaviour.slow_ops`` names
operations), the operations and the request handling all read the one table.
"""

from __future__ import annotations

PROTOCOL = 1
RUNNER = "nhs_cm"
#: The start of a compressed reply line (REPLY_GZIP_PREFIX of the collection's _runner/protocol.py).
REPLY_GZIP_PREFIX = b"NHS-CM-GZIP:"
ERROR_KINDS = ("access_denied", "not_found", "invalid_request", "timeout", "failed", "forbidden", "skipped",
               "busy")

#: Each operation's request fields (besides ``op``), reads first, then writes, in the protocol's order.
REQUEST_FIELDS: dict[str, tuple[str, ...]] = {
    "reg_read": ("key", "view", "depth", "names"),
    "process_list": (),
    "service_query": ("names", "display_names"),
    "tcp_listeners": ("ports",),
    "http_get": ("url", "timeout_ms"),
    "file_info": ("paths",),
    "session_list": (),
    "os_info": (),
    "user_hives_read": ("paths", "include_offline"),
    "gpo_registry_settings": ("key_prefixes",),
    "browser_site_settings": ("types", "max_bytes", "include_offline"),
    "reg_write": ("key", "view", "name", "type", "data"),
    "reg_delete": ("key", "view", "name"),
    "reg_delete_key": ("key", "view"),
    "backup_save": ("id", "entries"),
    "backup_load": ("id",),
    "backup_list": (),
    "service_set": ("name", "start_mode", "state", "timeout_ms", "listen_ports", "listen_wait_ms"),
    "task_run": ("name", "user", "session", "command", "arguments", "wait_ms"),
    "process_stop": ("pid", "image"),
    "file_list": ("dir", "pattern"),
}
#: Each operation's reply fields (besides ``ok``).
REPLY_FIELDS: dict[str, tuple[str, ...]] = {
    "reg_read": ("exists", "values", "subkeys"),
    "process_list": ("processes", "user_error"),
    "service_query": ("services",),
    "tcp_listeners": ("listeners",),
    "http_get": ("status", "body", "error"),
    "file_info": ("files",),
    "session_list": ("sessions",),
    "os_info": ("product", "version", "computer_name", "emulated"),  # emulated: always true here
    "user_hives_read": ("profiles",),
    "gpo_registry_settings": ("settings", "errors"),
    "browser_site_settings": ("files",),
    "reg_write": ("previous", "created_key"),
    "reg_delete": ("existed",),
    "reg_delete_key": ("deleted", "reason"),
    "backup_save": ("id", "path", "missing_keys"),
    "backup_load": ("backup",),
    "backup_list": ("backups",),
    "service_set": ("name", "display_name", "state", "start_mode", "previous_state", "previous_start_mode"),
    "task_run": ("started", "pid", "last_result", "deleted"),
    "process_stop": ("found", "stopped"),
    "file_list": ("files",),
}
OPERATIONS = tuple(REQUEST_FIELDS)
#: The operations that change a host (``write_errors: stop`` skips those after a failed one).
WRITE_OPERATIONS = ("reg_write", "reg_delete", "reg_delete_key", "backup_save", "service_set", "task_run",
                    "process_stop")


class OpError(Exception):
    """An operation's error result: kind is one of ERROR_KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid(op: str, field: str, problem: str) -> OpError:
    """The ``invalid_request`` error of an operation's field."""
    return OpError("invalid_request", f"{op}: {field}: {problem}")
