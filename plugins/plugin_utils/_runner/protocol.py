# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The runner protocol v1 (docs/runner-protocol.md): its names and the bootstrap.

The constants both sides agree on (``PROTOCOL``, ``RUNNER_NAME``, the marker lines, ``SEPARATOR``,
``REPLY_GZIP_PREFIX``, ``ERROR_KINDS``, ``WRITE_ERRORS``), the patterns of the values the
collection checks on both sides of a call (``USER_SID_PATTERN``, ``BACKUP_ID_RE``), the
protocol's errors and ``BOOTSTRAP``, the command-line script that starts the runner. The
operations are in ``operations.py``; a request is built by ``request.py`` (the host code cut for
it by ``assembly.py``) and a reply read by ``reply.py``.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re
import typing as t

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
#: The request field ``write_errors``: ``continue`` (default: every operation runs) or ``stop``.
WRITE_ERRORS = ("continue", "stop")
#: SIDs of people (domain and local accounts, and Microsoft Entra ID accounts): the profiles and
#: hives ``user_hives_read`` considers. Service SIDs, the system accounts and ``_Classes`` hives
#: never match.
USER_SID_PATTERN = r"^S-1-(?:5-21|12-1)-\d+-\d+-\d+-\d+$"
#: A backup id: the name of its file in the backup folder (restore checks ``backup_id`` with it too).
BACKUP_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


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
