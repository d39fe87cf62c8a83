"""Windows command-line tools an emulated host answers from its state: ``reg query``, ``sc query``,
``sc qc`` and ``tasklist``. These are what a check written for a real PC sends over WinRS to
cmd.exe (pytest-testinfra's winrm backend, ``ansible.windows.win_command``); nothing is run.

Output is laid out as Windows 10 / Server 2022 print it (CRLF line ends) and exit codes are
Windows' own:

- ``reg query KEY [/v NAME | /ve] [/s] [/reg:32|/reg:64]``: a blank line, the key as typed with
  its full hive name, one line per value (``    Name    REG_DWORD    0x1``), a blank line, then
  (without ``/v``) the subkeys; a missing key or value prints ``ERROR: The system was unable to
  find the specified registry key or value.`` on stderr with exit code 1.
- ``sc query NAME`` / ``sc qc NAME``: the SERVICE_NAME block; an unknown service prints
  ``[SC] ... FAILED 1060`` on stdout with exit code 1060.
- ``tasklist [/v] [/fo csv|list] [/nh] [/fi "FIELD eq VALUE"]...``: memory use, CPU time and
  window titles are not modelled (``0 K``, ``0:00:00``, ``N/A``).

``run`` returns None for any other program, so that commands.py answers as cmd.exe does.
"""

from __future__ import annotations

import ntpath
import re
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from .registry import KEY_NOT_FOUND, Key, KeyPathError, Value, split_key

if TYPE_CHECKING:
    from .state import HostState, Process, Service

Result = tuple[bytes, bytes, int]
HIVE_LONG = {"HKLM": "HKEY_LOCAL_MACHINE", "HKU": "HKEY_USERS"}
ACCESS_DENIED = "ERROR: Access is denied."
SC_STATES = {"stopped": (1, "STOPPED"), "start_pending": (2, "START_PENDING"), "stop_pending": (3, "STOP_PENDING"),
             "running": (4, "RUNNING"), "continue_pending": (5, "CONTINUE_PENDING"),
             "pause_pending": (6, "PAUSE_PENDING"), "paused": (7, "PAUSED")}
SC_START_TYPES = {"boot": (0, "BOOT_START"), "system": (1, "SYSTEM_START"), "auto": (2, "AUTO_START"),
                  "manual": (3, "DEMAND_START"), "disabled": (4, "DISABLED")}
TASKLIST_COLUMNS = ("Image Name", "PID", "Session Name", "Session#", "Mem Usage")
TASKLIST_VERBOSE = ("Status", "User Name", "CPU Time", "Window Title")
TASKLIST_FILTERS = {"imagename": "Image Name", "pid": "PID", "session": "Session#", "sessionname": "Session Name",
                    "username": "User Name", "status": "Status"}
NO_TASKS = "INFO: No tasks are running which match the specified criteria."


def run(host: HostState, line: str) -> Result | None:
    """The answer to a cmd.exe command line, or None when the program is not one of these."""
    try:
        words = shlex.split(line.replace("\\", "\\\\"), posix=True)
    except ValueError:
        return None
    if not words:
        return None
    program = ntpath.basename(words[0]).lower().removesuffix(".exe")
    handler = HANDLERS.get(program)
    return handler(host, words[1:]) if handler else None


def _lines(lines: list[str]) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def _fail(message: str, code: int = 1) -> Result:
    return b"", _lines([message]), code


# -- reg query ----------------------------------------------------------------------------------


