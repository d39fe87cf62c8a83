"""Interpretation of a WinRS command on an emulated host. The emulator never runs PowerShell.

What is understood:
- ``PowerShell [options] -EncodedCommand <base64 UTF-16LE>`` (and ``-Command <text>`` /
  ``-Command -`` with the script on stdin). Ansible's ``_encode_script`` wrapping
  (``Set-StrictMode -Version Latest`` first, the ``If (-not $?) {...}`` exit-code guard last,
  the console-encoding ``try {...} catch {}``) is removed before the script is matched.
- The runner bootstrap: a script containing the line ``# NHS-CM-BOOTSTRAP v1``. As the real
  bootstrap (``BOOTSTRAP`` in plugins/plugin_utils/_runner/protocol.py) reads standard input with
  ``@($input) -join "`n"``, its lines are re-joined with ``\\n`` (CRLF input works) and the text
  is split at the first ``\\n\\0\\0\\0\\0\\n``. Standard input that is one line of base64 (the
  default of ``build_stdin``) is gunzipped first, as the bootstrap does. With no separator the reply is
  ``invalid_request`` with exit code 1, as the real bootstrap answers. Part one must contain the
  line ``# NHS-CM-RUNNER v1`` (else a PowerShell-style error on stderr, exit code 1); part two is
  the request JSON (see ops.py). A request with ``compress: true`` is answered with one line
  ``NHS-CM-GZIP:<base64 of the gzipped reply JSON>``, as the runner's Write-Reply does (never a
  reply the runner gave before it ran the request, such as ``busy``). The runner text may be any
  subset of the runner's sections, minified (``runner_for_ops`` of the collection): only its
  marker line is looked for. With ``behaviour.lose_write_answers`` the answer of a request that
  holds a write operation is raised as ``wsman.LostAnswer`` (the write is made; the client never
  gets the answer).
- A nested ``PowerShell ...`` statement (ansible-core 2.16 encodes its encoded command once more)
  runs as a program reading the same standard input; PowerShell is found case-insensitively,
  with or without ``.exe``, a folder or ``&``, on the command line, after ``cmd /c`` and in a script.
- Ansible's module exec wrapper (``bootstrap_wrapper.ps1``): answered by the Python twins of a
  few ansible.windows modules in modules.py (win_ping, win_reg_stat, win_service_info, one
  win_shell command line); any other module fails with a JSON ``failed`` result.
- One-liners for Ansible ``raw``: ``echo X``, ``Write-Output X``, ``'literal'``, ``hostname``,
  ``exit N``, several joined with ``;`` or new lines.
- Anything else fails as PowerShell would: the "term is not recognized" error on stderr and
  exit code 1 (for a cmdlet or a PowerShell statement the emulator cannot run, the message
  says so instead). A command line that is not PowerShell is treated as cmd.exe would treat
  it (``echo``, ``hostname``, ``exit``, and ``reg query``, ``sc query``/``qc``, ``tasklist`` in
  cmdline.py; otherwise "is not recognized ..." with exit code 9009).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import ntpath
import re
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import cmdline, modules, ops
from .contract import WRITE_OPERATIONS
from .wsman import LostAnswer

if TYPE_CHECKING:
    from .state import HostState

BOOTSTRAP_MARKER = "# NHS-CM-BOOTSTRAP v1"
RUNNER_MARKER = "# NHS-CM-RUNNER v1"
SEPARATOR = "\n\0\0\0\0\n"
NO_SEPARATOR = "standard input has no separator line after the runner"
PACKED = re.compile(r"[A-Za-z0-9+/=]+")
STRICT_MODE = "set-strictmode -version latest"
RC_GUARD = re.compile(r"^if \(-not \$\?\) \{.*exit.*\}$", re.IGNORECASE)
CONSOLE_ENCODING = re.compile(r"^try \{ \[Console\]::OutputEncoding = New-Object System\.Text\.UTF8Encoding \} "
                              r"catch \{\}\s*;?\s*", re.IGNORECASE)
ANSIBLE_EXEC_WRAPPER = "$codeJson = foreach ($in in $input)"
PS_KEYWORDS = {"if", "else", "elseif", "try", "catch", "finally", "foreach", "for", "while", "do", "switch",
               "function", "filter", "param", "begin", "process", "end", "return", "throw", "trap", "break",
               "continue", "class", "enum", "using", "data", "workflow"}
OUTPUT_COMMANDS = {"echo", "write-output", "write", "write-host"}
POWERSHELL_PROGRAMS = ("powershell", "pwsh")
Result = tuple[bytes, bytes, int]


def program_name(word: str) -> str:
    """The program a command-line word starts, found as Windows finds it: the name without a folder or
    ``.exe``, in any case (``PowerShell``, ``powershell.exe``, ``C:\\...\\POWERSHELL.EXE`` are one)."""
    return ntpath.basename(word.strip('"')).lower().removesuffix(".exe")


def execute(host: HostState, command: str, arguments: list[str], stdin: bytes) -> Result:
    """Run one WinRS command on a host, holding the host's lock: (stdout, stderr, exit code).

    Raises ``wsman.LostAnswer`` when the host drops the answer (``behaviour.lose_write_answers``).
    This is what the WS-Management server runs for each command (``cli.py`` gives it to ``Emulator``).
    """
    with host.lock:
        return interpret(host, command, arguments, stdin)


def interpret(host: HostState, command: str, arguments: list[str], stdin: bytes) -> Result:
    line = " ".join([command or "", *(arguments or [])]).strip()
    words = line.split()
    if not words:
        return b"", b"", 0
    if program_name(words[0]) == "cmd" and len(words) > 1 and words[1].lower() in ("/c", "/k"):
        line = line.split(None, 2)[2] if len(words) > 2 else ""  # cmd.exe runs the rest
        words = line.split()
    if words and program_name(words[0]) in POWERSHELL_PROGRAMS:
        return _powershell(host, words[1:], stdin)
    return _cmd(host, line)


# -- powershell.exe ---------------------------------------------------------------------------


def _option(word: str) -> str | None:
    """The PowerShell parameter a command-line word names (PowerShell accepts prefixes)."""
    if not word.startswith(("-", "/")) or len(word) < 2:
        return None
    name = word.lstrip("-/").lower()
    for full, shortest in (("encodedcommand", "e"), ("executionpolicy", "ex"), ("command", "c"), ("file", "f"),
                           ("noprofile", "nop"), ("noninteractive", "noni"), ("nologo", "nol"), ("noexit", "noe"),
                           ("inputformat", "i"), ("outputformat", "o"), ("windowstyle", "w"), ("version", "v"),
                           ("sta", "s"), ("mta", "m"), ("configurationname", "con"), ("psconsolefile", "psc")):
        if full.startswith(name) and len(name) >= len(shortest):
            return full
    return name


def _powershell(host: HostState, args: list[str], stdin: bytes) -> Result:
    takes_value = {"executionpolicy", "inputformat", "outputformat", "windowstyle", "version",
                   "configurationname", "psconsolefile"}
    i = 0
    while i < len(args):
        option = _option(args[i])
        if option is None or option == "command":
            rest = args[i + 1:] if option else args[i:]
            text = " ".join(rest)
            if text == "-":
                return run_script(host, stdin.decode("utf-8", "replace"), b"")
            return run_script(host, text, stdin)
        if option == "encodedcommand":
            return _encoded(host, args[i + 1] if i + 1 < len(args) else "", stdin)
        if option == "file":
            target = args[i + 1] if i + 1 < len(args) else ""
            return b"", _crlf(f"The argument '{target}' to the -File parameter does not exist. Provide the path "
                              "to an existing '.ps1' file as an argument to the -File parameter."), 1
        i += 2 if option in takes_value else 1
    return b"", b"", 0


def _encoded(host: HostState, value: str, stdin: bytes) -> Result:
    try:
        script = base64.b64decode(value, validate=True).decode("utf-16-le")
    except (binascii.Error, ValueError):
        return b"", _crlf("Cannot process the command because the value specified with -EncodedCommand is not "
                          "properly encoded. The value must be Base64 encoded."), 1
    return run_script(host, script, stdin)


def run_script(host: HostState, script: str, stdin: bytes) -> Result:
    lines = [line.strip() for line in script.lstrip("\ufeff").splitlines()]
    if BOOTSTRAP_MARKER in lines:
        return run_bootstrap(host, stdin)
    if ANSIBLE_EXEC_WRAPPER in script:
        return modules.run_exec_wrapper(host, stdin)  # Python twins of a few ansible.windows modules
    return _statements(host, strip_ansible_wrapping(lines), stdin)


def strip_ansible_wrapping(lines: list[str]) -> list[str]:
    """Remove what Ansible's _encode_script adds around a script."""
    body = [line for line in lines if line]
    if body and body[0].lower() == STRICT_MODE:
        body = body[1:]
    if body and RC_GUARD.match(body[-1]):
        body = body[:-1]
    return [CONSOLE_ENCODING.sub("", line) for line in body]


