"""Property tests (hypothesis) on the text the collection reads from outside, where no other test
file has them: the runner's reply, the e-RS report text a user pastes, and report.json files
given to report_merge as they may be found on disk (hand-edited, truncated, from another tool).
Scenario files have theirs in emulator/tests/test_scenario.py; the merge algebra in
tests/unit/plugins/plugin_utils/_report/test_report_merge.py."""

from __future__ import annotations

import datetime as dt
import json
import typing as t

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import FAULT_MESSAGES
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.ers_report import parse_ers_report
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import build as _report
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report import merge as _report_merge
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import (
    PROTOCOL,
    RUNNER_NAME,
    ProtocolError,
    RunnerError,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import parse_reply

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Replies that look like the runner's, broken in every way: the right keys with any values.
runner_like = st.fixed_dictionaries(
    {},
    optional={"runner": st.sampled_from([RUNNER_NAME, "other"]) | json_values,
              "protocol": st.sampled_from([PROTOCOL, PROTOCOL + 1]) | json_values,
              "ok": st.booleans() | json_values,
              "error": st.sampled_from(["access_denied", "failed", "invalid_request"]) | json_values,
              "message": json_values,
              "results": st.lists(json_values | st.fixed_dictionaries({"ok": st.booleans()},
                                                                      optional={"error": json_values}),
                                  max_size=3)
              | json_values},
)
stdout_texts = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    json_values.map(json.dumps),
    runner_like.map(json.dumps),
    st.tuples(st.text(max_size=40), runner_like.map(json.dumps)).map("\r\n".join),
)
stderr_texts = st.none() | st.binary(max_size=100) | st.text(max_size=100) | st.sampled_from([
    "#< CLIXML\r\n<Objs Version=\"1.1.0.1\"><S S=\"Error\">Access is denied_x000D__x000A_</S></Objs>",
    "#< CLIXML\r\n<Objs><S S=", "Access is denied."])
OPS = [{"op": "reg_read", "key": "HKLM\\SOFTWARE\\Policies", "view": "64"}]


@FAST
@given(stdout_texts, stderr_texts, st.none() | st.integers(-(2**31), 2**32), st.booleans())
def test_any_reply_gives_results_or_a_one_line_runner_error(stdout: t.Any, stderr: t.Any, rc: int | None,
                                                            with_ops: bool) -> None:
    try:
        results = parse_reply(stdout, stderr, rc, OPS if with_ops else None)
    except RunnerError as exc:
        assert str(exc) and "\n" not in str(exc)
    except ProtocolError:
        pass
    else:
        assert isinstance(results, list)
        assert all(isinstance(r, dict) and isinstance(r["ok"], bool) for r in results)


results_lists = st.lists(st.one_of(
    st.fixed_dictionaries({"ok": st.just(False), "error": st.sampled_from(["not_found", "access_denied", "timeout"]),
                           "message": st.text(max_size=30)}),
    st.fixed_dictionaries({"ok": st.just(True)}, optional={"note": st.text(max_size=30), "n": st.integers()}),
), max_size=5)


@FAST
@given(results_lists, st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
       st.sampled_from(["\n", "\r\n"]))
def test_a_valid_reply_round_trips(results: list[dict[str, t.Any]], banner: str, newline: str) -> None:
    reply = json.dumps({"runner": RUNNER_NAME, "protocol": PROTOCOL, "ok": True, "results": results})
    assert parse_reply(reply + newline, b"", 0) == results
    assert parse_reply(reply.encode("utf-8"), None, None) == results
    if not banner.strip().startswith('{"'):  # a stray line before the reply (a profile's banner) is tolerated
        assert parse_reply(banner.replace("\r", " ").replace("\n", " ") + newline + reply, "", 0) == results


@FAST
@given(st.text(max_size=600))
def test_any_report_text_gives_a_fault_or_none(text: str) -> None:
    report = parse_ers_report(text)
    assert report is None or (report.fault in FAULT_MESSAGES and (report.port is None or 1 <= report.port <= 65535))


# Noise a user may paste around the message: words that name no fault, digits and punctuation.
NOISE_WORDS = ["Hello", "the", "e-RS", "page", "said:", "ticket", "INC0012345", "ward", "12", "--", "\n", "&nbsp;",
               "<br>", "thanks", "Chrome", "clinic", "2026-11-25", "10:32", "(see", "below)", "*", "Referral"]
noise = st.lists(st.sampled_from(NOISE_WORDS), max_size=15).map(" ".join)


@FAST
@given(noise, noise, st.sampled_from(sorted(FAULT_MESSAGES)), st.integers(1024, 65535),
       st.sampled_from(["", "NHS Identity Hub/Credential Management (v1.4.2.0) "]))
def test_a_known_message_in_noise_is_found(before: str, after: str, fault: int, port: int, prefix: str) -> None:
    message = prefix + FAULT_MESSAGES[fault].replace("<port>", str(port))
    report = parse_ers_report(f"{before} {message} {after}")
    assert report is not None, message
    assert report.fault == fault
    if fault in (2, 3):
        assert report.port == port
    if prefix and fault != 4:
        assert report.version == "1.4.2.0"


BASE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
GOOD = _report.build_report({"pc-1": None, "pc-2": {"unreachable": True, "msg": "refused"}}, generated=BASE,
                            checks=[])
# Paths into a report and what may be found there instead.
REPORT_PATHS = [("schema",), ("generated",), ("hosts",), ("checks",), ("hosts", "pc-1"), ("hosts", "pc-1", "status"),
                ("hosts", "pc-1", "audited"), ("hosts", "pc-1", "findings"), ("hosts", "pc-2", "reason"),
                ("hosts", "pc-2", "status")]


def mutate(doc: dict[str, t.Any], changes: list[tuple[tuple[str, ...], t.Any]]) -> t.Any:
    copy = json.loads(json.dumps(doc))
    for path, value in changes:
        node = copy
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[path[-1]] = value
    return copy


@FAST
@given(st.lists(st.tuples(st.sampled_from(REPORT_PATHS), json_values | st.sampled_from(["ok", "failed", 1, 2])),
                min_size=1, max_size=3), st.booleans())
def test_a_damaged_report_merges_or_gives_a_report_error(changes: list[tuple[tuple[str, ...], t.Any]],
                                                         with_good: bool) -> None:
    damaged = mutate(GOOD, changes)
    try:
        merged = _report_merge.merge_reports([damaged, GOOD] if with_good else [damaged])
    except _report_merge.ReportError as exc:
        assert str(exc)
    else:
        assert isinstance(merged["hosts"], dict)
        json.dumps(merged)  # the merged report can be written
