# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The write path every remediation role shares: plan, back up, write all or nothing, verify.

Pure functions, no I/O (docs/remediation.md, "The write path"). A role's module reads the host
once, decides what it wants and describes it as a list of *changes*:

- ``RegWrite(key, name, type, data)``: a registry value as it should be (``type=None``: absent);
- ``ServiceWant(name, start_mode, state, restart)``: a service's start mode and state;
- ``Action(description, ops)``: anything else that changes the host but is not a value that can
  be put back (starting a program in a session), with its write operations.

``plan(changes, current, ...)`` compares them with what the host has now (type-aware: REG_DWORD
1 and REG_SZ "1" differ), leaves out what is already so (idempotence), leaves out what domain
Group Policy owns unless ``override_gpo``, and returns a ``Plan``: the diff (``before`` /
``after`` for ``--diff``), the backup entries (the previous state of everything it will touch,
"did not exist" included) and the write operations. Check mode stops there.

``write_request(plan, backup_id, readback)`` is the ONE runner call that changes the host: a
``backup_save`` first, then the writes, then the read-back, sent with ``write_errors: stop`` so
the runner skips every write after a failed one (a failed ``backup_save`` therefore writes
nothing). ``outcome(plan, results)`` reads the reply: when a write failed, or a value read back
differs from what was written, ``Outcome.restore_ops`` put back, from the backup, every value
this run changed (and a service whose start failed: its start mode may have been set), in a
second call; ``restored(...)`` says whether that worked.

