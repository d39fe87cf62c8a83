#!/usr/bin/env python3
"""`make demo`: audit an emulated estate of 20 Windows desktops over real WinRM.

Starts the emulator (a Python program that answers WinRM like 20 desktops would; it is not
Windows), runs playbooks/audit.yml against it with ansible-playbook, prints the summary and
stops the emulator. Exits with ansible-playbook's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def start_emulator(args: argparse.Namespace, inventory: Path) -> tuple[subprocess.Popen[str], str]:
    """Start the emulator; wait for its `ready` line; return it and its control URL."""
    cmd = [str(BIN / "nhs-cm-emulator"), "serve", "--scenario", str(ROOT / "scenarios"),
           "--hosts", str(args.hosts), "--seed", str(args.seed), "--inventory", str(inventory),
           "--base-address", args.base_address, "--transport", args.transport, "--control-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    control = ""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"demo: the emulator stopped before it was ready (exit {proc.wait()})")
        if line.startswith("control:"):
            control = line.split(None, 1)[1].strip().rstrip("/")
        if line.strip() == "ready":
            return proc, control
    proc.terminate()
    raise SystemExit("demo: the emulator was not ready within 60 s")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--base-address", default="127.30.0.1")
    parser.add_argument("--transport", default="ntlm", choices=["ntlm", "basic"])
    parser.add_argument("--report-dir", default=str(ROOT / "reports" / "demo"))
    args = parser.parse_args()

    work = ROOT / ".demo"
    work.mkdir(exist_ok=True)
    inventory = work / "inventory.yml"
    print(f"Starting the emulated estate: {args.hosts} emulated Windows desktops "
          f"(Python WinRM emulator, not Windows) on {args.base_address} onwards, "
          f"WinRM {args.transport.upper()} on port 5985", flush=True)
    started = time.monotonic()
    emulator, control = start_emulator(args, inventory)
    try:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
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
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    print(f"Demo finished in {time.monotonic() - started:.1f} s; report: "
          f"{os.path.relpath(Path(args.report_dir) / 'report.json', ROOT)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
