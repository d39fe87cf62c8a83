"""Helpers the emulator's tests share (importable: conftest.py puts this folder on sys.path).

``host_from(text, source)`` is the first host of a scenario written in the test, and
``run_op(host, **op)`` is the result of one runner operation on it, as ``ops.handle_request``
answers a request of that one op. ``collection_protocol()`` is the collection's runner protocol,
taken from the modules of ``plugins/plugin_utils/_runner/`` (``BOOTSTRAP``, ``OPERATIONS``,
``build_stdin``, ``parse_reply``, ...), and ``runner_command(protocol)`` the command line ansible
sends for it; ``runner_stdin(protocol, ops)`` its standard input.
"""

from __future__ import annotations

import base64
import gzip
import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from nhs_cm_emulator import commands, ops
from nhs_cm_emulator.scenario import parse_document, parse_text
from nhs_cm_emulator.state import HostState

ROOT = Path(__file__).resolve().parents[2]
#: The collection's runner package, and the names the emulator's tests use from each of its modules.
RUNNER_PACKAGE = "ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner"
PROTOCOL_NAMES: dict[str, tuple[str, ...]] = {
    "protocol": ("PROTOCOL", "RUNNER_NAME", "RUNNER_MARKER", "BOOTSTRAP_MARKER", "REPLY_GZIP_PREFIX", "ERROR_KINDS",
                 "USER_SID_PATTERN", "BOOTSTRAP", "RunnerError", "CleanupError"),
    "operations": ("OPERATIONS", "RUNNER_FILES", "SERVICE_STATES", "SERVICE_START_MODES"),
    "assembly": ("join_runner", "runner_for_ops"),
    "request": ("build_stdin",),
    "reply": ("parse_reply",),
}
RUNNER_DIR = ROOT / "plugins" / "plugin_utils" / "_runner"


def host_from(text: str, source: str, **behaviour: Any) -> HostState:
    """The first host of scenario ``text`` (named ``source`` in errors), with ``behaviour`` flags if given."""
    doc = parse_text(text, source)
    if behaviour:
        doc["hosts"][0]["behaviour"] = behaviour
    hosts, _expect = parse_document(doc, source)
    return HostState(hosts[0])


def run_op(host: HostState, **op: Any) -> dict[str, Any]:
    """The result of one op; the request as a whole must succeed."""
    reply, code = ops.handle_request(host, json.dumps({"protocol": 1, "ops": [op]}).encode())
    assert code == 0 and reply["ok"] is True
    return reply["results"][0]


def collection_protocol() -> SimpleNamespace:
    """The collection's runner protocol: ``PROTOCOL_NAMES``, each from its module of the collection's
    ``_runner`` package. The tests may import the collection (the emulator's own code never does):
    the checkout's .collections link (`make install`) makes ansible_collections.nhs_cm.remediation
    importable when these tests run alone."""
    collections = str(ROOT / ".collections")
    if (ROOT / ".collections").is_dir() and collections not in sys.path:
        sys.path.append(collections)
    names: dict[str, Any] = {}
    for module_name, wanted in PROTOCOL_NAMES.items():
        module = importlib.import_module(f"{RUNNER_PACKAGE}.{module_name}")
        names.update((name, getattr(module, name)) for name in wanted)
    return SimpleNamespace(**names)


def runner_command(protocol: SimpleNamespace) -> tuple[str, list[str]]:
    """The runner's command line as ansible-core 2.19 sends it: (program, [arguments joined])."""
    from ansible.plugins.shell.powershell import ShellModule

    line = ShellModule()._encode_script(protocol.BOOTSTRAP, as_list=False, strict_mode=False, preserve_rc=False)
    program, _, rest = line.partition(" ")
    return program, [rest]


def runner_stdin(protocol: SimpleNamespace, op_list: list[dict[str, Any]], **options: Any) -> bytes:
    """The runner's standard input for ``op_list`` (build_stdin: validated by the collection)."""
    return protocol.build_stdin(runner_text(protocol), op_list, **options)


def runner_text(protocol: SimpleNamespace) -> str:
    """The collection's host code, joined as the controller sends it (RUNNER_FILES)."""
    files = [(name, (RUNNER_DIR / name).read_text(encoding="utf-8")) for name in protocol.RUNNER_FILES]
    return protocol.join_runner(files)


def run_runner(host: HostState, protocol: SimpleNamespace, op_list: list[dict[str, Any]],
               **options: Any) -> tuple[dict[str, Any], int]:
    """One runner command on ``host`` as the collection sends it: (reply JSON, exit code)."""
    stdout, stderr, code = commands.execute(host, *runner_command(protocol), runner_stdin(protocol, op_list, **options))
    assert stderr == b"", stderr
    return decode_reply(stdout), code


def decode_reply(stdout: bytes) -> dict[str, Any]:
    """The reply JSON of a runner's standard output, compressed (NHS-CM-GZIP:) or not."""
    line = stdout.strip()
    if line.startswith(ops.REPLY_GZIP_PREFIX):
        line = gzip.decompress(base64.b64decode(line[len(ops.REPLY_GZIP_PREFIX):]))
    return json.loads(line)