def _reg(host: HostState, args: list[str]) -> Result:
    if not args or args[0].lower() != "query":
        return _fail("ERROR: Invalid syntax. nhs_cm_emulator answers only REG QUERY.")
    args = args[1:]
    if not args:
        return _fail("ERROR: Invalid syntax.\r\nType \"REG QUERY /?\" for usage.")
    key_text, options = args[0], args[1:]
    value_name: str | None = None
    recurse = False
    view = "64"
    i = 0
    while i < len(options):
        option = options[i].lower()
        if option == "/v" and i + 1 < len(options):
            value_name = options[i + 1]
            i += 1
        elif option == "/ve":
            value_name = ""
        elif option == "/s":
            recurse = True
        elif option in ("/reg:32", "/reg:64"):
            view = option[-2:]
        else:
            return _fail(f"ERROR: Invalid syntax. nhs_cm_emulator does not know the option {options[i]!r} of "
                         "REG QUERY (known: /v NAME, /ve, /s, /reg:32, /reg:64).")
        i += 1
    try:
        hive, segments = split_key(key_text.rstrip("\\") or key_text, strict=False)
    except KeyPathError:
        return _fail("ERROR: Invalid key name.\r\nType \"REG QUERY /?\" for usage.")
    stored = host.registry.map_view(hive, segments, view)
    if host.registry.is_denied(hive, stored):
        return _fail(ACCESS_DENIED)
    key = host.registry.lookup(hive, stored)
    if key is None:
        return _fail(KEY_NOT_FOUND)
    shown = "\\".join([HIVE_LONG[hive], *segments])
    if value_name is not None:
        return _reg_value(key, shown, value_name, recurse)
    return _lines(["", *_reg_key(host, hive, stored, key, shown, recurse)]), b"", 0


def _reg_value(key: Key, shown: str, name: str, recurse: bool) -> Result:
    found: list[str] = []
    count = 0
    for path, node in _keys(key, shown, recurse):
        value = node.value(name)
        if value is not None:
            found += [path, _value_line(value), ""]
            count += 1
    if not count:
        return _fail(KEY_NOT_FOUND)
    if recurse:
        found.append(f"End of search: {count} match(es) found.")
    return _lines(["", *found]), b"", 0


def _keys(key: Key, shown: str, recurse: bool) -> list[tuple[str, Key]]:
    out = [(shown, key)]
    if recurse:
        for child in key.sorted_children():
            out += _keys(child, f"{shown}\\{child.name}", True)
    return out


def _reg_key(host: HostState, hive: str, stored: list[str], key: Key, shown: str, recurse: bool) -> list[str]:
    lines = [shown, *(_value_line(v) for v in sorted(key.values.values(), key=lambda v: v.name.lower()))]
    children = [c for c in key.sorted_children() if not host.registry.is_denied(hive, [*stored, c.name])]
    if recurse:
        lines.append("")
        for child in children:
            lines += _reg_key(host, hive, [*stored, child.name], child, f"{shown}\\{child.name}", True)
        return lines
    if key.values:
        lines.append("")
    lines += [f"{shown}\\{child.name}" for child in children]
    return lines


def _value_line(value: Value) -> str:
    return f"    {value.name or '(Default)'}    {value.type}    {_reg_data(value)}"


def _reg_data(value: Value) -> str:
    data = value.data
    if value.type in ("REG_DWORD", "REG_QWORD"):
        return f"0x{int(data):x}"
    if value.type == "REG_MULTI_SZ":
        return "\\0".join(str(item) for item in (data or []))
    if value.type == "REG_BINARY":
        return str(data or "").replace(" ", "").upper()
    return "" if data is None else str(data)


# -- sc query / sc qc -----------------------------------------------------------------------------


def _sc(host: HostState, args: list[str]) -> Result:
    if len(args) != 2 or args[0].lower() not in ("query", "qc"):
        return _fail("[SC] nhs_cm_emulator answers only 'sc query NAME' and 'sc qc NAME'.")
    verb, name = args[0].lower(), args[1]
    service = next((s for s in host.services if s.name.lower() == name.lower()), None)
    if service is None:
        api = "EnumQueryServicesStatus:OpenService" if verb == "query" else "OpenService"
        return _lines([f"[SC] {api} FAILED 1060:", "", "The specified service does not exist as an installed "
                       "service.", ""]), b"", 1060
    return (_sc_query(service) if verb == "query" else _sc_qc(service)), b"", 0


def _service_type(service: Service) -> str:
    shared = ntpath.basename(service.executable()).lower() == "svchost.exe"
    return "20  WIN32_SHARE_PROCESS" if shared else "10  WIN32_OWN_PROCESS"


def _sc_query(service: Service) -> bytes:
    code, label = SC_STATES.get(service.state, (1, "STOPPED"))
    controls = ("(STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)" if service.state == "running"
                else "(NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)")
    return _lines(["", f"SERVICE_NAME: {service.name} ",
                   f"        TYPE               : {_service_type(service)}  ",
                   f"        STATE              : {code}  {label} ",
                   f"                                {controls}",
                   "        WIN32_EXIT_CODE    : 0  (0x0)",
                   "        SERVICE_EXIT_CODE  : 0  (0x0)",
                   "        CHECKPOINT         : 0x0",
                   "        WAIT_HINT          : 0x0", ""])


