# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The runner protocol v1 (docs/runner-protocol.md): the single source of truth.

``OPERATIONS`` lists every operation with its request fields (type, required or default,
allowed values) and reply fields. ``validate_ops`` checks a request before it is sent,
``build_stdin`` makes the runner's standard input and ``parse_reply`` turns what came back into
one result per operation, raising ``RunnerError`` with a one-line, readable reason otherwise.
The host code (``_runner/*.ps1``) and the emulator are tested against this table.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
import typing as t
import zlib
from urllib.parse import urlsplit

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._memo import memo, same
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._paths import ABSOLUTE_PATH

PROTOCOL = 1
RUNNER_NAME = "nhs_cm"
RUNNER_MARKER = "# NHS-CM-RUNNER v1"
BOOTSTRAP_MARKER = "# NHS-CM-BOOTSTRAP v1"
#: The line that separates the runner text from the request JSON on standard input.
SEPARATOR = "\0\0\0\0"
#: The start of the reply line when the request asked for a compressed reply (``compress``):
#: the rest of the line is the reply JSON, gzipped, in base64.
REPLY_GZIP_PREFIX = "NHS-CM-GZIP:"
#: ``forbidden``: the runner's write allow-list refused the target; ``skipped``: a write operation
#: not run because an earlier write of the same request failed (request ``write_errors: stop``).
#: ``busy``: another run of the collection holds the host (the runner's host-wide mutex).
ERROR_KINDS = ("access_denied", "not_found", "invalid_request", "timeout", "failed", "forbidden", "skipped",
               "busy")

#: The command-line script. It checks that PowerShell runs in FullLanguage mode (else it throws:
#: the error reaches the controller on stderr, since a constrained session could not even write a
#: reply), reads all of standard input the way ansible's bootstrap_wrapper does (``$input``, one
#: string per line), unpacks it when it is one line of base64 (gzip), splits it at the first
#: ``\0\0\0\0`` line, makes a script block of part one (the runner) and invokes it with part two
#: (the request JSON). Its other failures (bad base64 or gzip, no separator, a runner that does
#: not parse) are answered in the reply format, ASCII only, with exit code 1 (written to the console,
#: or as pipeline output in a remote runspace, as the runner's Write-Reply does). It is sent on every
#: call and ansible's ``_encode_script`` makes each character 2.67 bytes on the command line (UTF-16,
#: then base64), so it is written short: short names, no indentation, but no aliases, spaces
#: around operators, and safe under ``Set-StrictMode -Version Latest``.
BOOTSTRAP = r"""# NHS-CM-BOOTSTRAP v1
$ErrorActionPreference = 'Stop'
$m = $ExecutionContext.SessionState.LanguageMode
if ($m -ne 'FullLanguage') { throw "PowerShell runs in $m mode; the runner needs FullLanguage" }
$k = 'invalid_request'
$p = ''
try {
$t = @($input) -join "`n"
if ($t -match '^[A-Za-z0-9+/=]+$') {
$p = 'stdin is not base64 gzip: '
$z = [IO.MemoryStream]::new([Convert]::FromBase64String($t))
$z = [IO.Compression.GZipStream]::new($z, [IO.Compression.CompressionMode]::Decompress)
$t = [IO.StreamReader]::new($z).ReadToEnd()
$p = ''
}
$a = $t.IndexOf("`n`0`0`0`0`n", [StringComparison]::Ordinal)
if ($a -lt 0) { throw 'standard input has no separator line after the runner' }
$k = 'failed'
$p = 'the runner does not parse: '
$r = [ScriptBlock]::Create($t.Substring(0, $a))
}
catch {
$h = @{runner = 'nhs_cm'; protocol = 1; ok = $false; error = $k; results = @()}
$h['message'] = "$p$_" -replace '[^ -~]', '?'
$j = ConvertTo-Json -Compress -InputObject $h
if ($Host.Name -eq 'ConsoleHost') { [Console]::Out.Write($j) } else { Write-Output $j }
exit 1
}
& $r $t.Substring($a + 6)
exit $LASTEXITCODE
"""

_REG_HIVES = ("HKLM", "HKU")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


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
#: these regions and its operations' regions; see ``runner_for_ops``. tests/unit/test_runner_ps1.py
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
#: The request field ``write_errors``: ``continue`` (default: every operation runs) or ``stop``.
WRITE_ERRORS = ("continue", "stop")

SERVICE_STATES = ("running", "stopped", "start_pending", "stop_pending", "continue_pending",
                  "pause_pending", "paused", "unknown")
SERVICE_START_MODES = ("auto", "manual", "disabled", "boot", "system")
SESSION_STATES = ("active", "disconnected", "other")
GPO_SCOPES = ("machine", "user")
#: SIDs of people (domain and local accounts, and Microsoft Entra ID accounts): the profiles and
#: hives ``user_hives_read`` considers. Service SIDs, the system accounts and ``_Classes`` hives
#: never match.
USER_SID_PATTERN = r"^S-1-(?:5-21|12-1)-\d+-\d+-\d+-\d+$"


class ProtocolError(Exception):
    """Base class of the protocol's errors; ``str()`` is one readable line."""


class RequestError(ProtocolError, ValueError):
    """An operation that must not be sent, naming the op index and the field."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class RunnerError(ProtocolError):
    """The runner could not be run or its reply is unusable."""


class CleanupError(RunnerError):
    """Every operation ran and answered (``results``), but the runner's cleanup failed afterwards
    (``cleanup_error`` of the reply: a hive it could not unload); the controller reports which
    writes happened and fails the host."""

    def __init__(self, message: str, results: list[dict[str, t.Any]]) -> None:
        super().__init__(message)
        self.results = results


# ---------------------------------------------------------------------------------------------
# Request validation

def _is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_ok(type_: str, value: t.Any) -> bool:
    if type_ == "str":
        return isinstance(value, str)
    if type_ == "int":
        return _is_int(value)
    if type_ == "bool":
        return isinstance(value, bool)
    if type_ == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if type_ == "list[int]":
        return isinstance(value, list) and all(_is_int(v) for v in value)
    if type_ == "list[path_depth]":
        return isinstance(value, list) and all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and _is_int(v[1]) for v in value)
    if type_ == "list[dict]":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if type_ == "reg_data":
        return isinstance(value, str) or _is_int(value) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value))
    raise AssertionError(f"unknown field type {type_}")


def _allowed(spec: dict[str, t.Any]) -> str:
    if "choices" in spec:
        return "one of " + ", ".join(repr(c) for c in spec["choices"])
    if "min" in spec:
        return f"an integer from {spec['min']} to {spec['max']}"
    return {"str": "a string", "int": "an integer", "bool": "true or false",
            "list[str]": "a list of strings", "list[int]": "a list of integers",
            "list[path_depth]": "a list of [key path, depth] pairs", "list[dict]": "a list of mappings",
            "reg_data": "a string, an integer or a list of strings"}[spec["type"]]


def _check_field(where: str, name: str, spec: dict[str, t.Any], value: t.Any) -> str | None:
    if value is None:
        if spec["required"]:
            return f"{where}: field '{name}' is required ({_allowed(spec)})"
        return None
    if not _type_ok(spec["type"], value):
        return f"{where}: field '{name}' must be {_allowed(spec)}, not {value!r}"
    if "choices" in spec and value not in spec["choices"]:
        return f"{where}: field '{name}' must be {_allowed(spec)}, not {value!r}"
    if "min" in spec and not spec["min"] <= value <= spec["max"]:
        return f"{where}: field '{name}' must be {_allowed(spec)}, not {value!r}"
    return None


_KEY_RE = re.compile(r"^(?P<hive>[^\\]+)(?:\\[^\\]+)*$")


def _check_reg_key(value: str) -> str | None:
    match = _KEY_RE.fullmatch(value)
    if not match:
        return "must be HKLM\\<path> or HKU\\<path> without empty parts or a trailing backslash"
    hive = match.group("hive").upper()
    if hive in ("HKCU", "HKEY_CURRENT_USER"):
        return ("must not be HKCU: over WinRM that is the connecting account, not the desktop user; "
                "read HKU\\<SID> instead")
    if hive not in _REG_HIVES:
        return "must start with the hive abbreviation HKLM or HKU"
    return None


def _check_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    host = parts.netloc.rsplit("@", 1)[-1]
    host = re.sub(r":\d*$", "", host) if not host.endswith("]") else host
    if "@" in parts.netloc or host.lower() not in _LOOPBACK_HOSTS:
        return "must have the host localhost, 127.0.0.1 or [::1]"
    return None


_ABS_PATH_RE = ABSOLUTE_PATH


def _check_paths(value: list[str]) -> str | None:
    for path in value:
        if not _ABS_PATH_RE.match(path):
            return f"must hold absolute Windows paths (C:\\... or \\\\server\\share\\...), not {path!r}"
    return None


def _check_ports(value: list[int]) -> str | None:
    for port in value:
        if not 1 <= port <= 65535:
            return f"must hold ports from 1 to 65535, not {port!r}"
    return None


_HIVE_NAMES = ("HKLM", "HKU", "HKCU", "HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CURRENT_USER")


def _check_relative_key(path: str) -> str | None:
    if not re.fullmatch(r"[^\\]+(?:\\[^\\]+)*", path):
        return f"must hold key paths without empty parts or a leading or trailing backslash, not {path!r}"
    if path.split("\\", 1)[0].upper() in _HIVE_NAMES:
        return f"must hold key paths relative to the hive root (no hive name), not {path!r}"
    return None


def _check_path_depths(value: list[list[t.Any]]) -> str | None:
    for path, depth in value:
        problem = _check_relative_key(path)
        if problem:
            return problem
        if not 0 <= depth <= 4:
            return f"must hold depths from 0 to 4, not {depth!r} (for {path!r})"
    return None


def _check_key_prefixes(value: list[str]) -> str | None:
    for path in value:
        problem = _check_relative_key(path)
        if problem:
            return problem
    return None


#: A backup id: the name of its file in the backup folder (restore checks ``backup_id`` with it too).
BACKUP_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_TASK_NAME_RE = re.compile(r"^nhs_cm_[A-Za-z0-9_-]{1,64}$")


def _check_setting_types(value: list[str]) -> str | None:
    bad = [item for item in value if not re.fullmatch(r"[a-z_]{1,64}", item)]
    return f"has names that are not content-setting names: {bad!r}" if bad else None


def _check_backup_id(value: str) -> str | None:
    if BACKUP_ID_RE.fullmatch(value):
        return None
    return f"must be 1 to 80 letters, digits, '_' or '-', not {value!r}"


def _check_user_sid(value: str) -> str | None:
    if re.fullmatch(USER_SID_PATTERN, value):
        return None
    return f"must be the SID of a person's account (S-1-5-21-... or S-1-12-1-...), not {value!r}"


def _check_task_name(value: str) -> str | None:
    if _TASK_NAME_RE.fullmatch(value):
        return None
    return f"must be 'nhs_cm_' followed by 1 to 64 letters, digits, '_' or '-', not {value!r}"


def _check_file_pattern(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9 _.*?-]{1,64}", value):
        return None
    return f"must be a file-name wildcard of letters, digits, space, '_', '.', '-', '*' and '?', not {value!r}"


def _check_abs_path(value: str) -> str | None:
    if _ABS_PATH_RE.match(value):
        return None
    return f"must be an absolute Windows path (C:\\...), not {value!r}"


def _check_reg_data(op: dict[str, t.Any]) -> str | None:
    """The data of a reg_write against its type (the registry conventions above)."""
    vtype, data = op.get("type"), op.get("data")
    if vtype in ("REG_SZ", "REG_EXPAND_SZ") and not isinstance(data, str):
        return f"must be a string for {vtype}, not {data!r}"
    if vtype == "REG_MULTI_SZ" and not isinstance(data, list):
        return f"must be a list of strings for REG_MULTI_SZ, not {data!r}"
    if vtype in ("REG_DWORD", "REG_QWORD"):
        top = 2**32 if vtype == "REG_DWORD" else 2**64
        if not _is_int(data) or not 0 <= data < top:
            return f"must be an unsigned integer below {top} for {vtype}, not {data!r}"
    if vtype == "REG_BINARY" and not (isinstance(data, str) and re.fullmatch(r"(?:[0-9a-f]{2})*", data)):
        return f"must be lowercase hex, two digits per byte, for REG_BINARY, not {data!r}"
    return None


#: Checks that need several fields of one op: op -> (field, function returning a reason or None).
_OP_CHECKS: dict[str, tuple[str, t.Callable[[dict[str, t.Any]], str | None]]] = {
    "reg_write": ("data", _check_reg_data),
}

#: Checks beyond type and range: (op, field) -> function returning a reason or None.
_VALUE_CHECKS: dict[tuple[str, str], t.Callable[[t.Any], str | None]] = {
    ("reg_write", "key"): _check_reg_key,
    ("reg_delete", "key"): _check_reg_key,
    ("reg_delete_key", "key"): _check_reg_key,
    ("backup_save", "id"): _check_backup_id,
    ("backup_load", "id"): _check_backup_id,
    ("task_run", "user"): _check_user_sid,
    ("task_run", "name"): _check_task_name,
    ("task_run", "command"): _check_abs_path,
    ("file_list", "dir"): _check_abs_path,
    ("file_list", "pattern"): _check_file_pattern,
    ("reg_read", "key"): _check_reg_key,
    ("http_get", "url"): _check_url,
    ("file_info", "paths"): _check_paths,
    ("tcp_listeners", "ports"): _check_ports,
    ("service_set", "listen_ports"): _check_ports,
    ("user_hives_read", "paths"): _check_path_depths,
    ("gpo_registry_settings", "key_prefixes"): _check_key_prefixes,
    ("browser_site_settings", "types"): _check_setting_types,
}


def _validate_op(index: int, op: t.Any) -> dict[str, t.Any]:
    where = f"ops[{index}]"
    if not isinstance(op, dict):
        raise RequestError(f"{where}: an operation must be a mapping, not {type(op).__name__}", index)
    name = op.get("op")
    if name not in OPERATIONS:
        raise RequestError(f"{where}: field 'op' must be one of {', '.join(OPERATIONS)}, not {name!r}",
                           index, "op")
    where = f"{where} ({name})"
    spec = OPERATIONS[name]["request"]
    for field in op:
        if field != "op" and field not in spec:
            allowed = ", ".join(spec) or "no fields"
            raise RequestError(f"{where}: unknown field '{field}'; allowed: {allowed}", index, field)
    normalised: dict[str, t.Any] = {"op": name}
    for field, field_spec in spec.items():
        value = op.get(field)
        reason = _check_field(where, field, field_spec, value)
        if reason is None and value is not None and (name, field) in _VALUE_CHECKS:
            problem = _VALUE_CHECKS[(name, field)](value)
            reason = f"{where}: field '{field}' {problem}" if problem else None
        if reason:
            raise RequestError(reason, index, field)
        normalised[field] = field_spec["default"] if value is None else value
    if name in _OP_CHECKS:
        field, check = _OP_CHECKS[name]
        problem = check(normalised)
        if problem:
            raise RequestError(f"{where}: field '{field}' {problem}", index, field)
    return normalised


def validate_ops(ops: t.Any) -> list[dict[str, t.Any]]:
    """Check a list of operations; return copies with defaults filled in.

    Raises ``RequestError`` naming the op index, the field and what is allowed.
    """
    if not isinstance(ops, list):
        raise RequestError(f"ops must be a list of operations, not {type(ops).__name__}")
    if not ops:
        raise RequestError("ops is empty; give at least one operation")
    return [_validate_op(index, op) for index, op in enumerate(ops)]


# ---------------------------------------------------------------------------------------------
# Standard input

def build_request(ops: list[dict[str, t.Any]], write_errors: str = "continue", compress_reply: bool = True) -> str:
    """The request JSON (ASCII only) for already validated operations.

    ``write_errors="stop"`` asks the runner to skip every write operation after a failed one;
    the field is sent only then, so read-only requests stay as they were. ``compress_reply``
    sends ``compress: true``: the runner then answers gzip + base64 (``REPLY_GZIP_PREFIX``).
    """
    if write_errors not in WRITE_ERRORS:
        raise RequestError(f"write_errors must be one of {', '.join(WRITE_ERRORS)}, not {write_errors!r}")
    request: dict[str, t.Any] = {"protocol": PROTOCOL, "ops": ops}
    if write_errors != "continue":
        request["write_errors"] = write_errors
    if compress_reply:
        request["compress"] = True
    return json.dumps(request, ensure_ascii=True, separators=(",", ":"))


_REGION_START = "# region: "
_REGION_END = "# endregion"
#: The line ``join_runner`` puts before each file but the first: it ends the file's last region.
_FILE_START = "# file: "
_HERE_STRING_OPEN = re.compile(r"@['\"]\s*$")


def _runner_lines(runner: str) -> list[tuple[str, str | None, bool]]:
    """(line, its region or None, inside a here-string) for each line of the runner text.

    A region starts at a ``# region: <name>`` line and runs to the next one, an ``# endregion`` line
    or the ``# file: <name>`` line that starts the next file (regions do not nest); a here-string
    (``@'`` or ``@"`` at the end of a line up to ``'@`` or ``"@`` at the start of one) is never
    looked into.
    """
    found: list[tuple[str, str | None, bool]] = []
    region: str | None = None
    closer = ""
    for number, line in enumerate(runner.split("\n"), start=1):
        if closer:
            inside = not line.startswith(closer)
            closer = closer if inside else ""
            found.append((line, region, inside))
            continue
        code = line.strip()
        if code.startswith(_REGION_START):
            region = code[len(_REGION_START):].strip()
            found.append((line, region, False))
            continue
        if code.startswith(_FILE_START):
            region = None
            found.append((line, None, False))
            continue
        if code == _REGION_END:
            if region is None:
                raise RunnerError(f"runner line {number}: '# endregion' without '# region: <name>'")
            found.append((line, region, False))
            region = None
            continue
        if not code.startswith("#") and _HERE_STRING_OPEN.search(code):
            closer = code.rstrip()[-1] + "@"
        found.append((line, region, False))
    if closer:
        raise RunnerError("the runner text ends inside a here-string")
    return found


def join_runner(files: t.Sequence[tuple[str, str]]) -> str:
    """The host code as one text: the files ``(name, text)`` in order, each but the first after a
    ``# file: <name>`` line (which ends the regions of the file before it)."""
    parts = [text.replace("\r\n", "\n").rstrip("\n") for _name, text in files]
    return "\n".join([parts[0], *(f"{_FILE_START}{name}\n{parts[index]}" for index, (name, _text) in
                                  enumerate(files) if index > 0)])


def runner_regions(runner: str) -> set[str]:
    """The names of the runner's regions."""
    return {region for _line, region, _inside in _runner_lines(runner) if region is not None}


def sections_for(names: t.Iterable[str]) -> frozenset[str]:
    """The runner regions the operations ``names`` need: their sections and ``op:<name>`` entries."""
    regions: set[str] = set()
    for name in names:
        if name not in RUNNER_SECTIONS:
            raise RequestError(f"operation {name!r} has no runner sections (RUNNER_SECTIONS in _runner/protocol.py)")
        regions.update(RUNNER_SECTIONS[name])
        regions.add(f"op:{name}")
    return frozenset(regions)


def assemble_runner(runner: str, regions: t.Collection[str], minify: bool = True) -> str:
    """The common part of ``runner`` and the given regions, in file order.

    With ``minify``, lines outside here-strings lose their indentation, and blank and
    comment-only lines (the region markers too) are dropped; the first line (``RUNNER_MARKER``)
    stays, and here-strings are kept byte for byte.
    """
    kept: list[str] = []
    for index, (line, region, inside) in enumerate(_runner_lines(runner)):
        if region is not None and region not in regions:
            continue
        if minify and not inside and index > 0:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
        kept.append(line.rstrip() if not inside else line)
    return "\n".join(kept)


@functools.lru_cache(maxsize=64)
def runner_for_ops(runner_text: str, names: frozenset[str]) -> str:
    """The runner text sent for a request of the operations ``names``: its sections, minified.

    Cached: built once per process and set of operations.
    """
    runner = runner_text.replace("\r\n", "\n").rstrip("\n")
    if not runner.startswith(RUNNER_MARKER):
        raise RunnerError(f"the runner text does not start with the marker line {RUNNER_MARKER!r}")
    if f"\n{SEPARATOR}\n" in f"\n{runner}\n":
        raise RunnerError("the runner text contains the separator line")
    return assemble_runner(runner, sections_for(names))


@functools.lru_cache(maxsize=64)
def _packed_runner(runner_text: str, names: frozenset[str]) -> tuple[bytes, t.Any]:
    """The gzip stream so far and its compressor, after the runner and the separator line."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format; level 9, paid once
    head = packer.compress(f"{runner_for_ops(runner_text, names)}\n{SEPARATOR}\n".encode())
    return head, packer


def build_stdin(runner_text: str, ops: list[dict[str, t.Any]], compress: bool = True,
                write_errors: str = "continue", compress_reply: bool = True) -> bytes:
    """Validate ``ops`` and return the runner's standard input: runner, separator line, request.

    The runner is only what the operations need, minified (``runner_for_ops``). With
    ``compress`` (the default) that text is sent gzipped, in base64 on one line, which the
    bootstrap unpacks (docs/runner-protocol.md). The compressed runner is cached per set of
    operations; each call only compresses its request. The whole result is also kept for the
    last few requests (``_memo.memo``: by types and values, so a tuple where a list belongs is
    still refused), and the same request again (diagnose's, on every host, prepared before the
    forks) is neither validated nor compressed again.
    """
    return _build_stdin(runner_text, ops, compress, write_errors, compress_reply)


@memo(16, fresh=same)
def _build_stdin(runner_text: str, ops: list[dict[str, t.Any]], compress: bool, write_errors: str,
                 compress_reply: bool) -> bytes:
    ops = validate_ops(ops)  # the runner trusts the request: every field is present and checked
    names = frozenset(op["op"] for op in ops)
    request = build_request(ops, write_errors, compress_reply)
    if not compress:
        return f"{runner_for_ops(runner_text, names)}\n{SEPARATOR}\n{request}".encode()
    head, packer = _packed_runner(runner_text, names)
    packer = packer.copy()
    return base64.b64encode(head + packer.compress(request.encode()) + packer.flush())


def split_stdin(stdin: bytes) -> tuple[str, dict[str, t.Any]]:
    """The inverse of ``build_stdin`` (for the emulator and tests): (runner text, request)."""
    if re.fullmatch(rb"[A-Za-z0-9+/=]+", stdin.strip()):
        stdin = gzip.decompress(base64.b64decode(stdin))
    text = stdin.decode("utf-8").replace("\r\n", "\n")
    runner, sep, request = text.partition(f"\n{SEPARATOR}\n")
    if not sep:
        raise RequestError("standard input has no separator line after the runner")
    return runner, json.loads(request)


# ---------------------------------------------------------------------------------------------
# Reply parsing
#
# A reply is data from a machine that a standard user may control: it must never hurt the
# controller or the other hosts' results. Whatever it holds, ``parse_reply`` returns checked
# results or raises ``RunnerError`` with one line, and that host fails alone.

#: The most a reply may be, as it comes back and once a compressed reply is unpacked: beyond it
#: the host fails ("refused"); a diagnose reply is about 40 KB.
REPLY_MAX_BYTES = 64 * 1024 * 1024
_REPLY_MAX_TEXT = "64 MiB"
_INFLATE_PIECE = 1024 * 1024
#: How much of stderr is looked at (only one line of it is ever shown).
_STDERR_MAX_CHARS = 1024 * 1024
#: What ``data`` is for each registry value type (docs/runner-protocol.md, "Registry conventions").
REG_DATA_TYPES: dict[str, str] = {
    "REG_SZ": "str", "REG_EXPAND_SZ": "str", "REG_MULTI_SZ": "list[str]", "REG_DWORD": "int",
    "REG_QWORD": "int", "REG_BINARY": "str|null", "REG_NONE": "str|null",
}
#: The JSON types a reply field may be declared as (``_r``), joined with ``|``.
REPLY_TYPES: dict[str, t.Callable[[t.Any], bool]] = {
    "str": lambda value: isinstance(value, str),
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "bool": lambda value: isinstance(value, bool),
    "dict": lambda value: isinstance(value, dict),
    "list": lambda value: isinstance(value, list),
    "list[str]": lambda value: isinstance(value, list) and all(isinstance(item, str) for item in value),
    "null": lambda value: value is None,
}
#: How deep the registry nodes of a reply may go: the most ``depth`` a read may ask.
_MAX_NODE_DEPTH: int = OPERATIONS["reg_read"]["request"]["depth"]["max"]
_SURROGATES = re.compile("[\ud800-\udfff]")
#: A reply text that may hold a surrogate once loaded: a raw one, or a ``\uXXXX`` escape of one.
_SURROGATE_HINT = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")


def _fix_text(text: str) -> str:
    return text if text.isascii() else _SURROGATES.sub("\ufffd", text)


def replace_surrogates(data: t.Any) -> t.Any:
    """``data`` (JSON data) with every surrogate code point of its texts replaced by U+FFFD.

    A name on NTFS may hold an unpaired surrogate, and JSON can carry one (``\\ud800``), but no
    UTF-8 file can: one odd folder name must not stop the reports of every host. Dicts and lists
    are changed in place (keys too; the order is kept) and walked without recursion, however deep.
    """
    if isinstance(data, str):
        return _fix_text(data)
    stack = [data] if isinstance(data, (dict, list)) else []
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for index, value in enumerate(item):
                if isinstance(value, str):
                    item[index] = _fix_text(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
            continue
        for key, value in item.items():
            if isinstance(value, str):
                item[key] = _fix_text(value)
            elif isinstance(value, (dict, list)):
                stack.append(value)
        if any(isinstance(key, str) and _fix_text(key) != key for key in item):
            fixed = {_fix_text(key) if isinstance(key, str) else key: value for key, value in item.items()}
            item.clear()
            item.update(fixed)
    return data


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(_fix_text(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _shown(value: t.Any, limit: int = 80) -> str:
    """A value from the host in a message: the repr of a text, number or null, one line, at most
    ``limit`` characters; the JSON type of anything else."""
    if isinstance(value, str):
        return _one_line(repr(value[:limit]), limit)
    if value is None or isinstance(value, (bool, int, float)):
        return _one_line(repr(value)[:limit], limit)
    return _json_type(value)


def decode_stderr(stderr: str | bytes | None) -> str:
    """stderr as one readable line; ``#< CLIXML`` error records are decoded like ansible does."""
    text = _text(stderr[:_STDERR_MAX_CHARS] if stderr else stderr)
    if "#< CLIXML" in text and "</Objs>" in text:
        from ansible.plugins.shell.powershell import _parse_clixml

        try:
            decoded = _parse_clixml(text.encode("utf-8", errors="surrogatepass")).decode("utf-8", errors="replace")
        except Exception:  # malformed CLIXML: fall back to the raw text
            decoded = text
        else:
            if not decoded.strip():  # only progress or other streams: nothing worth reporting
                decoded = ""
        text = decoded
    return _one_line(text)


_ACCESS_DENIED_RE = re.compile(r"access (is )?denied|UnauthorizedAccess|requires elevat", re.IGNORECASE)
_ADMIN_HINT = "connect with an account in the host's local Administrators group"
_BUSY = "another run of nhs_cm.remediation holds this PC, so nothing was done; run again when it has finished"


def _inflate(packed: bytes) -> bytes:
    """The gzip stream ``packed`` unpacked a piece at a time: refused as soon as it passes
    ``REPLY_MAX_BYTES``, so never much more than that is in memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip only
    pieces: list[bytes] = []
    size = 0
    while not inflater.eof:
        piece = inflater.decompress(packed, _INFLATE_PIECE)
        packed = inflater.unconsumed_tail
        if not piece and not packed and not inflater.eof:
            raise EOFError("the compressed data ends before the end of its gzip stream")
        size += len(piece)
        if size > REPLY_MAX_BYTES:
            raise RunnerError(f"the runner's reply unpacks to more than {_REPLY_MAX_TEXT}; refused")
        pieces.append(piece)
    if inflater.unused_data:
        raise ValueError("there is data after the end of the gzip stream")
    return b"".join(pieces)


def _unpack_reply(stdout: str) -> str:
    """The reply JSON of a compressed reply; else ``stdout``.

    The reply is the last line that starts with ``REPLY_GZIP_PREFIX`` or ``{"``: stray lines
    before it (a profile's banner, even one that starts with the prefix) are ignored. The gzip
    stream is unpacked a piece at a time, up to ``REPLY_MAX_BYTES`` (a few KB of gzip can
    unpack to gigabytes).
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith('{"'):
            return stdout
        if line.startswith(REPLY_GZIP_PREFIX):
            break
    else:
        return stdout
    packed = line[len(REPLY_GZIP_PREFIX):]
    try:
        return _inflate(base64.b64decode(packed, validate=True)).decode("ascii")
    except (ValueError, OSError, EOFError, zlib.error) as exc:  # binascii.Error and UnicodeDecodeError too
        raise RunnerError(f"the runner's compressed reply cannot be unpacked ({_one_line(str(exc), 120)}): "
                          f"{packed[:80]!r}") from None


def _load_reply(stdout: str) -> t.Any:
    stripped = stdout.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for line in reversed(stripped.splitlines()):  # tolerate stray lines before the reply
        line = line.strip()
        if line.startswith('{"'):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError(stripped)


def _reply_failure(reply: dict[str, t.Any]) -> RunnerError:
    kind = reply.get("error") or "failed"
    message = _one_line(str(reply.get("message") or "no message"))
    if kind == "access_denied":
        return RunnerError(f"access denied on the host: {message} ({_ADMIN_HINT})")
    if kind == "busy":
        detail = f" ({message})" if reply.get("message") else ""
        return RunnerError(f"{_BUSY}{detail}")
    shown = kind if kind in ERROR_KINDS else f"unknown error kind {_shown(kind, 60)}"
    return RunnerError(f"the runner refused the request ({shown}): {message}")


def _json_type(value: t.Any) -> str:
    """The name of ``value``'s JSON type, as the types of ``OPERATIONS`` are written."""
    if value is None:
        return "null"
    for name in ("bool", "int", "str", "dict", "list"):
        if REPLY_TYPES[name](value):
            return name
    return "float" if isinstance(value, float) else type(value).__name__


def type_matches(spec: str, value: t.Any) -> bool:
    """Whether ``value`` is of the declared reply type ``spec`` (e.g. ``str|null``); a bool is no int."""
    return any(check(value) for check in _type_checks(spec))


@functools.lru_cache(maxsize=256)
def _type_checks(spec: str) -> tuple[t.Callable[[t.Any], bool], ...]:
    """The checks of the types ``spec`` names (a reply has thousands of fields and few specs)."""
    return tuple(REPLY_TYPES[name] for name in spec.split("|"))


def _expected(spec: str) -> str:
    return " or ".join(spec.split("|"))


class _Malformed(Exception):
    """A reply field of the wrong shape: ``where`` (``values['x'].data``) and what it must be."""

    def __init__(self, where: str, expected: str, value: t.Any, shown: str | None = None) -> None:
        super().__init__(where)
        self.text = f"{where} must be {expected}, not {shown or _json_type(value)}"


def _key(name: t.Any) -> str:
    return f"[{_shown(name, 60)}]"


def _check_value(where: str, value: t.Any) -> None:
    """One registry value ``{type, data}`` (docs/runner-protocol.md, "Registry conventions")."""
    if not isinstance(value, dict):
        raise _Malformed(where, "a value {type, data}", value)
    kind = value.get("type")
    if kind not in REG_DATA_TYPES:
        raise _Malformed(f"{where}.type", f"one of {', '.join(REG_DATA_TYPES)}", kind, _shown(kind, 40))
    if "data" not in value or not type_matches(REG_DATA_TYPES[kind], value["data"]):
        raise _Malformed(f"{where}.data", f"{_expected(REG_DATA_TYPES[kind])} for {kind}", value.get("data"))


def _check_node(where: str, node: t.Any, fields: dict[str, str]) -> None:
    """A registry node and every node below it: ``values`` ({name: {type, data}}), ``subkeys``
    ({name: node or null}) and ``fields`` (name -> type) of the node itself (its subkeys have
    ``error: str|null`` at most). A read goes at most ``_MAX_NODE_DEPTH`` levels down; below, a
    subkey is null. Walked without recursion."""
    stack: list[tuple[str, t.Any, dict[str, str], int]] = [(where, node, fields, 0)]
    while stack:
        where, node, fields, level = stack.pop()
        if level > _MAX_NODE_DEPTH:
            raise _Malformed(where, f"null (a read goes at most {_MAX_NODE_DEPTH} levels down)", node)
        if not isinstance(node, dict):
            raise _Malformed(where, "a key {values, subkeys}", node)
        for name, spec in {"values": "dict", "subkeys": "dict", **fields}.items():
            if name not in node and "null" not in spec:
                raise _Malformed(f"{where}.{name}", _expected(spec), None)
            if name in node and not type_matches(spec, node[name]):
                raise _Malformed(f"{where}.{name}", _expected(spec), node[name])
        for name, value in node["values"].items():
            _check_value(f"{where}.values{_key(name)}", value)
        for name, child in node["subkeys"].items():
            if child is not None:
                stack.append((f"{where}.subkeys{_key(name)}", child, {"error": "str|null"}, level + 1))


def _check_backup(where: str, backup: dict[str, t.Any]) -> None:
    """A backup as ``backup_load`` returns it: what restoring it relies on."""
    for name, spec in (("id", "str"), ("saved_at", "str"), ("entries", "list"), ("missing_keys", "list")):
        if not type_matches(spec, backup.get(name)):
            raise _Malformed(f"{where}.{name}", spec, backup.get(name))
    for number, entry in enumerate(backup["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise _Malformed(f"{where}.entries[{number}]", "an entry {kind, ...}", entry)
    for number, key in enumerate(backup["missing_keys"]):
        if not isinstance(key, dict) or not isinstance(key.get("key"), str) or not isinstance(key.get("view"), str):
            raise _Malformed(f"{where}.missing_keys[{number}]", "{key: str, view: str}", key)


def _check_shapes(name: str, result: dict[str, t.Any]) -> None:
    """The nested data the collection relies on, beyond the declared field types."""
    if name == "reg_read":
        _check_node("", result, {"exists": "bool"})
    elif name == "user_hives_read":
        for number, profile in enumerate(result["profiles"]):
            for path, node in profile["keys"].items():
                _check_node(f"profiles[{number}].keys{_key(path)}", node, {"exists": "bool", "error": "str|null"})
    elif name == "reg_write" and result["previous"] is not None:
        _check_value("previous", result["previous"])
    elif name == "backup_load":
        _check_backup("backup", result["backup"])


def _check_items(where: str, field: str, spec: dict[str, t.Any], value: list[t.Any]) -> None:
    items = spec.get("items")
    for number, item in enumerate(value):
        if isinstance(items, str):  # a list of plain values
            if not type_matches(items, item):
                raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}] must be "
                                  f"{_expected(items)}, not {_json_type(item)}")
            continue
        if not items:
            continue
        if not isinstance(item, dict):
            raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}] must be an object "
                              f"with {', '.join(items)}, not {_json_type(item)}")
        missing = [key for key in items if key not in item]
        if missing:
            raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}] lacks {', '.join(missing)}")
        for key, key_spec in items.items():
            if not type_matches(key_spec, item[key]):
                raise RunnerError(f"the runner's reply is malformed: {where} {field}[{number}].{key} must be "
                                  f"{_expected(key_spec)}, not {_json_type(item[key])}")


def _check_result(index: int, op: dict[str, t.Any] | None, result: t.Any) -> None:
    """One result: ``ok``; an error's kind and message; an ok result's every reply field, of the
    type ``OPERATIONS`` declares (the elements of a list too), and its registry nodes."""
    where = f"results[{index}]" + (f" ({op.get('op')})" if op else "")
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        raise RunnerError(f"the runner's reply is malformed: {where} is not a result with 'ok'")
    if not result["ok"]:
        if result.get("error") not in ERROR_KINDS:
            raise RunnerError(f"the runner's reply is malformed: {where} has unknown error kind "
                              f"{_shown(result.get('error'), 60)}")
        if not type_matches("str|null", result.get("message")):
            raise RunnerError(f"the runner's reply is malformed: {where} field 'message' must be str or null, "
                              f"not {_json_type(result.get('message'))}")
        return
    if not op or op.get("op") not in OPERATIONS:
        return
    for field, spec in OPERATIONS[op["op"]]["reply"].items():
        if field not in result:
            raise RunnerError(f"the runner's reply is malformed: {where} lacks field '{field}'")
        if not type_matches(spec["type"], result[field]):
            raise RunnerError(f"the runner's reply is malformed: {where} field '{field}' must be "
                              f"{_expected(spec['type'])}, not {_json_type(result[field])}")
        if isinstance(result[field], list):
            _check_items(where, field, spec, result[field])
    try:
        _check_shapes(op["op"], result)
    except _Malformed as exc:
        raise RunnerError(f"the runner's reply is malformed: {where} {exc.text.lstrip('.')}") from None


def parse_reply(
    stdout: str | bytes | None,
    stderr: str | bytes | None,
    rc: int | None,
    ops: list[dict[str, t.Any]] | None = None,
) -> list[dict[str, t.Any]]:
    """Return ``results`` of a runner reply, one per operation, or raise ``RunnerError``.

    With ``ops`` (the request), the number of results and each ok result's reply fields (their
    types too) are checked. A reply larger than ``REPLY_MAX_BYTES``, as it comes or unpacked, is
    refused; surrogate code points in its texts are replaced (``replace_surrogates``).
    """
    if stdout is not None and len(stdout) > REPLY_MAX_BYTES:
        return _raise(f"the runner's reply is larger than {_REPLY_MAX_TEXT}; refused")
    out = _text(stdout)
    err = decode_stderr(stderr)
    rc = 0 if rc is None else rc
    if not out.strip():
        detail = f": {err}" if err else ""
        if rc != 0:
            hint = f" ({_ADMIN_HINT})" if _ACCESS_DENIED_RE.search(err) else ""
            return _raise(f"the runner failed with exit code {rc} and no output{detail}{hint}")
        return _raise(f"the runner returned no output (exit code 0){detail}")
    try:
        text = _unpack_reply(out)
        reply = _load_reply(text)
    except ValueError:
        detail = f"; stderr: {err}" if err else ""
        return _raise(f"the runner's reply is not JSON (exit code {rc}): {_one_line(repr(out.strip()[:200]))}{detail}")
    except RecursionError:
        return _raise("the runner's reply is not usable JSON: it is nested too deeply")
    if _SURROGATE_HINT.search(text):
        reply = replace_surrogates(reply)
    if not isinstance(reply, dict) or reply.get("runner") != RUNNER_NAME:
        return _raise(f"the reply is not from the nhs_cm runner: {_one_line(repr(out.strip()[:200]))}")
    if reply.get("protocol") != PROTOCOL:
        return _raise(f"the runner speaks protocol {_shown(reply.get('protocol'), 40)}, this collection {PROTOCOL}")
    if reply.get("ok") is not True:
        raise _reply_failure(reply)
    if rc != 0:
        detail = f": {err}" if err else ""
        return _raise(f"the runner failed with exit code {rc}{detail}")
    results = reply.get("results")
    if not isinstance(results, list):
        return _raise("the runner's reply is malformed: 'results' is not a list")
    if ops is not None and len(results) != len(ops):
        return _raise(f"the runner answered {len(results)} results for {len(ops)} operations")
    for index, result in enumerate(results):
        _check_result(index, ops[index] if ops is not None else None, result)
    cleanup = reply.get("cleanup_error")
    if cleanup:
        raise CleanupError(f"the operations ran, but the runner's cleanup failed: {_one_line(str(cleanup))}",
                           results)
    return results


def _raise(message: str) -> t.NoReturn:
    raise RunnerError(_one_line(message, 600))
