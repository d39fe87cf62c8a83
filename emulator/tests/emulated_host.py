"""Helpers the emulator's tests share (importable: conftest.py puts this folder on sys.path).

``host_from(text, source)`` is the first host of a scenario written in the test, and
``run_op(host, **op)`` is the result of one runner operation on it, as ``ops.handle_request``
answers a request of that one op.
"""

from __future__ import annotations

import json
from typing import Any

from nhs_cm_emulator import ops
from nhs_cm_emulator.scenario import parse_document, parse_text
from nhs_cm_emulator.state import HostState


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
