#!/usr/bin/env python3
"""`make demo`: audit an emulated estate of 20 Windows desktops over real WinRM.

Starts the emulator (a Python program that answers WinRM like 20 desktops would; it is not
Windows), runs playbooks/audit.yml against it with ansible-playbook, prints the summary and
stops the emulator. Exits with ansible-playbook's exit code (1 if a host's findings differ from
its scenario's, or a host did not log on and encrypt as the transport says).

`--transport kerberos` (`make demo TRANSPORT=kerberos`): a domain estate. A real MIT Kerberos KDC
(tools/kdc.py) is started first, in a private temporary folder, with the desktops' user; the
emulator accepts Kerberos for each desktop's SPN with the keys the KDC exported; Ansible gets its
tickets itself (kinit); both are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kdc import Kdc, KdcError, start_kdc  # beside this script: python puts tools/ first on sys.path

from nhs_cm_emulator.launch import LaunchError, RunningEmulator, launch

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"

#: The emulated desktops' user (nhs_cm_emulator.cli), a domain account of the demo's realm.
DEMO_USERS = {"ansible": "Passw0rd!"}
PACKAGES = {"basic": "Basic", "ntlm": "NTLM", "kerberos": "Kerberos"}


def start_emulator(args: argparse.Namespace, inventory: Path, kdc: Kdc | None) -> RunningEmulator:
    """Start the emulator (joined to the realm, if any) and wait until it is ready."""
    extra = ["--keytab", str(kdc.keytab), "--realm", kdc.realm] if kdc is not None else []
    try:
        return launch([ROOT / "scenarios"], inventory=inventory, hosts=args.hosts, seed=args.seed,
                      transport=args.transport, base_address=args.base_address, extra=extra,
                      env=kdc.env() if kdc else None, show_stderr=True)
    except LaunchError as exc:
        raise SystemExit(f"demo: {exc}") from None


def check_against_scenarios(report_file: Path, control: str) -> bool:
    """Compare each host's error and warning ids with what its scenario says it should show."""
    with urllib.request.urlopen(control + "/state", timeout=10) as reply:
        expect = json.load(reply).get("expect") or {}
    hosts = json.loads(report_file.read_text())["hosts"]
    wrong = []
    for name, entry in sorted(hosts.items()):
        got = sorted({f["id"] for f in entry["findings"] if f["severity"] in ("error", "warning")})
        if name in expect and (entry["status"] != "ok" or got != sorted(expect[name])):
            wrong.append(f"  {name}: reported {got or entry['error']}, scenario expects {sorted(expect[name])}")
    checked = sum(1 for name in hosts if name in expect)
    print(f"Check against the scenarios: {checked - len(wrong)} of {checked} hosts reported exactly "
          "the findings their scenario file expects")
    if wrong:
        print("\n".join(wrong))
    return not wrong


def check_counters(control: str, transport: str) -> bool:
    """Print how the hosts logged on and how their WS-Man messages travelled (the emulator's counters);
    with NTLM or Kerberos every host must have logged on with that alone and every message be sealed."""
    with urllib.request.urlopen(control + "/stats", timeout=10) as reply:
        hosts = json.load(reply)["hosts"]
    only = sum(1 for entry in hosts.values() if set(entry["logons"]) == {transport})
    messages = sum(sum(entry["messages"].values()) for entry in hosts.values())
    sealed = sum(entry["messages"].get("sealed", 0) for entry in hosts.values())
    print(f"Emulator counters: {only} of {len(hosts)} hosts logged on with {PACKAGES[transport]} only; "
          f"{sealed} of {messages} WS-Man messages encrypted ({PACKAGES[transport]} message encryption)"
          if transport != "basic" else
          f"Emulator counters: {only} of {len(hosts)} hosts logged on with Basic only; {messages} WS-Man "
          "messages, not encrypted (Basic over HTTP is for the demo only)")
    return transport == "basic" or (only == len(hosts) and sealed == messages > 0)


@contextmanager
def domain(transport: str) -> Iterator[Kdc | None]:
    """For Kerberos, a running KDC of a throw-away realm in a private folder (removed afterwards)."""
    if transport != "kerberos":
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="nhs-cm-demo-realm-"))
    try:
        kdc = start_kdc(folder, users=DEMO_USERS)
    except KdcError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise SystemExit(f"demo: {exc}") from exc
    print(f"Started a Kerberos KDC (MIT krb5kdc) for realm {kdc.realm} on 127.0.0.1:{kdc.port}", flush=True)
    try:
        yield kdc
    finally:
        kdc.stop()
        shutil.rmtree(folder, ignore_errors=True)


def join_domain(kdc: Kdc, inventory: Path) -> None:
    """Register each desktop's SPN and export its key to the keytab the emulator reads."""
    document: dict[str, Any] = yaml.safe_load(inventory.read_text())
    spns = kdc.add_services(document["windows"]["hosts"])
    print(f"Joined {len(spns)} desktops to {kdc.realm} (service principals HTTP/<host>.{kdc.realm.lower()})",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--base-address", default="127.30.0.1")
    parser.add_argument("--transport", default="ntlm", choices=["ntlm", "basic", "kerberos"])
    parser.add_argument("--report-dir", default=str(ROOT / "reports" / "demo"))
    args = parser.parse_args()

    work = ROOT / ".demo"
    work.mkdir(exist_ok=True)
    inventory = work / "inventory.yml"
    print(f"Starting the emulated estate: {args.hosts} emulated Windows desktops "
          f"(Python WinRM emulator, not Windows) on {args.base_address} onwards, "
          f"WinRM {args.transport.upper()} on port 5985", flush=True)
    started = time.monotonic()
    with domain(args.transport) as kdc:
        rc = run_demo(args, inventory, kdc)
    print(f"Demo finished in {time.monotonic() - started:.1f} s; report: "
          f"{os.path.relpath(Path(args.report_dir) / 'report.json', ROOT)}")
    return rc


def run_demo(args: argparse.Namespace, inventory: Path, kdc: Kdc | None) -> int:
    """Start the emulator (joined to the realm, if any), audit it, check the results, stop it."""
    with start_emulator(args, inventory, kdc) as emulator:
        control = emulator.control_url
        if kdc is not None:
            join_domain(kdc, inventory)
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(kdc.env() if kdc else {}))
        cmd = [str(BIN / "ansible-playbook"), str(ROOT / "playbooks" / "audit.yml"),
               "-i", str(inventory), "-e", f"nhs_cm_report_dir={args.report_dir}",
               # The demo's own results store (each demo is one more run of its trend), never a real estate's.
               "-e", f"nhs_cm_store={Path(args.report_dir).parent / 'demo-history.sqlite'}"]
        print("Running: " + " ".join(cmd[0:1] + [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c
                                               for c in cmd[1:]]), flush=True)
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        report_file = Path(args.report_dir) / "report.json"
        if rc == 0 and report_file.exists() and not check_against_scenarios(report_file, control):
            rc = 1
        if not check_counters(control, args.transport) and rc == 0:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