``restore_ops(entries, missing_keys)`` is also what ``nhs_cm.remediation.restore`` (rollback)
sends: each value back with its type and data, values that did not exist deleted, keys the
backup recorded as missing deleted when they are empty again, services back to their start mode
and state. Nothing else is touched.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import datetime
import secrets
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.gpo import (
    gpo_owner,
    gpo_policy_path,
    normalise_key,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.operations import (
    WRITE_OPERATIONS,
    WRITE_REG_TYPES,
)

#: The states a ``ServiceWant`` may ask for (``operations.SERVICE_STATES`` are all a service can report).
WANTED_SERVICE_STATES = ("running", "stopped")
START_MODES = ("auto", "manual", "disabled")
#: Operations that change the host (the runner's $WriteOperations).
WRITE_OPS = ("reg_write", "reg_delete", "reg_delete_key", "backup_save", "service_set", "task_run", "process_stop")


class ChangeError(ValueError):
    """A change that cannot be planned; the message names the field and what is allowed."""


@dataclass(frozen=True)
class RegWrite:
    """A registry value to write, as it should be; ``type=None`` means the value must not exist
    (a value as read is ``_diagnose.models.policy.RegRead``).

    ``list_key``: the value is an entry of a list policy (``...\\CookiesAllowedForUrls\\3``): a
    GPO that sets any entry of that key owns the whole list.
    """

    key: str
    name: str
    type: str | None
    data: t.Any = None
    view: str = "64"
    list_key: bool = False

    def location(self) -> tuple[str, str, str]:
        return normalise_key(self.key), self.view, self.name.casefold()


@dataclass(frozen=True)
class ServiceWant:
    """A service as it should be: ``start_mode`` (None: leave), ``state`` running/stopped (None:
    leave); ``restart``: restart it even though it runs (it runs but does not listen);
    ``listen_ports``/``listen_wait_ms``: after a (re)start, wait up to that long for a listener on
    one of these ports before the read-back (0 or no ports: no wait)."""

    name: str
    display_name: str = ""
    start_mode: str | None = None
    state: str | None = None
    restart: bool = False
    listen_ports: tuple[int, ...] = ()
    listen_wait_ms: int = 0


@dataclass(frozen=True)
class Action:
    """A change that is not a value (no backup entry, not put back by rollback)."""

    description: str
    ops: tuple[dict[str, t.Any], ...]
    before: str = ""
    after: str = ""


Change = RegWrite | ServiceWant | Action


@dataclass
class Planned:
    """One change the run will make: what it was, what it becomes, its backup entry and ops."""

    change: Change
    before: str
    after: str
    entry: dict[str, t.Any] | None
    ops: list[dict[str, t.Any]]


@dataclass
class Plan:
    planned: list[Planned] = field(default_factory=list)
    gpo_skipped: list[dict[str, t.Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.planned)

    @property
    def entries(self) -> list[dict[str, t.Any]]:
        return [item.entry for item in self.planned if item.entry is not None]

    @property
    def write_ops(self) -> list[dict[str, t.Any]]:
        return [op for item in self.planned for op in item.ops]

    def diff(self, header: str = "") -> dict[str, str]:
        """Ansible's diff: one line per change, before and after."""
        before = "".join(f"{item.before}\n" for item in self.planned)
        after = "".join(f"{item.after}\n" for item in self.planned)
        return {"before": before, "after": after, "before_header": f"{header} (before)".strip(),
                "after_header": f"{header} (after)".strip()}

    def summary(self) -> list[str]:
        return [f"{item.before} -> {item.after}" for item in self.planned]


# ---------------------------------------------------------------------------------------------
# Current state: what the read call found

Current = dict[tuple[str, str], dict[str, t.Any]]


def reg_current(reads: list[tuple[str, str, dict[str, t.Any]]]) -> Current:
    """``{(key, view): {name: {type, data}}}`` from (key, view, node) triples, where a node is a
    ``reg_read`` result or a node of the facts (``{exists, values, ...}``). A node that could not
    be read (an error result, or ``error`` set) is left out, so planning a value under it fails
    with a clear reason instead of guessing."""
    current: Current = {}
    for key, view, node in reads:
        if node.get("ok") is False or node.get("error"):
            continue
        current[(normalise_key(key), view)] = {n.casefold(): v for n, v in (node.get("values") or {}).items()}
    return current


def _current_value(current: Current, want: RegWrite) -> tuple[bool, dict[str, t.Any] | None]:
    """(known, value or None)."""
    values = current.get((normalise_key(want.key), want.view))
    if values is None:
        return False, None
    return True, values.get(want.name.casefold())


def same_value(value: dict[str, t.Any] | None, want: RegWrite) -> bool:
    """Type-aware: the value has exactly the wanted type and data (or is absent when wanted so)."""
    if want.type is None:
        return value is None
    if value is None or value.get("type") != want.type:
        return False
    return normalise_data(want.type, value.get("data")) == normalise_data(want.type, want.data)


def normalise_data(vtype: str, data: t.Any) -> t.Any:
    if vtype == "REG_MULTI_SZ":
        return list(data or [])
    if vtype in ("REG_BINARY", "REG_NONE"):
        return str(data or "").lower()
    return data


def describe_value(key: str, name: str, value: dict[str, t.Any] | None) -> str:
    shown = f"{key}\\{name}" if name else f"{key}\\(Default)"
    if value is None:
        return f"{shown}: (absent)"
    return f"{shown}: {value.get('type')} {value.get('data')!r}"


# ---------------------------------------------------------------------------------------------
# Planning

def check_change(change: Change) -> None:
    """``ChangeError`` naming the field when a change is malformed."""
    if isinstance(change, RegWrite):
        if change.type is not None and change.type not in WRITE_REG_TYPES:
            raise ChangeError(f"{change.key}\\{change.name}: type must be one of {', '.join(WRITE_REG_TYPES)} "
                              f"or None (absent), not {change.type!r}")
        if change.view not in ("64", "32"):
            raise ChangeError(f"{change.key}\\{change.name}: view must be '64' or '32', not {change.view!r}")
    elif isinstance(change, ServiceWant):
        if change.start_mode is not None and change.start_mode not in START_MODES:
            raise ChangeError(f"service {change.name}: start_mode must be one of {', '.join(START_MODES)}, "
                              f"not {change.start_mode!r}")
        if change.state is not None and change.state not in WANTED_SERVICE_STATES:
            raise ChangeError(f"service {change.name}: state must be running or stopped, not {change.state!r}")
    elif not isinstance(change, Action):
        raise ChangeError(f"a change must be a RegWrite, ServiceWant or Action, not {type(change).__name__}")


def _reg_planned(want: RegWrite, value: dict[str, t.Any] | None) -> Planned:
    entry = {"kind": "reg", "key": want.key, "view": want.view, "name": want.name, "existed": value is not None,
             "type": value.get("type") if value else None, "data": value.get("data") if value else None}
    after: dict[str, t.Any] | None = None if want.type is None else {"type": want.type, "data": want.data}
    if want.type is None:
        op: dict[str, t.Any] = {"op": "reg_delete", "key": want.key, "view": want.view, "name": want.name}
    else:
        op = {"op": "reg_write", "key": want.key, "view": want.view, "name": want.name, "type": want.type,
              "data": want.data}
    return Planned(want, describe_value(want.key, want.name, value), describe_value(want.key, want.name, after),
                   entry, [op])


def describe_service(name: str, state: str | None, start_mode: str | None) -> str:
    return f"service {name}: state {state}, start mode {start_mode}"


def _service_planned(want: ServiceWant, service: dict[str, t.Any]) -> Planned | None:
    state, start_mode = service.get("state"), service.get("start_mode")
    new_mode = want.start_mode if want.start_mode not in (None, start_mode) else None
    running = state == "running"
    new_state: str | None = None
    if want.state == "running" and (not running or want.restart):
        new_state = "restarted" if running else "started"
    elif want.state == "stopped" and state != "stopped":
        new_state = "stopped"
    if new_mode is None and new_state is None:
        return None
    op: dict[str, t.Any] = {"op": "service_set", "name": service.get("name") or want.name,
                            "state": new_state or ("started" if running else "stopped")}
    if new_mode is not None:
        op["start_mode"] = new_mode
    if new_state in ("started", "restarted") and want.listen_ports and want.listen_wait_ms > 0:
        op["listen_ports"] = list(want.listen_ports)
        op["listen_wait_ms"] = want.listen_wait_ms
    entry = {"kind": "service", "name": op["name"], "display_name": service.get("display_name") or want.display_name,
             "state": "running" if running else "stopped", "start_mode": start_mode}
    after_state = "running" if new_state in ("started", "restarted") else ("stopped" if new_state else state)
    after = describe_service(op["name"], after_state, new_mode or start_mode)
    if new_state == "restarted":
        after += " (restarted)"
    return Planned(want, describe_service(op["name"], state, start_mode), after, entry, [op])


def _gpo_block(want: RegWrite, facts: dict[str, t.Any]) -> dict[str, t.Any] | None:
    owner = gpo_owner(facts, want.key, want.name)
    if owner is None and want.list_key:
        wanted = normalise_key(want.key)
        owner = next((s for s in (facts.get("gpo") or {}).get("settings") or []
                      if normalise_key(str(s.get("key") or "")) == wanted), None)
    if owner is None:
        return None
    return {"key": want.key, "name": want.name, "gpo": owner.get("gpo"),
            "policy": gpo_policy_path(want.key, want.name) or f"the policy that writes {want.key} {want.name}"}


def plan(changes: list[Change], current_reg: Current | None = None,
         services: list[dict[str, t.Any]] | None = None, facts: dict[str, t.Any] | None = None,
         override_gpo: bool = False) -> Plan:
    """The changes that differ from the host's state, in order, with their diff, backup entries
    and ops. Raises ``ChangeError`` for a malformed change or a value whose key was not read."""
    result = Plan()
    current_reg = current_reg or {}
    by_name = {str(s.get("name", "")).casefold(): s for s in services or []}
    seen: set[tuple[str, str, str]] = set()
    for change in changes:
        check_change(change)
        if isinstance(change, Action):
            result.planned.append(Planned(change, change.before or change.description,
                                          change.after or change.description, None, [dict(op) for op in change.ops]))
            continue
        if isinstance(change, ServiceWant):
            service = by_name.get(change.name.casefold())
            if service is None:
                raise ChangeError(f"service {change.name}: not in the services read from the host")
            planned = _service_planned(change, service)
            if planned is not None:
                result.planned.append(planned)
            continue
        if change.location() in seen:
            raise ChangeError(f"{change.key}\\{change.name} is changed twice in one plan")
        seen.add(change.location())
        known, value = _current_value(current_reg, change)
        if not known:
            raise ChangeError(f"{change.key} was not read, so {change.name!r} cannot be compared; read the key first")
        if same_value(value, change):
            continue
        blocked = _gpo_block(change, facts or {})
        if blocked is not None and not override_gpo:
            result.gpo_skipped.append(blocked)
            continue
        if blocked is not None:
            result.warnings.append(
                f"{change.key}\\{change.name} is set by domain Group Policy (GPO {blocked['gpo']!r}, "
                f"'{blocked['policy']}'); it is written anyway (override_gpo) and will be reverted at the next "
                "Group Policy refresh unless that GPO is changed")
        result.planned.append(_reg_planned(change, value))
    return result


# ---------------------------------------------------------------------------------------------
# The write call and its outcome

def new_backup_id(role: str, now: datetime.datetime | None = None) -> str:
    """``<UTC time>-<role>-<random>``: unique, sortable by time, safe as a file name."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    short = "".join(ch if ch.isalnum() else "_" for ch in role.rsplit(".", 1)[-1])[:24]
    return f"{stamp}-{short}-{secrets.token_hex(4)}"


def value_readback_ops(the_plan: Plan) -> list[dict[str, t.Any]]:
    """Reads that show the planned values and services afterwards: one reg_read per key (only the
    names changed), then one service_query. ``verify_values`` takes their results."""
    keys: dict[tuple[str, str], dict[str, t.Any]] = {}
    names: list[str] = []
    for item in the_plan.planned:
        change = item.change
        if isinstance(change, RegWrite):
            op = keys.setdefault((normalise_key(change.key), change.view),
                                 {"op": "reg_read", "key": change.key, "view": change.view, "names": []})
            if change.name not in op["names"]:
                op["names"].append(change.name)
        elif isinstance(change, ServiceWant) and item.ops[0]["name"] not in names:
            names.append(item.ops[0]["name"])
    reads = list(keys.values())
    if names:
        reads.append({"op": "service_query", "names": names})
    return reads


def write_request(the_plan: Plan, backup_id: str,
                  extra_reads: list[dict[str, t.Any]] | None = None) -> list[dict[str, t.Any]]:
    """The ops of the ONE call that changes the host (send with ``write_errors="stop"``):
    backup_save, the writes, ``value_readback_ops`` and the role's own ``extra_reads``."""
    save = {"op": "backup_save", "id": backup_id, "entries": the_plan.entries}
    return [save, *the_plan.write_ops, *value_readback_ops(the_plan), *(extra_reads or [])]


@dataclass
class Outcome:
    """What the write call did."""

    ok: bool
    backup: dict[str, t.Any] | None
    failure: str | None = None
    attempted: list[Planned] = field(default_factory=list)
    results: list[dict[str, t.Any]] = field(default_factory=list)  # per planned change: {change, ops, results}
    readback: list[dict[str, t.Any]] = field(default_factory=list)
    restore_ops: list[dict[str, t.Any]] = field(default_factory=list)


_SERVICE_TIMEOUT_MS = int(WRITE_OPERATIONS["service_set"]["request"]["timeout_ms"]["default"])
_REACHED = {"started": "running", "restarted": "running", "stopped": "stopped"}


def op_text(op: dict[str, t.Any]) -> str:
    """A write operation in words: ``reg_write <key> '<name>'``, ``start <program> in session N``..."""
    if op.get("op") == "task_run":
        return f"start {op.get('command')} in session {op.get('session')}"
    if op.get("op") == "process_stop":
        return f"stop process {op.get('pid')} ({op.get('image')})"
    target = op.get("key") or op.get("name") or op.get("command") or op.get("id") or ""
    extra = f" {op['name']!r}" if op.get("key") and "name" in op else ""
    return f"{op.get('op')} {target}{extra}".strip()


def failure_text(op: dict[str, t.Any], result: dict[str, t.Any]) -> str:
    """Why a write operation failed, one line. A service that did not settle in time is said so,
    not "failed": ``service X did not reach running in 30 s``."""
    if op.get("op") == "service_set" and result.get("error") == "timeout":
        seconds = int(op.get("timeout_ms") or _SERVICE_TIMEOUT_MS) / 1000
        return (f"service {op.get('name')} did not reach {_REACHED.get(str(op.get('state')), op.get('state'))} in "
                f"{seconds:g} s: {result.get('message')}")
    if result.get("error") == "busy":
        return f"{op_text(op)}: another run of nhs_cm.remediation holds this host: {result.get('message')}"
    return f"{op_text(op)} failed ({result.get('error')}): {result.get('message')}"


def writes_done(ops: list[dict[str, t.Any]], results: list[dict[str, t.Any]]) -> list[str]:
    """The write operations of a call that ran (their result is ok), in words, in order."""
    return [op_text(op) for op, result in zip(ops, results, strict=False)
            if op.get("op") in WRITE_OPS and result.get("ok")]


def _may_have_changed(op: dict[str, t.Any], result: dict[str, t.Any]) -> bool:
    """Whether a FAILED write may have changed something before it failed: only service_set (a
    start mode set, then the start failed). A registry write changes its value last, and an op
    refused by the allow-list or its own checks, or skipped, changed nothing."""
    if result.get("error") in ("forbidden", "invalid_request", "not_found", "skipped"):
        return False
    return op.get("op") == "service_set"


def outcome(the_plan: Plan, results: list[dict[str, t.Any]]) -> Outcome:
    """Read the reply of ``write_request``: which writes ran, the first failure, the read-back."""
    save, rest = results[0], results[1:]
    count = len(the_plan.write_ops)
    writes, readback = rest[:count], rest[count:]
    values_read = readback[:len(value_readback_ops(the_plan))]
    if not save.get("ok"):
        reason = f"the backup could not be saved, so nothing was changed: {save.get('error')}: {save.get('message')}"
        return Outcome(False, None, reason, readback=readback)
    backup = {"id": save.get("id"), "path": save.get("path"), "missing_keys": list(save.get("missing_keys") or []),
              "entries": the_plan.entries}
    attempted: list[Planned] = []
    per_change: list[dict[str, t.Any]] = []
    failure = None
    position = 0
    for item in the_plan.planned:
        mine = writes[position:position + len(item.ops)]
        position += len(item.ops)
        if any(r.get("ok") or _may_have_changed(op, r) for op, r in zip(item.ops, mine, strict=False)):
            attempted.append(item)
        per_change.append({"change": item.after, "ops": item.ops, "results": mine})
        for result, op in zip(mine, item.ops, strict=False):
            if failure is None and not result.get("ok") and result.get("error") != "skipped":
                failure = failure_text(op, result)
    if failure is None:
        problems = verify_values(the_plan, values_read)
        if problems:
            attempted = list(the_plan.planned)
            failure = "the values read back are not what was written: " + "; ".join(problems)
    result = Outcome(failure is None, backup, failure, attempted, per_change, readback)
    if failure is not None:
        entries = [i.entry for i in attempted if i.entry is not None]
        result.restore_ops = restore_ops(entries, keys_above(entries, backup["missing_keys"]))
    return result


def keys_above(entries: list[dict[str, t.Any]], missing_keys: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The missing keys that hold (or are parents of) the keys of these registry entries: the only
    keys a write of these entries can have created."""
    keys = {(normalise_key(e["key"]), e.get("view") or "64") for e in entries if e.get("kind") == "reg"}

    def holds(item: dict[str, t.Any]) -> bool:
        missing, view = normalise_key(item["key"]), item.get("view") or "64"
        return any(v == view and (key == missing or key.startswith(missing + "\\")) for key, v in keys)
    return [item for item in missing_keys if holds(item)]


def verify_values(the_plan: Plan, readback: list[dict[str, t.Any]]) -> list[str]:
    """What reads back differently from what was written (``readback``: the results of
    ``value_readback_ops(the_plan)``, in order); [] when everything is as planned."""
    reads = value_readback_ops(the_plan)
    reg: dict[tuple[str, str], dict[str, t.Any]] = {}
    services: dict[str, dict[str, t.Any]] = {}
    for op, result in zip(reads, readback, strict=False):
        if op["op"] == "reg_read":
            reg[(normalise_key(op["key"]), op["view"])] = result
        else:
            services = {str(s.get("name")).casefold(): s for s in result.get("services") or []}
    problems = []
    for item in the_plan.planned:
        change = item.change
        if isinstance(change, RegWrite):
            read = reg.get((normalise_key(change.key), change.view))
            if read is None or not read.get("ok"):
                problems.append(f"{change.key}\\{change.name} could not be read back")
                continue
            value = {n.casefold(): v for n, v in (read.get("values") or {}).items()}.get(change.name.casefold())
            if not same_value(value, change):
                problems.append(f"read back {describe_value(change.key, change.name, value)}")
        elif isinstance(change, ServiceWant):
            service = services.get(str(item.ops[0]["name"]).casefold())
            if service is None:
                problems.append(f"service {change.name} could not be read back")
                continue
            if change.state is not None and service.get("state") != change.state:
                problems.append(f"service {change.name} is {service.get('state')} afterwards, not {change.state}")
            if change.start_mode is not None and service.get("start_mode") != change.start_mode:
                problems.append(f"service {change.name} starts {service.get('start_mode')} afterwards, "
                                f"not {change.start_mode}")
    return problems


# ---------------------------------------------------------------------------------------------
# Putting values back (a failed run, or rollback)

def restore_ops(entries: list[dict[str, t.Any]], missing_keys: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Write operations that put every entry back: values first (as they were: same type and
    data, or deleted when they did not exist), then the keys recorded as missing (deepest first;
    the runner deletes a key only when it is empty), then services."""
    ops: list[dict[str, t.Any]] = []
    for entry in entries:
        if entry.get("kind") != "reg":
            continue
        base = {"key": entry["key"], "view": entry.get("view") or "64", "name": entry["name"]}
        if entry.get("existed"):
            ops.append({"op": "reg_write", **base, "type": entry["type"], "data": entry["data"]})
        else:
            ops.append({"op": "reg_delete", **base})
    for item in sorted(missing_keys, key=lambda k: k["key"].count("\\"), reverse=True):
        ops.append({"op": "reg_delete_key", "key": item["key"], "view": item.get("view") or "64"})
    for entry in entries:
        if entry.get("kind") == "service":
            op = {"op": "service_set", "name": entry["name"],
                  "state": "started" if entry.get("state") == "running" else "stopped"}
            if entry.get("start_mode") in START_MODES:
                op["start_mode"] = entry["start_mode"]
            ops.append(op)
    return ops


def restore_changes(entries: list[dict[str, t.Any]]) -> list[Change]:
    """A backup's entries as changes (for planning a rollback: what differs now, the diff)."""
    changes: list[Change] = []
    for entry in entries:
        if entry.get("kind") == "reg":
            changes.append(RegWrite(entry["key"], entry["name"], entry.get("type") if entry.get("existed") else None,
                                    entry.get("data"), entry.get("view") or "64"))
        elif entry.get("kind") == "service":
            mode = entry.get("start_mode") if entry.get("start_mode") in START_MODES else None
            changes.append(ServiceWant(entry["name"], entry.get("display_name") or "", mode,
                                       "running" if entry.get("state") == "running" else "stopped"))
    return changes


def restore_failures(ops: list[dict[str, t.Any]], results: list[dict[str, t.Any]]) -> list[str]:
    """Why restore operations failed (a key left because it is not empty is not a failure)."""
    problems = []
    for op, result in zip(ops, results, strict=False):
        if not result.get("ok"):
            problems.append(failure_text(op, result))
    return problems
