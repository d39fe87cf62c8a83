#!/usr/bin/env python3
"""`make demo`: audit an emulated estate of 20 Windows desktops over real WinRM.

Starts the emulator (a Python program that answers WinRM like 20 desktops would; it is not
Windows), runs playbooks/audit.yml against it with ansible-playbook, prints the summary and
stops the emulator. Exits with ansible-playbook's exit code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def start_emulator(args: argparse.Namespace, inventory: Path) -> subprocess.Popen[str]:
    """Start the emulator and wait for its `ready` line."""
    cmd = [str(BIN / "nhs-cm-emulator"), "serve", "--scenario", str(ROOT / "scenarios"),
           "--hosts", str(args.hosts), "--seed", str(args.seed), "--inventory", str(inventory),
           "--base-address", args.base_address, "--transport", args.transport]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"demo: the emulator stopped before it was ready (exit {proc.wait()})")
        if line.strip() == "ready":
            return proc
    proc.terminate()
    raise SystemExit("demo: the emulator was not ready within 60 s")


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
    emulator = start_emulator(args, inventory)
    try:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        cmd = [str(BIN / "ansible-playbook"), str(ROOT / "playbooks" / "audit.yml"),
               "-i", str(inventory), "-e", f"nhs_cm_report_dir={args.report_dir}"]
        print("Running: " + " ".join(cmd[0:1] + [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c
                                               for c in cmd[1:]]), flush=True)
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    print(f"Demo finished in {time.monotonic() - started:.1f} s; report: "
          f"{os.path.relpath(Path(args.report_dir) / 'report.json', ROOT)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