# -- the runner bootstrap ---------------------------------------------------------------------


def run_bootstrap(host: HostState, stdin: bytes) -> Result:
    text = "\n".join(re.split(r"\r\n|\r|\n", stdin.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")))
    cut = text.find(SEPARATOR)
    if cut < 0 and PACKED.fullmatch(text):  # build_stdin's default: the same text, gzipped, in base64
        try:
            text = gzip.decompress(base64.b64decode(text)).decode("utf-8", "replace")
        except (binascii.Error, OSError, EOFError, zlib.error) as exc:
            return ops.encode_reply(ops.invalid_reply(f"stdin is not base64 gzip: {exc}")), b"", 1
        cut = text.find(SEPARATOR)
    if cut < 0:
        return ops.encode_reply(ops.invalid_reply(NO_SEPARATOR)), b"", 1
    runner, request = text[:cut], text[cut + len(SEPARATOR):]
    runner_lines = [line.strip() for line in runner.split("\n")]
    if RUNNER_MARKER not in runner_lines:
        message = (f"The script on standard input is not the NHS-CM runner: no line '{RUNNER_MARKER}' before "
                   "the separator line of four NUL characters. nhs_cm_emulator does not run other PowerShell.")
        return b"", _ps_error(message, "ScriptBlock", "InvalidOperation", "RunnerNotFound").encode("utf-8"), 1
    if host.behaviour.get("garbage_reply"):  # fault behaviour (scenario.py OPTIONAL_BEHAVIOUR): nothing runs
        return b"Windows PowerShell\r\nCopyright (C) Microsoft Corporation.\r\n<profile banner, not JSON>\r\n", b"", 0
    reply, code = ops.handle_request(host, request)  # takes the host-wide mutex first (busy after the wait)
    # only a request the runner accepted and ran is answered compressed (busy: before it was read)
    result = ops.encode_reply(reply, reply["ok"] is True and ops.wants_compressed_reply(request)), b"", code
    if reply["ok"] is True and host.answers_to_lose > 0 and set(ops.request_ops(request)) & set(WRITE_OPERATIONS):
        host.answers_to_lose -= 1  # behaviour.lose_write_answers: it ran, but the answer never arrives
        raise LostAnswer(result)
    return result


# -- one-liners -------------------------------------------------------------------------------


def _statements(host: HostState, lines: list[str], stdin: bytes = b"") -> Result:
    out: list[bytes] = []
    errors: list[bytes] = []
    unknown = False  # a statement the emulator cannot run (an error record on stderr)
    native_failed = False  # the last statement was a program that exited with a code other than 0
    for line in lines:
        for statement in _split_statements(line):
            words = _words(statement)
            if not words or statement.startswith("#"):
                continue
            verb = words[0].lower()
            native_failed = False
            call = words[1:] if verb == "&" else words  # the call operator: & 'C:\...\powershell.exe' ...
            if call and program_name(_unquote(call[0])) in POWERSHELL_PROGRAMS:
                # a nested powershell.exe (ansible-core 2.16 wraps its already encoded command once more):
                # a program, found case-insensitively, that reads the same standard input
                stdout, stderr, code = _powershell(host, _unquote_all(call[1:]), stdin)
                out.append(stdout)
                errors.append(stderr)
                native_failed = code != 0
            elif verb == "exit":
                return _finish(out, errors, _exit_code(words))
            elif verb in ("hostname", "hostname.exe"):
                out.append(_lines([host.name]))
            elif verb in OUTPUT_COMMANDS:
                out.append(_lines(w for w in _unquote_all(words[1:]) if w.lower() not in ("-inputobject",
                                                                                          "-noenumerate")))
            elif statement[0] in "'\"" or re.fullmatch(r"-?\d+", statement):
                out.append(_lines(_unquote_all(words)))
            else:
                errors.append(_unknown(statement, words[0]).encode("utf-8"))
                unknown = True
    # as powershell.exe -Command: 1 when a statement failed or the last program exited with another code
    return _finish(out, errors, 1 if unknown or native_failed else 0)


def _lines(texts: Iterable[str]) -> bytes:
    return "".join(f"{text}\r\n" for text in texts).encode("utf-8")


def _finish(out: list[bytes], errors: list[bytes], code: int) -> Result:
    return b"".join(out), b"".join(errors), code


def _exit_code(words: list[str]) -> int:
    if len(words) < 2:
        return 0
    try:
        return int(_unquote(words[1]))
    except ValueError:
        return 1


def _split_statements(line: str) -> list[str]:
    """Split at ';' outside quotes."""
    parts, current, quote = [], [], ""
    for char in line:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _words(statement: str) -> list[str]:
    """PowerShell-ish argument words: quoted strings stay one word, quotes kept."""
    return re.findall(r"'(?:[^']|'')*'|\"(?:[^\"`]|`.)*\"|\S+", statement)


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] == "'":
        return word[1:-1].replace("''", "'")
    if len(word) >= 2 and word[0] == word[-1] == '"':
        return re.sub(r"`(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(m.group(1), m.group(1)),
                      word[1:-1])
    return word


def _unquote_all(words: list[str]) -> list[str]:
    return [_unquote(w) for w in words]


def _unknown(statement: str, word: str) -> str:
    bare = word.lower()
    if re.fullmatch(r"[A-Za-z]+-[A-Za-z0-9]+", word) or bare in PS_KEYWORDS or word[0] in "$[(&.@{":
        message = (f"{word} : nhs_cm_emulator cannot run this: the emulated Windows host does not run PowerShell. "
                   "It interprets only the NHS-CM runner bootstrap and the one-liners echo, Write-Output, "
                   "'literal', hostname and exit N.")
        return _ps_error(message, word, "NotImplemented", "NotSupportedByEmulator", statement)
    message = (f"{word} : The term '{word}' is not recognized as the name of a cmdlet, function, script file, or "
               "operable program. Check the spelling of the name, or if a path was included, verify that the path "
               "is correct and try again.")
    return _ps_error(message, word, "ObjectNotFound", "CommandNotFoundException", statement)


def _ps_error(message: str, target: str, category: str, error_id: str, statement: str | None = None) -> str:
    lines = [message]
    if statement is not None:
        lines += ["At line:1 char:1", f"+ {statement}", "+ " + "~" * len(target)]
    lines += [f"    + CategoryInfo          : {category}: ({target}:String) [], {error_id}",
              f"    + FullyQualifiedErrorId : {error_id}", ""]
    return "\r\n".join(lines)


def _crlf(text: str) -> bytes:
    return (text + "\r\n").encode("utf-8")


# -- cmd.exe ----------------------------------------------------------------------------------


def _cmd(host: HostState, line: str) -> Result:
    words = line.split()
    verb = words[0].lower() if words else ""
    if verb == "echo":
        text = line[4:].strip() if len(line) > 4 else ""
        return _crlf(text if text else "ECHO is on."), b"", 0
    if verb in ("hostname", "hostname.exe"):
        return _crlf(host.name), b"", 0
    if verb == "exit":
        args = [w for w in words[1:] if w.lower() != "/b"]
        try:
            return b"", b"", int(args[0]) if args else 0
        except ValueError:
            return b"", b"", 0
    answer = cmdline.run(host, line)  # reg query, sc query / qc, tasklist
    if answer is not None:
        return answer
    name = words[0].strip('"') if words else line
    return b"", _crlf(f"'{name}' is not recognized as an internal or external command,\r\n"
                      "operable program or batch file."), 9009
