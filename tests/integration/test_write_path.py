"""The write path end to end for registry values, without Ansible: the real runner text and
request go through the emulator's WinRS interpreter (as the action plugins send them), and the
controller side is _remediate/changes.py. Covers what the cm_service role does not: values, keys created and
removed again, an injected failure on a denied key (all or nothing), rollback exactness."""

from __future__ import annotations

import base64
import sys
import typing as t

import pytest
from ansible.plugins.shell.powershell import ShellModule
from harness import ROOT

from nhs_cm_emulator import commands
from nhs_cm_emulator.scenario import parse_document, parse_text
from nhs_cm_emulator.state import HostState

sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate import changes
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.action import runner_text
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import BOOTSTRAP
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.reply import parse_reply
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.request import build_stdin

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
EDGE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge"
CHROME_ALLOW = "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\CookiesAllowedForUrls"
ZONEMAP = f"HKU\\{SID}\\Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap"
RUNNER = runner_text()
HOST = rf"""
hosts:
  - name: pc-values
    sessions: [{{id: 1, user: 'NHS\jsmith', sid: '{SID}'}}]
    profiles: [{{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}]
    registry:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_SZ, data: '1'}}
        AuthServerAllowlist: {{type: REG_SZ, data: '*.nhs.uk'}}
    denied: ['HKLM\SOFTWARE\Policies\Microsoft\Edge\LocalNetworkAccessAllowedForUrls']
    group_policy:
      'HKLM\SOFTWARE\Policies\Microsoft\Edge':
        BlockThirdPartyCookies: {{type: REG_SZ, data: '1'}}
"""


class Runner:
    """Sends ops the way RunnerAction.run_ops does, to an emulated host."""

    def __init__(self, host: HostState) -> None:
        self.host = host
        self.calls = 0
        encoded = ShellModule()._encode_script(BOOTSTRAP, as_list=False, strict_mode=False, preserve_rc=False)
        self.command, *self.arguments = encoded.split()

    def __call__(self, ops: list[dict[str, t.Any]], write_errors: str = "continue") -> list[dict[str, t.Any]]:
        self.calls += 1
        stdin = build_stdin(RUNNER, ops, write_errors=write_errors)
        out, err, code = commands.execute(self.host, self.command, self.arguments, stdin)
        return parse_reply(out, err, code, ops)


@pytest.fixture
def host() -> HostState:
    return HostState(parse_document(parse_text(HOST, "values.yml"), "values.yml")[0][0])


def read_current(run: Runner, keys: list[str]) -> changes.Current:
    results = run([{"op": "reg_read", "key": key} for key in keys])
    return changes.reg_current([(key, "64", result) for key, result in zip(keys, results, strict=True)])


def apply(run: Runner, the_plan: changes.Plan, backup_id: str) -> changes.Outcome:
    """What WriteAction.apply_plan does, without Ansible: one call, and one more to put back."""
    done = changes.outcome(the_plan, run(changes.write_request(the_plan, backup_id), write_errors="stop"))
    if not done.ok and done.restore_ops:
        put_back = run(done.restore_ops)
        assert changes.restore_failures(done.restore_ops, put_back) == []
    return done


WANTED = [changes.RegWrite(EDGE, "BlockThirdPartyCookies", "REG_DWORD", 0),
          changes.RegWrite(CHROME_ALLOW, "1", "REG_SZ", "[*.]localhost", list_key=True),
          changes.RegWrite(ZONEMAP, "IntranetName", "REG_DWORD", 1)]
KEYS = [EDGE, CHROME_ALLOW, ZONEMAP]


