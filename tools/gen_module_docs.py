#!/usr/bin/env python3
"""Write the RETURN fields the write modules share into plugins/modules/*.py, from this one source.

ansible-doc reads a module's RETURN as a literal string, so it cannot be assembled at import: the
shared fields are kept once, here, and copied into each module between the lines
``# >>> shared: <name> ...`` and ``# <<< shared: <name>`` of its RETURN.
`--check` exits 1 when a module's block differs from what this file says
(tests/unit/plugins/modules/test_module_docs.py).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "plugins" / "modules"

CLEANUP = '''\
cleanup_error:
  description: The runner ran every operation but could not clean up afterwards (a registry hive it loaded and
    could not unload); the task fails with it.
  returned: when the runner's cleanup failed after the writes
  type: str
writes_done:
  description: With RV(cleanup_error), exactly the writes that happened, in order (C(backup_save <id>),
    C(reg_write <key> '<name>'), C(service_set <name>), C(start <program> in session <n>), ...).
  returned: when the runner's cleanup failed after the writes
  type: list
  elements: str
'''

#: What a remediation module returns when a write failed or its answer is missing (restore says
#: these in its own words, but for the cleanup fields).
WRITE_FAILURE = '''\
restored:
  description: After a failure, whether everything this run changed was put back from the backup.
  returned: failure after a change
  type: bool
changed_unknown:
  description:
    - "True when a write request was sent but its answer never came back (the connection dropped, a timeout while
      waiting), so whether the host was changed is unknown. The message starts C(changed: unknown) and names the
      backup to roll back with. A failure before the request was sent is an ordinary failure and has no such field."
  returned: when a write request's answer never came back
  type: bool
''' + CLEANUP + '''\
msg:
  description: Why the module failed, one line.
  returned: failure
  type: str
'''

SHARED = {"cleanup": CLEANUP, "write_failure": WRITE_FAILURE}
BLOCK = re.compile(r"^(?P<begin># >>> shared: (?P<name>\w+)\b[^\n]*\n)(?P<body>.*?)^(?P<end># <<< shared: (?P=name)\n)",
                   re.MULTILINE | re.DOTALL)


def begin_line(name: str) -> str:
    return f"# >>> shared: {name} (tools/gen_module_docs.py writes this block: edit it there)\n"


def blocks(text: str) -> list[tuple[str, str]]:
    """(name, body) of each shared block of a module's text, in order."""
    return [(match["name"], match["body"]) for match in BLOCK.finditer(text)]


def render(text: str) -> str:
    """``text`` with each shared block as this file says; raises KeyError for an unknown name."""
    return BLOCK.sub(lambda match: begin_line(match["name"]) + SHARED[match["name"]] + match["end"], text)


def modules() -> list[Path]:
    return sorted(path for path in MODULES.glob("*.py") if path.name != "__init__.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a module's shared block is out of date")
    args = parser.parse_args()
    stale = []
    for path in modules():
        text = path.read_text(encoding="utf-8")
        wanted = render(text)
        if wanted == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(wanted, encoding="utf-8")
    if stale:
        print("out of date (run: .venv/bin/python tools/gen_module_docs.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
