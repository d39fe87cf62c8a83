#!/usr/bin/env python3
"""Fault injection over an emulated estate: audit and remediate 100+ hosts with faults injected,
then print the figures (docs/quality.md, "Fault injection").

    .venv/bin/python tools/fault_injection.py [--hosts 120] [--seed 1] [--forks 50] [--json FILE]

The estate is built from the scenario library (scenarios/*.yml): host i is a copy of library
host i mod N, named ``<template>-<i>``. Chosen copies get one fault each (FAULTS below). Each
run is the audit (playbooks/audit.yml, report.json) and then the fix play (roles cm_service and
third_party_cookies); run 2 repeats both. A faulty host must fail alone with a one-line reason,
every other host must finish, no host may be left half-written (its registry, services and
programs equal its state before the run or a clean twin's after it), and a fault that has run
out (``times``) must not stop run 2.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nhs_cm_emulator.launch import RunningEmulator, launch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCENARIOS = ROOT / "scenarios"
SCENARIO_FAULT = "service will not start (the library scenario's own fault)"
AUDIT_REQUESTS = 6  # WinRM requests of one audit over basic auth: Create, Command, Send, Receive, Signal, Delete
FIX = """
- name: Fix CM's services and browser cookies
  hosts: windows
  gather_facts: false
  roles:
    - role: nhs_cm.remediation.cm_service
    - role: nhs_cm.remediation.third_party_cookies
      vars:
        third_party_cookies_remove_localhost_block: true
"""


@dataclass(frozen=True)
class Fault:
    """One fault: its name, the library host it is put on and how (``apply`` edits the host and
    the estate's ``inventory_vars``)."""

    name: str
    template: str
    transport: dict[str, Any] | None = None
    behaviour: dict[str, Any] = field(default_factory=dict)
    denied: tuple[str, ...] = ()
    inventory: dict[str, Any] = field(default_factory=dict)
    clears: bool = False  # over before run 2: a transport fault's ``times`` run out, a GP refresh happens once


FAULTS = (
    Fault("connection refused", "healthy-cm4-scc", transport={"kind": "refuse", "after_requests": 0}),
    Fault("wrong password (401), twice", "cm-not-running", transport={"kind": "auth", "times": 2}, clears=True),
    Fault("wrong password in the inventory", "port-service-not-listening",
          inventory={"ansible_password": "not-the-password"}),
    Fault("HTTP 500, twice", "smartcard-service-stopped", transport={"kind": "http500", "times": 2}, clears=True),
    Fault("timeout, twice", "port-service-not-automatic", transport={"kind": "timeout", "times": 2, "seconds": 12},
          inventory={"ansible_winrm_read_timeout_sec": 10, "ansible_winrm_operation_timeout_sec": 8}, clears=True),
    Fault("connection dropped during the write command", "port-service-stopped",
          transport={"kind": "drop", "after_requests": AUDIT_REQUESTS + 7, "times": 1}, clears=True),
    Fault("reply not JSON", "intranet-unc-off", behaviour={"garbage_reply": True}),
    Fault("access denied on a key", "localhost-cookies-blocked",  # the user policy key the fix deletes
          denied=("HKU\\S-1-5-21-2847561937-1930485726-3150942856-15517\\Software\\Policies\\Microsoft\\Edge"
                  "\\CookiesBlockedForUrls",)),
    Fault("service will not start", "port-service-stopped", behaviour={"port_service_start_fails": True}),
    Fault("Group Policy refresh during the run", "cookies-blocked-by-default",
          behaviour={"gp_refresh": {"after_writes": 2, "registry": {  # the entry the fix has just written
              "HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\CookiesAllowedForUrls": {
                  "2": {"type": "REG_SZ", "data": "https://[*.]gp.example.nhs.uk"}}}}}, clears=True),
)


def library() -> list[dict[str, Any]]:
    hosts = []
    for path in sorted(SCENARIOS.glob("*.yml")):
        hosts += yaml.safe_load(path.read_text(encoding="utf-8"))["hosts"]
    return hosts


def build_estate(count: int, seed: int) -> tuple[dict[str, Any], dict[str, Fault], dict[str, str]]:
    """(scenario document, host -> fault, host -> template name)."""
    templates = library()
    hosts, template_of = [], {}
    for index in range(count):
        template = templates[index % len(templates)]
        host = copy.deepcopy(template)
        host["name"] = f"{template['name']}-{index:03d}"
        hosts.append(host)
        template_of[host["name"]] = template["name"]
    rng = random.Random(seed)
    faults: dict[str, Fault] = {}
    for fault in FAULTS:
        free = [h for h in hosts if template_of[h["name"]] == fault.template and h["name"] not in faults]
        host = rng.choice(free[1:])  # the first copy stays clean: the twin the others are compared with
        faults[host["name"]] = fault
        if fault.transport:
            host["transport"] = {"fail": dict(fault.transport)}
        host["behaviour"] = {**host.get("behaviour", {}), **copy.deepcopy(fault.behaviour)}
        host["denied"] = list(host.get("denied", [])) + list(fault.denied)
    for host in hosts:  # library hosts that carry a fault of their own
        if host.get("behaviour", {}).get("port_service_start_fails") and host["name"] not in faults:
            faults[host["name"]] = Fault(SCENARIO_FAULT, template_of[host["name"]])
    return {"hosts": hosts}, faults, template_of


def edit_inventory(inventory: Path, faults: dict[str, Fault]) -> None:
    """Put the faults' connection variables (a wrong password, short timeouts) into the inventory
    the emulator wrote: a scenario may not set them (they are the emulator's)."""
    doc = yaml.safe_load(inventory.read_text())
    for name, fault in faults.items():
        doc["windows"]["hosts"][name].update(fault.inventory)
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))


