"""What diagnose's call carries over WinRM (command line and stdin), worked out with the collection's own code."""

from __future__ import annotations

import base64

from paths import COLLECTIONS, put_on_sys_path


def call_composition() -> dict[str, int]:
    """What diagnose's call with the default options carries, from the collection's own code: the
    encoded command line (the bootstrap) and stdin (base64 of the gzip stream of the runner cut to
    diagnose's operations and the request), with the runner's share of it."""
    # Imported here, not at the top: the collection is importable only once .collections is on sys.path.
    put_on_sys_path(COLLECTIONS)
    from ansible.plugins.shell.powershell import ShellModule

    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.reads import plan_reads
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner import request
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import runner_text
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.assembly import runner_for_ops
    from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import BOOTSTRAP

    ops = plan_reads(None)
    names = frozenset(op["op"] for op in ops)
    head, packer = request._packed_runner(runner_text(), names)
    command = ShellModule()._encode_script(BOOTSTRAP, as_list=False, strict_mode=False, preserve_rc=False)
    stdin = request.build_stdin(runner_text(), ops)
    return {"command_chars": len(command),
            "stdin_base64_chars": len(stdin),
            "stdin_gzip_bytes": len(base64.b64decode(stdin)),
            "runner_base64_chars": len(base64.b64encode(head + packer.copy().flush())),
            "runner_text_chars": len(runner_for_ops(runner_text(), names)),
            "request_json_chars": len(request.build_request(request.validate_ops(ops)))}


def wsman_base64(chars: int) -> int:
    """Bytes of ``chars`` bytes of stdin once WS-Man's Send has base64-encoded them."""
    return 4 * -(-chars // 3)