def _sc_qc(service: Service) -> bytes:
    code, label = SC_START_TYPES[service.start_mode]
    return _lines(["[SC] QueryServiceConfig SUCCESS", "", f"SERVICE_NAME: {service.name}",
                   f"        TYPE               : {_service_type(service)} ",
                   f"        START_TYPE         : {code}   {label}",
                   "        ERROR_CONTROL      : 1   NORMAL",
                   f"        BINARY_PATH_NAME   : {service.command_line()}",
                   "        LOAD_ORDER_GROUP   : ",
                   "        TAG                : 0",
                   f"        DISPLAY_NAME       : {service.display_name}",
                   "        DEPENDENCIES       : ",
                   "        SERVICE_START_NAME : LocalSystem", ""])


# -- tasklist -------------------------------------------------------------------------------------


def _tasklist(host: HostState, args: list[str]) -> Result:
    verbose, header, form = False, True, "table"
    filters: list[tuple[str, str, str]] = []
    i = 0
    while i < len(args):
        option = args[i].lower()
        if option == "/v":
            verbose = True
        elif option == "/nh":
            header = False
        elif option == "/fo" and i + 1 < len(args) and args[i + 1].lower() in ("csv", "list", "table"):
            form = args[i + 1].lower()
            i += 1
        elif option == "/fi" and i + 1 < len(args):
            parsed = _tasklist_filter(args[i + 1])
            if parsed is None:
                return _fail("ERROR: The search filter cannot be recognized.")
            filters.append(parsed)
            i += 1
        else:
            return _fail(f"ERROR: Invalid argument/option - '{args[i]}'.\r\nType \"TASKLIST /?\" for usage.")
        i += 1
    if form == "table":
        return _fail("ERROR: nhs_cm_emulator prints tasklist only with /fo csv or /fo list.")
    columns = TASKLIST_COLUMNS + (TASKLIST_VERBOSE if verbose else ())
    rows = [row for row in (_task_row(host, p) for p in host.processes) if all(_matches(row, f) for f in filters)]
    if not rows:
        return _lines([NO_TASKS]), b"", 0
    if form == "csv":
        lines = ([_csv(columns)] if header else []) + [_csv([row[c] for c in columns]) for row in rows]
        return _lines(lines), b"", 0
    width = max(len(c) for c in columns) + 2
    lines = []
    for row in rows:
        lines += [""] + [f"{c + ':':<{width}}{row[c]}" for c in columns]
    return _lines(lines), b"", 0


def _tasklist_filter(text: str) -> tuple[str, str, str] | None:
    match = re.fullmatch(r"\s*(\w+)\s+(eq|ne)\s+(.+?)\s*", text, re.IGNORECASE)
    if match is None or match.group(1).lower() not in TASKLIST_FILTERS:
        return None
    return TASKLIST_FILTERS[match.group(1).lower()], match.group(2).lower(), match.group(3)


def _matches(row: dict[str, str], test: tuple[str, str, str]) -> bool:
    column, operator, wanted = test
    value = row[column].lower()
    pattern = wanted.lower()
    equal = value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern
    return equal if operator == "eq" else not equal


def _session_name(host: HostState, session: int) -> str:
    if session == 0:
        return "Services"
    ids = sorted(s["id"] for s in host.sessions)
    return "Console" if ids and session == ids[0] else f"RDP-Tcp#{session}"


def _task_row(host: HostState, process: Process) -> dict[str, str]:
    return {"Image Name": process.name, "PID": str(process.pid),
            "Session Name": _session_name(host, process.session), "Session#": str(process.session),
            "Mem Usage": "0 K", "Status": "Unknown" if process.session == 0 else "Running",
            "User Name": process.user or "N/A", "CPU Time": "0:00:00", "Window Title": "N/A"}


def _csv(cells: tuple[str, ...] | list[str]) -> str:
    return ",".join('"' + cell.replace('"', '""') + '"' for cell in cells)


HANDLERS: dict[str, Callable[[HostState, list[str]], Result]] = {"reg": _reg, "sc": _sc, "tasklist": _tasklist}