def test_write_verify_idempotent_and_roll_back_exactly(host: HostState) -> None:
    run = Runner(host)
    original = host.state_dict()["registry"]
    the_plan = changes.plan(WANTED, read_current(run, KEYS))
    assert len(the_plan.planned) == 3
    done = apply(run, the_plan, "b-values")
    assert done.ok, done.failure
    registry = host.state_dict()["registry"]
    assert registry[EDGE]["BlockThirdPartyCookies"] == {"type": "REG_DWORD", "data": 0}
    assert registry[CHROME_ALLOW] == {"1": {"type": "REG_SZ", "data": "[*.]localhost"}}
    assert run.calls == 2  # one read, one write-and-read-back
    # the keys it created were recorded as missing, parents first
    assert [k["key"] for k in done.backup["missing_keys"]][:3] == [
        "HKLM\\SOFTWARE\\Policies\\Google", "HKLM\\SOFTWARE\\Policies\\Google\\Chrome", CHROME_ALLOW]

    writes = host.writes
    assert not changes.plan(WANTED, read_current(run, KEYS)).changed  # second run: nothing to do
    assert host.writes == writes

    # rollback: the backup on the host, planned against the host now, written back
    (listed,) = run([{"op": "backup_list"}])  # the controller picks latest: the newest by file time
    (loaded,) = run([{"op": "backup_load", "id": listed["backups"][-1]["id"]}])
    backup = loaded["backup"]
    undo = changes.plan(changes.restore_changes(backup["entries"]), read_current(run, KEYS))
    run(undo.write_ops + changes.restore_ops([], backup["missing_keys"]))
    assert host.state_dict()["registry"] == original  # same types, same data, created keys gone


def test_a_denied_key_part_way_puts_back_what_was_written(host: HostState) -> None:
    run = Runner(host)
    original = host.state_dict()["registry"]
    denied = EDGE + "\\LocalNetworkAccessAllowedForUrls"
    wanted = [WANTED[0], WANTED[1], changes.RegWrite(denied, "1", "REG_SZ", "https://ers.nhs.uk"), WANTED[2]]
    current = read_current(run, [*KEYS, denied])
    current[(changes.normalise_key(denied), "64")] = {}  # say it looked readable and empty
    the_plan = changes.plan(wanted, current)
    done = apply(run, the_plan, "b-denied")
    assert not done.ok
    assert done.failure is not None and "LocalNetworkAccessAllowedForUrls" in done.failure
    assert "access_denied" in done.failure
    # the two writes before the denied one are put back; the denied one changed nothing; the 4th was skipped
    assert [item.change for item in done.attempted] == wanted[:2]
    assert host.state_dict()["registry"] == original
    assert [b["id"] for b in host.state_dict()["backups"]] == ["b-denied"]


def test_a_forbidden_write_changes_nothing(host: HostState) -> None:
    run = Runner(host)
    original = host.state_dict()
    evil = changes.RegWrite("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run", "x", "REG_SZ", "C:\\evil.exe")
    the_plan = changes.plan([WANTED[0], evil], read_current(run, [EDGE, evil.key]))
    # the forbidden write goes first, so nothing at all is written
    the_plan.planned.reverse()
    done = apply(run, the_plan, "b-evil")
    assert not done.ok and "forbidden" in str(done.failure)
    state = host.state_dict()
    assert state["registry"] == original["registry"]


def test_the_runner_runs_every_op_it_is_given(host: HostState) -> None:
    """The stdin of the emulated call is the real runner's (the marker line and the request)."""
    run = Runner(host)
    stdin = build_stdin(RUNNER, [{"op": "backup_list"}])
    assert base64.b64decode(stdin)[:2] == b"\x1f\x8b" or stdin.startswith(b"# NHS-CM-RUNNER v1")
    assert run([{"op": "backup_list"}]) == [{"ok": True, "backups": []}]


def test_a_gpo_owned_value_is_left_alone_unless_overridden(host: HostState) -> None:
    run = Runner(host)
    (gpo,) = run([{"op": "gpo_registry_settings", "key_prefixes": ["SOFTWARE\\Policies\\Microsoft\\Edge"]}])
    facts = {"gpo": {"available": True, "error": None, "settings": gpo["settings"]}}
    wanted = [WANTED[0], changes.RegWrite(EDGE, "AuthServerAllowlist", "REG_SZ", "*.nhs.uk,localhost")]
    current = read_current(run, [EDGE])
    the_plan = changes.plan(wanted, current, facts=facts)
    assert [item.change.name for item in the_plan.planned] == ["AuthServerAllowlist"]  # type: ignore[union-attr]
    assert the_plan.gpo_skipped[0]["name"] == "BlockThirdPartyCookies"
    assert the_plan.gpo_skipped[0]["gpo"] == gpo["settings"][0]["gpo"]
    overridden = changes.plan(wanted, current, facts=facts, override_gpo=True)
    assert len(overridden.planned) == 2 and "next Group Policy refresh" in overridden.warnings[0]
    assert apply(run, overridden, "b-gpo").ok
    assert host.state_dict()["registry"][EDGE]["BlockThirdPartyCookies"] == {"type": "REG_DWORD", "data": 0}