def start(scenario: Path, workdir: Path, base_address: str) -> RunningEmulator:
    return launch([scenario], inventory=workdir / "inventory.yml", base_address=base_address, transport="basic")


def playbook(path: str, inventory: Path, forks: int, *args: str, callback: str = "default") -> str:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS=str(forks),
               ANSIBLE_STDOUT_CALLBACK=callback, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([str(BIN / "ansible-playbook"), path, "-i", str(inventory), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    return done.stdout + done.stderr


_ONELINE = re.compile(r"^(\S+) \| (FAILED!|UNREACHABLE!)(?::| =>) (.*)$", re.MULTILINE)


def fix_failures(output: str) -> dict[str, str]:
    """host -> one-line reason, from the oneline callback's FAILED!/UNREACHABLE! lines."""
    failures: dict[str, str] = {}
    for host, _kind, rest in _ONELINE.findall(output):
        try:
            reason = str(json.loads(rest).get("msg") or rest)
        except ValueError:
            reason = rest
        failures.setdefault(host, " ".join(reason.split()))
    return failures


def audit(emulator: RunningEmulator, report_dir: Path, forks: int) -> dict[str, Any]:
    output = playbook("playbooks/audit.yml", emulator.inventory, forks, "-e", f"nhs_cm_report_dir={report_dir}",
                      "-e", '{"nhs_cm_report_formats": ["json"]}',
                      "-e", f"nhs_cm_store={report_dir / 'history.sqlite'}")
    if not (report_dir / "report.json").exists():
        raise RuntimeError(f"the audit wrote no report: {output[-3000:]}")
    return json.loads((report_dir / "report.json").read_text())["hosts"]


def observable(host: dict[str, Any]) -> dict[str, Any]:
    """What a remediation may change on a host: registry, services, programs (not pids)."""
    return {"registry": host["registry"],
            "services": sorted((s["name"], s.get("state"), s.get("start_mode")) for s in host["services"]),
            "processes": sorted((p.get("image") or "", p.get("session"), p.get("user") or "")
                                for p in host["processes"])}


@dataclass
class RunFigures:
    completed: list[str]
    failed: dict[str, str]  # host -> one-line reason (audit report, else the fix play)


def one_run(emulator: RunningEmulator, workdir: Path, label: str, forks: int) -> RunFigures:
    report = audit(emulator, workdir / f"{label}-audit", forks)
    fix = workdir / "fix.yml"
    fix.write_text(FIX)
    fixed = fix_failures(playbook(str(fix), emulator.inventory, forks, callback="oneline"))
    failed = {name: entry["error"] for name, entry in report.items() if entry["status"] == "failed"}
    for name, entry in report.items():  # checks diagnose could not make (access denied on a key, ...)
        if entry.get("unknown") and name not in failed:
            first = entry["unknown"][0]
            failed[name] = f"could not check {first['check']}: {first['reason']}"
    for name, reason in fixed.items():
        failed.setdefault(name, reason)
    return RunFigures(sorted(set(report) - set(failed)), failed)


def half_written(before: dict[str, Any], after: dict[str, Any], faults: dict[str, Fault],
                 template_of: dict[str, str]) -> list[str]:
    """Faulty hosts whose state is neither their own before the run nor a clean twin's after it."""
    clean_after: dict[str, dict[str, Any]] = {}
    for name, host in after.items():
        if name not in faults:
            clean_after.setdefault(template_of[name], observable(host))
    return sorted(name for name in faults
                  if observable(after[name]) not in (observable(before[name]), clean_after.get(template_of[name])))


def by_name(state: dict[str, Any]) -> dict[str, Any]:
    return {host["name"]: host for host in state["hosts"]}


def run(count: int, seed: int, forks: int, workdir: Path, base_address: str) -> dict[str, Any]:
    doc, faults, template_of = build_estate(count, seed)
    scenario = workdir / "estate.yml"
    scenario.write_text(yaml.safe_dump(doc, sort_keys=False))
    emulator = start(scenario, workdir, base_address)
    edit_inventory(emulator.inventory, faults)
    try:
        started = time.monotonic()
        before = by_name(emulator.get("/state"))
        first = one_run(emulator, workdir, "run1", forks)
        after_first = by_name(emulator.get("/state"))
        cleared = sorted(name for name, fault in faults.items() if fault.clears)
        second = one_run(emulator, workdir, "run2", forks)
        after_second = by_name(emulator.get("/state"))
        figures = {
            "hosts": len(before),
            "faults_injected": {name: fault.name for name, fault in sorted(faults.items())},
            "run1": {"completed": len(first.completed), "failed": first.failed},
            "half_written_run1": half_written(before, after_first, faults, template_of),
            "cleared_after_run1": cleared,
            "run2": {"completed": len(second.completed), "failed": second.failed},
            "half_written_run2": half_written(after_first, after_second, faults, template_of),
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        emulator.stop()
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    print(f"hosts: {figures['hosts']}")
    print(f"faults injected: {len(figures['faults_injected'])}")
    for host, fault in figures["faults_injected"].items():
        print(f"  {host}: {fault}")
    for label in ("run1", "run2"):
        result = figures[label]
        print(f"{label}: hosts completed: {result['completed']}, hosts failed: {len(result['failed'])}")
        for host, reason in sorted(result["failed"].items()):
            print(f"  {host}: {reason}")
        print(f"{label}: hosts half-written: {len(figures['half_written_' + label])}")
    print(f"faults cleared before run 2: {len(figures['cleared_after_run1'])}")
    print(f"seconds: {figures['seconds']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--base-address", default="127.90.0.1")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nhs-cm-faults-") as tmp:
        figures = run(options.hosts, options.seed, options.forks, Path(tmp), options.base_address)
    print_figures(figures)
    if options.json:
        Path(options.json).write_text(json.dumps(figures, indent=2))
    bad = figures["half_written_run1"] or figures["half_written_run2"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
