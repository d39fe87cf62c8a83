# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host code as it is sent (docs/runner-protocol.md): joined, cut to a request's operations, minified.

``join_runner`` joins the files ``RUNNER_FILES`` into one text; ``runner_regions``,
``sections_for`` and ``assemble_runner`` work with its regions (``# region: <name>``), and
``runner_for_ops`` is the runner text a request of some operations carries: the common part,
the regions ``RUNNER_SECTIONS`` names for them and their own ``op:<name>`` regions.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import functools
import re
import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import RUNNER_SECTIONS
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    RUNNER_MARKER,
    SEPARATOR,
    RequestError,
    RunnerError,
)

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
            raise RequestError(f"operation {name!r} has no runner sections (RUNNER_SECTIONS in _runner/operations.py)")
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
