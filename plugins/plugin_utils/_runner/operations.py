# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The operations of runner protocol v1 (docs/runner-protocol.md) and the host code each one needs.

``OPERATIONS`` lists every operation with its request fields (type, required or default,
allowed values) and reply fields; ``WRITE_OPERATIONS`` are the ones that change the host.
``RUNNER_FILES`` are the host code's files and ``RUNNER_SECTIONS`` the regions of them each
operation needs. The host code (``_runner/*.ps1``) and the emulator are tested against these
tables; ``request.py`` checks requests and ``reply.py`` replies with them.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t


def _f(type_: str, description: str, *, required: bool = False, default: t.Any = None,
       choices: t.Sequence[t.Any] | None = None, minimum: int | None = None,
       maximum: int | None = None) -> dict[str, t.Any]:
    field: dict[str, t.Any] = {"type": type_, "required": required, "default": default,
                               "description": description}
    if choices is not None:
        field["choices"] = list(choices)
    if minimum is not None:
        field["min"] = minimum
    if maximum is not None:
        field["max"] = maximum
    return field


def _r(type_: str, description: str, items: dict[str, str] | None = None) -> dict[str, t.Any]:
    field: dict[str, t.Any] = {"type": type_, "description": description}
    if items is not None:
        field["items"] = items
    return field


#: Every operation of protocol v1. ``request``: field -> {type, required, default, description,
#: [choices], [min], [max]}; types are ``str``, ``int``, ``bool``, ``list[str]``, ``list[int]`` and
#: ``list[path_depth]`` (a list of ``[str, int]`` pairs).
#: ``reply``: field -> {type, description, [items]}; ``items`` names the keys of each element
#: of a list field. Every result also carries ``ok: true``; an error result is
#: ``{ok: false, error: <one of ERROR_KINDS>, message}``.
OPERATIONS: dict[str, dict[str, t.Any]] = {
    "reg_read": {
        "description": "Read one registry key's values and, to depth, its subkeys.",
        "request": {
            "key": _f("str", "HKLM\\... or HKU\\... (HKCU is refused); case-insensitive; no trailing backslash; "
                      "HKU\\.DEFAULT_PROFILE\\... is the default profile's hive, loaded for the request",
                      required=True),
            "view": _f("str", "registry view", default="64", choices=("64", "32")),
            "depth": _f("int", "levels of subkeys to read", default=0, minimum=0, maximum=4),
            "names": _f("list[str]", "value names to return; absent or null = all values", default=None),
        },
        "reply": {
            "exists": _r("bool", "whether the key exists"),
            "values": _r("dict", "{name: {type, data}}; the default value is named \"\""),
            "subkeys": _r("dict", "{name: node or null}; a node is {values, subkeys[, error]}; null = below depth"),
        },
    },
    "process_list": {
        "description": "List the running processes.",
        "request": {},
        "reply": {
            "processes": _r("list", "one element per process", {
                "pid": "int", "name": "str", "image": "str|null", "session": "int",
                "user": "str|null", "version": "str|null",
            }),
            "user_error": _r("str|null", "why the processes' owners could not be read (every user is then "
                             "null and means unknown, never 'nobody'), or null"),
        },
    },
    "service_query": {
        "description": "Query Windows services by name and/or display name (both absent = all).",
        "request": {
            "names": _f("list[str]", "service names (case-insensitive)", default=None),
            "display_names": _f("list[str]", "display names (case-insensitive)", default=None),
        },
        "reply": {
            "services": _r("list", "one element per matching service", {
                "name": "str", "display_name": "str", "state": "str", "start_mode": "str",
                "image": "str|null", "pid": "int",
            }),
        },
    },
    "tcp_listeners": {
        "description": "List listening TCP sockets.",
        "request": {
            "ports": _f("list[int]", "ports to report; absent = every listener", default=None),
        },
        "reply": {
            "listeners": _r("list", "one element per listening socket",
                            {"address": "str", "port": "int", "pid": "int"}),
        },
    },
    "http_get": {
        "description": "GET a loopback URL; never fails on HTTP errors.",
        "request": {
            "url": _f("str", "http(s) URL whose host is localhost, 127.0.0.1 or [::1]", required=True),
            "timeout_ms": _f("int", "timeout in milliseconds", default=2000, minimum=100, maximum=30000),
        },
        "reply": {
            "status": _r("int|null", "HTTP status, or null when nothing answered"),
            "body": _r("str|null", "at most 4096 characters of the body, or null"),
            "error": _r("str|null", "why nothing answered (e.g. connection refused, timeout), or null"),
        },
    },
    "file_info": {
        "description": "Tell whether files exist and their file versions.",
        "request": {
            "paths": _f("list[str]", "absolute paths", required=True),
        },
        "reply": {
            "files": _r("list", "one element per requested path, in request order",
                        {"path": "str", "exists": "bool", "version": "str|null"}),
        },
    },
    "session_list": {
        "description": "List interactive sessions that have a user, from the process list: the owner of the "
                       "session's explorer.exe, else of its processes owned by a person (USER_SID_PATTERN); "
                       "never session 0. Nothing is compiled on the host, so the connection state is not known.",
        "request": {},
        "reply": {
            "sessions": _r("list", "one element per session, sorted by id", {
                "id": "int", "user": "str", "sid": "str|null",
            }),
        },
    },
    "os_info": {
        "description": "Describe the operating system.",
        "request": {},
        "reply": {
            "product": _r("str", "e.g. Windows 10 Enterprise"),
            "version": _r("str", "e.g. 10.0.19045"),
            "computer_name": _r("str", "the computer's NetBIOS name"),
            "emulated": _r("bool", "true only when the emulator answered; the real runner says false"),
        },
    },
    "user_hives_read": {
        "description": "List people's profiles (ProfileList and HKU; SIDs S-1-5-21-* and S-1-12-1-*) and read "
                       "keys of each one's registry hive; with include_offline, load the hive of a profile that "
                       "is not loaded under a unique HKU mount point, read it and unload it, even on failure.",
        "request": {
            "paths": _f("list[path_depth]", "[[key path relative to the hive root, depth 0..4], ...]; may be "
                        "empty (then only the profiles are listed and no hive is loaded)", required=True),
            "include_offline": _f("bool", "also read the hives of profiles that are not loaded", default=False),
        },
        "reply": {
            "profiles": _r("list", "one element per profile, sorted by SID", {
                "sid": "str", "user": "str|null", "path": "str|null", "loaded": "bool",
                "mounted_as": "str|null", "error": "str|null", "keys": "dict",
            }),
        },
    },
    "gpo_registry_settings": {
        "description": "Registry-based Group Policy settings in effect (Resultant Set of Policy, precedence 1) "
                       "for the computer and each user RSoP knows, with the GPO that sets each value.",
        "request": {
            "key_prefixes": _f("list[str]", "registry keys relative to the hive root (e.g. "
                               "SOFTWARE\\Policies\\Google\\Chrome); a setting is returned when its key is "
                               "one of them or below one; absent = every setting; empty = none", default=None),
        },
        "reply": {
            "settings": _r("list", "one element per policy value", {
                "scope": "str", "sid": "str|null", "key": "str", "name": "str", "gpo": "str",
            }),
            "errors": _r("list", "RSoP user namespaces that could not be read, as '<namespace>: <reason>'"),
        },
    },
    "browser_site_settings": {
        "description": "Read the site exceptions people keep in Chrome and Edge: for each person's profile folder "
                       "(ProfileList, never a path from the request; signed in, i.e. the hive is loaded, unless "
                       "include_offline) and each browser (AppData\\Local\\Google\\Chrome\\User Data, "
                       "AppData\\Local\\Microsoft\\Edge\\User Data), 'Local State' (its profile.info_cache "
                       "names the browser profiles) and each profile's 'Preferences', of which only "
                       "profile.content_settings.exceptions.<type> is returned. A file larger than max_bytes, not a "
                       "JSON object, or reached through a link (reparse point) is an error of that file.",
        "request": {
            "types": _f("list[str]", "content-setting preference names (e.g. local_network_access): lowercase "
                        "letters and '_'", required=True),
            "max_bytes": _f("int", "the largest file read", default=5 * 1024 * 1024, minimum=1024,
                            maximum=64 * 1024 * 1024),
            "include_offline": _f("bool", "also read the profiles of people who are not signed in", default=False),
        },
        "reply": {
            "files": _r("list", "per person (by SID) and browser: its Local State (profile null), then the "
                        "Preferences of each profile Local State lists", {
                            "sid": "str", "browser": "str", "profile": "str|null", "path": "str", "exists": "bool",
                            "modified": "str|null", "error": "str|null", "exceptions": "dict|null",
                        }),
        },
    },
}

#: Registry value types a write may use (REG_NONE is read-only here).
WRITE_REG_TYPES = ("REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY")
#: The write operations (docs/runner-protocol.md, "Write operations"). Each checks its target
#: against the allow-list in the runner itself; with the request field ``write_errors: stop``,
#: every write operation after a failed one is ``skipped`` (reads still run).
WRITE_OPERATIONS: dict[str, dict[str, t.Any]] = {
    "reg_write": {
        "description": "Set one registry value, creating missing keys; only under the keys the allow-list names.",
        "request": {
            "key": _f("str", "HKLM\\... or HKU\\...; must be under a key of the write allow-list", required=True),
            "view": _f("str", "registry view", default="64", choices=("64", "32")),
            "name": _f("str", "value name (\"\" is the default value)", required=True),
            "type": _f("str", "value type", required=True, choices=WRITE_REG_TYPES),
            "data": _f("reg_data", "string (SZ, EXPAND_SZ), list of strings (MULTI_SZ), unsigned int "
                       "(DWORD, QWORD) or lowercase hex (BINARY)", required=True),
        },
        "reply": {
            "previous": _r("dict|null", "{type, data} the value had before, or null when it did not exist"),
            "created_key": _r("bool", "whether the key was created"),
        },
    },
    "reg_delete": {
        "description": "Delete one registry value (never a key); a missing value is not an error.",
        "request": {
            "key": _f("str", "HKLM\\... or HKU\\...; must be under a key of the write allow-list", required=True),
            "view": _f("str", "registry view", default="64", choices=("64", "32")),
            "name": _f("str", "value name", required=True),
        },
        "reply": {
            "existed": _r("bool", "whether the value existed (and was deleted)"),
        },
    },
    "reg_delete_key": {
        "description": "Delete one EMPTY key (no values, no subkeys) that a backup recorded as missing; "
                       "a key with content is left alone.",
        "request": {
            "key": _f("str", "a key of the write allow-list or one of its vendor parents", required=True),
            "view": _f("str", "registry view", default="64", choices=("64", "32")),
        },
        "reply": {
            "deleted": _r("bool", "whether the key was deleted"),
            "reason": _r("str|null", "why not: 'does not exist' or 'not empty'; null when deleted"),
        },
    },
    "backup_save": {
        "description": "Save a backup on the host (%ProgramData%\\nhs_cm\\backups\\<id>.json) and record which "
                       "keys of its registry entries do not exist yet. The folder is created with a protected ACL "
                       "(SYSTEM and Administrators only, no inheritance); a folder that is a reparse point or not "
                       "owned by SYSTEM or Administrators is refused (forbidden).",
        "request": {
            "id": _f("str", "backup id: 1 to 80 letters, digits, '_' or '-'; must not exist yet", required=True),
            "entries": _f("list[dict]", "the previous state of everything the run will change "
                          "({kind: reg|service, ...}, docs/remediation.md)", required=True),
        },
        "reply": {
            "id": _r("str", "the backup id"),
            "path": _r("str", "the backup file on the host"),
            "missing_keys": _r("list", "registry keys of the entries that do not exist, deepest last",
                               {"key": "str", "view": "str"}),
        },
    },
    "backup_load": {
        "description": "Load one backup saved on the host; a file that is a reparse point or not owned by "
                       "SYSTEM or Administrators is refused (forbidden). The controller picks 'latest' from "
                       "backup_list.",
        "request": {
            "id": _f("str", "backup id", required=True),
        },
        "reply": {
            "backup": _r("dict", "{id, saved_at, entries, missing_keys} as saved"),
        },
    },
    "backup_list": {
        "description": "List the backup files on the host, oldest first by the time the file system gives "
                       "(never by what a file says); one that cannot be used says why in 'error'.",
        "request": {},
        "reply": {
            "backups": _r("list", "one element per *.json file of the backup folder", {
                "id": "str", "saved_at": "str", "entries": "int|null", "path": "str", "error": "str|null",
            }),
        },
    },
    "service_set": {
        "description": "Set the start mode and/or state of the NHS Port Service or the Smart Card service "
                       "(the only services of the allow-list); waits for the state (error timeout when it does "
                       "not settle in time).",
        "request": {
            "name": _f("str", "service name (not display name)", required=True),
            "start_mode": _f("str", "new start mode; absent = unchanged", default=None,
                             choices=("auto", "manual", "disabled")),
            "state": _f("str", "wanted state; started/stopped do nothing when it is already so", required=True,
                        choices=("started", "stopped", "restarted")),
            "timeout_ms": _f("int", "how long to wait for the state", default=30000, minimum=1000, maximum=120000),
            "listen_ports": _f("list[int]", "after a start/restart, wait for a listener on one of these ports",
                               default=None),
            "listen_wait_ms": _f("int", "how long to wait (polling) for that listener; on timeout the op "
                                 "still succeeds and the read-back tells", default=0, minimum=0, maximum=120000),
        },
        "reply": {
            "name": _r("str", "service name"),
            "display_name": _r("str", "display name"),
            "state": _r("str", "state afterwards (one of SERVICE_STATES)"),
            "start_mode": _r("str", "start mode afterwards"),
            "previous_state": _r("str", "state before"),
            "previous_start_mode": _r("str", "start mode before"),
        },
    },
    "task_run": {
        "description": "Start a program in a user's interactive session: register a one-off scheduled task "
                       "named nhs_cm_* with an interactive principal (no stored password), run it, wait for the "
                       "program in that session, and delete the task even on failure.",
        "request": {
            "name": _f("str", "unique task name: 'nhs_cm_' and 1 to 64 letters, digits, '_' or '-'", required=True),
            "user": _f("str", "the SID of the session's user (the task's principal)", required=True),
            "session": _f("int", "the session the program must appear in", required=True, minimum=1,
                          maximum=65535),
            "command": _f("str", "absolute path of an existing .exe outside the Windows folder, in a folder "
                          "that only administrators can write (else forbidden, saying why)", required=True),
            "arguments": _f("str", "command-line arguments (at most 512 characters)", default=""),
            "wait_ms": _f("int", "how long to wait for the program", default=15000, minimum=0, maximum=120000),
        },
        "reply": {
            "started": _r("bool", "a new process of the command runs in the session"),
            "pid": _r("int|null", "its process id"),
            "last_result": _r("int|null", "the task's LastTaskResult (0 = ran; 267011 = has not run)"),
            "deleted": _r("bool", "whether the task was deleted"),
        },
    },
    "process_stop": {
        "description": "Stop one process of an interactive session (never session 0, never an image under the "
                       "Windows folder), identified by pid and image.",
        "request": {
            "pid": _f("int", "process id", required=True, minimum=1, maximum=2**31 - 1),
            "image": _f("str", "its full image path (must match)", required=True),
        },
        "reply": {
            "found": _r("bool", "whether that process (pid and image) existed"),
            "stopped": _r("bool", "whether it is gone now"),
        },
    },
    "file_list": {
        "description": "List the files of one folder (not recursive) that match a pattern, with file versions.",
        "request": {
            "dir": _f("str", "absolute folder path", required=True),
            "pattern": _f("str", "wildcard pattern of file names (* and ?)", default="*.exe"),
        },
        "reply": {
            "files": _r("list", "one element per file, sorted by path", {"path": "str", "version": "str|null"}),
        },
    },
}
OPERATIONS.update(WRITE_OPERATIONS)

#: The host code: the files of ``plugins/plugin_utils/_runner/``, joined in this order (the first starts
#: with ``RUNNER_MARKER`` and ``param``; the last dispatches and replies). Each file is one concern
#: with a header saying what it may read or write (docs/security.md).
RUNNER_FILES = ("common.ps1", "registry.ps1", "hives.ps1", "system.ps1", "processes.ps1", "services.ps1",
                "network.ps1", "gpo.ps1", "writes.ps1", "backup.ps1", "programs.ps1", "dispatch.ps1")
#: The regions of the host code (``# region: <name>``, running to the next region or the end of its
#: file) each operation needs besides its own ``op:<name>``; every registry operation needs
#: ``user_hives`` (a key ``HKU\.DEFAULT_PROFILE\...`` loads the default profile's hive there). A
#: request's runner is the common part (every line outside a region: common.ps1 and dispatch.ps1),
#: these regions and its operations' regions; see ``runner_for_ops``.
#: tests/unit/plugins/plugin_utils/_runner/test_runner_ps1.py
#: checks that every operation is listed here and that its regions define every function and script
#: variable its code uses.
RUNNER_SECTIONS: dict[str, tuple[str, ...]] = {
    "reg_read": ("registry", "user_hives"),
    "process_list": ("processes", "file_version"),
    "service_query": ("service_state",),
    "tcp_listeners": ("listeners",),
    "http_get": ("http",),
    "file_info": ("file_version",),
    "session_list": (),
    "os_info": (),
    "user_hives_read": ("registry", "user_hives"),
    "gpo_registry_settings": ("rsop",),
    "browser_site_settings": ("registry", "user_hives"),
    "reg_write": ("registry", "user_hives", "write_allow"),
    "reg_delete": ("registry", "user_hives", "write_allow"),
    "reg_delete_key": ("registry", "user_hives", "write_allow"),
    "backup_save": ("registry", "user_hives", "backup"),
    "backup_load": ("backup",),
    "backup_list": ("backup",),
    "service_set": ("service_state", "listeners", "service_write"),
    "task_run": ("programs", "task"),
    "process_stop": ("programs",),
    "file_list": ("file_version",),
}

#: The values of a service's ``state`` and ``start_mode`` in ``service_query`` and ``service_set`` replies.
SERVICE_STATES = ("running", "stopped", "start_pending", "stop_pending", "continue_pending",
                  "pause_pending", "paused", "unknown")
SERVICE_START_MODES = ("auto", "manual", "disabled", "boot", "system")
#: The values of ``scope`` in the settings of a ``gpo_registry_settings`` reply.
GPO_SCOPES = ("machine", "user")
